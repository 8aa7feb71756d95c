#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <linux/capability.h>
#include <string.h>

#include "../../src/lib/caps.h"

static void names_parse_any_spelling(void **state)
{
        (void)state;
        VsCaps c;
        assert_int_equal(vs_caps_from_name("NET_RAW", &c), 0);
        assert_true(c == (VsCaps)1 << CAP_NET_RAW);
        assert_int_equal(vs_caps_from_name("cap_net_raw", &c), 0);
        assert_true(c == (VsCaps)1 << CAP_NET_RAW);
        assert_int_equal(vs_caps_from_name("Sys_Admin", &c), 0);
        assert_true(c == (VsCaps)1 << CAP_SYS_ADMIN);
        assert_int_equal(vs_caps_from_name("CAP_", &c), -EINVAL);
        assert_int_equal(vs_caps_from_name("NET_WIZARD", &c), -EINVAL);
        assert_int_equal(vs_caps_from_name("", &c), -EINVAL);
        assert_int_equal(vs_caps_from_name(NULL, &c), -EINVAL);
        assert_int_equal(vs_caps_from_name("all", &c), 0);
        assert_true(c & ((VsCaps)1 << CAP_CHECKPOINT_RESTORE));
        assert_true(c & 1);
}

static void default_set_is_vserver_like(void **state)
{
        (void)state;
        VsCaps d = vs_caps_default();
        static const int never[] = {
            CAP_SYS_ADMIN, CAP_NET_ADMIN,       CAP_NET_RAW,      CAP_SYS_MODULE, CAP_SYS_RAWIO,
            CAP_SYS_TIME,  CAP_SYS_BOOT,        CAP_SYS_RESOURCE, CAP_SYS_NICE,   CAP_MKNOD,
            CAP_MAC_ADMIN, CAP_LINUX_IMMUTABLE, CAP_SYSLOG,       CAP_BPF,        CAP_PERFMON};
        for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
                assert_false(d & ((VsCaps)1 << never[i]));
        char buf[512];
        assert_string_equal(vs_caps_format(d, buf, sizeof buf),
                            "CHOWN,DAC_OVERRIDE,DAC_READ_SEARCH,FOWNER,FSETID,KILL,SETGID,SETUID,"
                            "SETPCAP,NET_BIND_SERVICE,SYS_CHROOT,AUDIT_WRITE,SETFCAP");
}

static void format_truncates_safely(void **state)
{
        (void)state;
        char buf[8];
        vs_caps_format(vs_caps_default(), buf, sizeof buf);
        assert_true(strlen(buf) < sizeof buf);
        assert_null(vs_caps_name(-1));
        assert_null(vs_caps_name(200));
        assert_string_equal(vs_caps_name(CAP_KILL), "KILL");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(names_parse_any_spelling),
            cmocka_unit_test(default_set_is_vserver_like),
            cmocka_unit_test(format_truncates_safely),
        };
        return cmocka_run_group_tests_name("caps", tests, NULL, NULL);
}
