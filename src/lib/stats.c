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

#define BIGFILE 65536

int vs_stats_kv(const char *text, const char *key, uint64_t *ret)
{
        size_t n = strlen(key);
        for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
                if (strncmp(l, key, n) == 0 && l[n] == ' ') {
                        unsigned long long v;
                        if (sscanf(l + n + 1, "%llu", &v) != 1)
                                return -EINVAL;
                        *ret = v;
                        return 0;
                }
        }
        return -ENOENT;
}

void vs_stats_io_v2(const char *text, uint64_t *rbytes, uint64_t *wbytes, uint64_t *rios,
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

void vs_stats_blkio_v1(const char *text, uint64_t *read, uint64_t *write)
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

static int dir_of(const VsCgroup *cg, const char *ctrl, bool *v2)
{
        *v2 = false;
        int fd = vs_cgroup_controller_open(cg, ctrl, v2);
        return fd < 0 ? -EBADF : fd;
}

static bool read_text(int dfd, const char *file, char *buf, size_t size)
{
        return dfd >= 0 && vs_read_file_at(dfd, file, buf, size) >= 0;
}

static bool read_u64(int dfd, const char *file, uint64_t *ret)
{
        char buf[64];
        unsigned long long v;
        if (!read_text(dfd, file, buf, sizeof buf) || sscanf(buf, "%llu", &v) != 1)
                return false;
        *ret = v;
        return true;
}

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
        Inodes sockets;
} PidCount;

static int count_pid(pid_t pid, void *data)
{
        PidCount *c = data;
        char path[64];
        VsProcStat ps;
        c->st->processes++;
        if (vs_proc_stat(pid, &ps) == 0 && ps.threads > 0)
                c->st->threads += (uint64_t)ps.threads;
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

static int add_oom_kills(int fd, int depth, void *data)
{
        uint64_t *sum = data, v;
        char buf[512];
        (void)depth;
        if (vs_read_file_at(fd, "memory.oom_control", buf, sizeof buf) >= 0 &&
            vs_stats_kv(buf, "oom_kill", &v) == 0)
                *sum += v;
        return 0;
}

int vs_stats_read(const VsCgroup *cg, VsStats *st, VsError *err)
{
        char *buf = malloc(BIGFILE);
        uint64_t v, w;
        bool v2;
        if (!buf)
                return vs_error(err, ENOMEM, "stats");
        memset(st, 0xff, sizeof *st);

        /* CPU time */
        int fd = dir_of(cg, "cpuacct", &v2);
        if (v2 && read_text(fd, "cpu.stat", buf, BIGFILE)) {
                if (vs_stats_kv(buf, "usage_usec", &v) == 0)
                        st->cpu_usage_us = v;
                if (vs_stats_kv(buf, "user_usec", &v) == 0)
                        st->cpu_user_us = v;
                if (vs_stats_kv(buf, "system_usec", &v) == 0)
                        st->cpu_system_us = v;
        } else if (!v2) {
                if (read_u64(fd, "cpuacct.usage", &v))
                        st->cpu_usage_us = v / 1000;
                if (read_u64(fd, "cpuacct.usage_user", &v))
                        st->cpu_user_us = v / 1000;
                if (read_u64(fd, "cpuacct.usage_sys", &v))
                        st->cpu_system_us = v / 1000;
        }
        vs_closep(&fd);

        /* throttling by the bandwidth limit */
        fd = dir_of(cg, "cpu", &v2);
        if (read_text(fd, "cpu.stat", buf, BIGFILE)) {
                if (vs_stats_kv(buf, "nr_periods", &v) == 0)
                        st->cpu_periods = v;
                if (vs_stats_kv(buf, "nr_throttled", &v) == 0)
                        st->cpu_throttled_periods = v;
                if (vs_stats_kv(buf, "throttled_usec", &v) == 0)
                        st->cpu_throttled_us = v;
                else if (vs_stats_kv(buf, "throttled_time", &v) == 0)
                        st->cpu_throttled_us = v / 1000;
        }
        vs_closep(&fd);

        /* memory */
        fd = dir_of(cg, "memory", &v2);
        if (fd >= 0 && v2) {
                if (read_u64(fd, "memory.current", &v))
                        st->mem_current = v;
                if (read_u64(fd, "memory.peak", &v))
                        st->mem_peak = v;
                if (read_u64(fd, "memory.swap.current", &v))
                        st->swap_current = v;
                if (read_text(fd, "memory.stat", buf, BIGFILE)) {
                        if (vs_stats_kv(buf, "anon", &v) == 0)
                                st->mem_anon = v;
                        if (vs_stats_kv(buf, "file", &v) == 0)
                                st->mem_cache = v;
                }
                if (read_text(fd, "memory.events", buf, BIGFILE) &&
                    vs_stats_kv(buf, "oom_kill", &v) == 0)
                        st->oom_kills = v;
        } else if (fd >= 0) {
                if (read_u64(fd, "memory.usage_in_bytes", &v))
                        st->mem_current = v;
                if (read_u64(fd, "memory.max_usage_in_bytes", &v))
                        st->mem_peak = v;
                if (read_u64(fd, "memory.memsw.usage_in_bytes", &w) &&
                    st->mem_current != VS_STAT_NONE)
                        st->swap_current = w > st->mem_current ? w - st->mem_current : 0;
                if (read_text(fd, "memory.stat", buf, BIGFILE)) {
                        /* total_*: this cgroup and its descendants */
                        if (vs_stats_kv(buf, "total_rss", &v) == 0)
                                st->mem_anon = v;
                        if (vs_stats_kv(buf, "total_cache", &v) == 0)
                                st->mem_cache = v;
                }
                /* v1 counts an OOM kill only in the victim's own cgroup: add up the tree */
                if (read_text(fd, "memory.oom_control", buf, BIGFILE)) {
                        const char *dir = vs_cgroup_controller(cg, "memory", &v2);
                        st->oom_kills = 0;
                        if (dir)
                                vs_cgroup_walk(dir, add_oom_kills, &st->oom_kills);
                }
        }
        vs_closep(&fd);

        /* processes (tasks, as pids.max counts them) */
        fd = dir_of(cg, "pids", &v2);
        if (read_u64(fd, "pids.current", &v))
                st->tasks = v;
        vs_closep(&fd);

        /* block I/O */
        fd = dir_of(cg, "io", &v2);
        if (fd >= 0 && v2 && read_text(fd, "io.stat", buf, BIGFILE)) {
                vs_stats_io_v2(buf, &st->io_read_bytes, &st->io_write_bytes, &st->io_read_ops,
                               &st->io_write_ops);
        } else if (fd >= 0 && !v2) {
                if (read_text(fd, "blkio.throttle.io_service_bytes_recursive", buf, BIGFILE))
                        vs_stats_blkio_v1(buf, &st->io_read_bytes, &st->io_write_bytes);
                if (read_text(fd, "blkio.throttle.io_serviced_recursive", buf, BIGFILE))
                        vs_stats_blkio_v1(buf, &st->io_read_ops, &st->io_write_ops);
        }
        vs_closep(&fd);
        free(buf);

        /* what cgroups do not count: from /proc of each process */
        PidCount c = {.st = st};
        st->processes = st->threads = 0;
        vs_cgroup_foreach_pid(cg, count_pid, &c);
        if (c.sockets.n)
                qsort(c.sockets.v, c.sockets.n, sizeof *c.sockets.v, cmp_ul);
        st->sockets = 0;
        for (size_t i = 0; i < c.sockets.n; i++)
                if (i == 0 || c.sockets.v[i] != c.sockets.v[i - 1])
                        st->sockets++;
        free(c.sockets.v);
        return 0;
}

void vs_stats_net(VsStats *st, int mode, unsigned ctx, const char *bpf_dir)
{
        VsTraffic t;
        if (mode == VS_NET_ISOLATE && vs_net_traffic(bpf_dir, ctx, &t) == 0) {
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
