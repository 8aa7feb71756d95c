/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

/*
 * The options the guest commands share.  Options may stand before or after
 * the guest's name (`vserver stop web1 --timeout 5`).
 */
typedef struct Opts {
        const char *root_dir;
        bool json, force, all, autostart, tty, save, watch;
        long timeout; /* -1: the guest's own */
        int optind;   /* first operand */
} Opts;

enum {
        O_ROOT_DIR = 1 << 0,
        O_JSON = 1 << 1,
        O_FORCE = 1 << 2,
        O_ALL = 1 << 3,
        O_AUTOSTART = 1 << 4,
        O_TIMEOUT = 1 << 5,
        O_TTY = 1 << 6,
        O_SAVE = 1 << 7,
        O_WATCH = 1 << 8,
};

/*
 * Parse the @allowed options of @verb; operands are gathered from
 * argv[opts->optind].  With @stop_at_operand, parsing stops after the
 * first operand's options (for exec: the command follows).  Returns 0, 1
 * for --help (printed), or -1 (error printed).
 */
int opts_parse(int argc, char **argv, const char *verb, unsigned allowed, const char *usage_line,
               const char *usage, Opts *o);
/*
 * What every verb's option loop does with what is not its own (getopt_long
 * returned @c): --help prints the verb's usage (exit 0), a missing value and
 * an unknown option say so (exit 2).  The exit code.
 */
int opts_other(int c, char **argv, const char *verb, const char *usage_line, const char *usage);
#define OPTS_HELP 'h' /* the value verbs give --help in their option tables */
