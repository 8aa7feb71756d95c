/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The pieces of a context's start that the OCI front (oci_run.c) shares
 * with context.c: the sync socket's messages, the child's set-up steps and
 * the lockdown before exec.  Not for the command line.
 */

#include <sched.h>
#include <stdbool.h>
#include <sys/types.h>

#include "caps.h"
#include "context.h"
#include "error.h"
#include "rlimit.h"
#include "seccomp.h"

/* What a child sends up the sync socket. */
enum { MSG_ERROR = 1, MSG_PTY = 2, MSG_PIDFD = 3, MSG_NOTIFY = 4, MSG_READY = 5, MSG_HOOKS = 6 };

typedef struct ChildMsg {
        int type;
        VsError error;
} ChildMsg;

/* The child's seccomp filters: the deny list, and the one a host process answers. */
typedef struct Filters {
        VsSeccomp *deny, *notify;
} Filters;

/* The last steps before exec. */
typedef struct VsLockdown {
        const VsRlimit *rlimits;
        int n_rlimits;
        bool no_new_privs;
        const VsSeccomp *deny, *notify;
        VsCaps caps;        /* bounding = permitted = effective = inheritable */
        const VsCred *cred; /* instead of @caps: a user and five sets (OCI) */
        const cpu_set_t *affinity;
        bool set_umask; /* else 022 */
        mode_t umask;
        int n_preserve; /* fds 3 .. 3+n-1 stay open across the exec */
} VsLockdown;

_Noreturn void vs_ctx_child_exit(int sock, int r, const VsError *cerr);
int vs_ctx_send_fd(int sock, int type, int fd);
int vs_ctx_send_fd_value(int sock, int type, int fd, int value);
/* Close every fd but @keep and 3 .. 3+@n_preserve-1. */
int vs_ctx_keep_only(const int *keep, int n, int n_preserve);
int vs_ctx_chdir_in_root(const char *cwd, bool or_root, VsError *err);
bool vs_ctx_is_ptmx(int fd);
int vs_ctx_open_pty(int rootfd, int flags, int sock, VsError *err);
int vs_ctx_setup_stdio(const int stdio[3], int slave, bool ctty, VsError *err);
int vs_ctx_become_ns_root(int sock, VsError *err);
int vs_ctx_wait_for_go(int sock, int *fds, int max, int *ret_n, VsError *err);
void vs_ctx_reset_signals(void);
/* A new time namespace with @offsets ("monotonic S NS\nboottime S NS\n"), entered. */
int vs_ctx_timens(const char *offsets, VsError *err);
int vs_ctx_lockdown(const VsLockdown *l, int sock, VsError *err);
/*
 * Read the child's reports until the socket closes (the exec), a pidfd
 * arrives (*ret_into: born in its cgroup2 leaf) or, with @ret_stop, the child
 * says it waits: for its start (MSG_READY) or for the caller's hooks
 * (MSG_HOOKS); *ret_stop says which, 0 for the end.
 */
int vs_ctx_wait(int sock, VsContext *ctx, int *ret_into, int *ret_stop, VsError *err);
struct clone_args;
long vs_ctx_clone_into(struct clone_args *args, int cgfd, bool *ret_into);
void vs_ctx_kill_and_reap(int pidfd);
int vs_ctx_check_caller(const int stdio[3], bool pty, VsError *err);
/*
 * @file as execve would run it, looked up in the PATH of @envp (not ours)
 * inside the root we run in: "exec: "x": executable file not found in $PATH"
 * as runc says it (engines turn it into exit code 127).
 */
int vs_ctx_find_program(const char *file, char *const *envp, char *buf, size_t size, VsError *err);
