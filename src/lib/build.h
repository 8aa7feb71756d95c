/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

#include "error.h"
#include "guest.h"
#include "template.h"

/*
 * Building a guest: its guest file and its tree from a template, in two
 * steps.  vs_build_plan checks everything that was asked (keys, limits the
 * host can give, addresses, the template and its options) before anything
 * is made: its errors are the caller's input.  vs_build_run makes the tree
 * in a staging directory (GUESTS/.NAME.build-PID), renames it into place
 * and writes the guest file last; on failure or interruption
 * (vs_tree_interrupted) nothing is left.
 */

typedef enum {
        VS_TEMPLATE_BUSYBOX,
        VS_TEMPLATE_DEBIAN,
        VS_TEMPLATE_DIR,
        VS_TEMPLATE_TARBALL,
        VS_TEMPLATE_CLONE,
} VsTemplateKind;

typedef struct VsBuildSpec {
        const char *template_arg;     /* busybox (NULL too), debian, clone:GUEST, /DIR, /TARBALL */
        const char *suite;            /* debian; NULL: the host settings' */
        const char *mirror;           /* debian; NULL: the host settings' */
        bool sysvinit;                /* debian: sysvinit instead of systemd */
        const char *const (*sets)[2]; /* guest file keys and values, in order */
        const char *const *where;     /* where each came from ("--memory"), for errors */
        int n_sets;
} VsBuildSpec;

typedef struct VsBuild {
        VsGuest g; /* the new guest: names, paths, its configuration */
        VsTemplateKind kind;
        const char *src; /* the template as given */
        VsDebianSpec debian;
        int disk;       /* VsDiskKind: how its disk limit is held (VS_DISK_NONE: none asked) */
        double seconds; /* what the run took */
        /* told before a long step ("debootstrap bookworm from URL into NAME"); may be NULL */
        void (*note)(void *data, const char *msg);
        void *note_data;
} VsBuild;

int vs_build_plan(VsBuild *b, const VsPaths *paths, const VsHostConfig *host,
                  const char *cgroup_parent, const char *name, const VsBuildSpec *spec,
                  VsError *err);
/* Errors once the tree is being made start with the guest's name; EINTR: interrupted. */
int vs_build_run(VsBuild *b, VsError *err);
