/* The token bucket arithmetic, limit keys, the v1/v2 plans, the stats parsers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/lib/config.h"
#include "../../src/lib/limits.h"
#include "../../src/lib/stats.h"
#include "../../src/lib/util.h"

static void bucket(void **state)
{
        (void)state;
        VsCpuBandwidth bw;
        char msg[200];
        /* VServer's defaults: 1 token every 4 ticks, a bucket of 125 */
        assert_int_equal(vs_token_bucket_to_cfs(1, 4, 0, &bw, msg, sizeof msg), 0);
        assert_true(bw.period_us == 500000 && bw.quota_us == 125000 && bw.burst_us == 0);
        /* a bigger bucket: the period stops at 1 s, the rest is burst */
        assert_int_equal(vs_token_bucket_to_cfs(1, 4, 500000, &bw, msg, sizeof msg), 0);
        assert_true(bw.period_us == 1000000 && bw.quota_us == 250000 && bw.burst_us == 250000);
        /* the wiki's 7/32: 21.9% of a CPU */
        assert_int_equal(vs_token_bucket_to_cfs(7, 32, 0, &bw, msg, sizeof msg), 0);
        assert_true(bw.period_us == 571428);
        assert_true(bw.quota_us == 125000);
        /* more than one CPU */
        assert_int_equal(vs_token_bucket_to_cfs(3, 1, 300000, &bw, msg, sizeof msg), 0);
        assert_true(bw.period_us == 100000 && bw.quota_us == 300000 && bw.burst_us == 0);
        /* a tiny share: the period is capped, burst at most the quota */
        assert_int_equal(vs_token_bucket_to_cfs(1, 1000, 0, &bw, msg, sizeof msg), 0);
        assert_true(bw.period_us == 1000000 && bw.quota_us == 1000 && bw.burst_us == 1000);
        /* a small bucket on a fast rate: the period stops at 1 ms */
        assert_int_equal(vs_token_bucket_to_cfs(4, 1, 1000, &bw, msg, sizeof msg), 0);
        assert_true(bw.period_us == 1000 && bw.quota_us == 4000 && bw.burst_us == 0);
        /* the ratio is what counts */
        VsCpuBandwidth a, b;
        assert_int_equal(vs_token_bucket_to_cfs(2, 8, 0, &a, msg, sizeof msg), 0);
        assert_int_equal(vs_token_bucket_to_cfs(1, 4, 0, &b, msg, sizeof msg), 0);
        assert_memory_equal(&a, &b, sizeof a);
        /* out of range */
        assert_int_equal(vs_token_bucket_to_cfs(1, 2000, 0, &bw, msg, sizeof msg), -EINVAL);
        assert_non_null(strstr(msg, "below 1/1000"));
        assert_int_equal(vs_token_bucket_to_cfs(2000, 1, 0, &bw, msg, sizeof msg), -EINVAL);
        assert_int_equal(vs_token_bucket_to_cfs(0, 4, 0, &bw, msg, sizeof msg), -EINVAL);
        /* weights */
        assert_int_equal(vs_token_bucket_weight(1, 4), 25);
        assert_int_equal(vs_token_bucket_weight(3, 1), 300);
        assert_int_equal(vs_token_bucket_weight(1, 1000), 1);
        assert_int_equal(vs_token_bucket_weight(1000, 1), 10000);
        assert_true(vs_cgroup_weight_to_shares(100) == 1024);
        assert_true(vs_cgroup_weight_to_shares(300) == 3072);
        assert_true(vs_cgroup_weight_to_shares(1) == 10);
        assert_true(vs_cgroup_weight_to_shares(10000) == 102400);
}

static int set(VsLimits *l, const char *k, const char *v, char *msg, size_t msz)
{
        return vs_limits_set_key(l, k, v, msg, msz);
}

static void keys(void **state)
{
        (void)state;
        VsLimits l;
        char msg[300];
        vs_limits_init(&l);
        assert_int_equal(set(&l, "memory", "512M", msg, sizeof msg), 1);
        assert_true(l.memory == 512ULL << 20);
        assert_int_equal(set(&l, "memory", "12X", msg, sizeof msg), -EINVAL);
        assert_non_null(strstr(msg, "is not a size"));
        assert_int_equal(set(&l, "memory", "100", msg, sizeof msg), -EINVAL); /* below 1M */
        assert_int_equal(set(&l, "memory", "unlimited", msg, sizeof msg), 1);
        assert_true(l.memory == VS_UNLIMITED);
        assert_int_equal(set(&l, "swap", "0", msg, sizeof msg), 1);
        assert_true(l.swap == 0);
        assert_int_equal(set(&l, "cpu.limit", "1.5", msg, sizeof msg), 1);
        assert_int_equal(l.cpu_limit_milli, 1500);
        assert_int_equal(set(&l, "cpu.limit", "0.25", msg, sizeof msg), 1);
        assert_int_equal(l.cpu_limit_milli, 250);
        assert_int_equal(set(&l, "cpu.limit", "1.2345", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "cpu.limit", "0", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "cpu.limit", ".5", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "cpu.limit", "2000", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "cpu.weight", "0", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "cpu.weight", "10001", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "cpu.tokens-max", "500ms", msg, sizeof msg), 1);
        assert_true(l.tokens_max_us == 500000);
        assert_int_equal(set(&l, "cpu.tokens-max", "125", msg, sizeof msg), 1);
        assert_true(l.tokens_max_us == 125000);
        assert_int_equal(set(&l, "cpu.tokens-max", "2s", msg, sizeof msg), 1);
        assert_int_equal(set(&l, "cpu.tokens-max", "1h", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "cpu.tokens-max", "11s", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "cpu.hard", "maybe", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "cpuset", "0-3,6", msg, sizeof msg), 1);
        assert_int_equal(set(&l, "cpuset", "3-1", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "cpuset", "0,", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "cpuset", "0;rm", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "cpuset", "all", msg, sizeof msg), 1);
        assert_string_equal(l.cpuset_cpus, "");
        assert_int_equal(set(&l, "io.write-bps", "/dev/loop0 10M, 8:0 1G", msg, sizeof msg), 1);
        assert_int_equal(l.n_io, 2);
        assert_true(l.io[0].value[VS_IO_WBPS] == 10ULL << 20);
        assert_int_equal(set(&l, "io.read-iops", "8:0 100", msg, sizeof msg), 1);
        assert_true(l.io[1].value[VS_IO_RIOPS] == 100);
        assert_int_equal(set(&l, "io.write-bps", "8:0 1G", msg, sizeof msg), 1);
        assert_int_equal(l.n_io, 1); /* loop0 has nothing left */
        assert_int_equal(set(&l, "io.write-bps", "loop0 10M", msg, sizeof msg), -EINVAL);
        assert_non_null(strstr(msg, "not a block device"));
        assert_int_equal(set(&l, "io.write-bps", "/dev/sda", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "io.write-bps", "/dev/sda 0", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "io.read-iops", "/dev/sda 1M", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "ipc.shmmax", "64M", msg, sizeof msg), 1);
        assert_true(l.ipc[VS_IPC_SHMMAX] == 64ULL << 20);
        assert_int_equal(set(&l, "ipc.msgmni", "99999999999", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "ipc.sem", "250 32000 32 128", msg, sizeof msg), 1);
        assert_int_equal(set(&l, "ipc.sem", "250 32000 32", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "ipc.sem", "250 32000 32 128 5", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "ipc.nope", "1", msg, sizeof msg), 0);
        assert_int_equal(set(&l, "nofile", "1", msg, sizeof msg), 0); /* an rlimit: not ours */
}

static void disk_keys(void **state)
{
        (void)state;
        VsLimits l;
        char msg[300];
        vs_limits_init(&l);
        assert_false(vs_limits_has_disk(&l));
        assert_int_equal(set(&l, "disk", "10G", msg, sizeof msg), 1);
        assert_true(l.disk == 10ULL << 30);
        assert_true(vs_limits_has_disk(&l));
        assert_int_equal(set(&l, "disk", "12X", msg, sizeof msg), -EINVAL);
        assert_non_null(strstr(msg, "is not a size"));
        assert_int_equal(set(&l, "disk", "1M", msg, sizeof msg), -EINVAL);
        assert_non_null(strstr(msg, "too small"));
        assert_int_equal(set(&l, "disk.inodes", "200k", msg, sizeof msg), 1);
        assert_true(l.disk_inodes == 200000);
        assert_int_equal(set(&l, "disk.inodes", "5", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "disk.inodes", "lots", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "disk.reserved", "5%", msg, sizeof msg), 1);
        assert_int_equal(l.disk_reserved_pct, 5);
        assert_int_equal(set(&l, "disk.reserved", "5", msg, sizeof msg), 1);
        assert_int_equal(set(&l, "disk.reserved", "51%", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "disk.reserved", "5%%", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "disk.reserved", "100%", msg, sizeof msg), -EINVAL);
        assert_int_equal(set(&l, "disk.reserved", "%", msg, sizeof msg), -EINVAL);
        assert_int_equal(vs_limits_check(&l, msg, sizeof msg), 0);
        assert_int_equal(set(&l, "disk", "unlimited", msg, sizeof msg), 1);
        assert_int_equal(vs_limits_check(&l, msg, sizeof msg), -EINVAL);
        assert_non_null(strstr(msg, "disk.reserved needs disk"));
}

static void checks(void **state)
{
        (void)state;
        VsLimits l;
        char msg[300];
        vs_limits_init(&l);
        assert_int_equal(vs_limits_check(&l, msg, sizeof msg), 0);
        set(&l, "cpu.fill-rate", "1", msg, sizeof msg);
        assert_int_equal(vs_limits_check(&l, msg, sizeof msg), -EINVAL);
        assert_non_null(strstr(msg, "go together"));
        set(&l, "cpu.interval", "4", msg, sizeof msg);
        assert_int_equal(vs_limits_check(&l, msg, sizeof msg), 0);
        set(&l, "cpu.hard", "yes", msg, sizeof msg);
        set(&l, "cpu.limit", "2", msg, sizeof msg);
        assert_int_equal(vs_limits_check(&l, msg, sizeof msg), -EINVAL);
        assert_non_null(strstr(msg, "keep one"));
        vs_limits_init(&l);
        set(&l, "swap", "1G", msg, sizeof msg);
        assert_int_equal(vs_limits_check(&l, msg, sizeof msg), -EINVAL);
        set(&l, "memory", "1G", msg, sizeof msg);
        assert_int_equal(vs_limits_check(&l, msg, sizeof msg), 0);
        set(&l, "memory.soft", "2G", msg, sizeof msg);
        assert_int_equal(vs_limits_check(&l, msg, sizeof msg), -EINVAL);
}

static const char *find(const VsCgSetting *s, int n, const char *file)
{
        for (int i = 0; i < n; i++)
                if (streq(s[i].file, file))
                        return s[i].value;
        return NULL;
}

static void sample(VsLimits *l)
{
        char msg[300];
        vs_limits_init(l);
        set(l, "memory", "512M", msg, sizeof msg);
        set(l, "swap", "1G", msg, sizeof msg);
        set(l, "memory.soft", "256M", msg, sizeof msg);
        set(l, "processes", "100", msg, sizeof msg);
        set(l, "cpu.fill-rate", "1", msg, sizeof msg);
        set(l, "cpu.interval", "4", msg, sizeof msg);
        set(l, "cpu.hard", "yes", msg, sizeof msg);
        set(l, "cpu.weight", "300", msg, sizeof msg);
        set(l, "cpuset", "0-1", msg, sizeof msg);
        set(l, "io.write-bps", "7:0 1M", msg, sizeof msg);
}

static void plans(void **state)
{
        (void)state;
        VsLimits l;
        VsCgSetting s[VS_LIMITS_MAX_SET];
        VsError err = {0};
        sample(&l);
        int n = vs_limits_plan(&l, NULL, true, false, s, VS_LIMITS_MAX_SET, &err);
        assert_true(n > 0);
        assert_string_equal(find(s, n, "memory.max"), "536870912");
        assert_string_equal(find(s, n, "memory.swap.max"), "1073741824");
        assert_string_equal(find(s, n, "memory.high"), "268435456");
        assert_string_equal(find(s, n, "pids.max"), "100");
        assert_string_equal(find(s, n, "cpu.max"), "125000 500000");
        assert_string_equal(find(s, n, "cpu.weight"), "300");
        assert_string_equal(find(s, n, "cpuset.cpus"), "0-1");
        assert_string_equal(find(s, n, "io.max"), "7:0 rbps=max wbps=1048576 riops=max wiops=max");
        assert_null(find(s, n, "cpuset.mems")); /* not set, not written at start */

        n = vs_limits_plan(&l, NULL, false, false, s, VS_LIMITS_MAX_SET, &err);
        assert_string_equal(find(s, n, "memory.limit_in_bytes"), "536870912");
        /* v1 counts memory and swap together */
        assert_string_equal(find(s, n, "memory.memsw.limit_in_bytes"), "1610612736");
        assert_string_equal(find(s, n, "memory.soft_limit_in_bytes"), "268435456");
        assert_string_equal(find(s, n, "cpu.cfs_period_us"), "500000");
        assert_string_equal(find(s, n, "cpu.cfs_quota_us"), "125000");
        assert_string_equal(find(s, n, "cpu.shares"), "3072");
        assert_string_equal(find(s, n, "blkio.throttle.write_bps_device"), "7:0 1048576");
        assert_string_equal(find(s, n, "blkio.throttle.read_bps_device"), "7:0 0");

        /* live, everything: unset limits are lifted */
        VsLimits none, prev = l;
        vs_limits_init(&none);
        n = vs_limits_plan(&none, &prev, true, true, s, VS_LIMITS_MAX_SET, &err);
        assert_string_equal(find(s, n, "memory.max"), "max");
        assert_string_equal(find(s, n, "pids.max"), "max");
        assert_string_equal(find(s, n, "cpu.max"), "max 100000");
        assert_string_equal(find(s, n, "cpu.weight"), "100");
        assert_string_equal(find(s, n, "cpuset.cpus"), "");
        assert_string_equal(find(s, n, "io.max"), "7:0 rbps=max wbps=max riops=max wiops=max");
        n = vs_limits_plan(&none, &prev, false, true, s, VS_LIMITS_MAX_SET, &err);
        assert_string_equal(find(s, n, "memory.limit_in_bytes"), "-1");
        assert_string_equal(find(s, n, "cpu.cfs_quota_us"), "-1");
        assert_string_equal(find(s, n, "cpu.shares"), "1024");

        /* a device path must be a block device */
        char msg[200];
        set(&l, "io.write-bps", "/dev/null 1M", msg, sizeof msg);
        assert_true(vs_limits_plan(&l, NULL, true, false, s, VS_LIMITS_MAX_SET, &err) < 0);
        assert_non_null(strstr(err.msg, "not a block device"));
}

/* The v2 backend against a directory laid out like a cgroup2 tree. */
static void v2_tree(void **state)
{
        (void)state;
        static const char *const files[] = {
            "memory.max", "memory.swap.max", "memory.high", "pids.max", "cpu.max", "cpu.max.burst",
            "cpu.weight", "cpuset.cpus",     "cpuset.mems", "io.max",   NULL};
        char dir[] = "/tmp/vs-unit-v2-XXXXXX";
        assert_non_null(mkdtemp(dir));
        int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        for (const char *const *f = files; *f; f++) {
                int fd = openat(dfd, *f, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
                assert_true(fd >= 0);
                close(fd);
        }
        VsLimits l;
        VsCgSetting s[VS_LIMITS_MAX_SET];
        VsError err = {0};
        sample(&l);
        int n = vs_limits_plan(&l, NULL, true, false, s, VS_LIMITS_MAX_SET, &err);
        assert_int_equal(vs_cgroup_write_dir(dfd, s, n, &err), 0);
        char buf[256];
        assert_true(vs_read_file_at(dfd, "memory.max", buf, sizeof buf) > 0);
        assert_string_equal(buf, "536870912");
        assert_true(vs_read_file_at(dfd, "cpu.max", buf, sizeof buf) > 0);
        assert_string_equal(buf, "125000 500000");
        assert_true(vs_read_file_at(dfd, "io.max", buf, sizeof buf) > 0);
        assert_string_equal(buf, "7:0 rbps=max wbps=1048576 riops=max wiops=max");
        /* a limit whose file the kernel lacks is an error; lifting one is not */
        unlinkat(dfd, "memory.swap.max", 0);
        n = vs_limits_plan(&l, NULL, true, false, s, VS_LIMITS_MAX_SET, &err);
        assert_true(vs_cgroup_write_dir(dfd, s, n, &err) < 0);
        assert_non_null(strstr(err.msg, "limits.swap"));
        VsLimits none;
        vs_limits_init(&none);
        n = vs_limits_plan(&none, NULL, true, true, s, VS_LIMITS_MAX_SET, &err);
        assert_int_equal(vs_cgroup_write_dir(dfd, s, n, &err), 0);
        assert_true(vs_read_file_at(dfd, "memory.max", buf, sizeof buf) > 0);
        assert_string_equal(buf, "max");
        for (const char *const *f = files; *f; f++)
                unlinkat(dfd, *f, 0);
        close(dfd);
        rmdir(dir);
}

static void round_trip(void **state)
{
        (void)state;
        static const char text[] = "[limits]\nmemory = 512M\nswap = 0\nprocesses = 64\n"
                                   "cpu.fill-rate = 1\ncpu.interval = 4\ncpu.tokens-max = 500ms\n"
                                   "cpu.hard = yes\ncpuset = 0\n"
                                   "io.write-bps = /dev/loop0 10M, 8:0 1G\n"
                                   "io.read-iops = 8:0 100\nipc.shmmax = 64M\n"
                                   "ipc.sem = 250 32000 32 128\ndisk = 10G\n"
                                   "disk.inodes = 200000\ndisk.reserved = 5%\nnofile = 1024\n";
        VsGuestConfig *a = malloc(sizeof *a), *b = malloc(sizeof *b);
        VsError err = {0};
        vs_guest_config_init(a, "x");
        vs_guest_config_init(b, "x");
        assert_int_equal(vs_guest_config_parse(a, text, "x.conf", &err), 0);
        char *out1 = NULL, *out2 = NULL;
        size_t n1, n2;
        FILE *f = open_memstream(&out1, &n1);
        vs_guest_config_write(a, f);
        fclose(f);
        assert_int_equal(vs_guest_config_parse(b, out1, "x.conf", &err), 0);
        f = open_memstream(&out2, &n2);
        vs_guest_config_write(b, f);
        fclose(f);
        assert_string_equal(out1, out2);
        assert_non_null(strstr(out1, "io.write-bps = /dev/loop0 10M, 8:0 1G\n"));
        assert_non_null(strstr(out1, "cpu.tokens-max = 500ms\n"));
        assert_non_null(strstr(out1, "disk = 10G\ndisk.inodes = 200000\ndisk.reserved = 5%\n"));
        /* a cross-key error names the file and the section */
        vs_guest_config_init(b, "x");
        assert_int_equal(vs_guest_config_parse(b, "[limits]\ncpu.hard = yes\n", "x.conf", &err),
                         -EINVAL);
        assert_non_null(strstr(err.msg, "x.conf: [limits]: cpu.hard needs"));
        free(out1);
        free(out2);
        free(a);
        free(b);
}

static void stats_parsers(void **state)
{
        (void)state;
        uint64_t v, a, b, c, d;
        const char *cpu = "usage_usec 1000\nuser_usec 600\nsystem_usec 400\nnr_periods 10\n"
                          "nr_throttled 3\nthrottled_usec 12345\n";
        assert_int_equal(vs_cgroup_kv(cpu, "user_usec", &v), 0);
        assert_true(v == 600);
        assert_int_equal(vs_cgroup_kv(cpu, "throttled_usec", &v), 0);
        assert_true(v == 12345);
        assert_int_equal(vs_cgroup_kv(cpu, "usage", &v), -ENOENT); /* whole keys only */
        vs_cgroup_io_stat("8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n"
                          "7:0 rbytes=5 wbytes=6 rios=7 wios=8 dbytes=9 dios=10\n",
                          &a, &b, &c, &d);
        assert_true(a == 105 && b == 206 && c == 8 && d == 10);
        vs_cgroup_blkio("7:0 Read 10\n7:0 Write 20\n7:0 Sync 30\n7:0 Total 30\n"
                        "8:0 Read 1\n8:0 Write 2\nTotal 33\n",
                        &a, &b);
        assert_true(a == 11 && b == 22);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(bucket),     cmocka_unit_test(keys),
            cmocka_unit_test(disk_keys),  cmocka_unit_test(checks),
            cmocka_unit_test(plans),      cmocka_unit_test(v2_tree),
            cmocka_unit_test(round_trip), cmocka_unit_test(stats_parsers),
        };
        return cmocka_run_group_tests_name("limits", tests, NULL, NULL);
}
