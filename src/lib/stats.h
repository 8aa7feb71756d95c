/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cgroup.h"
#include "error.h"

/*
 * What a guest uses, from the kernel's own accounting of its cgroup (v1
 * or v2 files per controller) and, for what cgroups do not count
 * (processes, threads, sockets), from /proc of its processes.  Values the
 * host cannot tell are UINT64_MAX (absent in --json).
 */
typedef struct VsStats {
        VsCgUsage cg; /* what its cgroup counts */
        uint64_t processes, threads, sockets;
        uint64_t vsz, rss;     /* bytes, summed over its processes (/proc/PID/stat) */
        uint64_t utime, stime; /* clock ticks, the same */
        /* network traffic, filled by vs_stats_net (isolate: BPF counters; netns: the veth) */
        uint64_t net_rx_bytes, net_rx_packets, net_tx_bytes, net_tx_packets;
} VsStats;

#define VS_STAT_NONE UINT64_MAX

enum {
        VS_STATS_SOCKETS = 1, /* count the distinct sockets its processes hold (a readlink per
                                 open file) */
        /*
         * Only what vserver list's table shows (vs_cgroup_usage).  Threads are
         * the pids controller's count where there is one, and then no process
         * is read: processes, vsz, rss, utime and stime stay VS_STAT_NONE.
         */
        VS_STATS_BRIEF = 2,
};
/* @what: VS_STATS_* */
int vs_stats_read(const VsCgroup *cg, VsStats *st, unsigned what, VsError *err);
/* The traffic counters of a guest of net mode @mode, context @ctx, cgroup2 directory @cgdir. */
void vs_stats_net(VsStats *st, int mode, unsigned ctx, const char *bpf_dir, const char *cgdir);
