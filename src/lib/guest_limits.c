/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What a guest's limits are set to, where each one is written, and what is in force. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "guest.h"
#include "limits.h"
#include "rlimit.h"
#include "util.h"

/* The configured value of "limits.KEY" as the guest file would show it. */
static void configured(const VsLimits *l, const char *key, char *buf, size_t size)
{
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        snprintf(buf, size, "-");
        if (!m)
                return;
        vs_limits_write(l, m);
        fclose(m);
        const char *k = strncmp(key, "limits.", 7) == 0 ? key + 7 : key;
        size_t kl = strlen(k);
        for (char *line = text; line && *line;) {
                char *eol = strchr(line, '\n');
                if (eol)
                        *eol = '\0';
                if (strncmp(line, k, kl) == 0 && strncmp(line + kl, " = ", 3) == 0) {
                        snprintf(buf, size, "%s", line + kl + 3);
                        break;
                }
                line = eol ? eol + 1 : NULL;
        }
        free(text);
}

/* What the kernel file says now: one line, or the lines joined by ';'. */
static bool read_back(const VsCgroup *cg, const char *ctrl, const char *file, char *buf,
                      size_t size)
{
        bool v2;
        _cleanup_close_ int dfd = vs_cgroup_controller_open(cg, ctrl, &v2);
        if (dfd < 0 || vs_read_file_at(dfd, file, buf, size) < 0)
                return false;
        for (char *p = buf; *p; p++)
                if (*p == '\n')
                        *p = p[1] ? ';' : '\0';
        return true;
}

static VsLimitRow *grow(VsLimitReport *r)
{
        if (r->n % 16 == 0) {
                VsLimitRow *m = realloc(r->rows, (size_t)(r->n + 16) * sizeof *m);
                if (!m)
                        return NULL;
                r->rows = m;
        }
        VsLimitRow *row = &r->rows[r->n++];
        *row = (VsLimitRow){0};
        return row;
}

static int cgroup_rows(const VsGuest *g, const VsGuestState *st, VsLimitReport *r, VsError *err)
{
        static const char *const ctrls[] = {"memory", "pids", "cpu", "cpuset", "io"};
        VsCgroupMode mode = vs_cgroup_mode();
        for (size_t c = 0; c < ARRAY_SIZE(ctrls); c++) {
                bool v2 = mode == VS_CGROUP_V2;
                if (st->running && !vs_cgroup_controller(&st->cgroup, ctrls[c], &v2))
                        v2 = mode == VS_CGROUP_V2;
                VsCgSetting set[VS_LIMITS_MAX_SET];
                VsError perr = {0};
                int n =
                    vs_limits_plan(&g->cfg.limits, NULL, v2, false, set, VS_LIMITS_MAX_SET, &perr);
                if (n < 0) {
                        if (!r->has_problem)
                                r->problem = perr; /* the rest is still worth showing */
                        r->has_problem = true;
                        continue;
                }
                for (int i = 0; i < n; i++) {
                        if (!streq(set[i].controller, ctrls[c]))
                                continue;
                        VsLimitRow *row = grow(r);
                        if (!row)
                                return vs_error(err, ENOMEM, "limits");
                        row->key = set[i].key;
                        configured(&g->cfg.limits, set[i].key, row->value, sizeof row->value);
                        row->api = v2 ? "v2" : "v1";
                        row->file = set[i].file;
                        snprintf(row->write, sizeof row->write, "%s", set[i].value);
                        row->has_now = st->running && read_back(&st->cgroup, ctrls[c], set[i].file,
                                                                row->now, sizeof row->now);
                }
        }
        return 0;
}

/* rlimits: what the guest's init runs with */
static int rlimit_rows(const VsGuest *g, const VsGuestState *st, VsLimitReport *r, VsError *err)
{
        for (int i = 0; i < g->cfg.n_rlimits; i++) {
                const VsRlimit *rl = &g->cfg.rlimits[i];
                char s[32], hd[32];
                VsLimitRow *row = grow(r);
                if (!row)
                        return vs_error(err, ENOMEM, "limits");
                const char *name = vs_rlimit_name(rl->resource);
                size_t k = strlen("limits."), o = 0;
                memcpy(row->rkey, "limits.", k);
                for (; o < 30 && name[o]; o++)
                        row->rkey[k + o] =
                            (char)(name[o] >= 'A' && name[o] <= 'Z' ? name[o] + 32 : name[o]);
                row->rkey[k + o] = '\0';
                row->key = row->rkey;
                vs_rlimit_format(rl->limit.rlim_cur, s, sizeof s);
                vs_rlimit_format(rl->limit.rlim_max, hd, sizeof hd);
                snprintf(row->value, sizeof row->value, "%s:%s", s, hd);
                row->api = "";
                row->file = "rlimit of PID 1";
                struct rlimit cur;
                if (st->init &&
                    prlimit(st->init, (enum __rlimit_resource)rl->resource, NULL, &cur) == 0) {
                        vs_rlimit_format(cur.rlim_cur, s, sizeof s);
                        vs_rlimit_format(cur.rlim_max, hd, sizeof hd);
                        snprintf(row->now, sizeof row->now, "%s:%s", s, hd);
                        row->has_now = true;
                }
        }
        return 0;
}

/* disk: on its files, running or not; in force is what the quota or the image holds */
static int disk_rows(const VsGuest *g, VsLimitReport *r, VsError *err)
{
        static const char *const keys[] = {"limits.disk", "limits.disk.inodes",
                                           "limits.disk.reserved"};
        const VsLimits *l = &g->cfg.limits;
        VsDiskTree t = vs_guest_disk_tree(g);
        VsDiskUsage u;
        if (vs_disk_usage(&t, &u, NULL) < 0 || (u.kind == VS_DISK_NONE && !vs_limits_has_disk(l)))
                return 0;
        uint64_t set[] = {l->disk, l->disk_inodes,
                          l->disk == VS_UNLIMITED ? VS_UNLIMITED
                                                  : l->disk / 100 * l->disk_reserved_pct};
        uint64_t now[] = {u.bytes_limit, u.inodes_limit, u.reserved};
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                if (i == 2 && u.kind != VS_DISK_IMAGE)
                        continue; /* a reserve is an image's */
                VsLimitRow *row = grow(r);
                if (!row)
                        return vs_error(err, ENOMEM, "limits");
                row->key = keys[i];
                configured(l, keys[i], row->value, sizeof row->value);
                row->api = vs_disk_kind_name(u.kind);
                row->file = u.kind == VS_DISK_PROJECT ? "project quota (quotactl)"
                            : u.kind == VS_DISK_IMAGE ? "disk.img (ext4 on loop)"
                                                      : "none: no mechanism in place";
                if (set[i] == VS_UNLIMITED)
                        snprintf(row->write, sizeof row->write, "none");
                else
                        snprintf(row->write, sizeof row->write, "%llu", (unsigned long long)set[i]);
                if ((row->has_now = u.known))
                        snprintf(row->now, sizeof row->now, "%llu%s",
                                 (unsigned long long)(now[i] == VS_UNLIMITED ? 0 : now[i]),
                                 now[i] == VS_UNLIMITED ? " (none)" : "");
        }
        return 0;
}

int vs_guest_limits(const VsGuest *g, const VsGuestState *st, VsLimitReport *r, VsError *err)
{
        *r = (VsLimitReport){0};
        int ret = cgroup_rows(g, st, r, err);
        if (ret == 0)
                ret = rlimit_rows(g, st, r, err);
        if (ret == 0)
                ret = disk_rows(g, r, err);
        if (ret < 0)
                vs_limit_report_free(r);
        return ret;
}

void vs_limit_report_free(VsLimitReport *r)
{
        free(r->rows);
        *r = (VsLimitReport){0};
}
