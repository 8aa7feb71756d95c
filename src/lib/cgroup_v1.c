/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cgroup v1 hierarchies: one per controller (or group of them), and name=systemd. */
#include <fcntl.h>
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

static void made_below(const char *dir, const char *ctrls)
{
        if (vs_cg_has_all(ctrls, "cpuset"))
                cpuset_inherit(dir);
}

static void made(const char *dir, int base, const char *ctrls)
{
        (void)base;
        made_below(dir, ctrls);
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
        return vs_read_file_at(dfd, "freezer.state", buf, sizeof buf) >= 0 &&
               strncmp(buf, "FROZEN", 6) == 0;
}

static bool frozen(int dfd, bool exact)
{
        (void)exact;
        char buf[64];
        return vs_read_file_at(dfd, "freezer.state", buf, sizeof buf) > 0 &&
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

static int add_oom_kills(int fd, int depth, void *data)
{
        uint64_t *sum = data, v;
        char buf[512];
        (void)depth;
        if (vs_read_file_at(fd, "memory.oom_control", buf, sizeof buf) >= 0 &&
            vs_cgroup_kv(buf, "oom_kill", &v) == 0)
                *sum += v;
        return 0;
}

static void usage(int dfd, const char *dir, const char *ctrl, VsCgUsage *u, char *buf)
{
        uint64_t v, w;
        if (streq(ctrl, "cpuacct")) {
                if (vs_cg_read_u64(dfd, "cpuacct.usage", &v))
                        u->cpu_usage_us = v / 1000;
                if (vs_cg_read_u64(dfd, "cpuacct.usage_user", &v))
                        u->cpu_user_us = v / 1000;
                if (vs_cg_read_u64(dfd, "cpuacct.usage_sys", &v))
                        u->cpu_system_us = v / 1000;
        } else if (streq(ctrl, "cpu") &&
                   vs_read_file_at(dfd, "cpu.stat", buf, VS_CG_BIGFILE) >= 0) {
                vs_cg_kv_into(buf, "nr_periods", &u->cpu_periods, 1);
                vs_cg_kv_into(buf, "nr_throttled", &u->cpu_throttled_periods, 1);
                vs_cg_kv_into(buf, "throttled_time", &u->cpu_throttled_us, 1000);
                vs_cg_kv_into(buf, "throttled_usec", &u->cpu_throttled_us, 1);
        } else if (streq(ctrl, "memory")) {
                if (vs_cg_read_u64(dfd, "memory.usage_in_bytes", &v))
                        u->mem_current = v;
                if (vs_cg_read_u64(dfd, "memory.max_usage_in_bytes", &v))
                        u->mem_peak = v;
                /* memsw counts memory and swap together */
                if (vs_cg_read_u64(dfd, "memory.memsw.usage_in_bytes", &w) &&
                    u->mem_current != VS_CG_NONE)
                        u->swap_current = w > u->mem_current ? w - u->mem_current : 0;
                /* total_*: this cgroup and its descendants */
                if (vs_read_file_at(dfd, "memory.stat", buf, VS_CG_BIGFILE) >= 0) {
                        vs_cg_kv_into(buf, "total_rss", &u->mem_anon, 1);
                        vs_cg_kv_into(buf, "total_cache", &u->mem_cache, 1);
                }
                /* an OOM kill counts only in the victim's own cgroup: add up the tree */
                if (vs_read_file_at(dfd, "memory.oom_control", buf, VS_CG_BIGFILE) >= 0) {
                        u->oom_kills = 0;
                        vs_cgroup_walk(dir, add_oom_kills, &u->oom_kills);
                }
        } else if (streq(ctrl, "pids")) {
                if (vs_cg_read_u64(dfd, "pids.current", &v))
                        u->tasks = v;
        } else if (streq(ctrl, "io")) {
                if (vs_read_file_at(dfd, "blkio.throttle.io_service_bytes_recursive", buf,
                                    VS_CG_BIGFILE) >= 0)
                        vs_cgroup_blkio(buf, &u->io_read_bytes, &u->io_write_bytes);
                if (vs_read_file_at(dfd, "blkio.throttle.io_serviced_recursive", buf,
                                    VS_CG_BIGFILE) >= 0)
                        vs_cgroup_blkio(buf, &u->io_read_ops, &u->io_write_ops);
        }
}

static const char *const delegate_files[] = {"cgroup.procs", "tasks", "cgroup.clone_children",
                                             "notify_on_release", NULL};

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
};
