/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A guest's own /proc files, made from its cgroup and the host's files. */
#include "views.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>

#include "parse.h"
#include "util.h"

const VsViewDef vs_view_files[VS_VIEW_N] = {
    [VS_VIEW_MEMINFO] = {"meminfo", "/proc/meminfo", "/proc/meminfo", false, VS_CG_VIEW_MEMORY},
    [VS_VIEW_CPUINFO] = {"cpuinfo", "/proc/cpuinfo", "/proc/cpuinfo", false, VS_CG_VIEW_CPU},
    [VS_VIEW_STAT] = {"stat", "/proc/stat", NULL, false, VS_CG_VIEW_CPU},
    [VS_VIEW_LOADAVG] = {"loadavg", "/proc/loadavg", NULL, false, 0},
    [VS_VIEW_SWAPS] = {"swaps", "/proc/swaps", "/proc/meminfo", false, VS_CG_VIEW_MEMORY},
    [VS_VIEW_DISKSTATS] = {"diskstats", "/proc/diskstats", "/proc/diskstats", false, VS_CG_VIEW_IO},
    [VS_VIEW_CPU_ONLINE] = {"cpu-online", "/sys/devices/system/cpu/online", NULL, false,
                            VS_CG_VIEW_CPU},
    [VS_VIEW_CPU_POSSIBLE] = {"cpu-possible", "/sys/devices/system/cpu/possible", NULL, false,
                              VS_CG_VIEW_CPU},
    [VS_VIEW_CPU_PRESENT] = {"cpu-present", "/sys/devices/system/cpu/present", NULL, false,
                             VS_CG_VIEW_CPU},
    [VS_VIEW_VERSION] = {"version", "/proc/version", "/proc/version", true, 0},
    [VS_VIEW_OSRELEASE] = {"osrelease", "/proc/sys/kernel/osrelease", NULL, true, 0},
    [VS_VIEW_KVERSION] = {"kversion", "/proc/sys/kernel/version", NULL, true, 0},
};

#define KB(x) ((unsigned long long)((x) / 1024))

static uint64_t z(uint64_t v)
{
        return v == VS_CG_NONE ? 0 : v;
}

int vs_view_cpus(const VsCgView *cg, unsigned rotate, bool set[VS_VIEW_MAX_CPUS])
{
        char online[256] = "";
        const char *list = cg->cpus;
        memset(set, 0, VS_VIEW_MAX_CPUS * sizeof *set);
        if (!list[0]) {
                if (vs_read_file_at(AT_FDCWD, "/sys/devices/system/cpu/online", online,
                                    sizeof online) < 0)
                        snprintf(online, sizeof online, "0");
                online[strcspn(online, "\n")] = '\0';
                list = online;
        }
        if (!vs_cpulist_fill(list, set, VS_VIEW_MAX_CPUS))
                set[0] = true;
        int count = 0;
        for (int c = 0; c < VS_VIEW_MAX_CPUS; c++)
                count += set[c];
        if (cg->cpu_quota_us == VS_UNLIMITED || cg->cpu_quota_us == VS_CG_NONE ||
            cg->cpu_period_us == VS_CG_NONE || cg->cpu_period_us == 0)
                return count;
        uint64_t want = (cg->cpu_quota_us + cg->cpu_period_us - 1) / cg->cpu_period_us;
        if (want < 1)
                want = 1;
        if (want >= (uint64_t)count)
                return count;
        /* keep @want of them, starting at the rotate-th: guests spread over the CPUs */
        int cpus[VS_VIEW_MAX_CPUS] = {0}, n = 0;
        for (int c = 0; c < VS_VIEW_MAX_CPUS; c++)
                if (set[c])
                        cpus[n++] = c;
        if (n == 0)
                return count;
        memset(set, 0, VS_VIEW_MAX_CPUS * sizeof *set);
        for (uint64_t i = 0; i < want; i++)
                set[cpus[(rotate + i) % (unsigned)n]] = true;
        return (int)want;
}

void vs_view_load_sample(VsViewState *s, unsigned active)
{
        /* the kernel's exponents for 5 s samples: 1/exp(5s/1min), 5 min, 15 min */
        static const unsigned long exp[3] = {1884, 2014, 2037};
        const unsigned long fixed1 = 1UL << VS_VIEW_FSHIFT;
        unsigned long a = (unsigned long)active * fixed1;
        for (int i = 0; i < 3; i++) {
                unsigned long l = s->load[i] * exp[i] + a * (fixed1 - exp[i]);
                if (a >= s->load[i])
                        l += fixed1 - 1;
                s->load[i] = l >> VS_VIEW_FSHIFT;
        }
}

/* The value of "Key:" in a /proc/meminfo text, bytes; 0 if missing. */
static uint64_t meminfo_value(const char *text, const char *key)
{
        size_t n = strlen(key);
        for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
                if (strncmp(l, key, n) == 0 && l[n] == ':')
                        return strtoull(l + n + 1, NULL, 10) * 1024;
        return 0;
}

static uint64_t swap_total(const VsViewState *s, const char *host)
{
        uint64_t h = meminfo_value(host, "SwapTotal");
        return s->cg.swap_max == VS_UNLIMITED || s->cg.swap_max == VS_CG_NONE || s->cg.swap_max > h
                   ? h
                   : s->cg.swap_max;
}

/* MemTotal and MemFree as the guest has them */
static void mem_total_free(const VsCgView *v, const char *host, uint64_t *total, uint64_t *freeb)
{
        *total = meminfo_value(host, "MemTotal");
        if (v->mem_max != VS_UNLIMITED && v->mem_max != VS_CG_NONE && v->mem_max < *total)
                *total = v->mem_max;
        *freeb = *total > z(v->mem_current) ? *total - z(v->mem_current) : 0;
}

void vs_view_sysinfo(const VsViewState *s, const char *host, uint64_t boot_ns, struct sysinfo *out)
{
        uint64_t total, freeb, stotal = swap_total(s, host);
        mem_total_free(&s->cg, host, &total, &freeb);
        memset(out, 0, sizeof *out);
        out->uptime =
            (long)(boot_ns > s->started_ns ? (boot_ns - s->started_ns) / 1000000000ULL : 0);
        /* the kernel's fixed point has 11 bits, sysinfo's 16 */
        for (int i = 0; i < 3; i++)
                out->loads[i] = s->load[i] << (16 - VS_VIEW_FSHIFT);
        out->totalram = total;
        out->freeram = freeb;
        out->sharedram = z(s->cg.shmem);
        out->totalswap = stotal;
        out->freeswap = stotal > z(s->cg.swap_current) ? stotal - z(s->cg.swap_current) : 0;
        out->procs = (unsigned short)(s->threads > 65535 ? 65535 : s->threads ? s->threads : 1);
        out->mem_unit = 1;
}

static void meminfo(FILE *f, const VsViewState *s, const char *host)
{
        const VsCgView *v = &s->cg;
        if (v->mem_current == VS_CG_NONE) { /* no memory controller: nothing of its own */
                fputs(host, f);
                return;
        }
        uint64_t total, freeb;
        mem_total_free(v, host, &total, &freeb);
        uint64_t avail = freeb + z(v->active_file) + z(v->inactive_file) + z(v->slab_reclaimable);
        if (avail > total)
                avail = total;
        uint64_t stotal = swap_total(s, host);
        uint64_t sfree = stotal > z(v->swap_current) ? stotal - z(v->swap_current) : 0;
        const struct {
                const char *key;
                uint64_t value;
        } mine[] = {
            {"MemTotal", total},
            {"MemFree", freeb},
            {"MemAvailable", avail},
            {"Buffers", 0},
            {"Cached", z(v->file)},
            {"SwapCached", 0},
            {"Active", z(v->active_anon) + z(v->active_file)},
            {"Inactive", z(v->inactive_anon) + z(v->inactive_file)},
            {"Active(anon)", z(v->active_anon)},
            {"Inactive(anon)", z(v->inactive_anon)},
            {"Active(file)", z(v->active_file)},
            {"Inactive(file)", z(v->inactive_file)},
            {"Unevictable", z(v->unevictable)},
            {"Mlocked", 0},
            {"SwapTotal", stotal},
            {"SwapFree", sfree},
            {"Zswap", 0},
            {"Zswapped", 0},
            {"Dirty", z(v->dirty)},
            {"Writeback", z(v->writeback)},
            {"AnonPages", z(v->anon)},
            {"Mapped", z(v->mapped)},
            {"Shmem", z(v->shmem)},
            {"KReclaimable", z(v->slab_reclaimable)},
            {"Slab", z(v->slab_reclaimable) + z(v->slab_unreclaimable)},
            {"SReclaimable", z(v->slab_reclaimable)},
            {"SUnreclaim", z(v->slab_unreclaimable)},
            {"KernelStack", z(v->kernel_stack)},
            {"PageTables", z(v->pagetables)},
        };
        for (const char *l = host; l && *l;) {
                const char *eol = strchr(l, '\n');
                size_t len = eol ? (size_t)(eol - l) : strlen(l);
                const char *colon = memchr(l, ':', len);
                bool done = false;
                for (size_t k = 0; colon && !done && k < ARRAY_SIZE(mine); k++) {
                        if (strlen(mine[k].key) != (size_t)(colon - l) ||
                            strncmp(l, mine[k].key, (size_t)(colon - l)) != 0)
                                continue;
                        char name[32];
                        snprintf(name, sizeof name, "%s:", mine[k].key);
                        fprintf(f, "%-16s%8llu kB\n", name, KB(mine[k].value));
                        done = true;
                }
                if (!done)
                        fprintf(f, "%.*s\n", (int)len, l);
                l = eol ? eol + 1 : NULL;
        }
}

/* One CPU's block, renumbered @cpu, its package's CPU counts as the guest's @n. */
static void cpu_block(FILE *f, const char *b, size_t len, int cpu, int n)
{
        const char *end = b + len;
        for (const char *l = b; l < end;) {
                const char *eol = memchr(l, '\n', (size_t)(end - l));
                size_t ll = eol ? (size_t)(eol - l) + 1 : (size_t)(end - l);
                if (strncmp(l, "processor", 9) == 0)
                        fprintf(f, "processor\t: %d\n", cpu);
                else if (strncmp(l, "siblings\t", 9) == 0)
                        fprintf(f, "siblings\t: %d\n", n);
                else if (strncmp(l, "cpu cores\t", 10) == 0)
                        fprintf(f, "cpu cores\t: %d\n", n);
                else
                        fprintf(f, "%.*s", (int)ll, l);
                l += ll;
        }
}

static void cpuinfo(FILE *f, const VsViewState *s, const char *host)
{
        bool set[VS_VIEW_MAX_CPUS];
        int count = vs_view_cpus(&s->cg, s->rotate, set);
        int next = 0;
        /* blocks separated by blank lines; a "processor : N" block is CPU N's */
        for (const char *b = host; b && *b;) {
                const char *end = strstr(b, "\n\n");
                size_t len = end ? (size_t)(end - b) + 2 : strlen(b);
                unsigned cpu;
                const char *nl = memchr(b, '\n', len);
                if (strncmp(b, "processor", 9) == 0 && nl && sscanf(b + 9, " : %u", &cpu) == 1) {
                        if (cpu < VS_VIEW_MAX_CPUS && set[cpu])
                                cpu_block(f, b, len, next++, count);
                } else {
                        fprintf(f, "%.*s", (int)len, b);
                }
                b = end ? end + 2 : NULL;
        }
}

static uint64_t uptime_ns(const VsViewState *s, uint64_t boot_ns)
{
        return boot_ns > s->started_ns ? boot_ns - s->started_ns : 0;
}

static void stat_file(FILE *f, const VsViewState *s, uint64_t boot_ns, time_t real)
{
        bool set[VS_VIEW_MAX_CPUS];
        int n = vs_view_cpus(&s->cg, s->rotate, set);
        if (n < 1)
                n = 1;
        /* USER_HZ ticks (10 ms); the kernel keeps the guest's time per CPU only on v1 */
        unsigned long long up = uptime_ns(s, boot_ns) / 10000000ULL;
        unsigned long long user = z(s->cg.cpu_user_us) / 10000,
                           sys = z(s->cg.cpu_system_us) / 10000;
        unsigned long long cu = user / (unsigned)n, cs = sys / (unsigned)n;
        unsigned long long idle = up > cu + cs ? up - cu - cs : 0;
        fprintf(f, "cpu  %llu 0 %llu %llu 0 0 0 0 0 0\n", user, sys, idle * (unsigned)n);
        for (int i = 0; i < n; i++)
                fprintf(f, "cpu%d %llu 0 %llu %llu 0 0 0 0 0 0\n", i, cu, cs, idle);
        fprintf(f, "intr 0\nctxt 0\nbtime %lld\nprocesses %u\nprocs_running %u\nprocs_blocked %u\n",
                (long long)(real - (time_t)(uptime_ns(s, boot_ns) / 1000000000ULL)), s->lastpid,
                s->running ? s->running : 1, s->blocked);
        fprintf(f, "softirq 0 0 0 0 0 0 0 0 0 0 0\n");
}

static void loadavg(FILE *f, const VsViewState *s)
{
        const unsigned long fixed1 = 1UL << VS_VIEW_FSHIFT;
        unsigned long l[3];
        for (int i = 0; i < 3; i++)
                l[i] = s->load[i] + fixed1 / 200; /* rounded as the kernel does */
#define LI(x) ((x) >> VS_VIEW_FSHIFT)
#define LF(x) LI(((x) & (fixed1 - 1)) * 100)
        fprintf(f, "%lu.%02lu %lu.%02lu %lu.%02lu %u/%u %u\n", LI(l[0]), LF(l[0]), LI(l[1]),
                LF(l[1]), LI(l[2]), LF(l[2]), s->running ? s->running : 1,
                s->threads ? s->threads : 1, s->lastpid);
#undef LI
#undef LF
}

static void swaps(FILE *f, const VsViewState *s, const char *host)
{
        fputs("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n", f);
        uint64_t total = swap_total(s, host);
        uint64_t used = z(s->cg.swap_current) < total ? z(s->cg.swap_current) : total;
        if (total)
                fprintf(f, "none\t\t\t\t\tvirtual\t\t%llu\t\t%llu\t\t-2\n", KB(total), KB(used));
}

static void diskstats(FILE *f, const VsViewState *s, const char *host)
{
        for (const char *l = host; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
                unsigned maj, min;
                char name[64];
                if (sscanf(l, "%u %u %63s", &maj, &min, name) != 3)
                        continue;
                for (int i = 0; i < s->cg.n_dev; i++) {
                        if (s->cg.dev[i].maj != maj || s->cg.dev[i].min != min)
                                continue;
                        fprintf(f, "%4u %7u %s %llu 0 %llu 0 %llu 0 %llu 0 0 0 0 0 0 0 0 0 0\n",
                                maj, min, name, (unsigned long long)s->cg.dev[i].rios,
                                (unsigned long long)s->cg.dev[i].rbytes / 512,
                                (unsigned long long)s->cg.dev[i].wios,
                                (unsigned long long)s->cg.dev[i].wbytes / 512);
                }
        }
}

/* /proc/version with the guest's release and version in place of the host's */
static void version(FILE *f, const VsViewState *s, const char *host)
{
        struct utsname u;
        if (uname(&u) < 0) {
                fputs(host, f);
                return;
        }
        const char *rel = strstr(host, u.release);
        const char *ver = NULL;
        for (const char *p = host; (p = strstr(p, u.version)); p++)
                ver = p; /* the last one */
        const char *p = host;
        if (rel && s->release[0]) {
                fprintf(f, "%.*s%s", (int)(rel - p), p, s->release);
                p = rel + strlen(u.release);
        }
        if (ver && ver >= p && s->version[0]) {
                fprintf(f, "%.*s%s", (int)(ver - p), p, s->version);
                p = ver + strlen(u.version);
        }
        fputs(p, f);
}

char *vs_view_make(VsViewFile file, const VsViewState *s, const char *host, uint64_t boot_ns,
                   time_t real)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return NULL;
        if (!host)
                host = "";
        struct utsname u;
        bool set[VS_VIEW_MAX_CPUS];
        int n;
        switch (file) {
        case VS_VIEW_MEMINFO:
                meminfo(f, s, host);
                break;
        case VS_VIEW_CPUINFO:
                cpuinfo(f, s, host);
                break;
        case VS_VIEW_STAT:
                stat_file(f, s, boot_ns, real);
                break;
        case VS_VIEW_LOADAVG:
                loadavg(f, s);
                break;
        case VS_VIEW_SWAPS:
                swaps(f, s, host);
                break;
        case VS_VIEW_DISKSTATS:
                diskstats(f, s, host);
                break;
        case VS_VIEW_CPU_ONLINE:
        case VS_VIEW_CPU_POSSIBLE:
        case VS_VIEW_CPU_PRESENT:
                n = vs_view_cpus(&s->cg, s->rotate, set);
                if (n > 1)
                        fprintf(f, "0-%d\n", n - 1);
                else
                        fputs("0\n", f);
                break;
        case VS_VIEW_VERSION:
                version(f, s, host);
                break;
        case VS_VIEW_OSRELEASE:
        case VS_VIEW_KVERSION:
                if (uname(&u) < 0)
                        u = (struct utsname){0};
                if (file == VS_VIEW_OSRELEASE)
                        fprintf(f, "%s\n", s->release[0] ? s->release : u.release);
                else
                        fprintf(f, "%s\n", s->version[0] ? s->version : u.version);
                break;
        case VS_VIEW_N:
                break;
        }
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        return text;
}
