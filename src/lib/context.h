/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <sched.h>

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "caps.h"
#include "cgroup.h"
#include "error.h"
#include "idmap.h"
#include "mount.h"
#include "rlimit.h"
#include "seccomp.h"

/*
 * A security context: one process tree in its own pid, mount, uts, ipc,
 * cgroup and time namespaces (and optionally a network namespace), in its
 * own cgroup, behind a capability bounding set, no_new_privs and a seccomp
 * filter.  The first process is the given command, PID 1 inside.
 */

typedef enum VsNetMode {
        VS_NET_NONE = 0, /* a new network namespace holding only loopback, up */
        VS_NET_HOST,     /* the host's network namespace, shared */
        VS_NET_ISOLATE,  /* the host's, shared, cgroup-BPF keeping to the guest's addresses */
        VS_NET_NETNS,    /* a new network namespace the caller wires (veth) */
} VsNetMode;

/* The environment a context's processes start with: PATH, HOME=/root, container=vserver. */
extern char *const vs_context_env[];

#define VS_CONTEXT_MAX_OVERLAYS 32
#define VS_CONTEXT_MAX_PRESERVE 64

typedef struct VsContextSpec {
        const char *name;          /* names the cgroup and prefixes errors */
        const char *cgroup_parent; /* "/abs" or "relative/to/our/own/cgroup" */
        VsRootSpec root;
        char *const *argv; /* NULL: a tiny built-in PID 1 that only reaps (init = none) */
        char *const *envp; /* NULL: vs_context_env */
        const char *cwd;   /* inside the guest; NULL = "/" */
        const char *hostname;
        const char *domainname;
        /*
         * A user namespace of its own (count > 0): guest ids 0..count-1 are
         * host ids from start, the root tree idmapped to it, the cgroup leaf
         * the guest's; every other namespace belongs to it.
         */
        VsIdRange userns;
        /*
         * Its root may make cgroups below its own (systemd must): the leaf
         * NAME/guest in cgroup2 and name=systemd, its own with a user
         * namespace, writable on /sys/fs/cgroup.  Else one cgroup per
         * hierarchy and the whole tree read-only (vs_cgroup_create).
         */
        bool delegate;
        VsCaps caps;
        bool no_new_privs;
        VsSeccompSpec seccomp;
        unsigned notify;           /* VS_NOTIFY_*: syscalls a host process answers (ctx.notify) */
        const cpu_set_t *affinity; /* the CPUs its processes start on; NULL: any */
        const VsRlimit *rlimits;
        int n_rlimits;
        VsNetMode net;
        /*
         * stdin/out/err: pipes (or /dev/null) that the caller relays, never
         * a host file or terminal (refused); -1: the pty below.
         */
        int stdio[3];
        bool tty;     /* a pty from the guest's own devpts, our controlling terminal */
        bool console; /* the same pty, not a controlling terminal (a booted guest's console) */
        /*
         * With console: a pipe instead of the pty (init's stdout and stderr,
         * its read end to the caller as pty_master), stdin and /dev/console
         * the guest's /dev/null.
         */
        bool console_pipe;
        const struct VsLimits *limits; /* cgroup limits and IPC sysctls; NULL = none */
        /* network set-up: once the cgroup exists (isolate), once PID 1 exists (netns) */
        int (*net_cgroup)(const VsCgroup *cg, void *data, VsError *err);
        int (*net_child)(pid_t pid, int pidfd, void *data, VsError *err);
        void *net_data;
} VsContextSpec;

/* Joining a running context: a process in its namespaces and cgroup. */
typedef struct VsJoinSpec {
        const char *name;
        int pidfd;        /* of the context's PID 1 */
        const char *path; /* the file to run; NULL: argv[0], looked up in PATH */
        char *const *argv;
        char *const *envp;
        const char *cwd;
        bool cwd_or_root; /* if @cwd is not there, start in / instead of failing */
        VsCaps caps;
        bool no_new_privs;
        VsSeccompSpec seccomp;
        unsigned notify; /* as in VsContextSpec */
        const cpu_set_t *affinity;
        const VsRlimit *rlimits;
        int n_rlimits;
        bool tty;     /* a pty from the guest's devpts; -1 in @stdio takes it */
        int stdio[3]; /* as in VsContextSpec */
        /* the OCI front's exec: */
        const struct VsSeccomp *filter; /* instead of @seccomp: a filter built already */
        const struct VsCred *cred;      /* instead of @caps: a user and five capability sets */
        bool set_umask;
        mode_t umask;
        int n_preserve;   /* fds 3 .. 3+n-1 are passed on */
        bool path_lookup; /* look argv[0] up in @envp's PATH, runc's error if not there */
} VsJoinSpec;

typedef struct VsContext {
        pid_t pid; /* in our pid namespace */
        int pidfd;
        int pty_master; /* with spec.tty or console (a pipe's read end: console_pipe), or -EBADF */
        int notify;     /* with spec.notify: the listener of its uname/sysinfo filter */
        VsCgroup cgroup;
} VsContext;

#define VS_CONTEXT_INIT                                                                            \
        {                                                                                          \
                .pid = 0, .pidfd = -EBADF, .pty_master = -EBADF, .notify = -EBADF,                 \
                .cgroup = VS_CGROUP_INIT                                                           \
        }

/* Defaults: default caps, seccomp default, no_new_privs, net none, stdio unset (-1). */
void vs_context_spec_init(VsContextSpec *spec);

/*
 * Both need the calling program to run from a sealed copy of itself
 * (selfexe.h); they refuse otherwise.
 *
 * Start the context.  Returns once the command has been exec'd (or failed:
 * then the error names the step, e.g. "mount proc on /proc: Operation not
 * permitted", and nothing of the context is left).  On success @ret holds a
 * pidfd of PID 1 and the context's cgroup.
 */
int vs_context_start(const VsContextSpec *spec, VsContext *ret, VsError *err);
/*
 * Run a command in the running context whose PID 1 @spec->pidfd names: its
 * user (if its own), pid, mount, uts, ipc, net, cgroup and time namespaces,
 * as its root, in the cgroup its PID 1 is in, then the same lockdown as a
 * start.  On success @ret holds a pidfd of
 * the command (ret->cgroup is empty: the context's cgroup is not ours).
 */
int vs_context_join(const VsJoinSpec *spec, VsContext *ret, VsError *err);
/* Does @pid run in a user namespace other than ours (a context's own)? */
int vs_context_own_userns(pid_t pid, bool *ret, VsError *err);
/* Close the fds of @ctx, leaving the kernel objects alone. */
void vs_context_release(VsContext *ctx);
/* Wait for PID 1 to end; *ret_code is its exit code, or 128+signal. */
int vs_context_wait(VsContext *ctx, int *ret_code, VsError *err);
/* Kill whatever is left, remove the cgroup, close fds. */
int vs_context_destroy(VsContext *ctx, VsError *err);
