/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cgroup v1 hierarchies: one per controller (or group of them), and name=systemd. */
#include <fcntl.h>
#include <stdio.h>
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
};
