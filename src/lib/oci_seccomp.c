/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * linux.seccomp of config.json through libseccomp, compiled in the parent
 * like our own filters.  Names libseccomp does not know: skipped in a rule
 * that allows (the default action then applies: it fails closed), refused in
 * a rule that denies (skipping it would leave the call open).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "oci_int.h"
#include "util.h"

typedef struct json_object Json;

static const struct {
        const char *name;
        uint32_t action; /* SCMP_ACT_ERRNO/TRACE take their value later */
} actions[] = {
    {"SCMP_ACT_KILL", SCMP_ACT_KILL},
    {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD},
    {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS},
    {"SCMP_ACT_TRAP", SCMP_ACT_TRAP},
    {"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0)},
    {"SCMP_ACT_TRACE", SCMP_ACT_TRACE(0)},
    {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW},
    {"SCMP_ACT_LOG", SCMP_ACT_LOG},
    {"SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY},
};

static const struct {
        const char *name;
        enum scmp_compare op;
} ops[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE},
    {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},
    {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

static const char *str(Json *o, const char *key)
{
        Json *v;
        return json_object_object_get_ex(o, key, &v) && json_object_get_type(v) == json_type_string
                   ? json_object_get_string(v)
                   : NULL;
}

/* The action @name, with the errno @ret_errno (or EPERM); -EINVAL naming @field. */
static int action(const char *name, Json *o, const char *errkey, uint32_t *ret, const char *field,
                  VsError *err)
{
        if (!name)
                return vs_error_input(err, "config.json: %s is missing (e.g. SCMP_ACT_ERRNO)",
                                      field);
        for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
                if (!streq(name, actions[i].name))
                        continue;
                Json *e;
                int64_t n = EPERM;
                if (o && json_object_object_get_ex(o, errkey, &e) && e) {
                        n = json_object_get_int64(e);
                        if (json_object_get_type(e) != json_type_int || n < 0 || n > 4095)
                                return vs_error_input(err,
                                                      "config.json: %s's %s must be an "
                                                      "errno from 0 to 4095",
                                                      field, errkey);
                }
                *ret = actions[i].action;
                if (*ret == SCMP_ACT_ERRNO(0))
                        *ret = SCMP_ACT_ERRNO((uint32_t)n);
                if (*ret == SCMP_ACT_TRACE(0))
                        *ret = SCMP_ACT_TRACE((uint32_t)n);
                return 0;
        }
        return vs_error_input(err,
                              "config.json: %s \"%s\" is not a seccomp action "
                              "(SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, ...)",
                              field, name);
}

static int parse_args(Json *args, struct scmp_arg_cmp *cmp, int *ret_n, bool *ret_same,
                      const char *field, VsError *err)
{
        size_t n = json_object_array_length(args);
        if (n > 6)
                return vs_error_input(err, "config.json: %s.args has %zu conditions (at most 6)",
                                      field, n);
        unsigned seen = 0;
        *ret_same = false;
        for (size_t i = 0; i < n; i++) {
                Json *a = json_object_array_get_idx(args, i), *v;
                if (!a || json_object_get_type(a) != json_type_object)
                        return vs_error_input(err, "config.json: %s.args[%zu] must be an object",
                                              field, i);
                int64_t index =
                    json_object_object_get_ex(a, "index", &v) ? json_object_get_int64(v) : -1;
                if (index < 0 || index > 5)
                        return vs_error_input(err,
                                              "config.json: %s.args[%zu].index must be 0 to "
                                              "5",
                                              field, i);
                const char *op = str(a, "op");
                size_t k = 0;
                while (op && k < ARRAY_SIZE(ops) && !streq(op, ops[k].name))
                        k++;
                if (!op || k == ARRAY_SIZE(ops))
                        return vs_error_input(err,
                                              "config.json: %s.args[%zu].op \"%s\" is not "
                                              "SCMP_CMP_EQ, _NE, _LT, _LE, _GE, _GT or "
                                              "_MASKED_EQ",
                                              field, i, op ? op : "");
                uint64_t value =
                    json_object_object_get_ex(a, "value", &v) ? json_object_get_uint64(v) : 0;
                uint64_t two =
                    json_object_object_get_ex(a, "valueTwo", &v) ? json_object_get_uint64(v) : 0;
                if (seen & (1u << index))
                        *ret_same = true;
                seen |= 1u << index;
                cmp[i] = (struct scmp_arg_cmp){
                    .arg = (unsigned)index, .op = ops[k].op, .datum_a = value, .datum_b = two};
        }
        *ret_n = (int)n;
        return 0;
}

/* Rules for calls newer than libseccomp, put in front of its program afterwards. */
typedef struct Newer {
        int nr[64];
        uint32_t ret[64];
        int n;
} Newer;

static int add_rules(scmp_filter_ctx ctx, Json *rule, uint32_t def, bool *ret_notify, Newer *nw,
                     const char *field, VsError *err)
{
        uint32_t act;
        int r = action(str(rule, "action"), rule, "errnoRet", &act, field, err);
        if (r < 0)
                return r;
        if (act == def)
                return 0; /* libseccomp refuses rules that repeat the default */
        if (act == SCMP_ACT_NOTIFY)
                *ret_notify = true;
        struct scmp_arg_cmp cmp[6];
        int n_cmp = 0;
        bool same = false;
        Json *a, *names;
        if (json_object_object_get_ex(rule, "args", &a) && a &&
            json_object_get_type(a) == json_type_array &&
            (r = parse_args(a, cmp, &n_cmp, &same, field, err)) < 0)
                return r;
        if (!json_object_object_get_ex(rule, "names", &names) || !names ||
            json_object_get_type(names) != json_type_array)
                return vs_error_input(err, "config.json: %s.names must list system calls", field);
        for (size_t i = 0; i < json_object_array_length(names); i++) {
                Json *e = json_object_array_get_idx(names, i);
                const char *name = e && json_object_get_type(e) == json_type_string
                                       ? json_object_get_string(e)
                                       : NULL;
                if (!name)
                        return vs_error_input(err, "config.json: %s.names[%zu] must be a string",
                                              field, i);
                int nr = seccomp_syscall_resolve_name(name);
                int newer = nr == __NR_SCMP_ERROR ? vs_seccomp_newer_nr(name) : -1;
                if (newer >= 0) {
                        bool seen = false;
                        for (int k = 0; k < nw->n; k++)
                                seen |= nw->nr[k] == newer;
                        if (n_cmp)
                                return vs_error_input(err,
                                                      "config.json: %s: the arguments of %s "
                                                      "cannot be filtered with this host's "
                                                      "libseccomp (drop args, or the call)",
                                                      field, name);
                        if (!seen && nw->n == (int)ARRAY_SIZE(nw->nr))
                                return vs_error_input(err, "config.json: %s: too many rules",
                                                      field);
                        if (!seen) {
                                nw->nr[nw->n] = newer;
                                nw->ret[nw->n++] = act;
                        }
                        continue;
                }
                if (nr == __NR_SCMP_ERROR) {
                        if (act == SCMP_ACT_ALLOW || act == SCMP_ACT_LOG)
                                continue;
                        return vs_error_input(err,
                                              "config.json: %s.names: \"%s\" is not a system call "
                                              "this host's libseccomp knows, so it cannot be "
                                              "denied (remove it or correct the name)",
                                              field, name);
                }
                if (same) {
                        /* one index twice: each condition its own rule (runc does the same) */
                        for (int k = 0; k < n_cmp && r >= 0; k++)
                                r = seccomp_rule_add_array(ctx, act, nr, 1, &cmp[k]);
                } else {
                        r = seccomp_rule_add_array(ctx, act, nr, (unsigned)n_cmp, cmp);
                }
                if (r < 0 && r != -EEXIST)
                        return vs_error(err, -r, "config.json: %s: add a rule for %s", field, name);
        }
        return 0;
}

int vs_oci_seccomp_build(Json *sc, VsSeccomp **ret, bool *ret_notify, VsError *err)
{
        *ret = NULL;
        *ret_notify = false;
        if (!sc)
                return 0;
        uint32_t def;
        int r = action(str(sc, "defaultAction"), sc, "defaultErrnoRet", &def,
                       "linux.seccomp.defaultAction", err);
        if (r < 0)
                return r;
        if (def == SCMP_ACT_NOTIFY)
                return vs_error_input(err, "config.json: linux.seccomp.defaultAction may not be "
                                           "SCMP_ACT_NOTIFY");
        scmp_filter_ctx ctx = seccomp_init(def);
        if (!ctx)
                return vs_error(err, ENOMEM, "seccomp_init");
        /* we load the program ourselves, after no_new_privs as the process asks for it */
        seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        Json *a;
        if (json_object_object_get_ex(sc, "architectures", &a) && a &&
            json_object_get_type(a) == json_type_array) {
                for (size_t i = 0; i < json_object_array_length(a); i++) {
                        Json *e = json_object_array_get_idx(a, i);
                        const char *name = e ? json_object_get_string(e) : NULL;
                        char low[32];
                        if (!name || strncmp(name, "SCMP_ARCH_", 10) != 0 ||
                            strlen(name + 10) >= sizeof low) {
                                seccomp_release(ctx);
                                return vs_error_input(err,
                                                      "config.json: "
                                                      "linux.seccomp.architectures[%zu] is "
                                                      "not SCMP_ARCH_...",
                                                      i);
                        }
                        size_t k = 0;
                        for (; name[10 + k]; k++)
                                low[k] = (char)tolower((unsigned char)name[10 + k]);
                        low[k] = '\0';
                        uint32_t arch = seccomp_arch_resolve_name(low);
                        if (!arch) {
                                seccomp_release(ctx);
                                return vs_error_input(err,
                                                      "config.json: "
                                                      "linux.seccomp.architectures: \"%s\" "
                                                      "is unknown",
                                                      name);
                        }
                        r = seccomp_arch_add(ctx, arch);
                        if (r < 0 && r != -EEXIST) {
                                seccomp_release(ctx);
                                return vs_error(err, -r, "seccomp: add %s", name);
                        }
                }
        }
        Json *flags;
        if (json_object_object_get_ex(sc, "flags", &flags) && flags &&
            json_object_get_type(flags) == json_type_array)
                for (size_t i = 0; i < json_object_array_length(flags); i++) {
                        const char *f = json_object_get_string(json_object_array_get_idx(flags, i));
                        if (f && streq(f, "SECCOMP_FILTER_FLAG_LOG"))
                                seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
                        else if (f && streq(f, "SECCOMP_FILTER_FLAG_SPEC_ALLOW"))
                                seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1);
                        else if (!f || !streq(f, "SECCOMP_FILTER_FLAG_TSYNC")) {
                                seccomp_release(ctx);
                                return vs_error_input(err,
                                                      "config.json: linux.seccomp.flags: "
                                                      "\"%s\" is not supported",
                                                      f ? f : "");
                        }
                }
        Json *rules;
        Newer nw = {.n = 0};
        if (json_object_object_get_ex(sc, "syscalls", &rules) && rules) {
                if (json_object_get_type(rules) != json_type_array) {
                        seccomp_release(ctx);
                        return vs_error_input(err, "config.json: linux.seccomp.syscalls must be "
                                                   "a list");
                }
                for (size_t i = 0; i < json_object_array_length(rules); i++) {
                        char field[48];
                        snprintf(field, sizeof field, "linux.seccomp.syscalls[%zu]", i);
                        Json *rule = json_object_array_get_idx(rules, i);
                        if (!rule || json_object_get_type(rule) != json_type_object)
                                r = vs_error_input(err, "config.json: %s must be an object", field);
                        else
                                r = add_rules(ctx, rule, def, ret_notify, &nw, field, err);
                        if (r < 0) {
                                seccomp_release(ctx);
                                return r;
                        }
                }
        }
        if (*ret_notify && !str(sc, "listenerPath")) {
                seccomp_release(ctx);
                return vs_error_input(err, "config.json: linux.seccomp uses SCMP_ACT_NOTIFY "
                                           "without a listenerPath to send the listener to");
        }
        r = vs_seccomp_compile(ctx, ret, err);
        if (r == 0 && (r = vs_seccomp_prepend(*ret, nw.nr, nw.ret, nw.n, err)) < 0) {
                vs_seccomp_free(*ret);
                *ret = NULL;
        }
        return r;
}
