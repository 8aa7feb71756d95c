/* Guest files and host settings: parsing, validation, errors, round trips. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include "../../src/lib/cgroup.h"
#include "../../src/lib/config.h"
#include "../../src/lib/guest.h"
#include "../../src/lib/keys.h"
#include "../../src/lib/paths.h"

static void full_file(void **state)
{
        (void)state;
        VsGuestConfig g;
        VsError e = {0};
        vs_guest_config_init(&g, "web1");
        const char *text = "# a guest\n"
                           "[guest]\n"
                           "context = 1001\n"
                           "hostname = web1.example.org   # the FQDN\n"
                           "init = /sbin/init\n"
                           "stop-signal = RTMIN+3\n"
                           "stop-timeout = 30\n"
                           "autostart = yes\n"
                           "[net]\nmode = host\n"
                           "[limits]\nmemory = 512M\nprocesses = 200\nnofile = 1024:4096\n"
                           "[security]\ncapabilities.add = NET_RAW\n"
                           "capabilities.host-wide = SYS_TIME\n"
                           "seccomp = none\nno-new-privs = yes\n"
                           "[mount]\nbind = /srv:/srv:ro\nbind = /a:/b\n";
        assert_int_equal(vs_guest_config_parse(&g, text, "web1.conf", &e), 0);
        assert_int_equal(g.context, 1001);
        assert_string_equal(g.hostname, "web1.example.org");
        assert_int_equal(g.stop_signal, SIGRTMIN + 3);
        assert_int_equal(g.stop_timeout, 30);
        assert_true(g.autostart);
        assert_int_equal(g.net, VS_NET_HOST);
        assert_true(g.limits.memory == 512ULL << 20);
        assert_true(g.limits.processes == 200);
        assert_int_equal(g.n_rlimits, 1);
        assert_int_equal(g.rlimits[0].resource, RLIMIT_NOFILE);
        assert_true(g.rlimits[0].limit.rlim_cur == 1024 && g.rlimits[0].limit.rlim_max == 4096);
        assert_true(g.caps_add == (1ULL << 13));
        assert_true(g.caps_host == (1ULL << 25));
        assert_int_equal(g.seccomp, VS_SECCOMP_NONE);
        assert_true(g.no_new_privs);
        assert_int_equal(g.n_binds, 2);
        assert_string_equal(g.binds[0].target, "/srv");
        assert_true(g.binds[0].readonly);

        /* what write prints parses back to the same */
        char *out = NULL, *out2 = NULL;
        size_t len = 0, len2 = 0;
        FILE *f = open_memstream(&out, &len);
        assert_int_equal(vs_guest_config_write(&g, f), 0);
        fclose(f);
        VsGuestConfig g2;
        vs_guest_config_init(&g2, "web1");
        assert_int_equal(vs_guest_config_parse(&g2, out, "web1.conf", &e), 0);
        f = open_memstream(&out2, &len2);
        vs_guest_config_write(&g2, f);
        fclose(f);
        assert_string_equal(out, out2);
        free(out);
        free(out2);
}

static void expect_error(const char *text, const char *msg)
{
        VsGuestConfig g;
        VsError e = {0};
        vs_guest_config_init(&g, "b");
        assert_int_equal(vs_guest_config_parse(&g, text, "b.conf", &e), -EINVAL);
        assert_true(e.input);
        if (strncmp(e.msg, msg, strlen(msg)) != 0)
                fail_msg("got \"%s\", want \"%s...\"", e.msg, msg);
}

static void errors_name_file_line_and_key(void **state)
{
        (void)state;
        expect_error("[guest]\n\n[limits]\nmemory = 12X\n",
                     "b.conf:4: limits.memory: \"12X\" is not a size (say 512M or 2G)");
        expect_error("[guest]\nfoo = 1\n", "b.conf:2: guest.foo: unknown key");
        expect_error("[nope]\nfoo = 1\n", "b.conf:2: nope.foo: unknown section [nope]");
        expect_error("[guest]\ncontext = 1\n", "b.conf:2: guest.context: \"1\" is not a context");
        expect_error("[guest]\ncontext = 70000\n", "b.conf:2: guest.context:");
        expect_error("[guest]\ncontext = -5\n", "b.conf:2: guest.context:");
        expect_error("[guest]\nhostname = a b\n", "b.conf:2: guest.hostname:");
        expect_error("[guest]\ninit = sbin/init\n", "b.conf:2: guest.init: \"sbin/init\" is not");
        expect_error("[guest]\nstop-signal = KILL\n", "b.conf:2: guest.stop-signal:");
        expect_error("[guest]\nautostart = maybe\n", "b.conf:2: guest.autostart: \"maybe\"");
        expect_error("[guest]\ncontext = 5\ncontext = 6\n", "b.conf:3: guest.context: set twice");
        expect_error("[net]\nmode = bridge\n",
                     "b.conf:2: net.mode: \"bridge\" is not a network mode (say isolate, netns, "
                     "none or host)");
        expect_error("[net]\naddress = 192.0.2.1/40\n",
                     "b.conf:2: net.address: \"192.0.2.1/40\": the prefix length is 0 to 32 (say "
                     "IP/PREFIX[@DEVICE], e.g. 192.0.2.10/24@eth0)");
        expect_error("[net]\nmode = none\naddress = 192.0.2.1/24\n",
                     "b.conf: [net]: addresses need mode isolate or netns");
        expect_error("[limits]\nnofile = lots\n", "b.conf:2: limits.nofile:");
        expect_error("[limits]\nnofile = 10:5\n", "b.conf:2: limits.nofile:");
        expect_error("[security]\nseccomp = relative/file\n", "b.conf:2: security.seccomp:");
        expect_error("[mount]\nbind = /a:relative\n", "b.conf:2: mount.bind:");
        expect_error("[mount]\nbind = /a:/x/../etc\n", "b.conf:2: mount.bind:");
        expect_error("[guest]\nnot a key value line\n", "b.conf:2: not an INI line");
}

/* Every bind a line holds fits, as written; a longer line is one clear error, not two lines. */
static void binds_and_long_lines(void **state)
{
        (void)state;
        VsGuestConfig *g = calloc(1, sizeof *g);
        char *text = malloc(VS_CONFIG_MAX_BINDS * 256 + 64), src[200];
        VsError e = {0};
        assert_non_null(g);
        assert_non_null(text);
        /* "bind = " and ":/m00:ro" around it: a line of exactly VS_CONFIG_LINE_MAX */
        size_t slen = VS_CONFIG_LINE_MAX - strlen("bind = :/m00:ro");
        memset(src, 'a', slen);
        src[0] = '/';
        src[slen] = '\0';
        int n = sprintf(text, "[mount]\n");
        for (int i = 0; i < VS_CONFIG_MAX_BINDS; i++)
                n += sprintf(text + n, "bind = %s:/m%02d:ro\n", src, i);
        vs_guest_config_init(g, "b");
        assert_int_equal(vs_guest_config_parse(g, text, "b.conf", &e), 0);
        assert_int_equal(g->n_binds, VS_CONFIG_MAX_BINDS);
        assert_string_equal(g->binds[31].source, src);
        assert_string_equal(g->binds[31].target, "/m31");
        assert_true(g->binds[31].readonly);
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        assert_int_equal(vs_guest_config_write(g, f), 0);
        fclose(f);
        assert_non_null(strstr(out, text + strlen("[mount]\n")));
        free(out);
        /* one character more: inih would have read the rest as a line of its own */
        sprintf(text, "[mount]\nbind = %sa:/m00:ro\n", src);
        vs_guest_config_init(g, "b");
        assert_int_equal(vs_guest_config_parse(g, text, "b.conf", &e), -EINVAL);
        assert_string_equal(e.msg, "b.conf:2: a line holds at most 198 characters");
        /* a comment too, and the last line without its newline */
        memset(text, '#', 300);
        text[300] = '\0';
        vs_guest_config_init(g, "b");
        assert_int_equal(vs_guest_config_parse(g, text, "b.conf", &e), -EINVAL);
        assert_string_equal(e.msg, "b.conf:1: a line holds at most 198 characters");
        /* what the file cannot hold, an option cannot set */
        char spec[256];
        snprintf(spec, sizeof spec, "%sa:/m00:ro", src);
        vs_guest_config_init(g, "b");
        assert_int_equal(vs_guest_config_set(g, "mount.bind", spec, "--bind", &e), -EINVAL);
        assert_string_equal(e.msg, "--bind: \"bind = VALUE\" is one line of the guest file: at "
                                   "most 198 characters");
        spec[strlen(spec) - 4] = '\0'; /* without ":ro": fits */
        assert_int_equal(vs_guest_config_set(g, "mount.bind", spec, "--bind", &e), 0);
        free(text);
        free(g);
}

/* A host setting of many patterns goes on several lines (a line holds 198 characters). */
static void host_excludes_on_several_lines(void **state)
{
        (void)state;
        char path[] = "/tmp/vs-test-host-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        FILE *f = fdopen(fd, "w");
        fprintf(f, "[host]\nunify-exclude = /opt/data /srv\nunify-exclude = /var/cache\n");
        fclose(f);
        VsHostConfig h;
        VsError e = {0};
        vs_host_config_init(&h);
        assert_int_equal(vs_host_config_load(&h, path, &e), 0);
        assert_string_equal(h.unify_exclude, "/opt/data /srv /var/cache");
        /* six lines of 180 characters: more than the 1023 the setting holds */
        f = fopen(path, "w");
        fprintf(f, "[host]\n");
        for (int i = 0; i < 6; i++) {
                fprintf(f, "unify-exclude =");
                for (int k = 0; k < 16; k++)
                        fprintf(f, " /p%d/abcdef", i);
                fprintf(f, "\n");
        }
        fclose(f);
        vs_host_config_init(&h);
        assert_int_equal(vs_host_config_load(&h, path, &e), -EINVAL);
        assert_non_null(strstr(e.msg, ":7: host.unify-exclude: too long (at most 1023 characters "
                                      "on all its lines)"));
        unlink(path);
}

static void set_from_options(void **state)
{
        (void)state;
        VsGuestConfig g;
        VsError e = {0};
        vs_guest_config_init(&g, "x");
        assert_int_equal(vs_guest_config_set(&g, "limits.memory", "64M", "--memory", &e), 0);
        assert_true(g.limits.memory == 64ULL << 20);
        assert_int_equal(vs_guest_config_set(&g, "limits.memory", "lots", "--memory", &e), -EINVAL);
        assert_string_equal(e.msg, "--memory: \"lots\" is not a size (say 512M or 2G)");
        assert_int_equal(vs_guest_config_set(&g, "nodot", "1", "--set", &e), -EINVAL);
}

static void host_settings_and_names(void **state)
{
        (void)state;
        VsHostConfig h;
        vs_host_config_init(&h);
        assert_string_equal(h.cgroup_parent, "/vserver");
        assert_true(h.ctx_min == 1000 && h.ctx_max == 49151);
        assert_true(vs_guest_name_valid("web1"));
        assert_true(vs_guest_name_valid("a.b_c-d"));
        assert_false(vs_guest_name_valid(""));
        assert_false(vs_guest_name_valid(".hidden"));
        assert_false(vs_guest_name_valid("-x"));
        assert_false(vs_guest_name_valid("a/b"));
        assert_false(vs_guest_name_valid("a b"));
        assert_false(vs_guest_name_valid("0123456789012345678901234567890123456789012345678"));
        VsPaths p;
        VsError e = {0};
        assert_int_equal(vs_paths_init(&p, "/tmp/x/", &e), 0);
        assert_string_equal(p.guests_conf, "/tmp/x/etc/vserver/guests");
        assert_int_equal(vs_paths_init(&p, NULL, &e), 0);
        assert_string_equal(p.log, "/var/log/vserver");
        assert_int_equal(vs_paths_init(&p, "relative", &e), -EINVAL);
        /* issue 15: installations under roots of their own never share guests' cgroups */
        VsHostConfig a, b, sys;
        vs_host_config_init(&a);
        vs_host_config_init(&b);
        vs_host_config_init(&sys);
        vs_host_config_own_cgroup(&a, "/srv/a");
        vs_host_config_own_cgroup(&b, "/srv/b");
        vs_host_config_own_cgroup(&sys, "");
        assert_string_equal(sys.cgroup_parent, "/vserver");
        assert_true(strncmp(a.cgroup_parent, "/vserver-", 9) == 0 && strlen(a.cgroup_parent) == 17);
        assert_string_not_equal(a.cgroup_parent, b.cgroup_parent);
        assert_true(vs_cgroup_path_valid(a.cgroup_parent));
        char again[256];
        snprintf(again, sizeof again, "%s", a.cgroup_parent);
        vs_host_config_init(&a);
        vs_host_config_own_cgroup(&a, "/srv/a");
        assert_string_equal(a.cgroup_parent, again); /* stable */
        /* one the settings name stays as named */
        FILE *f = fopen("/tmp/vs-unit-host.conf", "w");
        assert_non_null(f);
        fputs("[host]\ncgroup-parent = /mine\n", f);
        fclose(f);
        vs_host_config_init(&a);
        assert_int_equal(vs_host_config_load(&a, "/tmp/vs-unit-host.conf", &e), 0);
        unlink("/tmp/vs-unit-host.conf");
        vs_host_config_own_cgroup(&a, "/srv/a");
        assert_string_equal(a.cgroup_parent, "/mine");
}

static void host_wide_caps_need_their_own_key(void **state)
{
        (void)state;
        VsGuestConfig g;
        VsError e = {0};
        vs_guest_config_init(&g, "web1");
        assert_int_equal(
            vs_guest_config_parse(&g, "[security]\ncapabilities.add = SYS_TIME\n", "web1.conf", &e),
            -EINVAL);
        assert_non_null(strstr(e.msg, "web1.conf:2: security.capabilities.add: SYS_TIME acts on "
                                      "the whole host"));
        assert_non_null(strstr(e.msg, "say capabilities.host-wide = SYS_TIME"));
        vs_guest_config_init(&g, "web1");
        assert_int_equal(
            vs_guest_config_parse(&g, "[security]\ncapabilities.add = ALL\n", "web1.conf", &e),
            -EINVAL);
        vs_guest_config_init(&g, "web1");
        assert_int_equal(vs_guest_config_parse(
                             &g,
                             "[net]\nmode = host\n[security]\ncapabilities.host-wide = SYS_TIME\n",
                             "web1.conf", &e),
                         0);
        assert_true(vs_guest_caps(&g) & (1ULL << 25));
}

/* The key table: every row is found, set, written, and read back the same. */
static void key_table_round_trip(void **state)
{
        (void)state;
        static const char text[] =
            "[guest]\ncontext = 1234\nhostname = h.example.org\ndomainname = ex\n"
            "init = /sbin/init -x\nstop-signal = SIGPWR\nstop-timeout = 9\nautostart = yes\n"
            "tmp = disk\n[net]\nmode = netns\naddress = 10.1.2.3/24\nroute = 10.9.0.0/16 via "
            "10.1.2.1\ngateway = 10.1.2.1\nnat = no\n[limits]\nmemory = 512M\nswap = 0\n"
            "cpu.fill-rate = 1\ncpu.interval = 4\ncpu.hard = yes\nnofile = 4096:8192\n"
            "[security]\nuserns = yes\ncapabilities.drop = CHOWN\nno-new-privs = yes\n"
            "[mount]\nbind = /srv:/srv:ro\n[unify]\nexclude = /opt/x\n";
        VsGuestConfig *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
        VsError e = {0};
        char *out1 = NULL, *out2 = NULL;
        size_t n1 = 0, n2 = 0;
        vs_guest_config_init(a, "t");
        assert_int_equal(vs_guest_config_parse(a, text, "t.conf", &e), 0);
        FILE *f = open_memstream(&out1, &n1);
        assert_int_equal(vs_guest_config_write(a, f), 0);
        fclose(f);
        vs_guest_config_init(b, "t");
        assert_int_equal(vs_guest_config_parse(b, out1, "t.conf", &e), 0);
        f = open_memstream(&out2, &n2);
        assert_int_equal(vs_guest_config_write(b, f), 0);
        fclose(f);
        assert_string_equal(out1, out2);
        /* route and gateway in the order given */
        assert_non_null(strstr(out1, "route = 10.9.0.0/16 via 10.1.2.1\ngateway = 10.1.2.1\n"));
        for (size_t i = 0; i < vs_n_keys; i++) {
                const VsKey *k = &vs_keys[i];
                assert_ptr_equal(vs_key_find(k->section, k->name), k);
                assert_non_null(k->set);
                assert_non_null(k->help);
                /* each row's key is in the unknown-key list of its section */
                char msg[1024], *hit;
                assert_int_equal(vs_key_set(a, k->section, "no-such-key", "1", msg, sizeof msg),
                                 -EINVAL);
                hit = strstr(msg, k->name);
                assert_non_null(hit);
        }
        free(out1);
        free(out2);
        free(a);
        free(b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(full_file),
            cmocka_unit_test(key_table_round_trip),
            cmocka_unit_test(host_wide_caps_need_their_own_key),
            cmocka_unit_test(errors_name_file_line_and_key),
            cmocka_unit_test(set_from_options),
            cmocka_unit_test(binds_and_long_lines),
            cmocka_unit_test(host_excludes_on_several_lines),
            cmocka_unit_test(host_settings_and_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
