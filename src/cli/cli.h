/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/config.h"
#include "../lib/error.h"
#include "../lib/guest.h"
#include "../lib/paths.h"

#define EXIT_USAGE   2
#define EXIT_STOPPED 3

extern const char *vs_program;

/* One verb of the command line: argv[0] is the verb itself. */
typedef struct Verb {
        const char *name;
        int (*run)(int argc, char **argv);
        const char *synopsis; /* after "vserver VERB " */
        const char *summary;
        const char *usage;             /* the options, shown by "vserver help VERB" */
        const char *(*usage_fn)(void); /* or made when asked (build: from the key table) */
        bool enters; /* runs processes in a guest: from a sealed copy of us only */
} Verb;

extern const Verb verb_run_def, verb_build_def, verb_start_def, verb_stop_def, verb_restart_def,
    verb_status_def, verb_running_def, verb_exec_def, verb_enter_def, verb_list_def, verb_ps_def,
    verb_kill_def, verb_delete_def, verb_config_def, verb_set_def, verb_limits_def, verb_stats_def,
    verb_suspend_def, verb_resume_def, verb_unify_def, verb_deunify_def, verb_host_def;

/* delete: drop the guest's links to files that other guests share (unify.c). */

/* What every guest command needs: where the installation is, the host settings. */
typedef struct Host {
        VsPaths paths;
        VsHostConfig conf;
        const char *cgroup_parent; /* $VSERVER_CGROUP_PARENT or the host setting */
} Host;

/* --root-dir DIR, else $VSERVER_ROOT, else /.  Prints the error and returns -1. */
int host_load(Host *h, const char *root_dir, const char *verb);
/* Where write limits meet cgroup v1's blkio: say that buffered writes pass unthrottled. */
struct VsLimits;
void note_io_v1(const char *verb, const struct VsLimits *l);
/* Load guest @name; prints the error (exit code in *ret_code) on failure. */
int guest_load(VsGuest *g, const Host *h, const char *name, const char *verb, int *ret_code);
/* Take the guest's lock; prints on failure. */
int guest_lock(const VsGuest *g, const char *verb, int *ret_fd);
/* The stats as json keys of @j (stats, list --json). */
struct VsStats;
struct json_object;
void stats_to_json(const struct VsStats *s, struct json_object *j);
/* A guest's disk use and limit as json keys of @j (stats, list --json); null where unknown. */
void disk_to_json(const VsDiskUsage *d, struct json_object *j);
/* "62.1 MiB of 64.0 MiB, 314 of 18592 files (image)"; "no limit". */
const char *disk_text(const VsDiskUsage *d, char *buf, size_t size);
/* "1.5 MiB"; "-" for an unknown value. */
const char *stats_bytes(uint64_t v, char *buf, size_t size);
/* Print a json-c object to stdout, pretty, with a newline. */
struct json_object;
void json_print(struct json_object *o);

/* "vserver: <verb>: <message>" on stderr; returns @code for `return fail(...)`. */
int fail(int code, const char *verb, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Same, with the text of a VsError. */
int fail_error(int code, const char *verb, const VsError *e);

/* vserver-runc (runc.c): the OCI runtime's command line, picked by argv[0]. */
int runc_main(int argc, char **argv);

/* A guest command's stdio: pipes, the guest's ends and ours (none with a pty). */
typedef struct GuestStdio {
        int guest[3]; /* for the spec's stdio: -1 with a pty */
        int ours[3];
} GuestStdio;
/* The pipes for a command without a pty; prints and returns -1 on failure. */
int stdio_pipes(GuestStdio *io, bool tty, const char *verb);
void stdio_close_guest_ends(GuestStdio *io);
void stdio_close(GuestStdio *io);

/*
 * Stay with a started command until it ends: our INT, TERM, HUP, QUIT, USR1
 * and USR2 go to it; our stdio (with @tty our terminal, raw) is relayed to
 * and from its pipes or pty.  Returns its exit code.
 */
struct VsContext;
int attend(struct VsContext *ctx, GuestStdio *io, bool tty, const char *verb);
