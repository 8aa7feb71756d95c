/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "error.h"

/*
 * A minimal cgroup helper: one cgroup per context in every mounted
 * hierarchy (the cgroup2 tree and, on v1 or hybrid hosts, each v1
 * hierarchy), so the kernel can tell us what belongs to a context, and kill
 * it all.  The full manager with limits builds on this.
 *
 * The parent is "/abs/path" (from each hierarchy's root) or "rel/path",
 * taken from the caller's own cgroup in each hierarchy: that is how tests
 * keep everything they start inside the runner's own accounting.
 */
#define VS_CGROUP_MAX_DIRS 16

/*
 * A context's cgroup is PARENT/NAME in every hierarchy.  Where the guest may
 * write its own cgroup tree (systemd must: the cgroup2 tree, name=systemd),
 * its processes live in the leaf PARENT/NAME/guest, the root of its cgroup
 * namespace there, and the limits on PARENT/NAME stay out of its reach.  In
 * a v1 controller hierarchy, which a guest only reads (bound read-only), its
 * processes live in PARENT/NAME itself: no second cgroup (a v1 memory
 * cgroup is 168 KiB of kernel memory).
 */
#define VS_CGROUP_LEAF "guest"
/* cgroup2 bounds on PARENT/NAME: levels and cgroups a guest may make below its root */
#define VS_CGROUP_MAX_DEPTH       "32"
#define VS_CGROUP_MAX_DESCENDANTS "10000"

typedef struct VsCgroup {
        int n;
        struct {
                char *path;     /* absolute path of PARENT/NAME */
                char ctrls[64]; /* v1: the hierarchy's controllers ("cpu", "cpu,cpuacct") */
                int base;       /* cgroup2: path length from where we may enable controllers */
                bool v2;
                bool created;
        } dirs[VS_CGROUP_MAX_DIRS];
        int v2fd;   /* O_PATH|O_DIRECTORY fd of the cgroup2 leaf, or -EBADF */
        int walkfd; /* list's lookups: the directory its processes are listed from, or -EBADF */
        bool exact; /* paths name the very cgroups to join (vs_cgroup_of_pid) */
} VsCgroup;

#define VS_CGROUP_INIT                                                                             \
        {                                                                                          \
                .n = 0, .v2fd = -EBADF, .walkfd = -EBADF                                           \
        }

/*
 * One hierarchy's own cgroup of the calling process, as a detached bind
 * mount (open_tree OPEN_TREE_CLONE) for a guest's /sys/fs/cgroup/@dir.  A
 * fresh v1 mount first drains every cgroup of the cgroup2 tree under the
 * cgroup mutex (cgroup1_get_tree), two per running guest: ten such mounts
 * a start made every start slower with the number of guests.  A bind shows
 * the same (rooted at our cgroup namespace).  @readonly: a v1 controller
 * hierarchy, which a guest only reads.
 */
typedef struct VsCgroupTree {
        int fd;
        char dir[64];
        bool readonly;
} VsCgroupTree;

/* "a/b-c.d": letters, digits, '.', '_', '-', '/' separators, no "." or ".." parts. */
bool vs_cgroup_path_valid(const char *path);
/*
 * Create the context's cgroup @name under @parent in every hierarchy; fails
 * if it exists.  @delegate: the guest may make cgroups of its own below it,
 * so the hierarchies it may write (cgroup2, name=systemd) get the leaf
 * NAME/guest its processes join, with the cgroup2 controllers enabled for
 * it (on a cgroup2 host a second memory cgroup); else its processes live
 * in NAME itself everywhere, cgroup2's max.depth and max.descendants are 0
 * and nothing below NAME is ever made: one cgroup per hierarchy.
 */
int vs_cgroup_create(VsCgroup *cg, const char *parent, const char *name, bool delegate,
                     VsError *err);
/*
 * Hand the leaf (the guest's cgroup namespace root) to @uid/@gid, the root
 * of a user namespace: the directory and the files that move processes and
 * enable controllers, in the cgroup2 tree and the name=systemd hierarchy
 * (the hierarchies a guest may write to).  Limits stay on PARENT/NAME.
 */
int vs_cgroup_delegate(const VsCgroup *cg, uid_t uid, gid_t gid, VsError *err);
/* Fill @cg with the existing directories of @parent/@name (no creation); -ENOENT if none. */
int vs_cgroup_open(VsCgroup *cg, const char *parent, const char *name, VsError *err);
/* Open the existing @parent/@name if it is there; 0 and cg->n == 0 if not. */
int vs_cgroup_open_if(VsCgroup *cg, const char *parent, const char *name, VsError *err);
/*
 * The directory that holds the contexts under @parent, in the cgroup2 tree
 * if mounted (else the first v1 hierarchy): its absolute path, and its path
 * as /proc/PID/cgroup shows it (ret_rel), with the hierarchy's line prefix
 * ("0::" or "N:ctrls:") in ret_prefix.
 */
int vs_cgroup_base(const char *parent, char *ret_abs, size_t abs_size, char *ret_rel,
                   size_t rel_size, char *ret_prefix, size_t prefix_size, VsError *err);
/* The host directory of @path ("/" or "/a/b", from the cgroup2 tree's root). */
int vs_cgroup_v2_dir(const char *path, char *ret, size_t size, VsError *err);
/*
 * Call @fn on @dir (depth 0), then depth first on each cgroup below it, with
 * an fd of each (valid during the call only); stops on != 0 and returns it.
 * Iterative and at most VS_CGROUP_WALK_DEPTH levels deep (guests control
 * these trees): -ELOOP when deeper cgroups were left out.
 */
#define VS_CGROUP_WALK_DEPTH 64
int vs_cgroup_walk(const char *dir, int (*fn)(int dfd, int depth, void *data), void *data);
/* Call @fn for each pid in the context's cgroup tree (the primary hierarchy); stops on != 0. */
int vs_cgroup_foreach_pid(const VsCgroup *cg, int (*fn)(pid_t pid, void *data), void *data);
/* The cgroups @pid is in, in every hierarchy we see: to join them (never to destroy). */
int vs_cgroup_of_pid(VsCgroup *cg, pid_t pid, VsError *err);
/* Move @pid into the v1 hierarchies (v2 placement happens in clone3). */
int vs_cgroup_attach_v1(const VsCgroup *cg, pid_t pid, VsError *err);
/* Move @pid into every hierarchy, the cgroup2 one included. */
int vs_cgroup_attach(const VsCgroup *cg, pid_t pid, VsError *err);
/*
 * Write @value to whichever of @v1_file / @v2_file each hierarchy's
 * PARENT/NAME directory has (e.g. memory.limit_in_bytes / memory.max);
 * -ENOENT if none has either.
 */
int vs_cgroup_set(const VsCgroup *cg, const char *v1_file, const char *v2_file, const char *value,
                  VsError *err);
/* Is any process left in the context's cgroup? */
bool vs_cgroup_populated(const VsCgroup *cg);
/* Was it made with cgroups of its own to make (a leaf NAME/guest; vs_cgroup_create)? */
bool vs_cgroup_delegated(const VsCgroup *cg);
/* SIGKILL everything in the cgroup (cgroup.kill where the kernel has it). */
int vs_cgroup_kill(const VsCgroup *cg, VsError *err);
/* Kill what is left, wait for it to go, remove the directories. */
int vs_cgroup_destroy(VsCgroup *cg, VsError *err);
/* What a context's cgroup has used, by the kernel's own accounting; VS_CG_NONE where unknown. */
typedef struct VsCgUsage {
        uint64_t cpu_usage_us, cpu_user_us, cpu_system_us;
        uint64_t cpu_periods, cpu_throttled_periods, cpu_throttled_us;
        uint64_t mem_current, mem_peak, mem_anon, mem_cache, swap_current;
        uint64_t oom_kills;
        uint64_t io_read_bytes, io_write_bytes, io_read_ops, io_write_ops;
        uint64_t tasks; /* pids.current */
} VsCgUsage;
#define VS_CG_NONE UINT64_MAX
/*
 * @brief: only CPU user and system time, memory and swap in use, OOM kills,
 * I/O bytes and tasks (vserver list's table); the rest stays VS_CG_NONE.
 */
int vs_cgroup_usage(const VsCgroup *cg, bool brief, VsCgUsage *ret, VsError *err);

/* Pure parsers of the kernel's files (the unit tests use them too). */
/* The value of @key in "key value" lines (cpu.stat, memory.stat, ...); -ENOENT. */
int vs_cgroup_kv(const char *text, const char *key, uint64_t *ret);
/* v2 io.stat: sums over devices. */
void vs_cgroup_io_stat(const char *text, uint64_t *rbytes, uint64_t *wbytes, uint64_t *rios,
                       uint64_t *wios);
/* v1 blkio.*_recursive: the "MAJ:MIN Read N" / "Write N" lines, summed. */
void vs_cgroup_blkio(const char *text, uint64_t *read, uint64_t *write);

typedef enum VsCgroupMode {
        VS_CGROUP_NONE,
        VS_CGROUP_V1,     /* v1 hierarchies only */
        VS_CGROUP_HYBRID, /* v1 controllers and a cgroup2 tree */
        VS_CGROUP_V2,     /* the unified hierarchy alone */
} VsCgroupMode;

/* What this host (as this process sees it) runs. */
VsCgroupMode vs_cgroup_mode(void);
const char *vs_cgroup_mode_name(VsCgroupMode m); /* "v1", "hybrid", "v2" */
/*
 * Does every move into a v1 cgroup wait for an RCU grace period (the
 * kernel's cgroup_threadgroup_rwsem in its default mode, when no hierarchy
 * is mounted with favordynmods)?  If so, @ret_mnt names one v1 hierarchy's
 * mount.  cgroup2 alone: no (processes start in their cgroup).
 */
bool vs_cgroup_moves_wait(char *ret_mnt, size_t size);
/*
 * The directory (PARENT/NAME) where controller @ctrl ("memory", "cpu",
 * "cpuacct", "cpuset", "io", "pids", "freezer") of the context lives: a v1
 * hierarchy that holds it, else the cgroup2 tree if it has it there; NULL
 * if neither.  *ret_v2 says which interface its files follow.
 */
const char *vs_cgroup_controller(const VsCgroup *cg, const char *ctrl, bool *ret_v2);
/* The same, opened (O_PATH); -ENOENT if neither has it. */
int vs_cgroup_controller_open(const VsCgroup *cg, const char *ctrl, bool *ret_v2);
/* The context's directory in the cgroup2 tree (where BPF programs attach); NULL if none. */
const char *vs_cgroup_v2_path(const VsCgroup *cg);
/* What clone3 takes to start a process in the cgroup2 leaf (CLONE_INTO_CGROUP); -EBADF if none. */
int vs_cgroup_clone_fd(const VsCgroup *cg);
/*
 * Moving a process into a v1 cgroup waits for an RCU grace period (the
 * kernel's cgroup_threadgroup_rwsem, unless the host mounts its cgroups
 * with favordynmods): milliseconds in every start and exec on a v1 or
 * hybrid host, and the larger part of a start.  A short-lived process of
 * ours takes that wait now, moving itself where it already is, while we go
 * on (re-exec, settings, cgroups); the kernel keeps the lock's slow path
 * for a grace period after it, so our own join does not wait again.  Does
 * nothing on a cgroup2-only host (0).  Returns the pid of a child that
 * exits at once (its child takes the wait): reap it, after the re-exec too.
 */
pid_t vs_cgroup_prime_migration(void);
/* Our own cgroup in every hierarchy, bound: the count, or -errno.  Close the fds. */
int vs_cgroup_own_trees(VsCgroupTree *ret, int max, VsError *err);
/* Freeze or thaw the whole context (cgroup.freeze, or the v1 freezer); waits until done. */
int vs_cgroup_freeze(const VsCgroup *cg, bool freeze, VsError *err);
/* 1 if frozen, 0 if not, -errno. */
int vs_cgroup_frozen(const VsCgroup *cg);

/*
 * From now on, look up the cgroups below @parent (every hierarchy's) from
 * fds of those directories, opened once, rather than by their whole path:
 * for a command that reads many guests (list) and starts nothing, as the
 * fds stay open until it exits.  vs_cgroup_open then looks for a cgroup in
 * one hierarchy (cgroup2's, else the first) and takes it to exist in all:
 * a file of one where it does not reads as absent.  The number opened, or
 * -errno.
 */
int vs_cgroup_lookups_below(const char *parent);

/* Free memory and fds without touching the kernel objects. */
void vs_cgroup_release(VsCgroup *cg);

/* ---- limits in cgroup files (cgroup_limit.c; limits.c plans them) ---------------------- */

/* One file to write in the guest's cgroup. */
typedef struct VsCgSetting {
        const char *controller; /* "memory", "cpu", "cpuset", "io", "pids" */
        const char *file;
        char value[160];
        const char *key;  /* the guest file's key it comes from, for errors */
        bool lift;        /* it only lifts a limit: where the file is missing, nothing to do */
        const char *hint; /* why the file may be missing (NULL: "not supported here") */
} VsCgSetting;

/* The files planned so far. */
typedef struct VsCgPlan {
        VsCgSetting *out;
        int n, max;
        VsError *err;
} VsCgPlan;

int vs_cgroup_plan_add(VsCgPlan *p, const char *ctrl, const char *file, const char *key, bool lift,
                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#define VS_UNLIMITED        UINT64_MAX
#define VS_CG_MAX_SETTINGS  48
#define VS_CG_CFS_PERIOD_US 100000ULL /* the kernel's default CFS period */

/* CPU time: bandwidth (a hard token bucket or cpu.limit) and weight (0: none). */
typedef struct VsCgCpu {
        bool bandwidth;
        uint64_t period_us, quota_us, burst_us;
        const char *bandwidth_key, *weight_key;
        unsigned weight; /* 1-10000, 100 = one default guest */
} VsCgCpu;

/* One block device's throttle: bytes and operations per second, VS_UNLIMITED where not. */
typedef enum VsIoKind { VS_IO_RBPS, VS_IO_WBPS, VS_IO_RIOPS, VS_IO_WIOPS, VS_IO_KINDS } VsIoKind;
typedef struct VsCgIo {
        unsigned maj, min;
        uint64_t value[VS_IO_KINDS];
        const char *const *keys; /* the guest-file key of each kind */
} VsCgIo;

/*
 * Each version spells a limit its own way; @v2 picks the interface (as
 * vs_cgroup_controller reports it).  A limit that is one value in one file:
 * its file for @key ("limits.memory"), and what lifts it; NULL if none.
 */
const char *vs_cgroup_limit_file(bool v2, const char *key, const char **lift);
/* The computed ones; with @all, what lifts them where they are unset. */
int vs_cgroup_plan_swap(bool v2, VsCgPlan *p, uint64_t memory, uint64_t swap, bool all);
int vs_cgroup_plan_cpu(bool v2, VsCgPlan *p, const VsCgCpu *cpu, bool all);
int vs_cgroup_plan_io(bool v2, VsCgPlan *p, const VsCgIo *io);
/* v2 weight -> v1 cpu.shares (100 -> 1024). */
uint64_t vs_cgroup_weight_to_shares(unsigned weight);

/*
 * Write @n settings of controller @ctrl into the context's cgroup, in the
 * order and to the places its version needs (v1 cpuset: parent and leaf
 * in step; v1 blkio: every cgroup below too).  -ENOENT if no hierarchy
 * holds @ctrl.
 */
int vs_cgroup_write_limits(const VsCgroup *cg, const char *ctrl, const VsCgSetting *set, int n,
                           VsError *err);
/* Write settings into one directory (tests lay one out like a v2 tree). */
int vs_cgroup_write_dir(int dirfd, const VsCgSetting *set, int n, VsError *err);
/* Do buffered writes escape I/O throttling here (the io controller is a v1 blkio)? */
bool vs_cgroup_io_buffered_unthrottled(void);

/* ---- what a guest's own /proc shows (cgroup_view.c) ------------------------------------- */

#define VS_CG_VIEW_DEVS 16
/* A context's memory, CPU and I/O as its /proc views need them; VS_CG_NONE where unknown. */
typedef struct VsCgView {
        /* limits: the tightest of the context's cgroup and the ones above it */
        uint64_t mem_max, swap_max;           /* VS_UNLIMITED if none */
        uint64_t cpu_quota_us, cpu_period_us; /* quota VS_UNLIMITED if none */
        char cpus[256];                       /* the CPUs it may run on (cpuset.effective_cpus) */
        /* usage, bytes */
        uint64_t mem_current, swap_current;
        uint64_t anon, file, shmem, mapped, dirty, writeback, unevictable;
        uint64_t active_anon, inactive_anon, active_file, inactive_file;
        uint64_t slab_reclaimable, slab_unreclaimable, kernel_stack, pagetables;
        /* CPU time, microseconds */
        uint64_t cpu_user_us, cpu_system_us;
        /* I/O per block device */
        int n_dev;
        struct {
                unsigned maj, min;
                uint64_t rbytes, wbytes, rios, wios;
        } dev[VS_CG_VIEW_DEVS];
} VsCgView;
enum { VS_CG_VIEW_MEMORY = 1 << 0, VS_CG_VIEW_CPU = 1 << 1, VS_CG_VIEW_IO = 1 << 2 };
/* Fill what @what asks for (VS_CG_VIEW_*), the rest VS_CG_NONE. */
int vs_cgroup_view(const VsCgroup *cg, unsigned what, VsCgView *ret, VsError *err);

/*
 * A context's cgroup written down and read back (one "v1|v2 CTRLS PATH"
 * line per hierarchy), for a host-side process that serves every guest.
 */
int vs_cgroup_save(const VsCgroup *cg, FILE *f);
int vs_cgroup_load(VsCgroup *cg, const char *text, VsError *err);
