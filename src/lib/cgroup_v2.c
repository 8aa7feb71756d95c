/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The cgroup2 tree: one hierarchy, controllers enabled from the parent down. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup_int.h"
#include "util.h"

/*
 * A controller's files appear in a cgroup only when its parent enables it
 * in cgroup.subtree_control.  Enable ours from @base (our own cgroup or the
 * root) down to @dir's parent, and with @below on @dir itself, so the
 * guest's leaf has them too (each a css of its own: a second memory cgroup
 * a guest).  A cgroup that holds processes cannot (the no-internal-process
 * rule): then the limits that need the controller fail with a clear error.
 */
static void enable_controllers(const char *dir, int base, bool below)
{
        static const char *const want[] = {"cpu", "cpuset", "io", "memory", "pids"};
        char path[1100];
        size_t len = strlen(dir);
        for (size_t end = (size_t)base; end < len + below; end++) {
                if (end < len && dir[end] != '/')
                        continue;
                snprintf(path, sizeof path, "%.*s", (int)end, dir);
                _cleanup_close_ int dfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
                char have[256], on[256];
                if (dfd < 0 || vs_read_file_at(dfd, "cgroup.controllers", have, sizeof have) < 0 ||
                    vs_read_file_at(dfd, "cgroup.subtree_control", on, sizeof on) < 0)
                        continue;
                for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
                        char cmd[32];
                        if (!vs_cg_has_word(have, want[i]) || vs_cg_has_word(on, want[i]))
                                continue;
                        snprintf(cmd, sizeof cmd, "+%s", want[i]);
                        (void)vs_write_file_at(dfd, "cgroup.subtree_control", cmd);
                }
        }
}

/*
 * What a guest may build below its cgroup (Linux 4.14), set above its reach:
 * systemd nests four or five levels, nested containers a few more; a guest
 * not delegated nothing.
 */
static void made(const char *dir, int base, const char *ctrls, bool delegate)
{
        (void)ctrls;
        enable_controllers(dir, base, delegate);
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return;
        (void)vs_write_file_at(dfd, "cgroup.max.depth", delegate ? VS_CGROUP_MAX_DEPTH : "0");
        (void)vs_write_file_at(dfd, "cgroup.max.descendants",
                               delegate ? VS_CGROUP_MAX_DESCENDANTS : "0");
}

static void made_below(const char *dir, const char *ctrls)
{
        (void)dir, (void)ctrls;
}

static bool has_controller(const char *dir, const char *ctrls, const char *ctrl)
{
        (void)ctrls;
        char have[256];
        /* cpu time is core in cgroup2 (cpu.stat), freezing too (cgroup.freeze) */
        if (streq(ctrl, "cpuacct") || streq(ctrl, "freezer"))
                return true;
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        return dfd >= 0 && vs_read_file_at(dfd, "cgroup.controllers", have, sizeof have) >= 0 &&
               vs_cg_has_word(have, ctrl);
}

/* cgroup.events counts the whole subtree */
static bool populated(const char *dir)
{
        char buf[256];
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return false;
        if (vs_read_kernel_at(dfd, "cgroup.events", buf, sizeof buf) >= 0)
                return strstr(buf, "populated 1") != NULL;
        return vs_cg_any_listed(dir);
}

/* the whole subtree (Linux 5.14) */
static int kill_all(int dfd)
{
        return vs_write_file_at(dfd, "cgroup.kill", "1");
}

static int freeze(int dfd, bool on)
{
        return vs_write_file_at(dfd, "cgroup.freeze", on ? "1" : "0");
}

static bool stopped(int dfd)
{
        char buf[512];
        return vs_read_kernel_at(dfd, "cgroup.events", buf, sizeof buf) >= 0 &&
               strstr(buf, "frozen 1") != NULL;
}

static bool frozen(VsCgDir d, bool exact)
{
        char p[PATH_MAX];
        char buf[512];
        if (vs_read_kernel_at(d.at, vs_cg_file(d, "cgroup.freeze", p), buf, sizeof buf) > 0 &&
            buf[0] == '1')
                return true;
        /* or frozen from above (an ancestor below our own cgroup) */
        return exact &&
               vs_read_kernel_at(d.at, vs_cg_file(d, "cgroup.events", p), buf, sizeof buf) > 0 &&
               strstr(buf, "frozen 1");
}

static bool delegable(const char *ctrls)
{
        (void)ctrls;
        return true;
}

void vs_cgroup_io_stat(const char *text, uint64_t *rbytes, uint64_t *wbytes, uint64_t *rios,
                       uint64_t *wios)
{
        *rbytes = *wbytes = *rios = *wios = 0;
        static const char *const names[] = {"rbytes=", "wbytes=", "rios=", "wios="};
        uint64_t *dst[] = {rbytes, wbytes, rios, wios};
        for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
                const char *eol = strchr(l, '\n');
                size_t len = eol ? (size_t)(eol - l) : strlen(l);
                for (size_t k = 0; k < 4; k++) {
                        const char *p = l;
                        size_t nl = strlen(names[k]);
                        while ((p = strstr(p, names[k])) && p < l + len) {
                                if (p == l || p[-1] == ' ') {
                                        *dst[k] += strtoull(p + nl, NULL, 10);
                                        break;
                                }
                                p += nl;
                        }
                }
        }
}

static void usage(VsCgDir d, const char *dir, const char *ctrl, bool brief, VsCgUsage *u, char *buf)
{
        char p[PATH_MAX];
        (void)dir;
        uint64_t v;
        if (streq(ctrl, "cpuacct")) { /* cpu time is core: cpu.stat */
                if (vs_read_file_at(d.at, vs_cg_file(d, "cpu.stat", p), buf, VS_CG_BIGFILE) >= 0) {
                        vs_cg_kv_into(buf, "usage_usec", &u->cpu_usage_us, 1);
                        vs_cg_kv_into(buf, "user_usec", &u->cpu_user_us, 1);
                        vs_cg_kv_into(buf, "system_usec", &u->cpu_system_us, 1);
                }
        } else if (streq(ctrl, "cpu") &&
                   vs_read_file_at(d.at, vs_cg_file(d, "cpu.stat", p), buf, VS_CG_BIGFILE) >= 0) {
                vs_cg_kv_into(buf, "nr_periods", &u->cpu_periods, 1);
                vs_cg_kv_into(buf, "nr_throttled", &u->cpu_throttled_periods, 1);
                vs_cg_kv_into(buf, "throttled_usec", &u->cpu_throttled_us, 1);
        } else if (streq(ctrl, "memory")) {
                if (vs_cg_read_u64(d.at, vs_cg_file(d, "memory.current", p), &v))
                        u->mem_current = v;
                if (!brief && vs_cg_read_u64(d.at, vs_cg_file(d, "memory.peak", p), &v))
                        u->mem_peak = v;
                if (vs_cg_read_u64(d.at, vs_cg_file(d, "memory.swap.current", p), &v))
                        u->swap_current = v;
                if (!brief && vs_read_file_at(d.at, vs_cg_file(d, "memory.stat", p), buf,
                                              VS_CG_BIGFILE) >= 0) {
                        vs_cg_kv_into(buf, "anon", &u->mem_anon, 1);
                        vs_cg_kv_into(buf, "file", &u->mem_cache, 1);
                }
                if (vs_read_kernel_at(d.at, vs_cg_file(d, "memory.events", p), buf,
                                      VS_CG_BIGFILE) >= 0)
                        vs_cg_kv_into(buf, "oom_kill", &u->oom_kills, 1);
        } else if (streq(ctrl, "pids")) {
                if (vs_cg_read_u64(d.at, vs_cg_file(d, "pids.current", p), &v))
                        u->tasks = v;
        } else if (streq(ctrl, "io") &&
                   vs_read_file_at(d.at, vs_cg_file(d, "io.stat", p), buf, VS_CG_BIGFILE) >= 0) {
                vs_cgroup_io_stat(buf, &u->io_read_bytes, &u->io_write_bytes, &u->io_read_ops,
                                  &u->io_write_ops);
        }
}

/* the files systemd's delegation names */
static const char *const delegate_files[] = {"cgroup.procs", "cgroup.threads",
                                             "cgroup.subtree_control", NULL};

/* ---- what a guest's /proc shows ------------------------------------------------------ */

/* The tightest of @file ("max" or bytes) in @dir and the cgroups above it. */
static uint64_t tightest(const char *dir, const char *file)
{
        uint64_t best = VS_UNLIMITED;
        char path[4200], line[64];
        snprintf(path, sizeof path, "%s", dir);
        /* the root has no limit files: stop there */
        for (int depth = 0; depth < VS_CGROUP_WALK_DEPTH; depth++) {
                _cleanup_close_ int dfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
                unsigned long long x;
                if (dfd < 0 || !vs_cg_read_line(dfd, file, line, sizeof line))
                        break;
                if (sscanf(line, "%llu", &x) == 1 && x < best)
                        best = x;
                char *slash = strrchr(path, '/');
                if (!slash || slash == path)
                        break;
                *slash = '\0';
        }
        return best;
}

static void view(int dfd, const char *dir, const char *ctrl, VsCgView *v, char *buf)
{
        if (streq(ctrl, "memory")) {
                vs_cg_read_u64(dfd, "memory.current", &v->mem_current);
                vs_cg_read_u64(dfd, "memory.swap.current", &v->swap_current);
                v->mem_max = tightest(dir, "memory.max");
                v->swap_max = tightest(dir, "memory.swap.max");
                if (vs_read_file_at(dfd, "memory.stat", buf, VS_CG_BIGFILE) < 0)
                        return;
                static const VsCgStatKey keys[] = {
                    {"anon", offsetof(VsCgView, anon)},
                    {"file", offsetof(VsCgView, file)},
                    {"shmem", offsetof(VsCgView, shmem)},
                    {"file_mapped", offsetof(VsCgView, mapped)},
                    {"file_dirty", offsetof(VsCgView, dirty)},
                    {"file_writeback", offsetof(VsCgView, writeback)},
                    {"unevictable", offsetof(VsCgView, unevictable)},
                    {"active_anon", offsetof(VsCgView, active_anon)},
                    {"inactive_anon", offsetof(VsCgView, inactive_anon)},
                    {"active_file", offsetof(VsCgView, active_file)},
                    {"inactive_file", offsetof(VsCgView, inactive_file)},
                    {"slab_reclaimable", offsetof(VsCgView, slab_reclaimable)},
                    {"slab_unreclaimable", offsetof(VsCgView, slab_unreclaimable)},
                    {"kernel_stack", offsetof(VsCgView, kernel_stack)},
                    {"pagetables", offsetof(VsCgView, pagetables)},
                };
                vs_cg_view_stat(buf, keys, ARRAY_SIZE(keys), v);
        } else if (streq(ctrl, "cpu")) {
                char line[64], q[32];
                unsigned long long period;
                if (vs_cg_read_line(dfd, "cpu.max", line, sizeof line) &&
                    sscanf(line, "%31s %llu", q, &period) == 2) {
                        v->cpu_quota_us = streq(q, "max") ? VS_UNLIMITED : strtoull(q, NULL, 10);
                        v->cpu_period_us = period;
                }
        } else if (streq(ctrl, "cpuacct")) { /* cpu time is core: cpu.stat */
                if (vs_read_file_at(dfd, "cpu.stat", buf, VS_CG_BIGFILE) >= 0) {
                        vs_cg_kv_into(buf, "user_usec", &v->cpu_user_us, 1);
                        vs_cg_kv_into(buf, "system_usec", &v->cpu_system_us, 1);
                }
        } else if (streq(ctrl, "cpuset")) {
                vs_cg_read_line(dfd, "cpuset.cpus.effective", v->cpus, sizeof v->cpus);
        } else if (streq(ctrl, "io") && vs_read_file_at(dfd, "io.stat", buf, VS_CG_BIGFILE) >= 0) {
                for (const char *l = buf; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
                        unsigned maj, min;
                        unsigned long long rb, wb, ri, wi;
                        if (sscanf(l, "%u:%u rbytes=%llu wbytes=%llu rios=%llu wios=%llu", &maj,
                                   &min, &rb, &wb, &ri, &wi) != 6)
                                continue;
                        int i = vs_cg_view_dev(v, maj, min);
                        if (i < 0)
                                continue;
                        v->dev[i].rbytes = rb;
                        v->dev[i].wbytes = wb;
                        v->dev[i].rios = ri;
                        v->dev[i].wios = wi;
                }
        }
}

/* ---- limits ---------------------------------------------------------------------------- */

static const struct VsCgLimitFile limit_files[] = {
    {"limits.memory", "memory.max", "max"},    {"limits.memory.soft", "memory.high", "max"},
    {"limits.processes", "pids.max", "max"},   {"limits.cpuset", "cpuset.cpus", ""},
    {"limits.cpuset.mems", "cpuset.mems", ""}, {0},
};

static int plan_swap(VsCgPlan *p, uint64_t memory, uint64_t swap, bool all)
{
        (void)memory;
        if (swap != VS_UNLIMITED)
                return vs_cgroup_plan_add(p, "memory", "memory.swap.max", "limits.swap", false,
                                          "%llu", (unsigned long long)swap);
        return all ? vs_cgroup_plan_add(p, "memory", "memory.swap.max", "limits.swap", true, "max")
                   : 0;
}

static int plan_cpu(VsCgPlan *p, const VsCgCpu *c, bool all)
{
        typedef unsigned long long ull;
        const char *bkey = c->bandwidth_key, *tkey = "limits.cpu.tokens-max";
        int r = 0;
        if (c->bandwidth) {
                if ((r = vs_cgroup_plan_add(p, "cpu", "cpu.max", bkey, false, "%llu %llu",
                                            (ull)c->quota_us, (ull)c->period_us)) < 0 ||
                    (r = vs_cgroup_plan_add(p, "cpu", "cpu.max.burst", tkey, c->burst_us == 0,
                                            "%llu", (ull)c->burst_us)) < 0)
                        return r;
        } else if (all) {
                if ((r = vs_cgroup_plan_add(p, "cpu", "cpu.max", bkey, true, "max %llu",
                                            VS_CG_CFS_PERIOD_US)) < 0 ||
                    (r = vs_cgroup_plan_add(p, "cpu", "cpu.max.burst", tkey, true, "0")) < 0)
                        return r;
        }
        if (c->weight || all)
                r = vs_cgroup_plan_add(p, "cpu", "cpu.weight", c->weight_key, !c->weight, "%u",
                                       c->weight ? c->weight : 100);
        return r;
}

static int plan_io(VsCgPlan *p, const VsCgIo *io)
{
        static const char *const names[VS_IO_KINDS] = {"rbps", "wbps", "riops", "wiops"};
        char v[VS_IO_KINDS][32];
        bool lift = true;
        for (int k = 0; k < VS_IO_KINDS; k++) {
                if (io->value[k] == VS_UNLIMITED)
                        snprintf(v[k], sizeof v[k], "max");
                else
                        snprintf(v[k], sizeof v[k], "%llu", (unsigned long long)io->value[k]);
                lift &= io->value[k] == VS_UNLIMITED;
        }
        return vs_cgroup_plan_add(p, "io", "io.max", "limits.io", lift,
                                  "%u:%u %s=%s %s=%s %s=%s %s=%s", io->maj, io->min, names[0], v[0],
                                  names[1], v[1], names[2], v[2], names[3], v[3]);
}

/* One tree: a limit on the context's directory holds everything below it. */
static int write_limits(const char *dir, const char *ctrl, const VsCgSetting *set, int n,
                        VsError *err)
{
        (void)ctrl;
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return vs_error(err, errno, "open cgroup %s", dir);
        return vs_cg_write_all(dfd, set, n, dir, err);
}

const VsCgBackend vs_cg_v2 = {
    .name = "v2",
    .rank = 1,
    .made = made,
    .made_below = made_below,
    .has_controller = has_controller,
    .populated = populated,
    .kill = kill_all,
    .freeze = freeze,
    .stopped = stopped,
    .frozen = frozen,
    .guest_freezes = true,
    .delegable = delegable,
    .delegate_files = delegate_files,
    .usage = usage,
    .view = view,
    .limit_files = limit_files,
    .plan_swap = plan_swap,
    .plan_cpu = plan_cpu,
    .plan_io = plan_io,
    .write_limits = write_limits,
};
