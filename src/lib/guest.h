/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <sched.h>

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "cgroup.h"
#include "config.h"
#include "disk.h"
#include "cow.h"
#include "error.h"
#include "paths.h"

/*
 * A named, persistent guest: its file, its tree, its log, and its state,
 * which always comes from the kernel (the guest's cgroup), never from a
 * note of ours, so it stays right after a killed CLI or a wiped /run.
 */
typedef struct VsGuest {
        VsPaths paths;
        VsHostConfig host;
        const char *cgroup_parent;
        VsGuestConfig cfg;
        char conf[PATH_MAX];    /* etc/vserver/guests/NAME.conf */
        char dir[PATH_MAX];     /* var/lib/vserver/guests/NAME */
        char rootfs[PATH_MAX];  /* .../NAME/rootfs */
        char base[PATH_MAX];    /* .../NAME/base: its stubs of shared files, if unified (cow.h) */
        char work[PATH_MAX];    /* .../NAME/work: overlayfs's */
        char log[PATH_MAX];     /* var/log/vserver/NAME.log */
        char shadow_notes[512]; /* start: host routes its addresses took over (net.h) */
} VsGuest;

/* @g's overlay layers (cow.h), pointing into @g. */
void vs_guest_layers(const VsGuest *g, VsCowLayers *l);

typedef struct VsGuestState {
        bool running;
        pid_t init;                    /* PID 1 of the guest, in our pid namespace; 0 if none */
        int init_pidfd;                /* or -EBADF */
        unsigned long long init_start; /* its start, clock ticks after boot (/proc/PID/stat) */
        int nproc;
        bool frozen;     /* suspended (vserver suspend) */
        bool userns;     /* runs in a user namespace of its own */
        VsCgroup cgroup; /* open if it exists (running or stale) */
} VsGuestState;

/* Fill in names and paths and load the guest file. */
int vs_guest_load(VsGuest *g, const VsPaths *paths, const VsHostConfig *host,
                  const char *cgroup_parent, const char *name, VsError *err);
/*
 * For stop and delete: the guest as it was started (run/NAME.started, kept
 * from start to stop), else its file.  Returns 1 with defaults (paths, no
 * network to undo) if the file is broken: the kernel still knows enough to
 * stop the guest.
 */
int vs_guest_load_started(VsGuest *g, const VsPaths *paths, const VsHostConfig *host,
                          const char *cgroup_parent, const char *name, VsError *err);
/*
 * A running guest's limits are those it started with and every live change
 * since (vserver set without --save), kept in run/NAME.started: put them
 * in g->cfg (1), or leave g->cfg as it is (0: not running, or no note).
 */
int vs_guest_live_limits(VsGuest *g, const VsGuestState *st);
/* One limit: as the guest file says it, where it goes, and what the kernel holds now. */
typedef struct VsLimitRow {
        const char *key;  /* "limits.memory" */
        char value[256];  /* as set */
        const char *api;  /* "v1", "v2", "" (an rlimit) */
        const char *file; /* the kernel file, or "rlimit of PID 1" */
        char write[160];  /* what goes into it ("" for an rlimit) */
        char now[512];    /* what it holds now, if has_now (the guest runs) */
        bool has_now;
        char rkey[48]; /* (the key's storage, for an rlimit) */
} VsLimitRow;

typedef struct VsLimitReport {
        VsLimitRow *rows;
        int n;
        bool has_problem; /* a limit that could not be planned (its rows are left out) */
        VsError problem;
} VsLimitReport;

/* Every limit of @g (@st: running or not) in the order the files are written. */
int vs_guest_limits(const VsGuest *g, const VsGuestState *st, VsLimitReport *r, VsError *err);
void vs_limit_report_free(VsLimitReport *r);
/*
 * The CPUs a guest's processes start on when a CPU limit leaves it fewer
 * than it may use (its views show as many: nproc agrees); false: any.
 */
bool vs_guest_affinity(const VsGuestConfig *c, cpu_set_t *ret);
/* After a live change of its CPU limit: every thread of running @g on those CPUs again. */
void vs_guest_repin(const VsGuest *g, const VsGuestState *st);
/* The system calls the view server answers for @g's processes (VS_NOTIFY_*). */
unsigned vs_guest_notify(const VsGuestConfig *c);
/* Note g->cfg's limits and rlimits as the running guest's (after a live change). */
int vs_guest_note_limits(const VsGuest *g, VsError *err);
/* Paths only: for a guest being built, or one whose file is broken. */
int vs_guest_init(VsGuest *g, const VsPaths *paths, const VsHostConfig *host,
                  const char *cgroup_parent, const char *name, VsError *err);
/* The guest's lock (run/NAME.lock); fails at once with a clear error if held. */
int vs_guest_lock(const VsGuest *g, int *ret_fd, VsError *err);
/* What the kernel says about the guest now. */
int vs_guest_state(const VsGuest *g, VsGuestState *ret, VsError *err);
/*
 * The same for a listing: init's pid and start time but no pidfd (the pid is
 * only shown, never signalled) and no look at its user namespace.
 */
int vs_guest_state_brief(const VsGuest *g, VsGuestState *ret, VsError *err);
void vs_guest_state_release(VsGuestState *st);
/*
 * The process that has pid @inner inside the guest (1: its init): its host
 * pid and a pidfd, checked against pid reuse.  *ret_nproc (may be NULL) is
 * the number of processes seen.  -ESRCH if there is none.
 */
int vs_guest_find(const VsGuestState *st, long inner, pid_t *ret_pid, int *ret_pidfd,
                  int *ret_nproc);
/* The guest's capability bounding set: defaults (of its user namespace mode), its file's. */
VsCaps vs_guest_caps(const VsGuestConfig *c);
/*
 * The guest's host id range (userns = yes): allocated from the host's pool
 * if it has none and @allocate, else looked up; count 0 if none.
 */
int vs_guest_range(const VsGuest *g, bool allocate, VsIdRange *ret, VsError *err);
/* Boot the guest's init as PID 1 of a new context; returns once it runs. */
int vs_guest_start(VsGuest *g, VsError *err);
/*
 * After a start: what the guest's addresses cannot reach, one line each in
 * @buf (a private address without NAT, a netns guest without a gateway,
 * IPv6 the host does not forward, a host route an address shadows); the
 * number of lines.
 */
int vs_guest_net_notes(const VsGuest *g, char *buf, size_t size);
/*
 * The stop signal to PID 1, up to @timeout seconds for it to end, then kill
 * whatever is left through the cgroup and remove the cgroup.  ret_forced
 * tells whether the timeout ran out.
 */
int vs_guest_stop(VsGuest *g, unsigned timeout, bool *ret_forced, VsError *err);
/*
 * Delete @g (vs_guest_init'ed: its file may be broken or gone): stopped
 * first if @force, its links to files other guests share released, its
 * tree, file, log and run files removed, its id range freed (or retired
 * where it may own files outside its tree).
 */
int vs_guest_delete(VsGuest *g, bool force, VsError *err);
/* Names of all guests with a file, sorted; vs_guest_names_free them. */
int vs_guest_list(const VsPaths *paths, char ***ret_names, int *ret_n, VsError *err);
void vs_guest_names_free(char **names, int n);
/*
 * Reserve a context id for guest @name being built: *ctx if given (refused
 * if a guest file or another build has it), else the lowest free one in the
 * host's range.  Atomic across concurrent builds (a lock, and a reservation
 * run/vserver/context.ID that lives until the build's process ends or
 * vs_guest_release_context).
 */
int vs_guest_reserve_context(const VsPaths *paths, const VsHostConfig *host, const char *name,
                             unsigned *ctx, VsError *err);
void vs_guest_release_context(const VsPaths *paths, unsigned ctx);

/*
 * vserver set: @n keys (SECTION.KEY) and their values.  The plan sets them
 * on top of what the guest runs with and checks the result (its errors are
 * the caller's input); the run changes a running guest's limits live
 * (putting back what ran before if the kernel refuses one) and, with @save,
 * edits the guest file in place.  Other keys change only with @save, at the
 * next start.
 */
#define VS_GUEST_SET_MAX 64
typedef struct VsGuestSet {
        const char *keys[VS_GUEST_SET_MAX], *values[VS_GUEST_SET_MAX];
        int n;
        VsLimits prev;       /* what ran before */
        bool all_live;       /* every key is a limit */
        bool running;        /* the run found it running */
        bool disk_live;      /* a disk limit changed is in force now */
        char disk_note[512]; /* a disk limit below what it uses, or one left for the next start */
} VsGuestSet;
int vs_guest_set_plan(VsGuest *g, VsGuestSet *s, VsError *err);
int vs_guest_set_run(VsGuest *g, VsGuestSet *s, bool save, VsError *err);

/* Its tree for disk.h: directory, root, context id. */
VsDiskTree vs_guest_disk_tree(const VsGuest *g);
/*
 * Its disk limit as g->cfg.limits says, in the kernel: an image mounted
 * and grown, or its project's limits.  Running or not (the limit is on its
 * files).  A limit below its usage is set, and said in @note.
 */
int vs_guest_disk_apply(const VsGuest *g, bool stopped, char *note, size_t nsz, VsError *err);

/* Freeze (@suspend) or thaw every process of a running guest. */
int vs_guest_suspend(const VsGuestState *st, bool suspend, VsError *err);
/*
 * Bring a running guest's limits to g->cfg.limits and rlimits: its
 * cgroups (every limit written, so a lifted one is lifted), prlimit on each
 * of its processes, and the IPC sysctls inside its namespace.  @prev: the
 * limits it ran with (I/O devices no longer named are freed).
 */
int vs_guest_apply_limits(const VsGuest *g, const VsGuestState *st, const VsLimits *prev,
                          VsError *err);
