/* A guest's /proc views from its cgroup's numbers and the host's files (views.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>

#include "../../src/lib/views.h"

#define MIB (1024ULL * 1024)

static const char host_meminfo[] = "MemTotal:       24683548 kB\n"
                                   "MemFree:        24177720 kB\n"
                                   "MemAvailable:   24272976 kB\n"
                                   "Buffers:            1000 kB\n"
                                   "Cached:           200000 kB\n"
                                   "SwapTotal:       2097148 kB\n"
                                   "SwapFree:        2097148 kB\n"
                                   "HugePages_Total:       0\n"
                                   "Hugepagesize:       2048 kB\n";

static const char host_cpuinfo[] =
    "processor\t: 0\nvendor_id\t: X\nsiblings\t: 4\ncpu cores\t: 4\n\n"
    "processor\t: 1\nvendor_id\t: X\nsiblings\t: 4\ncpu cores\t: 4\n\n"
    "processor\t: 2\nvendor_id\t: X\nsiblings\t: 4\ncpu cores\t: 4\n\n"
    "processor\t: 3\nvendor_id\t: X\nsiblings\t: 4\ncpu cores\t: 4\n\n";

static VsViewState guest(void)
{
        VsViewState s;
        memset(&s, 0, sizeof s);
        memset(&s.cg, 0xff, sizeof s.cg);
        s.cg.cpus[0] = '\0';
        s.cg.n_dev = 0;
        s.cg.mem_max = 256 * MIB;
        s.cg.mem_current = 56 * MIB;
        s.cg.swap_max = 0;
        s.cg.swap_current = 0;
        s.cg.file = 20 * MIB;
        s.cg.active_file = 8 * MIB;
        s.cg.inactive_file = 12 * MIB;
        s.cg.slab_reclaimable = 2 * MIB;
        s.cg.anon = 30 * MIB;
        s.cg.shmem = 1 * MIB;
        return s;
}

static unsigned long long value(const char *text, const char *key)
{
        char k[64];
        snprintf(k, sizeof k, "\n%s:", key);
        const char *p = strstr(text, k);
        if (!p && strncmp(text, k + 1, strlen(k + 1)) == 0)
                p = text - 1;
        assert_non_null(p);
        return strtoull(p + strlen(k), NULL, 10);
}

static void meminfo_is_the_guests(void **state)
{
        (void)state;
        VsViewState s = guest();
        char *m = vs_view_make(VS_VIEW_MEMINFO, &s, host_meminfo, 0, 0);
        assert_non_null(m);
        assert_int_equal(value(m, "MemTotal"), 262144);
        assert_int_equal(value(m, "MemFree"), 200 * 1024);
        /* free plus its reclaimable page cache and slab: not MemFree again */
        assert_int_equal(value(m, "MemAvailable"), (200 + 8 + 12 + 2) * 1024);
        assert_int_equal(value(m, "Cached"), 20 * 1024);
        assert_int_equal(value(m, "Buffers"), 0);
        assert_int_equal(value(m, "SwapTotal"), 0); /* swap = 0: none, whatever the host has */
        assert_int_equal(value(m, "SwapFree"), 0);
        /* what it cannot know stays the host's, in the kernel's layout */
        assert_non_null(strstr(m, "HugePages_Total:       0\n"));
        assert_non_null(strstr(m, "MemTotal:         262144 kB\n"));
        free(m);

        /* no limit: the host's memory, its own use; swap without a limit: the host's */
        s.cg.mem_max = VS_UNLIMITED;
        s.cg.swap_max = VS_UNLIMITED;
        m = vs_view_make(VS_VIEW_MEMINFO, &s, host_meminfo, 0, 0);
        assert_int_equal(value(m, "MemTotal"), 24683548);
        assert_int_equal(value(m, "MemFree"), 24683548 - 56 * 1024);
        assert_int_equal(value(m, "SwapTotal"), 2097148);
        free(m);

        /* usage above the limit (a lowered limit, reclaim pending): never negative */
        s = guest();
        s.cg.mem_current = 300 * MIB;
        m = vs_view_make(VS_VIEW_MEMINFO, &s, host_meminfo, 0, 0);
        assert_int_equal(value(m, "MemFree"), 0);
        assert_true(value(m, "MemAvailable") <= value(m, "MemTotal"));
        free(m);
}

static void sysinfo_agrees_with_meminfo(void **state)
{
        (void)state;
        VsViewState s = guest();
        s.started_ns = 1000000000ULL;
        s.load[0] = 1 << VS_VIEW_FSHIFT; /* 1.00 */
        s.threads = 7;
        struct sysinfo si;
        vs_view_sysinfo(&s, host_meminfo, 61000000000ULL, &si);
        assert_int_equal(si.uptime, 60);
        assert_true(si.totalram == 256 * MIB && si.freeram == 200 * MIB && si.mem_unit == 1);
        assert_true(si.loads[0] == 65536 && si.procs == 7 && si.totalswap == 0);
}

static void cpus_follow_cpuset_and_limit(void **state)
{
        (void)state;
        VsViewState s = guest();
        bool set[VS_VIEW_MAX_CPUS];
        snprintf(s.cg.cpus, sizeof s.cg.cpus, "1-3");
        assert_int_equal(vs_view_cpus(&s.cg, 0, set), 3);
        assert_true(!set[0] && set[1] && set[2] && set[3]);
        /* 1.5 CPUs of 3: two, from the rotate-th on, wrapping */
        s.cg.cpu_quota_us = 150000;
        s.cg.cpu_period_us = 100000;
        assert_int_equal(vs_view_cpus(&s.cg, 2, set), 2);
        assert_true(set[1] && !set[2] && set[3]);
        /* half a CPU: one */
        s.cg.cpu_quota_us = 50000;
        assert_int_equal(vs_view_cpus(&s.cg, 0, set), 1);

        char *c = vs_view_make(VS_VIEW_CPUINFO, &s, host_cpuinfo, 0, 0);
        assert_non_null(strstr(c, "processor\t: 0\n"));
        assert_null(strstr(c, "processor\t: 1\n"));
        assert_non_null(strstr(c, "siblings\t: 1\n"));
        assert_non_null(strstr(c, "cpu cores\t: 1\n"));
        free(c);
        c = vs_view_make(VS_VIEW_CPU_ONLINE, &s, NULL, 0, 0);
        assert_string_equal(c, "0\n");
        free(c);
        s.cg.cpu_quota_us = VS_UNLIMITED;
        c = vs_view_make(VS_VIEW_CPU_ONLINE, &s, NULL, 0, 0);
        assert_string_equal(c, "0-2\n");
        free(c);
        c = vs_view_make(VS_VIEW_STAT, &s, NULL, 0, 0);
        assert_non_null(strstr(c, "cpu2 "));
        assert_null(strstr(c, "cpu3 "));
        free(c);
}

static void load_decays_like_the_kernel(void **state)
{
        (void)state;
        VsViewState s = guest();
        /* one busy task for a minute: 1 - 1/e of it, as the kernel's 1-minute average */
        for (int i = 0; i < 12; i++)
                vs_view_load_sample(&s, 1);
        double one = (double)s.load[0] / (1 << VS_VIEW_FSHIFT);
        assert_true(one > 0.60 && one < 0.66);
        assert_true(s.load[1] < s.load[0] && s.load[2] < s.load[1]);
        s.running = 1;
        s.threads = 3;
        s.lastpid = 42;
        char *l = vs_view_make(VS_VIEW_LOADAVG, &s, NULL, 0, 0);
        assert_int_equal(strncmp(l, "0.6", 3), 0);
        assert_non_null(strstr(l, " 1/3 42\n"));
        free(l);
        /* and back down when idle */
        for (int i = 0; i < 120; i++)
                vs_view_load_sample(&s, 0);
        assert_true(s.load[0] < (1 << VS_VIEW_FSHIFT) / 100);
}

static void version_names_the_guests_kernel(void **state)
{
        (void)state;
        struct utsname u;
        assert_int_equal(uname(&u), 0);
        char host[512];
        snprintf(host, sizeof host, "Linux version %s (b@h) (gcc) %s\n", u.release, u.version);
        VsViewState s = guest();
        char *v = vs_view_make(VS_VIEW_VERSION, &s, host, 0, 0);
        assert_string_equal(v, host); /* no keys: the host's */
        free(v);
        snprintf(s.release, sizeof s.release, "2.6.32-vs");
        snprintf(s.version, sizeof s.version, "#1 VServer");
        v = vs_view_make(VS_VIEW_VERSION, &s, host, 0, 0);
        assert_string_equal(v, "Linux version 2.6.32-vs (b@h) (gcc) #1 VServer\n");
        free(v);
        v = vs_view_make(VS_VIEW_OSRELEASE, &s, NULL, 0, 0);
        assert_string_equal(v, "2.6.32-vs\n");
        free(v);
}

static void diskstats_are_its_devices(void **state)
{
        (void)state;
        VsViewState s = guest();
        s.cg.n_dev = 1;
        s.cg.dev[0].maj = 7;
        s.cg.dev[0].min = 0;
        s.cg.dev[0].rbytes = 1024 * 512;
        s.cg.dev[0].rios = 10;
        s.cg.dev[0].wbytes = 0;
        s.cg.dev[0].wios = 0;
        char *d = vs_view_make(VS_VIEW_DISKSTATS, &s,
                               "   7       0 loop0 1 2 3 4 5 6 7 8 9 10 11\n"
                               "   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n",
                               0, 0);
        assert_non_null(strstr(d, "loop0 10 0 1024 0 0 0 0 0"));
        assert_null(strstr(d, "sda"));
        free(d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(meminfo_is_the_guests),
            cmocka_unit_test(sysinfo_agrees_with_meminfo),
            cmocka_unit_test(cpus_follow_cpuset_and_limit),
            cmocka_unit_test(load_decays_like_the_kernel),
            cmocka_unit_test(version_names_the_guests_kernel),
            cmocka_unit_test(diskstats_are_its_devices),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
