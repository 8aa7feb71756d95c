/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

/*
 * Every key of a guest file, in one table (keys.c): the file's sections in
 * order, each key with how it is set from text and written back, what it
 * is for, and the build option that sets it.  Parsing, `vserver set`,
 * `vserver build --OPTION`, writing the file, `vserver help keys` and every
 * "unknown key (known: ...)" come from it.  Adding a key is one row (and
 * its setter and writer, where no existing one fits) plus its test.
 */

enum {
        VS_KEY_MULTI = 1,  /* may be given more than once (each adds) */
        VS_KEY_RLIMIT = 2, /* a resource limit of [limits] (listed apart) */
};

typedef struct VsKey {
        const char *section; /* "guest", "net", "limits", "security", "mount", "unify" */
        const char *name;    /* "hostname" */
        /* 0, or -EINVAL with a message that names the fix in @msg */
        int (*set)(VsGuestConfig *g, const char *name, const char *value, char *msg, size_t msz);
        /* the key's lines, if set; NULL: written with an earlier key of its kind */
        void (*write)(const VsGuestConfig *g, FILE *f);
        unsigned flags;
        const char *option; /* the build option that sets it ("memory": --memory), or NULL */
        const char *help;   /* what it is for, one sentence */
        const char *arg;    /* the option's value as usage names it ("SIZE"), with option */
} VsKey;

extern const VsKey vs_keys[];
extern const size_t vs_n_keys;

const VsKey *vs_key_find(const char *section, const char *name);
/* Set @section.@name; an unknown section or key says which are known. */
int vs_key_set(VsGuestConfig *g, const char *section, const char *name, const char *value,
               char *msg, size_t msz);
/* The whole guest file. */
int vs_keys_write(const VsGuestConfig *g, FILE *f);
