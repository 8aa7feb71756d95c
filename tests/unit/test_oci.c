#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <linux/filter.h>
#include <sys/personality.h>

#include <json-c/json.h>

#include "../../src/lib/oci.h"
#include "../../src/lib/oci_int.h"

/* The spec's default with @insert spliced in before its last brace (",\"k\": v"). */
static char *with(const char *insert)
{
        char *base = vs_oci_default_spec(false);
        size_t n = strlen(base);
        char *out = malloc(n + strlen(insert) + 2);
        char *end = strrchr(base, '}');
        *end = '\0';
        sprintf(out, "%s%s}", base, insert);
        free(base);
        return out;
}

static int parse(const char *text, VsOciConfig *c, VsError *err)
{
        return vs_oci_config_parse(text, strlen(text), c, err);
}

static void default_specs_parse(void **state)
{
        (void)state;
        VsOciConfig *c = calloc(1, sizeof *c);
        VsError err = {0};
        for (int rootless = 0; rootless < 2; rootless++) {
                char *t = vs_oci_default_spec(rootless);
                assert_int_equal(parse(t, c, &err), 0);
                assert_string_equal(c->root_path, "rootfs");
                assert_string_equal(c->process.args[0], "sh");
                assert_true(c->ns[VS_OCI_NS_MOUNT].set && !c->ns[VS_OCI_NS_MOUNT].path);
                assert_int_equal(c->ns[VS_OCI_NS_USER].set, rootless);
                assert_true(c->process.caps[VS_OCI_CAP_BOUNDING] & (1ULL << CAP_KILL));
                assert_int_equal(c->process.n_rlimits, 1);
                assert_true(c->process.no_new_privs);
                vs_oci_config_free(c);
                free(t);
        }
        free(c);
        char *f = vs_oci_features();
        assert_non_null(strstr(f, "\"ociVersionMax\": \"" VS_OCI_VERSION "\""));
        free(f);
}

static void mount_options_split_into_flags_data_propagation(void **state)
{
        (void)state;
        VsOciConfig *c = calloc(1, sizeof *c);
        VsError err = {0};
        char *t = with(",\"mounts\": [{\"destination\": \"/x\", \"type\": \"tmpfs\", "
                       "\"source\": \"t\", \"options\": [\"ro\", \"nosuid\", \"rw\", \"size=1m\", "
                       "\"mode=755\", \"rshared\", \"noatime\"]}, {\"destination\": \"/b\", "
                       "\"type\": \"none\", \"source\": \"/srv\", \"options\": [\"rbind\", "
                       "\"ro\"]}]");
        assert_int_equal(parse(t, c, &err), 0);
        assert_int_equal(c->n_mounts, 2);
        const VsOciMount *m = &c->mounts[0];
        assert_false(m->flags & MS_RDONLY); /* the later rw wins */
        assert_true(m->clear & MS_RDONLY);
        assert_true(m->flags & MS_NOSUID);
        assert_true(m->flags & MS_NOATIME);
        assert_string_equal(m->data, "size=1m,mode=755");
        assert_int_equal(m->propagate, MS_SHARED | MS_REC);
        assert_false(m->bind);
        assert_true(c->mounts[1].bind && c->mounts[1].recursive);
        assert_true(c->mounts[1].flags & MS_RDONLY);
        vs_oci_config_free(c);
        free(t);
        free(c);
}

static void resources_map_onto_limits(void **state)
{
        (void)state;
        VsOciConfig *c = calloc(1, sizeof *c);
        VsError err = {0};
        char *t = with(",\"linux\": {\"namespaces\": [{\"type\": \"mount\"}], \"resources\": "
                       "{\"memory\": {\"limit\": 1000000, \"swap\": 3000000, \"reservation\": "
                       "500000}, \"cpu\": {\"shares\": 2, \"quota\": 50000, \"period\": 100000, "
                       "\"cpus\": \"0-1\"}, \"pids\": {\"limit\": 0}, \"blockIO\": "
                       "{\"throttleReadBpsDevice\": [{\"major\": 7, \"minor\": 0, \"rate\": "
                       "1024}]}}}");
        assert_int_equal(parse(t, c, &err), 0);
        assert_int_equal(c->limits.memory, 1000000);
        assert_int_equal(c->limits.swap, 2000000); /* OCI's is memory + swap */
        assert_int_equal(c->limits.memory_soft, 500000);
        assert_int_equal(c->limits.cpu_weight, 1); /* shares 2: the lowest weight */
        assert_int_equal(c->limits.cpu_limit_milli, 500);
        assert_string_equal(c->limits.cpuset_cpus, "0-1");
        assert_true(c->limits.processes == UINT64_MAX); /* runc: 0 is no limit */
        assert_int_equal(c->limits.n_io, 1);
        assert_string_equal(c->limits.io[0].device, "7:0");
        vs_oci_config_free(c);
        free(t);
        /* 262144 shares: the highest weight */
        VsLimits l;
        vs_limits_init(&l);
        const char *r = "{\"cpu\": {\"shares\": 262144}, \"memory\": {\"limit\": -1}}";
        assert_int_equal(vs_oci_resources_parse(r, strlen(r), &l, &err), 0);
        assert_int_equal(l.cpu_weight, 10000);
        assert_true(l.memory == UINT64_MAX);
        const char *bad = "{\"memory\": {\"limit\": 100, \"swap\": 50}}";
        assert_int_equal(vs_oci_resources_parse(bad, strlen(bad), &l, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "swap"));
        free(c);
}

static void each_refusal_names_its_field(void **state)
{
        (void)state;
        static const struct {
                const char *insert, *words;
        } cases[] = {
            {",\"ociVersion\": \"0.9\"", "ociVersion"},
            {",\"hostname\": \"a b\"", "hostname"},
            {",\"linux\": {\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"mount\"}]}",
             "listed twice"},
            {",\"linux\": {\"namespaces\": [{\"type\": \"user\"}]}", "uidMappings"},
            {",\"linux\": {\"cgroupsPath\": \"/a/../b\"}", "cgroupsPath"},
            {",\"linux\": {\"maskedPaths\": [\"proc/kcore\"]}", "maskedPaths"},
            {",\"linux\": {\"sysctl\": {\"../x\": \"1\"}}", "sysctl"},
            {",\"linux\": {\"personality\": {\"domain\": \"BSD\"}}", "personality"},
            {",\"linux\": {\"devices\": [{\"path\": \"/dev/x\", \"type\": \"q\"}]}",
             "linux.devices[0].type"},
            {",\"linux\": {\"resources\": {\"devices\": [{\"allow\": true, \"access\": \"rwx\"}]}}",
             "access"},
            {",\"linux\": {\"timeOffsets\": {\"monotonic\": {\"secs\": 1}}}", "time namespace"},
            {",\"linux\": {\"mountLabel\": \"system_u\"}", "SELinux"},
            {",\"process\": {\"args\": [\"sh\"], \"apparmorProfile\": \"docker-default\"}",
             "AppArmor"},
            {",\"mounts\": [{\"destination\": \"/a/../b\", \"type\": \"tmpfs\"}]", ".."},
            {",\"mounts\": [{\"destination\": \"/a\", \"type\": \"bind\"}]", "source"},
            {",\"hooks\": {\"prestart\": [{\"path\": \"rel\"}]}", "hooks.prestart[0].path"},
            {",\"annotations\": {\"org.linux-vserver.limits.cpu.fill-rate\": \"1\"}",
             "go together"},
            {",\"annotations\": {\"a\": 1}", "annotations.a"},
        };
        VsOciConfig *c = calloc(1, sizeof *c);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                VsError err = {0};
                char *t = with(cases[i].insert);
                int r = parse(t, c, &err);
                if (r == 0 || !strstr(err.msg, cases[i].words))
                        fail_msg("case %zu: r=%d msg \"%s\" (want \"%s\")", i, r, err.msg,
                                 cases[i].words);
                assert_true(err.input);
                free(t);
        }
        VsError err = {0};
        assert_int_equal(vs_oci_config_parse("{", 1, c, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "not valid JSON"));
        assert_int_equal(vs_oci_config_parse("[]", 2, c, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "JSON object"));
        free(c);
}

static void later_keys_win_json_duplicates(void **state)
{
        (void)state;
        /* json-c keeps the last of duplicate keys: what runc's Go decoder does too */
        VsOciConfig *c = calloc(1, sizeof *c);
        VsError err = {0};
        char *t = with(",\"hostname\": \"one\", \"hostname\": \"two\"");
        assert_int_equal(parse(t, c, &err), 0);
        assert_string_equal(c->hostname, "two");
        vs_oci_config_free(c);
        free(t);
        free(c);
}

static void seccomp_profiles_compile_and_fail_closed(void **state)
{
        (void)state;
        VsOciConfig *c = calloc(1, sizeof *c);
        VsError err = {0};
        VsSeccomp *f = NULL;
        bool notify = false;
        char *t = with(",\"linux\": {\"namespaces\": [{\"type\": \"mount\"}], \"seccomp\": "
                       "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"architectures\": "
                       "[\"SCMP_ARCH_X86_64\"], \"syscalls\": [{\"names\": [\"read\", \"write\", "
                       "\"not_yet_a_call\"], \"action\": \"SCMP_ACT_ALLOW\"}, {\"names\": "
                       "[\"personality\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": "
                       "[{\"index\": 0, \"value\": 8, \"op\": \"SCMP_CMP_EQ\"}, {\"index\": 0, "
                       "\"value\": 0, \"op\": \"SCMP_CMP_EQ\"}]}]}}");
        assert_int_equal(parse(t, c, &err), 0);
        /* an unknown name in an allow rule: the default (deny) applies, fine */
        assert_int_equal(vs_oci_seccomp_build(c->seccomp, &f, &notify, &err), 0);
        assert_non_null(f);
        assert_false(notify);
        vs_seccomp_free(f);
        vs_oci_config_free(c);
        free(t);
        /* in a deny rule it would leave the call open: refused */
        t = with(",\"linux\": {\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", "
                 "\"syscalls\": [{\"names\": [\"not_yet_a_call\"], \"action\": "
                 "\"SCMP_ACT_ERRNO\"}]}}");
        assert_int_equal(parse(t, c, &err), 0);
        assert_int_equal(vs_oci_seccomp_build(c->seccomp, &f, &notify, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "not_yet_a_call"));
        vs_oci_config_free(c);
        free(t);
        /* one newer than libseccomp that we know the number of: a rule in front of it */
        t = with(",\"linux\": {\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", "
                 "\"syscalls\": [{\"names\": [\"lsm_set_self_attr\", \"mkdir\"], "
                 "\"action\": \"SCMP_ACT_ERRNO\"}]}}");
        assert_int_equal(parse(t, c, &err), 0);
        assert_int_equal(vs_oci_seccomp_build(c->seccomp, &f, &notify, &err), 0);
        const struct sock_filter *insns;
        unsigned short len;
        vs_seccomp_program(f, &insns, &len);
        assert_int_equal(insns[1].k, 460);
        assert_int_equal(insns[2].k, 460 | 0x40000000);
        vs_seccomp_free(f);
        vs_oci_config_free(c);
        free(t);
        t = with(",\"linux\": {\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", "
                 "\"syscalls\": [{\"names\": [\"mkdir\"], \"action\": \"SCMP_ACT_NOTIFY\"}]}}");
        assert_int_equal(parse(t, c, &err), 0);
        assert_int_equal(vs_oci_seccomp_build(c->seccomp, &f, &notify, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "listenerPath"));
        vs_oci_config_free(c);
        free(t);
        free(c);
}

static void process_file_and_vserver_annotations(void **state)
{
        (void)state;
        VsOciProcess p;
        struct json_object *j = NULL;
        VsError err = {0};
        const char *t = "{\"args\": [\"ls\"], \"cwd\": \"/tmp\", \"user\": {\"uid\": 5, "
                        "\"gid\": 6, \"additionalGids\": [7]}, \"capabilities\": {\"ambient\": "
                        "[\"CAP_KILL\"]}}";
        assert_int_equal(vs_oci_process_parse(t, strlen(t), &p, &j, &err), 0);
        assert_string_equal(p.args[0], "ls");
        assert_int_equal(p.uid, 5);
        assert_int_equal(p.groups[0], 7);
        assert_true(p.caps[VS_OCI_CAP_AMBIENT] == 1ULL << CAP_KILL);
        vs_oci_process_free(&p);
        json_object_put(j);
        const char *bad = "{\"args\": [\"ls\"], \"env\": [\"NOEQUALS\"]}";
        assert_int_equal(vs_oci_process_parse(bad, strlen(bad), &p, &j, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "NAME=VALUE"));

        VsOciConfig *c = calloc(1, sizeof *c);
        char *ct = with(",\"annotations\": {\"org.linux-vserver.limits.cpu.fill-rate\": \"1\", "
                        "\"org.linux-vserver.limits.cpu.interval\": \"4\", "
                        "\"org.linux-vserver.limits.processes\": \"77\", \"other\": \"x\"}");
        assert_int_equal(parse(ct, c, &err), 0);
        assert_int_equal(c->limits.fill_rate, 1);
        assert_int_equal(c->limits.interval, 4);
        assert_int_equal(c->limits.processes, 77);
        assert_true(c->has_resources);
        vs_oci_config_free(c);
        free(ct);
        free(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(default_specs_parse),
            cmocka_unit_test(mount_options_split_into_flags_data_propagation),
            cmocka_unit_test(resources_map_onto_limits),
            cmocka_unit_test(each_refusal_names_its_field),
            cmocka_unit_test(later_keys_win_json_duplicates),
            cmocka_unit_test(seccomp_profiles_compile_and_fail_closed),
            cmocka_unit_test(process_file_and_vserver_annotations),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
