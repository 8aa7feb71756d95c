/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "limits.h"

#include <errno.h>
#include <stddef.h>
#include <sys/sysinfo.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "rlimit.h"
#include "util.h"

#define MS 1000ULL /* microseconds */

/* VServer's default bucket: 125 tokens; one token is one tick of 1 ms. */
#define DEFAULT_TOKENS_MAX_US (125 * MS)
#define CFS_PERIOD_MIN_US     (1 * MS)
#define CFS_PERIOD_MAX_US     (1000 * MS)

static const char *const ipc_names[VS_IPC_N] = {"shmmax", "shmall", "shmmni",
                                                "msgmax", "msgmnb", "msgmni"};

static const char *const io_keys[VS_IO_KINDS] = {"io.read-bps", "io.write-bps", "io.read-iops",
                                                 "io.write-iops"};

const char *vs_ipc_sysctl_name(VsIpcSysctl s)
{
        return s < VS_IPC_N ? ipc_names[s] : NULL;
}

void vs_limits_init(VsLimits *l)
{
        *l = (VsLimits){.memory = VS_UNLIMITED,
                        .memory_soft = VS_UNLIMITED,
                        .swap = VS_UNLIMITED,
                        .processes = VS_UNLIMITED,
                        .disk = VS_UNLIMITED,
                        .disk_inodes = VS_UNLIMITED};
        for (int i = 0; i < VS_IPC_N; i++)
                l->ipc[i] = VS_UNLIMITED;
}

bool vs_limits_has_disk(const VsLimits *l)
{
        return l->disk != VS_UNLIMITED || l->disk_inodes != VS_UNLIMITED;
}

void vs_limits_defaults(VsLimits *l)
{
        /* read once a command: vserver list loads every guest file (on every CPU) */
        static _Atomic unsigned long long pid_max, ram;
        char buf[32];
        unsigned long long max = pid_max, bytes = ram;
        if (!max) {
                max = 32768;
                if (vs_read_file_at(AT_FDCWD, "/proc/sys/kernel/pid_max", buf, sizeof buf) > 0) {
                        buf[strcspn(buf, "\n")] = '\0';
                        (void)vs_parse_u64(buf, &max);
                }
                pid_max = max;
        }
        l->processes = max / 100 * VS_DEFAULT_PROCESSES_PERCENT;
        struct sysinfo si;
        if (!bytes && sysinfo(&si) == 0 && si.totalram > 0)
                ram = bytes = (unsigned long long)si.totalram * si.mem_unit;
        if (bytes)
                l->memory = bytes / 100 * VS_DEFAULT_MEMORY_PERCENT & ~((1ULL << 20) - 1);
}

/* "unlimited" or a size of at least @min bytes. */
static int parse_size_or_max(const char *v, uint64_t min, uint64_t *ret)
{
        unsigned long long n;
        if (streq(v, "unlimited") || streq(v, "max")) {
                *ret = VS_UNLIMITED;
                return 0;
        }
        if (vs_parse_size(v, &n) < 0 || n < min || n == VS_UNLIMITED)
                return -EINVAL;
        *ret = n;
        return 0;
}

/* Is every member of @want in the kernel's list at @path? */
static bool cpulist_within(const char *want, const char *path, char *have, size_t size)
{
        enum { N = 8192 };
        if (vs_read_file_at(AT_FDCWD, path, have, size) <= 0)
                return true; /* nothing to compare with: the kernel will say */
        have[strcspn(have, "\n")] = '\0';
        bool *in = calloc(N, sizeof *in), *w = calloc(N, sizeof *w);
        bool ok = in && w && vs_cpulist_fill(have, in, N) && vs_cpulist_fill(want, w, N);
        for (unsigned c = 0; ok && c < N; c++)
                ok = !w[c] || in[c];
        free(in);
        free(w);
        return ok;
}

bool vs_limits_io_writes_v1(const VsLimits *l)
{
        bool writes = false;
        for (int i = 0; i < l->n_io; i++)
                writes |= l->io[i].value[VS_IO_WBPS] != VS_UNLIMITED ||
                          l->io[i].value[VS_IO_WIOPS] != VS_UNLIMITED;
        return writes && vs_cgroup_io_buffered_unthrottled();
}

int vs_limits_check_host(const VsLimits *l, VsError *err)
{
        char have[256];
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (l->cpu_limit_milli && cpus > 0 && l->cpu_limit_milli > (unsigned long)cpus * 1000)
                return vs_error_input(err,
                                      "limits.cpu.limit: %u.%03u CPUs, but this host has %ld "
                                      "(say at most %ld)",
                                      l->cpu_limit_milli / 1000, l->cpu_limit_milli % 1000, cpus,
                                      cpus);
        if (l->cpuset_cpus[0] &&
            !cpulist_within(l->cpuset_cpus, "/sys/devices/system/cpu/online", have, sizeof have))
                return vs_error_input(err,
                                      "limits.cpuset: \"%s\" names CPUs this host does not have "
                                      "(it has %s)",
                                      l->cpuset_cpus, have);
        if (l->cpuset_mems[0] &&
            !cpulist_within(l->cpuset_mems, "/sys/devices/system/node/online", have, sizeof have))
                return vs_error_input(err,
                                      "limits.cpuset.mems: \"%s\" names memory nodes this host "
                                      "does not have (it has %s)",
                                      l->cpuset_mems, have);
        return 0;
}

static bool device_valid(const char *d)
{
        unsigned maj, min;
        char end;
        if (d[0] == '/')
                return strlen(d) < sizeof((VsIoLimit *)0)->device && !strstr(d, "/../");
        return sscanf(d, "%u:%u%c", &maj, &min, &end) == 2;
}

static VsIoLimit *io_slot(VsLimits *l, const char *dev)
{
        for (int i = 0; i < l->n_io; i++)
                if (streq(l->io[i].device, dev))
                        return &l->io[i];
        if (l->n_io >= VS_LIMITS_MAX_IO)
                return NULL;
        VsIoLimit *s = &l->io[l->n_io++];
        snprintf(s->device, sizeof s->device, "%s", dev);
        for (int k = 0; k < VS_IO_KINDS; k++)
                s->value[k] = VS_UNLIMITED;
        return s;
}

/* Drop devices with no limit left. */
static void io_compact(VsLimits *l)
{
        int j = 0;
        for (int i = 0; i < l->n_io; i++) {
                bool any = false;
                for (int k = 0; k < VS_IO_KINDS; k++)
                        any |= l->io[i].value[k] != VS_UNLIMITED;
                if (any)
                        l->io[j++] = l->io[i];
        }
        l->n_io = j;
}

/* "DEV RATE[, DEV RATE...]" or "unlimited": replaces every device's value of @kind. */
static int parse_io(VsLimits *l, VsIoKind kind, const char *v, char *msg, size_t msz)
{
        bool bytes = kind == VS_IO_RBPS || kind == VS_IO_WBPS;
        VsLimits t = *l;
        for (int i = 0; i < t.n_io; i++)
                t.io[i].value[kind] = VS_UNLIMITED;
        if (!streq(v, "unlimited")) {
                char buf[1024];
                snprintf(buf, sizeof buf, "%s", v);
                for (char *save = NULL, *item = strtok_r(buf, ",", &save); item;
                     item = strtok_r(NULL, ",", &save)) {
                        char dev[160], rate[64], extra[8];
                        unsigned long long n;
                        int k = sscanf(item, " %159s %63s %7s", dev, rate, extra);
                        if (k != 2) {
                                snprintf(msg, msz,
                                         "\"%s\" is not DEVICE RATE (say /dev/sda 10M, several "
                                         "separated by commas)",
                                         item);
                                return -EINVAL;
                        }
                        if (!device_valid(dev)) {
                                snprintf(msg, msz,
                                         "\"%s\" is not a block device (say /dev/sda or 8:0)", dev);
                                return -EINVAL;
                        }
                        if ((bytes ? vs_parse_size(rate, &n) : vs_parse_u64(rate, &n)) < 0 ||
                            n == 0 || n == VS_UNLIMITED) {
                                snprintf(msg, msz, "\"%s\" is not %s", rate,
                                         bytes ? "a rate in bytes per second (say 10M)"
                                               : "a number of operations per second (say 100)");
                                return -EINVAL;
                        }
                        VsIoLimit *s = io_slot(&t, dev);
                        if (!s) {
                                snprintf(msg, msz, "too many devices (at most %d)",
                                         VS_LIMITS_MAX_IO);
                                return -EINVAL;
                        }
                        s->value[kind] = n;
                }
        }
        io_compact(&t);
        *l = t;
        return 0;
}

#define BAD(...)                                                                                   \
        do {                                                                                       \
                snprintf(msg, msz, __VA_ARGS__);                                                   \
                return -EINVAL;                                                                    \
        } while (0)

int vs_limits_set_key(VsLimits *l, const char *key, const char *v, char *msg, size_t msz)
{
        unsigned long long n;
        uint64_t u;

        if (streq(key, "memory") || streq(key, "memory.soft") || streq(key, "swap")) {
                bool swap = streq(key, "swap");
                if (parse_size_or_max(v, 0, &u) < 0)
                        BAD("\"%s\" is not a size (say 512M or 2G%s)", v,
                            swap ? ", or 0 for none" : "");
                if (!swap && u < (1 << 20))
                        BAD("\"%s\" is too small (at least 1M)", v);
                *(streq(key, "memory")        ? &l->memory
                  : streq(key, "memory.soft") ? &l->memory_soft
                                              : &l->swap) = u;
        } else if (streq(key, "processes")) {
                if (streq(v, "unlimited"))
                        n = VS_UNLIMITED;
                else if (vs_parse_u64(v, &n) < 0 || n < 1 || n > 4194304)
                        BAD("\"%s\" is not a number of processes (1 to 4194304, or unlimited)", v);
                l->processes = n;
        } else if (streq(key, "cpu.fill-rate") || streq(key, "cpu.interval")) {
                if (vs_parse_u64(v, &n) < 0 || n < 1 || n > 1000000)
                        BAD("\"%s\" is not a number of %s (1 to 1000000)", v,
                            streq(key, "cpu.interval") ? "ticks" : "tokens");
                *(streq(key, "cpu.interval") ? &l->interval : &l->fill_rate) = (unsigned)n;
        } else if (streq(key, "cpu.tokens-max")) {
                if (vs_parse_duration_us(v, &u) < 0 || u < MS || u > 10000 * MS)
                        BAD("\"%s\" is not a bucket size (say 125 tokens of 1 ms, or 500ms; 1ms to "
                            "10s)",
                            v);
                l->tokens_max_us = u;
        } else if (streq(key, "cpu.hard")) {
                if (streq(v, "yes") || streq(v, "true") || streq(v, "1"))
                        l->hard = true;
                else if (streq(v, "no") || streq(v, "false") || streq(v, "0"))
                        l->hard = false;
                else
                        BAD("\"%s\" is not yes or no", v);
        } else if (streq(key, "cpu.limit")) {
                if (streq(v, "unlimited"))
                        n = 0;
                else if (vs_parse_milli(v, &n) < 0 || n < 10 || n > 1024000)
                        BAD("\"%s\" is not a number of CPUs (say 1.5 or 0.25; 0.01 to 1024, or "
                            "unlimited)",
                            v);
                l->cpu_limit_milli = (unsigned)n;
        } else if (streq(key, "cpu.weight")) {
                if (vs_parse_u64(v, &n) < 0 || n < 1 || n > 10000)
                        BAD("\"%s\" is not a weight (1 to 10000; 100 is the default)", v);
                l->cpu_weight = (unsigned)n;
        } else if (streq(key, "cpuset") || streq(key, "cpuset.mems")) {
                bool cpus = streq(key, "cpuset");
                if (!streq(v, "all") && !vs_cpulist_valid(v))
                        BAD("\"%s\" is not a list of %s (say 0-3,6, or all)", v,
                            cpus ? "CPUs" : "memory nodes");
                char *dst = cpus ? l->cpuset_cpus : l->cpuset_mems;
                size_t size = cpus ? sizeof l->cpuset_cpus : sizeof l->cpuset_mems;
                if (strlen(v) >= size)
                        BAD("the list is too long");
                snprintf(dst, size, "%s", streq(v, "all") ? "" : v);
        } else if (streq(key, "disk")) {
                if (parse_size_or_max(v, 0, &u) < 0)
                        BAD("\"%s\" is not a size (say 10G, or unlimited)", v);
                if (u < (16 << 20))
                        BAD("\"%s\" is too small (at least 16M)", v);
                l->disk = u;
        } else if (streq(key, "disk.inodes")) {
                if (streq(v, "unlimited"))
                        n = VS_UNLIMITED;
                else if (vs_parse_count(v, &n) < 0 || n < 100 || n > (1ULL << 32) - 1)
                        BAD("\"%s\" is not a number of files (say 200k; 100 to 4G, or "
                            "unlimited)",
                            v);
                l->disk_inodes = n;
        } else if (streq(key, "disk.reserved")) {
                char num[4];
                size_t d = strspn(v, "0123456789");
                snprintf(num, sizeof num, "%.*s", (int)(d < 3 ? d : 3), v);
                if (d == 0 || d > 2 || (v[d] && !streq(v + d, "%")) || vs_parse_u64(num, &n) < 0 ||
                    n > 50)
                        BAD("\"%s\" is not a share of the disk (say 5%%; 0%% to 50%%)", v);
                l->disk_reserved_pct = (unsigned)n;
        } else if (strncmp(key, "io.", 3) == 0) {
                for (int k = 0; k < VS_IO_KINDS; k++)
                        if (streq(key, io_keys[k]))
                                return parse_io(l, (VsIoKind)k, v, msg, msz) < 0 ? -EINVAL : 1;
                return 0;
        } else if (streq(key, "ipc.sem")) {
                unsigned long a[4];
                char extra;
                if (streq(v, "default"))
                        l->ipc_sem[0] = '\0';
                else if (sscanf(v, "%lu %lu %lu %lu %c", &a[0], &a[1], &a[2], &a[3], &extra) != 4 ||
                         a[0] > 65536 || a[1] > 2147483647UL || a[2] > 65536 || a[3] > 32768 ||
                         strspn(v, "0123456789 \t") != strlen(v))
                        BAD("\"%s\" is not SEMMSL SEMMNS SEMOPM SEMMNI (say 250 32000 32 128)", v);
                else
                        snprintf(l->ipc_sem, sizeof l->ipc_sem, "%lu %lu %lu %lu", a[0], a[1], a[2],
                                 a[3]);
        } else if (strncmp(key, "ipc.", 4) == 0) {
                for (int i = 0; i < VS_IPC_N; i++) {
                        if (!streq(key + 4, ipc_names[i]))
                                continue;
                        bool size = i == VS_IPC_SHMMAX || i == VS_IPC_MSGMAX || i == VS_IPC_MSGMNB;
                        if (streq(v, "default"))
                                n = VS_UNLIMITED;
                        else if ((size ? vs_parse_size(v, &n) : vs_parse_u64(v, &n)) < 0 ||
                                 n == VS_UNLIMITED ||
                                 (i != VS_IPC_SHMMAX && i != VS_IPC_SHMALL && n > 2147483647ULL))
                                BAD("\"%s\" is not a %s (or default)", v,
                                    size ? "size (say 64M)" : "number");
                        l->ipc[i] = n;
                        return 1;
                }
                return 0;
        } else {
                return 0;
        }
        return 1;
}

int vs_limits_check(const VsLimits *l, char *msg, size_t msz)
{
        if ((l->fill_rate != 0) != (l->interval != 0))
                BAD("cpu.fill-rate and cpu.interval go together (say cpu.fill-rate = 1 and "
                    "cpu.interval = 4 for a quarter of one CPU)");
        if (l->tokens_max_us && !l->fill_rate)
                BAD("cpu.tokens-max needs cpu.fill-rate and cpu.interval");
        if (l->hard && !l->fill_rate)
                BAD("cpu.hard needs cpu.fill-rate and cpu.interval");
        if (l->cpu_limit_milli && l->fill_rate && l->hard)
                BAD("cpu.limit and a hard token bucket both cap the CPU (keep one)");
        if (l->cpu_weight && l->fill_rate && !l->hard)
                BAD("cpu.weight and a soft token bucket both set the weight (keep one)");
        if (l->fill_rate) {
                VsCpuBandwidth bw;
                if (vs_token_bucket_to_cfs(l->fill_rate, l->interval, l->tokens_max_us, &bw, msg,
                                           msz) < 0)
                        return -EINVAL;
        }
        if (l->disk_reserved_pct && l->disk == VS_UNLIMITED)
                BAD("disk.reserved needs disk (it is a share of the guest's disk)");
        if (l->swap != VS_UNLIMITED && l->memory == VS_UNLIMITED)
                BAD("swap needs a memory limit (swap is counted on top of memory)");
        if (l->memory_soft != VS_UNLIMITED && l->memory != VS_UNLIMITED &&
            l->memory_soft > l->memory)
                BAD("memory.soft is above memory (the soft target must be below the hard "
                    "limit)");
        return 0;
}

int vs_token_bucket_to_cfs(unsigned fill_rate, unsigned interval, uint64_t tokens_max_us,
                           VsCpuBandwidth *ret, char *msg, size_t msz)
{
        if (fill_rate == 0 || interval == 0)
                BAD("cpu.fill-rate and cpu.interval must both be at least 1");
        /* below a thousandth of a CPU the quota would be under the kernel's 1 ms */
        if ((uint64_t)fill_rate * 1000 < interval)
                BAD("cpu.fill-rate / cpu.interval = %u/%u is below 1/1000 of a CPU", fill_rate,
                    interval);
        if (fill_rate > 1024ULL * interval)
                BAD("cpu.fill-rate / cpu.interval = %u/%u is more than 1024 CPUs", fill_rate,
                    interval);
        uint64_t tokens = tokens_max_us ? tokens_max_us : DEFAULT_TOKENS_MAX_US;
        /* the time an empty bucket takes to fill: tokens / rate */
        uint64_t period = tokens * interval / fill_rate;
        if (period < CFS_PERIOD_MIN_US)
                period = CFS_PERIOD_MIN_US;
        if (period > CFS_PERIOD_MAX_US)
                period = CFS_PERIOD_MAX_US;
        uint64_t quota = (period * fill_rate + interval / 2) / interval;
        if (quota < MS)
                quota = MS;
        uint64_t burst = tokens > quota ? tokens - quota : 0;
        if (burst > quota)
                burst = quota;
        *ret = (VsCpuBandwidth){.period_us = period, .quota_us = quota, .burst_us = burst};
        return 0;
}

#undef BAD

unsigned vs_token_bucket_weight(unsigned fill_rate, unsigned interval)
{
        if (!fill_rate || !interval)
                return 100;
        uint64_t w = ((uint64_t)fill_rate * 100 + interval / 2) / interval;
        return w < 1 ? 1 : w > 10000 ? 10000 : (unsigned)w;
}

static void fmt_size(uint64_t v, char *buf, size_t size)
{
        static const char units[] = "KMGT";
        int u = -1;
        while (v && v % 1024 == 0 && u < 3) {
                v /= 1024;
                u++;
        }
        if (u < 0)
                snprintf(buf, size, "%llu", (unsigned long long)v);
        else
                snprintf(buf, size, "%llu%c", (unsigned long long)v, units[u]);
}

static void fmt_duration(uint64_t us, char *buf, size_t size)
{
        if (us % (1000 * MS) == 0)
                snprintf(buf, size, "%llus", (unsigned long long)(us / (1000 * MS)));
        else if (us % MS == 0)
                snprintf(buf, size, "%llums", (unsigned long long)(us / MS));
        else
                snprintf(buf, size, "%lluus", (unsigned long long)us);
}

void vs_limits_write(const VsLimits *l, FILE *f)
{
        char buf[64];
        /*
         * memory and processes have defaults (vs_limits_defaults): "unlimited"
         * is written out, or a saved file would read back with the default
         * (found by fuzz_guest_file)
         */
        if (l->memory != VS_UNLIMITED)
                fmt_size(l->memory, buf, sizeof buf);
        fprintf(f, "memory = %s\n", l->memory != VS_UNLIMITED ? buf : "unlimited");
        if (l->memory_soft != VS_UNLIMITED) {
                fmt_size(l->memory_soft, buf, sizeof buf);
                fprintf(f, "memory.soft = %s\n", buf);
        }
        if (l->swap != VS_UNLIMITED) {
                fmt_size(l->swap, buf, sizeof buf);
                fprintf(f, "swap = %s\n", buf);
        }
        if (l->processes != VS_UNLIMITED)
                fprintf(f, "processes = %llu\n", (unsigned long long)l->processes);
        else
                fprintf(f, "processes = unlimited\n");
        if (l->fill_rate) {
                fprintf(f, "cpu.fill-rate = %u\ncpu.interval = %u\n", l->fill_rate, l->interval);
                if (l->tokens_max_us) {
                        fmt_duration(l->tokens_max_us, buf, sizeof buf);
                        fprintf(f, "cpu.tokens-max = %s\n", buf);
                }
                fprintf(f, "cpu.hard = %s\n", l->hard ? "yes" : "no");
        }
        if (l->cpu_limit_milli) {
                unsigned w = l->cpu_limit_milli / 1000, m = l->cpu_limit_milli % 1000;
                if (m == 0)
                        fprintf(f, "cpu.limit = %u\n", w);
                else if (m % 10 == 0)
                        fprintf(f, "cpu.limit = %u.%02u\n", w, m / 10);
                else
                        fprintf(f, "cpu.limit = %u.%03u\n", w, m);
        }
        if (l->cpu_weight)
                fprintf(f, "cpu.weight = %u\n", l->cpu_weight);
        if (l->cpuset_cpus[0])
                fprintf(f, "cpuset = %s\n", l->cpuset_cpus);
        if (l->cpuset_mems[0])
                fprintf(f, "cpuset.mems = %s\n", l->cpuset_mems);
        if (l->disk != VS_UNLIMITED) {
                fmt_size(l->disk, buf, sizeof buf);
                fprintf(f, "disk = %s\n", buf);
        }
        if (l->disk_inodes != VS_UNLIMITED)
                fprintf(f, "disk.inodes = %llu\n", (unsigned long long)l->disk_inodes);
        if (l->disk_reserved_pct)
                fprintf(f, "disk.reserved = %u%%\n", l->disk_reserved_pct);
        for (int k = 0; k < VS_IO_KINDS; k++) {
                bool first = true;
                for (int i = 0; i < l->n_io; i++) {
                        uint64_t v = l->io[i].value[k];
                        if (v == VS_UNLIMITED)
                                continue;
                        if (k == VS_IO_RBPS || k == VS_IO_WBPS)
                                fmt_size(v, buf, sizeof buf);
                        else
                                snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
                        if (first)
                                fprintf(f, "%s = %s %s", io_keys[k], l->io[i].device, buf);
                        else
                                fprintf(f, ", %s %s", l->io[i].device, buf);
                        first = false;
                }
                if (!first)
                        fputc('\n', f);
        }
        for (int i = 0; i < VS_IPC_N; i++) {
                if (l->ipc[i] == VS_UNLIMITED)
                        continue;
                if (i == VS_IPC_SHMMAX || i == VS_IPC_MSGMAX || i == VS_IPC_MSGMNB)
                        fmt_size(l->ipc[i], buf, sizeof buf);
                else
                        snprintf(buf, sizeof buf, "%llu", (unsigned long long)l->ipc[i]);
                fprintf(f, "ipc.%s = %s\n", ipc_names[i], buf);
        }
        if (l->ipc_sem[0])
                fprintf(f, "ipc.sem = %s\n", l->ipc_sem);
}

/* ---- the plan: guest file -> cgroup files --------------------------------------------- */

/* The block device a guest file names, as MAJ:MIN. */
static int resolve_device(const char *dev, unsigned *maj, unsigned *min, VsError *err)
{
        char end;
        if (dev[0] != '/') {
                if (sscanf(dev, "%u:%u%c", maj, min, &end) != 2)
                        return vs_error_input(err, "\"%s\" is not a block device", dev);
                return 0;
        }
        struct stat st;
        if (stat(dev, &st) < 0)
                return vs_error(err, errno, "%s", dev);
        if (!S_ISBLK(st.st_mode))
                return vs_error_input(err, "%s is not a block device", dev);
        *maj = major(st.st_rdev);
        *min = minor(st.st_rdev);
        return 0;
}

bool vs_limits_bandwidth(const VsLimits *l, VsCpuBandwidth *bw)
{
        char msg[160];
        if (l->fill_rate && l->hard)
                return vs_token_bucket_to_cfs(l->fill_rate, l->interval, l->tokens_max_us, bw, msg,
                                              sizeof msg) == 0;
        if (l->cpu_limit_milli) {
                *bw = (VsCpuBandwidth){.period_us = VS_CG_CFS_PERIOD_US,
                                       .quota_us = VS_CG_CFS_PERIOD_US * l->cpu_limit_milli / 1000};
                return true;
        }
        return false;
}

static int plan_io(VsCgPlan *p, const VsLimits *l, const VsLimits *prev, bool v2)
{
        VsIoLimit devs[2 * VS_LIMITS_MAX_IO];
        int n = 0;
        for (int i = 0; i < l->n_io; i++)
                devs[n++] = l->io[i];
        for (int i = 0; prev && i < prev->n_io; i++) {
                bool kept = false;
                for (int j = 0; j < l->n_io; j++)
                        kept |= streq(prev->io[i].device, l->io[j].device);
                if (kept)
                        continue;
                devs[n] = prev->io[i];
                for (int k = 0; k < VS_IO_KINDS; k++)
                        devs[n].value[k] = VS_UNLIMITED;
                n++;
        }
        for (int i = 0; i < n; i++) {
                VsCgIo io = {.keys = io_keys};
                if (resolve_device(devs[i].device, &io.maj, &io.min, p->err) < 0)
                        return vs_error_prefix(p->err, "limits.io");
                memcpy(io.value, devs[i].value, sizeof io.value);
                int r = vs_cgroup_plan_io(v2, p, &io);
                if (r < 0)
                        return r;
        }
        return 0;
}

/*
 * The limits that are one value in one file: guest-file key, controller,
 * unit (each backend names the file).  The others (swap, the CPU bandwidth
 * and weight, I/O) are computed by the backends.
 */
typedef struct Simple {
        const char *key, *ctrl;
        enum { U_BYTES, U_COUNT, U_LIST } unit;
        size_t off;
} Simple;

static const Simple simple[] = {
    {"limits.memory", "memory", U_BYTES, offsetof(VsLimits, memory)},
    {"limits.memory.soft", "memory", U_BYTES, offsetof(VsLimits, memory_soft)},
    {"limits.processes", "pids", U_COUNT, offsetof(VsLimits, processes)},
    {"limits.cpuset", "cpuset", U_LIST, offsetof(VsLimits, cpuset_cpus)},
    {"limits.cpuset.mems", "cpuset", U_LIST, offsetof(VsLimits, cpuset_mems)},
};

/* One row: its value if set, else (with @all) what lifts it. */
static int plan_simple(VsCgPlan *p, const VsLimits *l, bool v2, bool all, const Simple *s)
{
        const char *lift = NULL;
        const char *file = vs_cgroup_limit_file(v2, s->key, &lift);
        const char *field = (const char *)l + s->off;
        if (!file)
                return vs_error(p->err, ENOTSUP, "%s: no cgroup file for it", s->key);
        if (s->unit == U_LIST) {
                if (!field[0] && !all)
                        return 0;
                return vs_cgroup_plan_add(p, s->ctrl, file, s->key, !field[0], "%s", field);
        }
        uint64_t v = *(const uint64_t *)(const void *)field;
        if (v != VS_UNLIMITED)
                return vs_cgroup_plan_add(p, s->ctrl, file, s->key, false, "%llu",
                                          (unsigned long long)v);
        return all ? vs_cgroup_plan_add(p, s->ctrl, file, s->key, true, "%s", lift) : 0;
}

int vs_limits_plan(const VsLimits *l, const VsLimits *prev, bool v2, bool all, VsCgSetting *out,
                   int max, VsError *err)
{
        VsCgPlan p = {.out = out, .max = max, .err = err};
        VsCpuBandwidth bw;
        VsCgCpu cpu = {
            .bandwidth = vs_limits_bandwidth(l, &bw),
            .bandwidth_key = l->fill_rate ? "limits.cpu.fill-rate" : "limits.cpu.limit",
            .weight = l->cpu_weight              ? l->cpu_weight
                      : l->fill_rate && !l->hard ? vs_token_bucket_weight(l->fill_rate, l->interval)
                                                 : 0,
            .weight_key = l->cpu_weight ? "limits.cpu.weight" : "limits.cpu.fill-rate",
        };
        if (cpu.bandwidth) {
                cpu.period_us = bw.period_us;
                cpu.quota_us = bw.quota_us;
                cpu.burst_us = bw.burst_us;
        }
        int r;
        if ((r = plan_simple(&p, l, v2, all, &simple[0])) < 0 || /* memory */
            (r = vs_cgroup_plan_swap(v2, &p, l->memory, l->swap, all)) < 0 ||
            (r = plan_simple(&p, l, v2, all, &simple[1])) < 0 || /* memory.soft */
            (r = plan_simple(&p, l, v2, all, &simple[2])) < 0 || /* processes */
            (r = vs_cgroup_plan_cpu(v2, &p, &cpu, all)) < 0 ||   /* bandwidth, weight */
            (r = plan_simple(&p, l, v2, all, &simple[3])) < 0 || /* cpuset ("": the parent's) */
            (r = plan_simple(&p, l, v2, all, &simple[4])) < 0 || (r = plan_io(&p, l, prev, v2)) < 0)
                return r;
        return p.n;
}

/* ---- writing the plan -------------------------------------------------------------- */

int vs_limits_apply(const VsCgroup *cg, const VsLimits *l, const VsLimits *prev, bool all,
                    VsError *err)
{
        VsCgSetting v1[VS_LIMITS_MAX_SET], v2[VS_LIMITS_MAX_SET];
        int n1 = vs_limits_plan(l, prev, false, all, v1, VS_LIMITS_MAX_SET, err);
        if (n1 < 0)
                return n1;
        int n2 = vs_limits_plan(l, prev, true, all, v2, VS_LIMITS_MAX_SET, err);
        if (n2 < 0)
                return n2;
        static const char *const ctrls[] = {"memory", "pids", "cpu", "cpuset", "io"};
        for (size_t c = 0; c < ARRAY_SIZE(ctrls); c++) {
                bool is_v2 = false;
                if (!vs_cgroup_controller(cg, ctrls[c], &is_v2))
                        is_v2 = false;
                const VsCgSetting *set = is_v2 ? v2 : v1;
                int n = is_v2 ? n2 : n1;
                VsCgSetting mine[VS_LIMITS_MAX_SET];
                int k = 0;
                for (int j = 0; j < n; j++)
                        if (streq(set[j].controller, ctrls[c]))
                                mine[k++] = set[j];
                if (k == 0)
                        continue; /* nothing to write: no need to look for it */
                int r = vs_cgroup_write_limits(cg, ctrls[c], mine, k, err);
                if (r == -ENOENT) {
                        for (int j = 0; j < k; j++)
                                if (!mine[j].lift)
                                        return vs_error(err, ENOTSUP,
                                                        "%s: no %s controller for this guest's "
                                                        "cgroup (is it enabled on this host?)",
                                                        mine[j].key, ctrls[c]);
                        continue;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

int vs_limits_apply_ipc(const VsLimits *l, VsError *err)
{
        char path[64], val[64];
        for (int i = 0; i < VS_IPC_N; i++) {
                if (l->ipc[i] == VS_UNLIMITED)
                        continue;
                snprintf(path, sizeof path, "/proc/sys/kernel/%s", ipc_names[i]);
                snprintf(val, sizeof val, "%llu", (unsigned long long)l->ipc[i]);
                int r = vs_write_file_at(AT_FDCWD, path, val);
                if (r < 0)
                        return vs_error(err, r, "limits.ipc.%s: write %s", ipc_names[i], path);
        }
        if (l->ipc_sem[0]) {
                int r = vs_write_file_at(AT_FDCWD, "/proc/sys/kernel/sem", l->ipc_sem);
                if (r < 0)
                        return vs_error(err, r, "limits.ipc.sem: write /proc/sys/kernel/sem");
        }
        return 0;
}
