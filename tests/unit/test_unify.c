/* Unify's exclude patterns: syntax, the defaults, includes beneath excludes, globs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "../../src/lib/pattern.h"
#include "../../src/lib/unify.h"

static void pattern_syntax(void **state)
{
        (void)state;
        char why[160];
        assert_int_equal(vs_pattern_check("/usr/share/doc", why, sizeof why), 0);
        assert_int_equal(vs_pattern_check("+/var/lib/x", why, sizeof why), 0);
        assert_int_equal(vs_pattern_check("-/usr/*/locale", why, sizeof why), 0);
        assert_int_equal(vs_pattern_check("usr", why, sizeof why), -EINVAL);
        assert_non_null(strstr(why, "not a guest path"));
        assert_int_equal(vs_pattern_check("+usr", why, sizeof why), -EINVAL);
        assert_int_equal(vs_pattern_check("/a/../etc", why, sizeof why), -EINVAL);
        assert_non_null(strstr(why, "no .."));
        assert_int_equal(vs_pattern_check("/a/..", why, sizeof why), -EINVAL);
        assert_int_equal(vs_pattern_check("/a/..b", why, sizeof why), 0);
        assert_int_equal(vs_pattern_check("/a\tb", why, sizeof why), -EINVAL);
}

static void defaults_and_patterns(void **state)
{
        (void)state;
        /* the defaults: configuration and variable data stay apart */
        assert_true(vs_pattern_excluded("/etc/passwd", false, NULL, 0));
        assert_true(vs_pattern_excluded("/var/lib/dpkg/status", false, NULL, 0));
        assert_true(vs_pattern_excluded("/root/.profile", false, NULL, 0));
        assert_true(vs_pattern_excluded("/boot", true, NULL, 0));
        assert_false(vs_pattern_excluded("/usr/bin/perl", false, NULL, 0));
        assert_false(vs_pattern_excluded("/etcetera/x", false, NULL, 0));
        assert_false(vs_pattern_excluded("/usr/etc/x", false, NULL, 0));

        const char *pats[] = {"+/etc/ssl", "/usr/share/doc", "/usr/lib/*.a", "-/opt/x*"};
        int n = 4;
        assert_false(vs_pattern_excluded("/etc/ssl/certs/ca.pem", false, pats, n));
        assert_true(vs_pattern_excluded("/etc/ssh/sshd_config", false, pats, n));
        assert_true(vs_pattern_excluded("/usr/share/doc/bash/README", false, pats, n));
        assert_false(vs_pattern_excluded("/usr/share/docs/x", false, pats, n));
        assert_true(vs_pattern_excluded("/usr/lib/libc.a", false, pats, n));
        /* a * stays within one component */
        assert_false(vs_pattern_excluded("/usr/lib/x86_64/libc.a", false, pats, n));
        assert_true(vs_pattern_excluded("/opt/xyz/bin/tool", false, pats, n));
        assert_false(vs_pattern_excluded("/opt/y/bin/tool", false, pats, n));

        /* the first pattern that matches decides, the guest's before the defaults */
        const char *order[] = {"-/usr/lib/keep", "+/usr/lib"};
        assert_true(vs_pattern_excluded("/usr/lib/keep/x", false, order, 2));
        assert_false(vs_pattern_excluded("/usr/lib/other", false, order, 2));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(pattern_syntax),
            cmocka_unit_test(defaults_and_patterns),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
