/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What a context's cgroup shows its own /proc; a context's cgroup written down and read back. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup_int.h"
#include "util.h"

int vs_cgroup_view(const VsCgroup *cg, unsigned what, VsCgView *ret, VsError *err)
{
        static const char *const ctrls[] = {"memory", "cpu", "cpuacct", "cpuset", "io"};
        static const unsigned need[] = {VS_CG_VIEW_MEMORY, VS_CG_VIEW_CPU, VS_CG_VIEW_CPU,
                                        VS_CG_VIEW_CPU, VS_CG_VIEW_IO};
        char *buf = malloc(VS_CG_BIGFILE);
        if (!buf)
                return vs_error(err, ENOMEM, "cgroup view");
        memset(ret, 0xff, sizeof *ret);
        ret->cpus[0] = '\0';
        ret->n_dev = 0;
        for (size_t c = 0; c < ARRAY_SIZE(ctrls); c++) {
                bool v2 = false;
                if (!(what & need[c]))
                        continue;
                const char *dir = vs_cgroup_controller(cg, ctrls[c], &v2);
                if (!dir)
                        continue;
                _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (dfd >= 0)
                        (v2 ? &vs_cg_v2 : &vs_cg_v1)->view(dfd, dir, ctrls[c], ret, buf);
        }
        free(buf);
        return 0;
}

int vs_cgroup_save(const VsCgroup *cg, FILE *f)
{
        for (int i = 0; i < cg->n; i++)
                if (cg->dirs[i].created)
                        fprintf(f, "%s %s %s\n", cg->dirs[i].v2 ? "v2" : "v1",
                                cg->dirs[i].ctrls[0] ? cg->dirs[i].ctrls : "-", cg->dirs[i].path);
        return ferror(f) ? -EIO : 0;
}

int vs_cgroup_load(VsCgroup *cg, const char *text, VsError *err)
{
        *cg = (VsCgroup)VS_CGROUP_INIT;
        for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
                char ver[4], ctrls[64], path[4096];
                if (sscanf(l, "%3s %63s %4095s", ver, ctrls, path) != 3 || path[0] != '/')
                        continue;
                if (cg->n == VS_CGROUP_MAX_DIRS)
                        break;
                if (!streq(ver, "v1") && !streq(ver, "v2"))
                        continue;
                char *p = strdup(path);
                if (!p) {
                        vs_cgroup_release(cg);
                        return vs_error(err, ENOMEM, "cgroup");
                }
                int i = cg->n++;
                cg->dirs[i].path = p;
                snprintf(cg->dirs[i].ctrls, sizeof cg->dirs[i].ctrls, "%s",
                         streq(ctrls, "-") ? "" : ctrls);
                cg->dirs[i].v2 = streq(ver, "v2");
                cg->dirs[i].created = true;
                cg->dirs[i].base = (int)strlen(p);
        }
        return cg->n ? 0 : vs_error(err, ENOENT, "no cgroup in the record");
}

int vs_cg_view_dev(VsCgView *v, unsigned maj, unsigned min)
{
        for (int i = 0; i < v->n_dev; i++)
                if (v->dev[i].maj == maj && v->dev[i].min == min)
                        return i;
        if (v->n_dev == VS_CG_VIEW_DEVS)
                return -1;
        int i = v->n_dev++;
        v->dev[i].maj = maj;
        v->dev[i].min = min;
        v->dev[i].rbytes = v->dev[i].wbytes = v->dev[i].rios = v->dev[i].wios = 0;
        return i;
}

bool vs_cg_read_line(int dfd, const char *file, char *buf, size_t size)
{
        if (vs_read_file_at(dfd, file, buf, size) < 0)
                return false;
        buf[strcspn(buf, "\n")] = '\0';
        return true;
}

void vs_cg_view_stat(const char *buf, const VsCgStatKey *keys, size_t n, VsCgView *v)
{
        for (size_t k = 0; k < n; k++)
                vs_cg_kv_into(buf, keys[k].key, (uint64_t *)(void *)((char *)v + keys[k].off), 1);
}
