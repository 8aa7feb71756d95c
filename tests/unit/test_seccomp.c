#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/lib/seccomp.h"

static char *profile(const char *text)
{
        static char path[64];
        snprintf(path, sizeof path, "/tmp/vs-unit-seccomp-XXXXXX");
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        return path;
}

static void default_list_names_real_syscalls(void **state)
{
        (void)state;
        int known = 0;
        for (const char *const *p = vs_seccomp_default_list(); *p; p++)
                if (seccomp_syscall_resolve_name(*p) != __NR_SCMP_ERROR)
                        known++;
        assert_true(known > 40);
        VsSeccompSpec spec = {.mode = VS_SECCOMP_DEFAULT};
        VsSeccomp *f = NULL;
        VsError e = {0};
        assert_int_equal(vs_seccomp_build(&spec, &f, &e), 0);
        assert_non_null(f);
        vs_seccomp_free(f);
}

static void none_builds_nothing(void **state)
{
        (void)state;
        VsSeccompSpec spec = {.mode = VS_SECCOMP_NONE};
        VsSeccomp *f = (VsSeccomp *)1;
        assert_int_equal(vs_seccomp_build(&spec, &f, NULL), 0);
        assert_null(f);
}

static void file_errors_name_the_line(void **state)
{
        (void)state;
        VsSeccomp *f = NULL;
        VsError e = {0};
        char *p = profile("# comment\n\nuname\n  getpid  # trailing\nno_such_call\n");
        VsSeccompSpec spec = {.mode = VS_SECCOMP_FILE, .file = p};
        assert_int_equal(vs_seccomp_build(&spec, &f, &e), -EINVAL);
        char want[128];
        snprintf(want, sizeof want, "%s:5: unknown syscall \"no_such_call\"", p);
        assert_string_equal(e.msg, want);
        assert_null(f);
        unlink(p);

        p = profile("uname; rm -rf /\n");
        spec.file = p;
        assert_int_equal(vs_seccomp_build(&spec, &f, &e), -EINVAL);
        assert_non_null(strstr(e.msg, ":1: \"uname; rm -rf /\" is not a syscall name"));
        unlink(p);

        /* a file extends the built-in list ("@default" says so again); "!@default" alone leaves it
         * out */
        static const char *const texts[] = {"uname\n", "@default\nuname\n", "!@default\nuname\n"};
        unsigned short len[3];
        for (int i = 0; i < 3; i++) {
                const struct sock_filter *insns;
                p = profile(texts[i]);
                spec.file = p;
                assert_int_equal(vs_seccomp_build(&spec, &f, &e), 0);
                vs_seccomp_program(f, &insns, &len[i]);
                vs_seccomp_free(f);
                unlink(p);
        }
        assert_int_equal(len[0], len[1]);
        assert_true(len[2] + 20 < len[0]);

        spec.file = "/nonexistent/profile";
        assert_int_equal(vs_seccomp_build(&spec, &f, &e), -ENOENT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(default_list_names_real_syscalls),
            cmocka_unit_test(none_builds_nothing),
            cmocka_unit_test(file_errors_name_the_line),
        };
        return cmocka_run_group_tests_name("seccomp", tests, NULL, NULL);
}
