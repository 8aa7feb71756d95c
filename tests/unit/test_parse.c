/* Pure parsers: sizes, rlimits, bind specs, cgroup paths, errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/lib/cgroup.h"
#include "../../src/lib/mount.h"
#include "../../src/lib/parse.h"
#include "../../src/lib/rlimit.h"
#include "../../src/lib/util.h"

static void sizes(void **state)
{
        (void)state;
        unsigned long long v;
        assert_int_equal(vs_parse_size("4096", &v), 0);
        assert_true(v == 4096);
        assert_int_equal(vs_parse_size("512M", &v), 0);
        assert_true(v == 512ULL << 20);
        assert_int_equal(vs_parse_size("2g", &v), 0);
        assert_true(v == 2ULL << 30);
        assert_int_equal(vs_parse_size("1KiB", &v), 0);
        assert_true(v == 1024);
        assert_int_equal(vs_parse_size("1T", &v), 0);
        assert_true(v == 1ULL << 40);
        assert_int_equal(vs_parse_size("12X", &v), -EINVAL);
        assert_int_equal(vs_parse_size("", &v), -EINVAL);
        assert_int_equal(vs_parse_size("M", &v), -EINVAL);
        assert_int_equal(vs_parse_size("-1", &v), -EINVAL);
        assert_int_equal(vs_parse_size("1MM", &v), -EINVAL);
        assert_int_equal(vs_parse_size("99999999999999999999", &v), -ERANGE);
        assert_int_equal(vs_parse_size("17179869184G", &v), -ERANGE);
}

static void counts(void **state)
{
        (void)state;
        unsigned long long v;
        assert_int_equal(vs_parse_count("1000", &v), 0);
        assert_true(v == 1000);
        assert_int_equal(vs_parse_count("200k", &v), 0);
        assert_true(v == 200000);
        assert_int_equal(vs_parse_count("2M", &v), 0);
        assert_true(v == 2000000);
        assert_int_equal(vs_parse_count("1G", &v), 0);
        assert_true(v == 1000000000);
        assert_int_equal(vs_parse_count("1Mi", &v), -EINVAL);
        assert_int_equal(vs_parse_count("k", &v), -EINVAL);
        assert_int_equal(vs_parse_count("", &v), -EINVAL);
        assert_int_equal(vs_parse_count("-5", &v), -EINVAL);
        assert_int_equal(vs_parse_count("99999999999999999999G", &v), -ERANGE);
}

static void numbers(void **state)
{
        (void)state;
        unsigned long long v;
        assert_int_equal(vs_parse_u64("18446744073709551615", &v), 0);
        assert_true(v == ~0ULL);
        assert_int_equal(vs_parse_u64("18446744073709551616", &v), -ERANGE);
        assert_int_equal(vs_parse_u64("+1", &v), -EINVAL);
        assert_int_equal(vs_parse_u64(" 1", &v), -EINVAL);
        assert_int_equal(vs_parse_u64(NULL, &v), -EINVAL);
}

static void signals(void **state)
{
        (void)state;
        char buf[32];
        assert_int_equal(vs_signal_from_name("SIGTERM"), SIGTERM);
        assert_int_equal(vs_signal_from_name("pwr"), SIGPWR);
        assert_int_equal(vs_signal_from_name("9"), 9);
        assert_int_equal(vs_signal_from_name("SIGRTMIN+3"), SIGRTMIN + 3);
        assert_int_equal(vs_signal_from_name("RTMIN+999"), -EINVAL);
        assert_int_equal(vs_signal_from_name("0"), -EINVAL);
        assert_int_equal(vs_signal_from_name("SIGFOO"), -EINVAL);
        assert_string_equal(vs_signal_name(SIGRTMIN + 3, buf, sizeof buf), "SIGRTMIN+3");
        assert_string_equal(vs_signal_name(SIGPWR, buf, sizeof buf), "SIGPWR");
}

static void fractions_times_lists_and_flags(void **state)
{
        (void)state;
        unsigned long long m;
        uint64_t us;
        bool b, set[8] = {false};
        assert_int_equal(vs_parse_milli("1.5", &m), 0);
        assert_true(m == 1500);
        assert_int_equal(vs_parse_milli("0.25", &m), 0);
        assert_true(m == 250);
        assert_int_equal(vs_parse_milli("2", &m), 0);
        assert_true(m == 2000);
        assert_int_equal(vs_parse_milli("0.0001", &m), -EINVAL);
        assert_int_equal(vs_parse_milli(".5", &m), -EINVAL);
        assert_int_equal(vs_parse_milli("1.", &m), -EINVAL);
        assert_int_equal(vs_parse_milli("1e3", &m), -EINVAL);
        assert_int_equal(vs_parse_milli("99999999", &m), -ERANGE);
        assert_int_equal(vs_parse_duration_us("500ms", &us), 0);
        assert_true(us == 500000);
        assert_int_equal(vs_parse_duration_us("2s", &us), 0);
        assert_true(us == 2000000);
        assert_int_equal(vs_parse_duration_us("250us", &us), 0);
        assert_true(us == 250);
        assert_int_equal(vs_parse_duration_us("125", &us), 0);
        assert_true(us == 125000);
        assert_int_equal(vs_parse_duration_us("1h", &us), -EINVAL);
        assert_int_equal(vs_parse_duration_us("ms", &us), -EINVAL);
        assert_int_equal(vs_parse_duration_us("3601s", &us), -ERANGE);
        assert_true(vs_cpulist_valid("0-3,6,8-9"));
        assert_true(vs_cpulist_valid("0"));
        assert_false(vs_cpulist_valid(""));
        assert_false(vs_cpulist_valid("3-1"));
        assert_false(vs_cpulist_valid("1,"));
        assert_false(vs_cpulist_valid("8192"));
        assert_false(vs_cpulist_valid("a"));
        assert_false(vs_cpulist_valid("1--2"));
        assert_true(vs_cpulist_fill("1,3-4", set, 8));
        assert_true(!set[0] && set[1] && !set[2] && set[3] && set[4] && !set[5]);
        assert_false(vs_cpulist_fill("7-8", set, 8));
        /* no list: refused, not looped on for ever (found by fuzz_views) */
        assert_false(vs_cpulist_fill("x", set, 8));
        assert_false(vs_cpulist_fill("1-x", set, 8));
        assert_false(vs_cpulist_fill("1;2", set, 8));
        assert_false(vs_cpulist_fill("-1", set, 8));
        assert_int_equal(vs_parse_bool("Yes", &b), 0);
        assert_true(b);
        assert_int_equal(vs_parse_bool("off", &b), 0);
        assert_false(b);
        assert_int_equal(vs_parse_bool("y", &b), -EINVAL);
}

static void rlimits(void **state)
{
        (void)state;
        VsRlimit r;
        VsError e = {0};
        assert_int_equal(vs_rlimit_parse("nofile=1024:4096", &r, &e), 0);
        assert_int_equal(r.resource, RLIMIT_NOFILE);
        assert_true(r.limit.rlim_cur == 1024 && r.limit.rlim_max == 4096);
        assert_int_equal(vs_rlimit_parse("RLIMIT_AS=2G", &r, &e), 0);
        assert_true(r.limit.rlim_cur == 2ULL << 30 && r.limit.rlim_max == 2ULL << 30);
        assert_int_equal(vs_rlimit_parse("core=0:unlimited", &r, &e), 0);
        assert_true(r.limit.rlim_cur == 0 && r.limit.rlim_max == RLIM_INFINITY);
        assert_int_equal(vs_rlimit_parse("nofile=2G", &r, &e), -EINVAL);
        assert_true(e.input);
        assert_non_null(strstr(e.msg, "is not a number"));
        assert_int_equal(vs_rlimit_parse("nofile=10:5", &r, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "soft limit is above the hard limit"));
        assert_int_equal(vs_rlimit_parse("files=1", &r, &e), -EINVAL);
        assert_int_equal(vs_rlimit_parse("nofile", &r, &e), -EINVAL);
        assert_int_equal(vs_rlimit_from_name("nproc"), RLIMIT_NPROC);
        assert_string_equal(vs_rlimit_name(RLIMIT_MEMLOCK), "MEMLOCK");
}

static void binds(void **state)
{
        (void)state;
        VsBind b;
        VsError e = {0};
        char s1[] = "/srv/data:/data:ro", s2[] = "/a:/b", s3[] = "/a", s4[] = "/a:/b:rx",
             s5[] = "a:/b", s6[] = "/a:/x/../y", s7[] = "/a:/b:rw", s8[] = ":/b";
        assert_int_equal(vs_bind_parse(s1, &b, &e), 0);
        assert_string_equal(b.source, "/srv/data");
        assert_string_equal(b.target, "/data");
        assert_true(b.readonly);
        assert_int_equal(vs_bind_parse(s2, &b, &e), 0);
        assert_false(b.readonly);
        assert_int_equal(vs_bind_parse(s7, &b, &e), 0);
        assert_false(b.readonly);
        assert_int_equal(vs_bind_parse(s3, &b, &e), -EINVAL);
        assert_int_equal(vs_bind_parse(s4, &b, &e), -EINVAL);
        assert_int_equal(vs_bind_parse(s5, &b, &e), -EINVAL);
        assert_int_equal(vs_bind_parse(s6, &b, &e), -EINVAL);
        assert_int_equal(vs_bind_parse(s8, &b, &e), -EINVAL);
        char s9[] = "/a:/b:ro,idmap", s10[] = "/a:/b:idmap", s11[] = "/a:/b:idmap,bogus";
        assert_int_equal(vs_bind_parse(s9, &b, &e), 0);
        assert_true(b.readonly && b.idmap);
        assert_int_equal(vs_bind_parse(s10, &b, &e), 0);
        assert_true(!b.readonly && b.idmap);
        assert_int_equal(vs_bind_parse(s11, &b, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "\"bogus\" is not ro, rw or idmap"));
}

static void cgroup_paths(void **state)
{
        (void)state;
        assert_true(vs_cgroup_path_valid("/vserver"));
        assert_true(vs_cgroup_path_valid("vs-test-1/a.b_c"));
        assert_false(vs_cgroup_path_valid(""));
        assert_false(vs_cgroup_path_valid("/"));
        assert_false(vs_cgroup_path_valid("a//b"));
        assert_false(vs_cgroup_path_valid("a/"));
        assert_false(vs_cgroup_path_valid("../x"));
        assert_false(vs_cgroup_path_valid("a/./b"));
        assert_false(vs_cgroup_path_valid("a b"));
        assert_false(vs_cgroup_path_valid("a\nb"));
        assert_false(vs_cgroup_path_valid(NULL));
}

static void errors(void **state)
{
        (void)state;
        VsError e = {0};
        char buf[600];
        assert_int_equal(vs_error(&e, EPERM, "mount %s", "/proc"), -EPERM);
        vs_error_prefix(&e, "start %s", "web1");
        assert_string_equal(vs_error_text(&e, buf, sizeof buf),
                            "start web1: mount /proc: Operation not permitted");
        assert_int_equal(vs_error_input(&e, "web1.conf:12: bad"), -EINVAL);
        assert_string_equal(vs_error_text(&e, buf, sizeof buf), "web1.conf:12: bad");
        /* a long chain is cut, never overflows */
        for (int i = 0; i < 100; i++)
                vs_error_prefix(&e, "level %d", i);
        assert_true(strlen(e.msg) < sizeof e.msg);
        assert_int_equal(vs_error(NULL, 0, "x"), -EIO);
}

/* /proc/PID/stat of a process whose name has parentheses and spaces, as a guest's may. */
static void proc_stat_with_a_hostile_comm(void **state)
{
        (void)state;
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char c;
                prctl(PR_SET_NAME, "x) R 1 2 3 (", 0, 0, 0);
                close(p[1]);
                (void)!read(p[0], &c, 1);
                _exit(0);
        }
        close(p[0]);
        usleep(50000);
        VsProcStat st;
        assert_int_equal(vs_proc_stat(pid, &st), 0);
        assert_int_equal(st.ppid, getpid());
        assert_int_equal(st.threads, 1);
        assert_true(st.starttime > 0 && st.starttime == vs_proc_starttime(pid));
        assert_true(st.state == 'S' || st.state == 'R');
        close(p[1]);
        waitpid(pid, NULL, 0);
        assert_int_equal(vs_proc_stat(pid, &st), -1); /* gone */
        assert_true(vs_proc_starttime(pid) == 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(sizes),   cmocka_unit_test(counts),
            cmocka_unit_test(numbers), cmocka_unit_test(rlimits),
            cmocka_unit_test(binds),   cmocka_unit_test(cgroup_paths),
            cmocka_unit_test(errors),  cmocka_unit_test(proc_stat_with_a_hostile_comm),
            cmocka_unit_test(signals), cmocka_unit_test(fractions_times_lists_and_flags),
        };
        return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
