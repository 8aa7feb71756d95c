/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "stats.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "context.h"
#include "net.h"
#include "util.h"

typedef struct Inodes {
        unsigned long *v;
        size_t n, cap;
} Inodes;

static int cmp_ul(const void *a, const void *b)
{
        unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
        return x < y ? -1 : x > y;
}

typedef struct PidCount {
        VsStats *st;
        bool want_sockets;
        Inodes sockets;
} PidCount;

static int count_pid(pid_t pid, void *data)
{
        PidCount *c = data;
        char path[64];
        VsProcStat ps;
        c->st->processes++;
        if (vs_proc_stat(pid, &ps) == 0) {
                if (ps.threads > 0)
                        c->st->threads += (uint64_t)ps.threads;
                c->st->vsz += ps.vsize;
                c->st->rss += (uint64_t)(ps.rss > 0 ? ps.rss : 0) * (uint64_t)sysconf(_SC_PAGESIZE);
                c->st->utime += ps.utime;
                c->st->stime += ps.stime;
        }
        if (!c->want_sockets)
                return 0;
        snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
        DIR *d = opendir(path);
        if (!d)
                return 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                char link[64];
                if (de->d_name[0] == '.')
                        continue;
                ssize_t n = readlinkat(dirfd(d), de->d_name, link, sizeof link - 1);
                if (n <= 8 || strncmp(link, "socket:[", 8) != 0)
                        continue;
                link[n] = '\0';
                if (c->sockets.n == c->sockets.cap) {
                        size_t cap = c->sockets.cap ? c->sockets.cap * 2 : 256;
                        unsigned long *v = realloc(c->sockets.v, cap * sizeof *v);
                        if (!v)
                                break;
                        c->sockets.v = v;
                        c->sockets.cap = cap;
                }
                c->sockets.v[c->sockets.n++] = strtoul(link + 8, NULL, 10);
        }
        closedir(d);
        return 0;
}

int vs_stats_read(const VsCgroup *cg, VsStats *st, unsigned what, VsError *err)
{
        bool sockets = what & VS_STATS_SOCKETS;
        memset(st, 0xff, sizeof *st);
        int r = vs_cgroup_usage(cg, what & VS_STATS_BRIEF, &st->cg, err);
        if (r < 0)
                return r;

        if ((what & VS_STATS_BRIEF) && st->cg.tasks != VS_CG_NONE) {
                st->threads = st->cg.tasks; /* every task, each thread one */
                return 0;
        }
        /* what cgroups do not count: from /proc of each process */
        PidCount c = {.st = st, .want_sockets = sockets};
        st->processes = st->threads = st->vsz = st->rss = st->utime = st->stime = 0;
        vs_cgroup_foreach_pid(cg, count_pid, &c);
        if (c.sockets.n)
                qsort(c.sockets.v, c.sockets.n, sizeof *c.sockets.v, cmp_ul);
        st->sockets = sockets ? 0 : VS_STAT_NONE;
        for (size_t i = 0; i < c.sockets.n; i++)
                if (i == 0 || c.sockets.v[i] != c.sockets.v[i - 1])
                        st->sockets++;
        free(c.sockets.v);
        return 0;
}

void vs_stats_net(VsStats *st, int mode, unsigned ctx, const char *bpf_dir, const char *cgdir)
{
        VsTraffic t;
        if (mode == VS_NET_ISOLATE && vs_net_traffic(bpf_dir, ctx, cgdir, &t) == 0) {
                st->net_rx_bytes = t.rx_bytes;
                st->net_rx_packets = t.rx_packets;
                st->net_tx_bytes = t.tx_bytes;
                st->net_tx_packets = t.tx_packets;
        } else if (mode == VS_NET_NETNS) {
                /* the host end of the veth: what it receives, the guest sent */
                static const char *const files[] = {"tx_bytes", "tx_packets", "rx_bytes",
                                                    "rx_packets"};
                uint64_t *dst[] = {&st->net_rx_bytes, &st->net_rx_packets, &st->net_tx_bytes,
                                   &st->net_tx_packets};
                for (int i = 0; i < 4; i++) {
                        char path[96], buf[32];
                        unsigned long long v;
                        snprintf(path, sizeof path, "/sys/class/net/vs%u/statistics/%s", ctx,
                                 files[i]);
                        ssize_t n = vs_read_file_at(AT_FDCWD, path, buf, sizeof buf);
                        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                                buf[--n] = '\0';
                        if (n > 0 && vs_parse_u64(buf, &v) == 0)
                                *dst[i] = v;
                }
        }
}
