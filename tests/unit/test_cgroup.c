/*
 * The cgroup walk and the pid lists, on a directory tree shaped like a guest's
 * cgroups: hidden and plain files passed over, a wide level read in several
 * getdents64 batches, a chain deeper than the bound cut, hostile cgroup.procs.
 */
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
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/lib/cgroup.h"
#include "../../src/lib/util.h"

enum { WIDE = 300, DEEP = VS_CGROUP_WALK_DEPTH + 6 };

static char top[64];

static void put(const char *rel, const char *text)
{
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", top, rel);
        FILE *f = fopen(p, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static void dir(const char *rel)
{
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", top, rel);
        assert_int_equal(mkdir(p, 0755), 0);
}

static int setup(void **state)
{
        (void)state;
        snprintf(top, sizeof top, "/tmp/vs-cgwalk-XXXXXX");
        return mkdtemp(top) ? 0 : -1;
}

static int teardown(void **state)
{
        (void)state;
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
        return system(cmd) == 0 ? 0 : -1;
}

typedef struct Seen {
        int calls, max_depth;
} Seen;

static int count(int dfd, int depth, void *data)
{
        Seen *s = data;
        struct stat st;
        assert_int_equal(fstat(dfd, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        s->calls++;
        if (depth > s->max_depth)
                s->max_depth = depth;
        return 0;
}

static void walk_wide_hidden_and_files(void **state)
{
        (void)state;
        dir("wide");
        for (int i = 0; i < WIDE; i++) {
                char rel[64];
                snprintf(rel, sizeof rel, "wide/a-long-enough-name-to-fill-batches-%03d", i);
                dir(rel);
        }
        dir(".hidden");
        put("plain", "");
        put("wide/plain", "");
        Seen s = {0};
        assert_int_equal(vs_cgroup_walk(top, count, &s), 0);
        /* top, wide and its WIDE children; not .hidden, not the files */
        assert_int_equal(s.calls, 2 + WIDE);
        assert_int_equal(s.max_depth, 2);
}

static void walk_is_bounded(void **state)
{
        (void)state;
        char rel[4096] = "";
        for (int i = 0; i < DEEP; i++) {
                strcat(rel, i ? "/d" : "d");
                dir(rel);
        }
        Seen s = {0};
        assert_int_equal(vs_cgroup_walk(top, count, &s), -ELOOP);
        assert_int_equal(s.max_depth, VS_CGROUP_WALK_DEPTH + 1);
        assert_int_equal(s.calls, 1 + VS_CGROUP_WALK_DEPTH + 1);
}

static int stop_at_second(int dfd, int depth, void *data)
{
        (void)dfd, (void)depth;
        return ++*(int *)data == 2 ? 7 : 0;
}

static void walk_stops_when_asked(void **state)
{
        (void)state;
        dir("a");
        dir("a/b");
        dir("c");
        int n = 0;
        assert_int_equal(vs_cgroup_walk(top, stop_at_second, &n), 7);
        assert_int_equal(n, 2);
}

typedef struct Pids {
        long sum;
        int n;
} Pids;

static int add(pid_t pid, void *data)
{
        Pids *p = data;
        p->sum += pid;
        p->n++;
        return 0;
}

static void pid_lists_as_the_kernel_writes_them_and_not(void **state)
{
        (void)state;
        dir("guest");
        dir("guest/inner");
        dir("odd");
        put("cgroup.procs", "12\n345\n");
        put("guest/cgroup.procs", "6789"); /* no newline at the end */
        put("guest/inner/cgroup.procs", "x\n0\n-5\n7\n\n");
        /* a number past any pid ends that list, nothing after it is taken */
        put("odd/cgroup.procs", "3\n99999999999999\n4\n");
        /* many: read in more than one batch */
        char *big = malloc(10 * 2000 + 1);
        assert_non_null(big);
        for (int i = 0; i < 2000; i++)
                memcpy(big + 10 * i, "100000000\n", 11);
        dir("many");
        put("many/cgroup.procs", big);
        free(big);
        VsCgroup cg = VS_CGROUP_INIT;
        cg.n = 1;
        cg.dirs[0].path = top;
        cg.dirs[0].v2 = true;
        cg.dirs[0].created = true;
        Pids p = {0};
        assert_int_equal(vs_cgroup_foreach_pid(&cg, add, &p), 0);
        /* 12 345 6789 5 7 3 (the "-5" reads as 5: the kernel writes no signs) */
        assert_int_equal(p.n, 6 + 2000);
        assert_int_equal(p.sum, 12 + 345 + 6789 + 5 + 7 + 3 + 2000L * 100000000);
}

/* One read of a one-record kernel file is the whole file, as reading to EOF gives it. */
static void kernel_files_in_one_read(void **state)
{
        (void)state;
        static const char *const files[] = {"/proc/self/stat", "/proc/self/status",
                                            "/proc/sys/kernel/pid_max"};
        char a[8192], b[8192];
        for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
                ssize_t n = vs_read_kernel_at(AT_FDCWD, files[i], a, sizeof a);
                assert_true(n > 0);
                assert_int_equal(vs_read_file_at(AT_FDCWD, files[i], b, sizeof b), n);
                /* stat and status change with time; their fixed start does not */
                assert_memory_equal(a, b, 16);
                assert_int_equal(a[n], '\0');
                assert_true(strchr(a, '\n') != NULL);
        }
        /* longer than the buffer: cut to size - 1, terminated, as vs_read_file_at cuts */
        assert_int_equal(vs_read_kernel_at(AT_FDCWD, "/proc/self/status", a, 8), 7);
        assert_int_equal(strlen(a), 7);
        assert_int_equal(vs_read_kernel_at(AT_FDCWD, "/proc/self/stat", a, 1), -EINVAL);
        assert_int_equal(vs_read_kernel_at(AT_FDCWD, "/proc/self/no-such", a, sizeof a), -ENOENT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(walk_wide_hidden_and_files, setup, teardown),
            cmocka_unit_test_setup_teardown(walk_is_bounded, setup, teardown),
            cmocka_unit_test_setup_teardown(walk_stops_when_asked, setup, teardown),
            cmocka_unit_test_setup_teardown(pid_lists_as_the_kernel_writes_them_and_not, setup,
                                            teardown),
            cmocka_unit_test(kernel_files_in_one_read),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
