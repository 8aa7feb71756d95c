/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Limits in cgroup files: planning rows for a backend, and writing them. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cgroup_int.h"
#include "util.h"

int vs_cgroup_plan_add(VsCgPlan *p, const char *ctrl, const char *file, const char *key, bool lift,
                       const char *fmt, ...)
{
        if (p->n >= p->max)
                return vs_error(p->err, E2BIG, "too many cgroup settings");
        VsCgSetting *s = &p->out[p->n++];
        *s = (VsCgSetting){.controller = ctrl, .file = file, .key = key, .lift = lift};
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->value, sizeof s->value, fmt, ap);
        va_end(ap);
        return 0;
}

static const VsCgBackend *backend(bool v2)
{
        return v2 ? &vs_cg_v2 : &vs_cg_v1;
}

const char *vs_cgroup_limit_file(bool v2, const char *key, const char **lift)
{
        for (const struct VsCgLimitFile *f = backend(v2)->limit_files; f->key; f++)
                if (streq(f->key, key)) {
                        *lift = f->lift;
                        return f->file;
                }
        return NULL;
}

int vs_cgroup_plan_swap(bool v2, VsCgPlan *p, uint64_t memory, uint64_t swap, bool all)
{
        return backend(v2)->plan_swap(p, memory, swap, all);
}

int vs_cgroup_plan_cpu(bool v2, VsCgPlan *p, const VsCgCpu *cpu, bool all)
{
        return backend(v2)->plan_cpu(p, cpu, all);
}

int vs_cgroup_plan_io(bool v2, VsCgPlan *p, const VsCgIo *io)
{
        return backend(v2)->plan_io(p, io);
}

int vs_cg_write_one(int dirfd, const VsCgSetting *s, const char *where, VsError *err)
{
        char val[4096];
        const char *v = s->value;
        if (faccessat(dirfd, s->file, F_OK, 0) < 0) {
                if (s->lift)
                        return 0;
                return vs_error(err, ENOTSUP, "%s: this kernel's %s controller has no %s (%s)",
                                s->key, s->controller, s->file,
                                s->hint ? s->hint : "not supported here");
        }
        if (streq(s->controller, "cpuset") && !v[0]) {
                /* an empty set is the parent's ("all"); v1 takes no empty set */
                _cleanup_close_ int pfd = openat(dirfd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
                ssize_t n = pfd < 0 ? -errno : vs_read_file_at(pfd, s->file, val, sizeof val);
                if (n > 0 && val[0] != '\n')
                        v = val;
        }
        int r = vs_write_file_at(dirfd, s->file, v[0] ? v : "\n");
        if (r < 0)
                return vs_error(err, r, "%s: write \"%s\" to %s%s%s", s->key, s->value,
                                where ? where : "", where ? "/" : "", s->file);
        return 0;
}

/*
 * Some files check against others (v1 memory.limit_in_bytes <= memsw, cfs
 * burst <= quota): a write refused for that is tried again after the rest.
 */
int vs_cg_write_all(int dirfd, const VsCgSetting *set, int n, const char *where, VsError *err)
{
        bool again[VS_CG_MAX_SETTINGS] = {false};
        bool any = false;
        if (n > VS_CG_MAX_SETTINGS)
                return vs_error(err, E2BIG, "too many cgroup settings");
        for (int i = 0; i < n; i++) {
                VsError e = {0};
                int r = vs_cg_write_one(dirfd, &set[i], where, &e);
                if (r == -EINVAL || r == -EBUSY) {
                        again[i] = any = true;
                } else if (r < 0) {
                        if (err)
                                *err = e;
                        return r;
                }
        }
        for (int i = 0; any && i < n; i++) {
                if (!again[i])
                        continue;
                int r = vs_cg_write_one(dirfd, &set[i], where, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

int vs_cgroup_write_dir(int dirfd, const VsCgSetting *set, int n, VsError *err)
{
        return vs_cg_write_all(dirfd, set, n, NULL, err);
}

int vs_cgroup_write_limits(const VsCgroup *cg, const char *ctrl, const VsCgSetting *set, int n,
                           VsError *err)
{
        bool v2 = false;
        const char *dir = vs_cgroup_controller(cg, ctrl, &v2);
        if (!dir)
                return -ENOENT;
        int r = backend(v2)->write_limits(dir, ctrl, set, n, err);
        if (r < 0 || !(streq(ctrl, "memory") || streq(ctrl, "pids") || streq(ctrl, "cpu")))
                return r;
        /*
         * The leaf is the root of the guest's cgroup namespace: the same
         * limits there show it its own (memory.limit_in_bytes, memory.max,
         * pids.max, the CPU quota) where it would see "no limit".  The
         * outer directory's hold; a leaf that refuses one changes nothing.
         */
        char leaf[4200];
        snprintf(leaf, sizeof leaf, "%s/" VS_CGROUP_LEAF, dir);
        _cleanup_close_ int lfd = open(leaf, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (lfd >= 0)
                (void)vs_cg_write_all(lfd, set, n, leaf, NULL);
        return 0;
}

bool vs_cgroup_io_buffered_unthrottled(void)
{
        char buf[4096];
        /* a v1 hierarchy holds blkio (a line "N:...blkio...:/path"): the v1 interface */
        if (vs_read_file_at(AT_FDCWD, "/proc/self/cgroup", buf, sizeof buf) <= 0)
                return false;
        char *lines = NULL, *ctrls = NULL;
        for (char *l1 = strtok_r(buf, "\n", &lines); l1; l1 = strtok_r(NULL, "\n", &lines)) {
                char *c1 = strchr(l1, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c2 = '\0';
                for (char *c = strtok_r(c1 + 1, ",", &ctrls); c; c = strtok_r(NULL, ",", &ctrls))
                        if (streq(c, "blkio"))
                                return true;
        }
        return false;
}
