/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cgroup.h"

/*
 * A guest's own /proc: meminfo, cpuinfo, stat, loadavg, swaps, diskstats,
 * the CPU lists in /sys, and (with the uname keys) the kernel's version, made
 * from its cgroup and the host's own files.  Pure text in, text out: the
 * view server (viewd.c) reads the files, these make the guest's.
 */

#define VS_VIEW_MAX_CPUS 1024
#define VS_VIEW_FSHIFT   11 /* the kernel's fixed point for load averages */

typedef struct VsViewState {
        VsCgView cg;
        unsigned rotate;       /* which of its CPUs a CPU limit leaves it (its context id) */
        uint64_t started_ns;   /* CLOCK_BOOTTIME at its start */
        unsigned long load[3]; /* 1, 5, 15 minutes, fixed point */
        unsigned running, blocked, threads, lastpid; /* the last sample */
        char release[65], version[65];               /* uname; "" = the host's */
} VsViewState;

/* The files, in the order of vs_view_files[]. */
typedef enum VsViewFile {
        VS_VIEW_MEMINFO,
        VS_VIEW_CPUINFO,
        VS_VIEW_STAT,
        VS_VIEW_LOADAVG,
        VS_VIEW_SWAPS,
        VS_VIEW_DISKSTATS,
        VS_VIEW_CPU_ONLINE,
        VS_VIEW_CPU_POSSIBLE,
        VS_VIEW_CPU_PRESENT,
        VS_VIEW_VERSION,
        VS_VIEW_OSRELEASE,
        VS_VIEW_KVERSION,
        VS_VIEW_N
} VsViewFile;

typedef struct VsViewDef {
        const char *name;   /* in the view server's tree */
        const char *target; /* where a guest sees it */
        const char *host;   /* the host file it is made from (NULL: none) */
        bool uname;         /* only for a guest with uname keys */
        unsigned needs;     /* what of its cgroup it is made from (VS_CG_VIEW_*) */
} VsViewDef;
extern const VsViewDef vs_view_files[VS_VIEW_N];

/* The host CPUs the guest sees: its cpuset, cut to what its CPU limit allows (rounded up). */
int vs_view_cpus(const VsCgView *cg, unsigned rotate, bool set[VS_VIEW_MAX_CPUS]);
/* sysinfo(2) for @s at @boot_ns, from the host's /proc/meminfo @host (sizes in bytes). */
struct sysinfo;
void vs_view_sysinfo(const VsViewState *s, const char *host, uint64_t boot_ns, struct sysinfo *out);
/* One load sample (every 5 s): @active = running + uninterruptible tasks. */
void vs_view_load_sample(VsViewState *s, unsigned active);
/*
 * Make @file for @s from @host (the host file's text, NULL if it has none),
 * at @boot_ns (CLOCK_BOOTTIME) and @real (CLOCK_REALTIME): a malloc'd
 * text, NULL without memory.
 */
char *vs_view_make(VsViewFile file, const VsViewState *s, const char *host, uint64_t boot_ns,
                   time_t real);
