/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

#include "../lib/error.h"

#define EXIT_USAGE 2

extern const char *vs_program;

/* One verb of the command line: argv[0] is the verb itself. */
typedef struct Verb {
        const char *name;
        int (*run)(int argc, char **argv);
        const char *synopsis; /* after "vserver VERB " */
        const char *summary;
        const char *usage; /* the options, shown by "vserver help VERB" */
} Verb;

int verb_run(int argc, char **argv);
extern const Verb verb_run_def;

/* "vserver: <verb>: <message>" on stderr; returns @code for `return fail(...)`. */
int fail(int code, const char *verb, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Same, with the text of a VsError. */
int fail_error(int code, const char *verb, const VsError *e);

/* Relay between our terminal and a pty master until @pidfd's process ends. */
int tty_relay(int master, int pidfd);
