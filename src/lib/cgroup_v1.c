/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cgroup v1 hierarchies: one per controller (or group of them), and name=systemd. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup_int.h"
#include "util.h"

/* cpuset: a new cgroup has no CPUs and no memory nodes until given its parent's. */
static void cpuset_inherit(const char *dir)
{
        static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
        char parent[1024], val[4096];
        snprintf(parent, sizeof parent, "%s", dir);
        char *slash = strrchr(parent, '/');
        if (!slash)
                return;
        *slash = '\0';
        _cleanup_close_ int pfd = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0 || dfd < 0)
                return;
        for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
                if (vs_read_file_at(dfd, files[i], val, sizeof val) < 0 || val[0] != '\n')
                        continue; /* missing, or already set */
                if (vs_read_file_at(pfd, files[i], val, sizeof val) > 0)
                        (void)vs_write_file_at(dfd, files[i], val);
        }
}

/*
 * A parent we made: cpuset children get its CPUs and nodes as they are made
 * (clone_children).  Writing them to each guest's cpuset instead rebuilt the
 * scheduler domains, a walk of every cpuset on the host, at each start.
 */
static void made_below(const char *dir, const char *ctrls)
{
        if (!vs_cg_has_all(ctrls, "cpuset"))
                return;
        cpuset_inherit(dir);
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void)vs_write_file_at(dfd, "cgroup.clone_children", "1");
}

static void made(const char *dir, int base, const char *ctrls, bool delegate)
{
        (void)base, (void)delegate;
        if (vs_cg_has_all(ctrls, "cpuset"))
                cpuset_inherit(dir); /* under a parent made before clone_children */
}

static bool has_controller(const char *dir, const char *ctrls, const char *ctrl)
{
        (void)dir;
        return vs_cg_has_all(ctrls, streq(ctrl, "io") ? "blkio" : ctrl);
}

static int no_kill(int dfd)
{
        (void)dfd;
        return -ENOENT; /* v1 has no cgroup.kill */
}

static int freeze(int dfd, bool on)
{
        return vs_write_file_at(dfd, "freezer.state", on ? "FROZEN" : "THAWED");
}

static bool stopped(int dfd)
{
        char buf[64];
        return vs_read_kernel_at(dfd, "freezer.state", buf, sizeof buf) >= 0 &&
               strncmp(buf, "FROZEN", 6) == 0;
}

static bool frozen(VsCgDir d, bool exact)
{
        (void)exact;
        char p[PATH_MAX], buf[64];
        return vs_read_kernel_at(d.at, vs_cg_file(d, "freezer.state", p), buf, sizeof buf) > 0 &&
               strncmp(buf, "THAWED", 6) != 0;
}

/* Controller hierarchies stay read-only in a guest; only named ones (systemd's) are its. */
static bool delegable(const char *ctrls)
{
        return strncmp(ctrls, "name=", 5) == 0;
}

void vs_cgroup_blkio(const char *text, uint64_t *read, uint64_t *write)
{
        *read = *write = 0;
        for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
                char dev[32], op[16];
                unsigned long long v;
                if (sscanf(l, "%31s %15s %llu", dev, op, &v) != 3 || !strchr(dev, ':'))
                        continue;
                if (streq(op, "Read"))
                        *read += v;
                else if (streq(op, "Write"))
                        *write += v;
        }
}

/* Adds @file's oom_kill to @sum; VS_CG_NONE stays if the top (@depth 0) has no such file. */
static void add_oom_kills_of(int at, const char *file, int depth, uint64_t *sum)
{
        uint64_t v;
        char buf[512];
        if (vs_read_kernel_at(at, file, buf, sizeof buf) < 0)
                return;
        if (depth == 0)
                *sum = 0;
        if (*sum != VS_CG_NONE && vs_cgroup_kv(buf, "oom_kill", &v) == 0)
                *sum += v;
}

/* Sums oom_kill over the tree (vs_cgroup_walk). */
static int add_oom_kills(int fd, int depth, void *data)
{
        add_oom_kills_of(fd, "memory.oom_control", depth, data);
        return 0;
}

static void usage(VsCgDir d, const char *dir, const char *ctrl, bool brief, VsCgUsage *u, char *buf)
{
        char p[PATH_MAX];
        uint64_t v, w;
        if (streq(ctrl, "cpuacct") && brief) {
                /* one file, in clock ticks: as fine as the table shows */
                long hz = sysconf(_SC_CLK_TCK);
                if (hz > 0 && vs_read_kernel_at(d.at, vs_cg_file(d, "cpuacct.stat", p), buf,
                                                VS_CG_BIGFILE) >= 0) {
                        vs_cg_kv_into(buf, "user", &u->cpu_user_us, 1);
                        vs_cg_kv_into(buf, "system", &u->cpu_system_us, 1);
                        if (u->cpu_user_us != VS_CG_NONE)
                                u->cpu_user_us = u->cpu_user_us * 1000000 / (uint64_t)hz;
                        if (u->cpu_system_us != VS_CG_NONE)
                                u->cpu_system_us = u->cpu_system_us * 1000000 / (uint64_t)hz;
                }
        } else if (streq(ctrl, "cpuacct")) {
                if (vs_cg_read_u64(d.at, vs_cg_file(d, "cpuacct.usage", p), &v))
                        u->cpu_usage_us = v / 1000;
                if (vs_cg_read_u64(d.at, vs_cg_file(d, "cpuacct.usage_user", p), &v))
                        u->cpu_user_us = v / 1000;
                if (vs_cg_read_u64(d.at, vs_cg_file(d, "cpuacct.usage_sys", p), &v))
                        u->cpu_system_us = v / 1000;
        } else if (streq(ctrl, "cpu") &&
                   vs_read_file_at(d.at, vs_cg_file(d, "cpu.stat", p), buf, VS_CG_BIGFILE) >= 0) {
                vs_cg_kv_into(buf, "nr_periods", &u->cpu_periods, 1);
                vs_cg_kv_into(buf, "nr_throttled", &u->cpu_throttled_periods, 1);
                vs_cg_kv_into(buf, "throttled_time", &u->cpu_throttled_us, 1000);
                vs_cg_kv_into(buf, "throttled_usec", &u->cpu_throttled_us, 1);
        } else if (streq(ctrl, "memory")) {
                if (vs_cg_read_u64(d.at, vs_cg_file(d, "memory.usage_in_bytes", p), &v))
                        u->mem_current = v;
                if (!brief &&
                    vs_cg_read_u64(d.at, vs_cg_file(d, "memory.max_usage_in_bytes", p), &v))
                        u->mem_peak = v;
                /* memsw counts memory and swap together */
                if (vs_cg_read_u64(d.at, vs_cg_file(d, "memory.memsw.usage_in_bytes", p), &w) &&
                    u->mem_current != VS_CG_NONE)
                        u->swap_current = w > u->mem_current ? w - u->mem_current : 0;
                /* total_*: this cgroup and its descendants */
                if (!brief && vs_read_file_at(d.at, vs_cg_file(d, "memory.stat", p), buf,
                                              VS_CG_BIGFILE) >= 0) {
                        vs_cg_kv_into(buf, "total_rss", &u->mem_anon, 1);
                        vs_cg_kv_into(buf, "total_cache", &u->mem_cache, 1);
                }
                /* an OOM kill counts only in the victim's own cgroup: add up the tree */
                if (vs_cg_childless(d.at, d.rel))
                        add_oom_kills_of(d.at, vs_cg_file(d, "memory.oom_control", p), 0,
                                         &u->oom_kills);
                else
                        vs_cgroup_walk(dir, add_oom_kills, &u->oom_kills);
        } else if (streq(ctrl, "pids")) {
                if (vs_cg_read_u64(d.at, vs_cg_file(d, "pids.current", p), &v))
                        u->tasks = v;
        } else if (streq(ctrl, "io")) {
                if (vs_read_kernel_at(d.at,
                                      vs_cg_file(d, "blkio.throttle.io_service_bytes_recursive", p),
                                      buf, VS_CG_BIGFILE) >= 0)
                        vs_cgroup_blkio(buf, &u->io_read_bytes, &u->io_write_bytes);
                if (!brief &&
                    vs_read_file_at(d.at, vs_cg_file(d, "blkio.throttle.io_serviced_recursive", p),
                                    buf, VS_CG_BIGFILE) >= 0)
                        vs_cgroup_blkio(buf, &u->io_read_ops, &u->io_write_ops);
        }
}

static const char *const delegate_files[] = {"cgroup.procs", "tasks", "cgroup.clone_children",
                                             "notify_on_release", NULL};

/* ---- what a guest's /proc shows ------------------------------------------------------ */

/* v1 writes "no limit" as the largest page count: 9223372036854771712 */
static uint64_t v1_limit(uint64_t v)
{
        return v >= (UINT64_MAX >> 1) - 65536 ? VS_UNLIMITED : v;
}

/* blkio's "MAJ:MIN Read N" lines into the devices' @field (0: bytes, 1: operations) */
static void blkio_devs(const char *text, VsCgView *v, bool ops)
{
        for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
                unsigned maj, min;
                char op[16];
                unsigned long long n;
                if (sscanf(l, "%u:%u %15s %llu", &maj, &min, op, &n) != 4)
                        continue;
                bool rd = streq(op, "Read"), wr = streq(op, "Write");
                int i = (rd || wr) ? vs_cg_view_dev(v, maj, min) : -1;
                if (i < 0)
                        continue;
                if (ops)
                        *(rd ? &v->dev[i].rios : &v->dev[i].wios) = n;
                else
                        *(rd ? &v->dev[i].rbytes : &v->dev[i].wbytes) = n;
        }
}

static void view(int dfd, const char *dir, const char *ctrl, VsCgView *v, char *buf)
{
        (void)dir;
        uint64_t x;
        if (streq(ctrl, "memory")) {
                vs_cg_read_u64(dfd, "memory.usage_in_bytes", &v->mem_current);
                if (vs_cg_read_u64(dfd, "memory.memsw.usage_in_bytes", &x) &&
                    v->mem_current != VS_CG_NONE)
                        v->swap_current = x > v->mem_current ? x - v->mem_current : 0;
                if (vs_read_file_at(dfd, "memory.stat", buf, VS_CG_BIGFILE) < 0)
                        return;
                /* hierarchical_*: the tightest limit of this cgroup and those above it */
                if (vs_cgroup_kv(buf, "hierarchical_memory_limit", &x) == 0)
                        v->mem_max = v1_limit(x);
                if (vs_cgroup_kv(buf, "hierarchical_memsw_limit", &x) == 0) {
                        x = v1_limit(x);
                        v->swap_max = x == VS_UNLIMITED || v->mem_max == VS_UNLIMITED ? VS_UNLIMITED
                                      : x > v->mem_max ? x - v->mem_max
                                                       : 0;
                }
                static const VsCgStatKey keys[] = {
                    {"total_rss", offsetof(VsCgView, anon)},
                    {"total_cache", offsetof(VsCgView, file)},
                    {"total_shmem", offsetof(VsCgView, shmem)},
                    {"total_mapped_file", offsetof(VsCgView, mapped)},
                    {"total_dirty", offsetof(VsCgView, dirty)},
                    {"total_writeback", offsetof(VsCgView, writeback)},
                    {"total_unevictable", offsetof(VsCgView, unevictable)},
                    {"total_active_anon", offsetof(VsCgView, active_anon)},
                    {"total_inactive_anon", offsetof(VsCgView, inactive_anon)},
                    {"total_active_file", offsetof(VsCgView, active_file)},
                    {"total_inactive_file", offsetof(VsCgView, inactive_file)},
                };
                vs_cg_view_stat(buf, keys, ARRAY_SIZE(keys), v);
        } else if (streq(ctrl, "cpu")) {
                char line[64];
                long long q;
                if (vs_cg_read_line(dfd, "cpu.cfs_quota_us", line, sizeof line) &&
                    sscanf(line, "%lld", &q) == 1)
                        v->cpu_quota_us = q < 0 ? VS_UNLIMITED : (uint64_t)q;
                vs_cg_read_u64(dfd, "cpu.cfs_period_us", &v->cpu_period_us);
        } else if (streq(ctrl, "cpuacct")) {
                if (vs_cg_read_u64(dfd, "cpuacct.usage_user", &x))
                        v->cpu_user_us = x / 1000;
                if (vs_cg_read_u64(dfd, "cpuacct.usage_sys", &x))
                        v->cpu_system_us = x / 1000;
        } else if (streq(ctrl, "cpuset")) {
                vs_cg_read_line(dfd, "cpuset.effective_cpus", v->cpus, sizeof v->cpus);
        } else if (streq(ctrl, "io")) {
                if (vs_read_kernel_at(dfd, "blkio.throttle.io_service_bytes_recursive", buf,
                                      VS_CG_BIGFILE) >= 0)
                        blkio_devs(buf, v, false);
                if (vs_read_file_at(dfd, "blkio.throttle.io_serviced_recursive", buf,
                                    VS_CG_BIGFILE) >= 0)
                        blkio_devs(buf, v, true);
        }
}

/* ---- limits ---------------------------------------------------------------------------- */

static const struct VsCgLimitFile limit_files[] = {
    {"limits.memory", "memory.limit_in_bytes", "-1"},
    {"limits.memory.soft", "memory.soft_limit_in_bytes", "-1"},
    {"limits.processes", "pids.max", "max"},
    {"limits.cpuset", "cpuset.cpus", ""},
    {"limits.cpuset.mems", "cpuset.mems", ""},
    {0},
};

/* v1 limits memory and swap together */
static int plan_swap(VsCgPlan *p, uint64_t memory, uint64_t swap, bool all)
{
        int r = 0;
        if (swap != VS_UNLIMITED)
                r = vs_cgroup_plan_add(p, "memory", "memory.memsw.limit_in_bytes", "limits.swap",
                                       false, "%llu", (unsigned long long)(memory + swap));
        else if (all)
                r = vs_cgroup_plan_add(p, "memory", "memory.memsw.limit_in_bytes", "limits.swap",
                                       true, "-1");
        else
                return 0;
        if (r == 0)
                p->out[p->n - 1].hint = "swap is not accounted: boot with swapaccount=1";
        return r;
}

uint64_t vs_cgroup_weight_to_shares(unsigned weight)
{
        /* the kernel's own conversion, rounded: 1 -> 2 (its minimum), 100 -> 1024, 10000 -> 102400
         */
        uint64_t s = ((uint64_t)weight * 1024 + 50) / 100;
        return s < 2 ? 2 : s;
}

static int plan_cpu(VsCgPlan *p, const VsCgCpu *c, bool all)
{
        typedef unsigned long long ull;
        const char *bkey = c->bandwidth_key, *tkey = "limits.cpu.tokens-max";
        int r = 0;
        if (c->bandwidth) {
                if ((r = vs_cgroup_plan_add(p, "cpu", "cpu.cfs_period_us", bkey, false, "%llu",
                                            (ull)c->period_us)) < 0 ||
                    (r = vs_cgroup_plan_add(p, "cpu", "cpu.cfs_quota_us", bkey, false, "%llu",
                                            (ull)c->quota_us)) < 0 ||
                    (r = vs_cgroup_plan_add(p, "cpu", "cpu.cfs_burst_us", tkey, c->burst_us == 0,
                                            "%llu", (ull)c->burst_us)) < 0)
                        return r;
        } else if (all) {
                if ((r = vs_cgroup_plan_add(p, "cpu", "cpu.cfs_quota_us", bkey, true, "-1")) < 0 ||
                    (r = vs_cgroup_plan_add(p, "cpu", "cpu.cfs_burst_us", tkey, true, "0")) < 0 ||
                    (r = vs_cgroup_plan_add(p, "cpu", "cpu.cfs_period_us", bkey, true, "%llu",
                                            VS_CG_CFS_PERIOD_US)) < 0)
                        return r;
        }
        if (c->weight || all)
                r = vs_cgroup_plan_add(
                    p, "cpu", "cpu.shares", c->weight_key, !c->weight, "%llu",
                    (ull)vs_cgroup_weight_to_shares(c->weight ? c->weight : 100));
        return r;
}

static int plan_io(VsCgPlan *p, const VsCgIo *io)
{
        static const char *const files[VS_IO_KINDS] = {
            "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
            "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"};
        for (int k = 0; k < VS_IO_KINDS; k++) {
                uint64_t x = io->value[k];
                int r = vs_cgroup_plan_add(p, "io", files[k], io->keys[k], x == VS_UNLIMITED,
                                           "%u:%u %llu", io->maj, io->min,
                                           x == VS_UNLIMITED ? 0ULL : (unsigned long long)x);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* cpuset: a child's set must stay inside its parent's, so the order depends on the change. */
static int write_cpuset(const char *dir, const VsCgSetting *s, VsError *err)
{
        char leaf[4200];
        snprintf(leaf, sizeof leaf, "%s/" VS_CGROUP_LEAF, dir);
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int lfd = open(leaf, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return vs_error(err, errno, "open cgroup %s", dir);
        if (lfd >= 0 && s->value[0]) {
                /*
                 * The leaf's set must stay inside the outer's at every step, also
                 * for a set that shares nothing with the old one (0 -> 1): the
                 * outer grows to both, the leaf takes the new one, the outer too.
                 */
                char cur[2048];
                if (vs_read_file_at(dfd, s->file, cur, sizeof cur) > 0) {
                        cur[strcspn(cur, "\n")] = '\0';
                        VsCgSetting both = *s;
                        if (cur[0] && snprintf(both.value, sizeof both.value, "%s,%s", cur,
                                               s->value) < (int)sizeof both.value)
                                (void)vs_cg_write_one(dfd, &both, dir, NULL);
                }
                int r = vs_cg_write_one(lfd, s, leaf, err);
                return r < 0 ? r : vs_cg_write_one(dfd, s, dir, err);
        }
        /* "" (the parent's): the outer first, then the leaf gets the outer's resolved value */
        int r = vs_cg_write_one(dfd, s, dir, err);
        if (r == 0 && lfd >= 0) {
                char val[4096];
                VsCgSetting t = *s;
                if (vs_read_file_at(dfd, s->file, val, sizeof val) > 0) {
                        val[strcspn(val, "\n")] = '\0';
                        snprintf(t.value, sizeof t.value, "%s", val);
                }
                return vs_cg_write_one(lfd, &t, leaf, err);
        }
        return r;
}

typedef struct Below {
        const char *top;
        const VsCgSetting *set;
        int n;
        VsError *err;
} Below;

static int write_below_one(int dfd, int depth, void *data)
{
        Below *b = data;
        if (depth == 0)
                return 0; /* written already */
        return vs_cg_write_all(dfd, b->set, b->n, b->top, b->err);
}

static int write_limits(const char *dir, const char *ctrl, const VsCgSetting *set, int n,
                        VsError *err)
{
        if (streq(ctrl, "cpuset")) {
                for (int j = 0; j < n; j++) {
                        int r = write_cpuset(dir, &set[j], err);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return vs_error(err, errno, "open cgroup %s", dir);
        int r = vs_cg_write_all(dfd, set, n, dir, err);
        if (r < 0 || !streq(ctrl, "io"))
                return r;
        /* blkio throttling is flat: a limit holds only its own cgroup's tasks; put it below too */
        Below b = {.top = dir, .set = set, .n = n, .err = err};
        r = vs_cgroup_walk(dir, write_below_one, &b);
        return r == -ELOOP ? 0 : r;
}

const VsCgBackend vs_cg_v1 = {
    .name = "v1",
    .rank = 0,
    .made = made,
    .made_below = made_below,
    .has_controller = has_controller,
    .populated = vs_cg_any_listed,
    .kill = no_kill,
    .freeze = freeze,
    .stopped = stopped,
    .frozen = frozen,
    .guest_freezes = false,
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
