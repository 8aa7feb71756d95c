/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cgroup.h"
#include "error.h"

/*
 * A guest's resource limits in its own terms (the [limits] section) and
 * what they become in the kernel: cgroup files for v1 and for v2, and the
 * IPC namespace's sysctls.  Parsing and the arithmetic are pure, so unit
 * tests check them; applying writes the plan into the guest's cgroups.
 */

#define VS_LIMITS_MAX_IO  16
#define VS_LIMITS_MAX_SET VS_CG_MAX_SETTINGS

typedef struct VsIoLimit {
        char device[128];            /* as written: /dev/loop0 or 7:0 */
        uint64_t value[VS_IO_KINDS]; /* VS_UNLIMITED where not limited */
} VsIoLimit;

typedef enum VsIpcSysctl {
        VS_IPC_SHMMAX,
        VS_IPC_SHMALL,
        VS_IPC_SHMMNI,
        VS_IPC_MSGMAX,
        VS_IPC_MSGMNB,
        VS_IPC_MSGMNI,
        VS_IPC_N
} VsIpcSysctl;

typedef struct VsLimits {
        uint64_t memory;      /* bytes: hard (OOM inside the guest above it) */
        uint64_t memory_soft; /* bytes: reclaimed first above it */
        uint64_t swap;        /* bytes of swap on top of memory */
        uint64_t processes;   /* tasks */
        /* the VServer token bucket: fill_rate tokens every interval ticks, 1 tick = 1 ms */
        unsigned fill_rate, interval; /* 0: not set */
        uint64_t tokens_max_us;       /* 0: the default 125 ms */
        bool hard;
        unsigned cpu_limit_milli; /* cpu.limit in thousandths of a CPU; 0: not set */
        unsigned cpu_weight;      /* 1-10000 (100 = default); 0: not set */
        char cpuset_cpus[256];    /* "" = the parent's */
        char cpuset_mems[64];
        VsIoLimit io[VS_LIMITS_MAX_IO];
        int n_io;
        uint64_t disk;              /* bytes on its tree (disk.h); VS_UNLIMITED: none */
        uint64_t disk_inodes;       /* files on its tree; VS_UNLIMITED: none */
        unsigned disk_reserved_pct; /* percent of disk kept for the guest's root */
        uint64_t ipc[VS_IPC_N];     /* VS_UNLIMITED: leave the kernel's default */
        char ipc_sem[64];           /* "SEMMSL SEMMNS SEMOPM SEMMNI" or "" */
} VsLimits;

void vs_limits_init(VsLimits *l);
/*
 * Where the I/O controller is cgroup v1's blkio and @l limits writes: the
 * kernel throttles only direct I/O there (buffered writes go out through the
 * page cache, charged to no cgroup).  For a note wherever such a limit is set.
 */
bool vs_limits_io_writes_v1(const VsLimits *l);
/* Is any disk limit set (disk.h applies those, not the cgroups). */
bool vs_limits_has_disk(const VsLimits *l);
/*
 * What a guest gets when its file says nothing: enough for any server, not
 * enough to take the host down (a fork bomb, a leak).  "unlimited" in the
 * guest file lifts each.
 */
#define VS_DEFAULT_PROCESSES_PERCENT 15 /* of the host's pid_max (systemd's DefaultTasksMax) */
#define VS_DEFAULT_MEMORY_PERCENT    50 /* of the host's RAM */
void vs_limits_defaults(VsLimits *l);

/*
 * Set one key of [limits] (without the "limits." prefix).  Returns 1 if
 * @key is one of ours, 0 if not (the caller tries rlimits), -EINVAL with a
 * message and a fix in @msg.
 */
int vs_limits_set_key(VsLimits *l, const char *key, const char *value, char *msg, size_t msz);
/* Checks across keys, after the whole section is read; -EINVAL with @msg. */
int vs_limits_check(const VsLimits *l, char *msg, size_t msz);
/*
 * What this host can give: a CPU limit up to its CPUs, a cpuset of CPUs and
 * memory nodes it has online.  One line naming the key and what it has.
 */
int vs_limits_check_host(const VsLimits *l, VsError *err);
/* Write the keys that are set, as a guest file would hold them. */
void vs_limits_write(const VsLimits *l, FILE *f);

/* CFS bandwidth for a token bucket, or for cpu.limit. */
typedef struct VsCpuBandwidth {
        uint64_t period_us, quota_us, burst_us;
} VsCpuBandwidth;

/*
 * fill_rate tokens per interval ticks is fill_rate/interval of one CPU:
 * quota/period.  The period is the time the bucket takes to fill
 * (tokens_max / rate), clamped to 1 ms .. 1 s; what tokens-max holds beyond
 * one period's quota becomes the burst (at most the quota, the kernel's rule).
 */
/* The CFS bandwidth @l asks for (a hard token bucket or cpu.limit); false if none. */
bool vs_limits_bandwidth(const VsLimits *l, VsCpuBandwidth *bw);
int vs_token_bucket_to_cfs(unsigned fill_rate, unsigned interval, uint64_t tokens_max_us,
                           VsCpuBandwidth *ret, char *msg, size_t msz);
/* The cgroup weight (1-10000, 100 = one default guest) for a soft bucket: 100 * rate. */
unsigned vs_token_bucket_weight(unsigned fill_rate, unsigned interval);
/*
 * The files to write for @l on a v1 (@v2 false) or v2 controller.  With
 * @all, unset limits are written as "no limit" too (for live changes);
 * without, only what differs from a new cgroup.  @prev (may be NULL): io
 * devices that were limited before and are no more get their limit lifted.
 */
int vs_limits_plan(const VsLimits *l, const VsLimits *prev, bool v2, bool all, VsCgSetting *out,
                   int max, VsError *err);

/* Write @l into the context's cgroups (v1 or v2, per controller). */
int vs_limits_apply(const VsCgroup *cg, const VsLimits *l, const VsLimits *prev, bool all,
                    VsError *err);

/* The IPC namespace sysctls, written in the calling process's IPC namespace. */
int vs_limits_apply_ipc(const VsLimits *l, VsError *err);
const char *vs_ipc_sysctl_name(VsIpcSysctl s); /* "shmmax" */
