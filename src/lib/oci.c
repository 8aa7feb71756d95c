/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "oci.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cgroup.h"
#include "parse.h"
#include "util.h"

/* config.json is at most this large (runc's own limit is none; a pod spec is a few KiB). */
#define MAX_CONFIG (4 << 20)

typedef struct json_object Json;

static const char *const ns_names[VS_OCI_NS_N] = {
    [VS_OCI_NS_USER] = "user",     [VS_OCI_NS_PID] = "pid",   [VS_OCI_NS_NET] = "network",
    [VS_OCI_NS_IPC] = "ipc",       [VS_OCI_NS_UTS] = "uts",   [VS_OCI_NS_MOUNT] = "mount",
    [VS_OCI_NS_CGROUP] = "cgroup", [VS_OCI_NS_TIME] = "time",
};
static const int ns_flags[VS_OCI_NS_N] = {
    [VS_OCI_NS_USER] = CLONE_NEWUSER,     [VS_OCI_NS_PID] = CLONE_NEWPID,
    [VS_OCI_NS_NET] = CLONE_NEWNET,       [VS_OCI_NS_IPC] = CLONE_NEWIPC,
    [VS_OCI_NS_UTS] = CLONE_NEWUTS,       [VS_OCI_NS_MOUNT] = CLONE_NEWNS,
    [VS_OCI_NS_CGROUP] = CLONE_NEWCGROUP, [VS_OCI_NS_TIME] = CLONE_NEWTIME,
};
static const char *const hook_names[VS_OCI_HOOK_N] = {
    [VS_OCI_HOOK_PRESTART] = "prestart",
    [VS_OCI_HOOK_CREATE_RUNTIME] = "createRuntime",
    [VS_OCI_HOOK_CREATE_CONTAINER] = "createContainer",
    [VS_OCI_HOOK_START_CONTAINER] = "startContainer",
    [VS_OCI_HOOK_POSTSTART] = "poststart",
    [VS_OCI_HOOK_POSTSTOP] = "poststop",
};

const char *vs_oci_ns_name(VsOciNsType t)
{
        return t < VS_OCI_NS_N ? ns_names[t] : "?";
}

int vs_oci_ns_clone_flag(VsOciNsType t)
{
        return t < VS_OCI_NS_N ? ns_flags[t] : 0;
}

const char *vs_oci_hook_name(VsOciHookKind k)
{
        return k < VS_OCI_HOOK_N ? hook_names[k] : "?";
}

/* ---- typed access: 0 absent (or null), 1 present, -EINVAL wrong type (named) ---- */

static const char *type_word(json_type t)
{
        switch (t) {
        case json_type_string:
                return "a string";
        case json_type_int:
                return "a number";
        case json_type_boolean:
                return "true or false";
        case json_type_array:
                return "a list";
        case json_type_object:
                return "an object";
        default:
                return "a value";
        }
}

static int member(Json *o, const char *key, json_type want, Json **ret, const char *field,
                  VsError *err)
{
        Json *v = NULL;
        *ret = NULL;
        if (!o || !json_object_object_get_ex(o, key, &v) || !v)
                return 0;
        json_type t = json_object_get_type(v);
        if (t == json_type_null)
                return 0;
        if (t != want && !(want == json_type_int && t == json_type_double))
                return vs_error_input(err, "config.json: %s%s%s must be %s", field,
                                      field[0] ? "." : "", key, type_word(want));
        *ret = v;
        return 1;
}

static int get_str(Json *o, const char *key, const char **ret, const char *field, VsError *err)
{
        Json *v;
        int r = member(o, key, json_type_string, &v, field, err);
        if (r > 0) {
                *ret = json_object_get_string(v);
                if (strlen(*ret) != (size_t)json_object_get_string_len(v))
                        return vs_error_input(err, "config.json: %s.%s holds a NUL byte", field,
                                              key);
        }
        return r;
}

static int get_bool(Json *o, const char *key, bool *ret, const char *field, VsError *err)
{
        Json *v;
        int r = member(o, key, json_type_boolean, &v, field, err);
        if (r > 0)
                *ret = json_object_get_boolean(v);
        return r;
}

/* An integer in [lo, hi]; fractions and out-of-range values are refused. */
static int get_int(Json *o, const char *key, int64_t lo, int64_t hi, int64_t *ret,
                   const char *field, VsError *err)
{
        Json *v;
        int r = member(o, key, json_type_int, &v, field, err);
        if (r <= 0)
                return r;
        errno = 0;
        int64_t n;
        if (json_object_get_type(v) == json_type_double) {
                double d = json_object_get_double(v);
                if (d != d || d < (double)lo || d > (double)hi || d != (double)(int64_t)d)
                        goto range;
                n = (int64_t)d;
        } else {
                n = json_object_get_int64(v);
                /* json-c saturates: a uint64 above INT64_MAX reads as INT64_MAX */
                if (n == INT64_MAX && hi == INT64_MAX && json_object_get_uint64(v) > INT64_MAX)
                        goto range;
        }
        if (n < lo || n > hi)
                goto range;
        *ret = n;
        return 1;
range:
        return vs_error_input(
            err, "config.json: %s.%s must be a whole number from %" PRId64 " to %" PRId64, field,
            key, lo, hi);
}

/* A list of strings, NULL-terminated, allocated (the strings stay in the JSON). */
static int get_strv(Json *o, const char *key, char ***ret, const char *field, VsError *err)
{
        Json *a;
        *ret = NULL;
        int r = member(o, key, json_type_array, &a, field, err);
        if (r <= 0)
                return r;
        size_t n = json_object_array_length(a);
        if (n > VS_OCI_MAX_ARGS)
                return vs_error_input(err, "config.json: %s.%s has %zu entries (at most %d)", field,
                                      key, n, VS_OCI_MAX_ARGS);
        char **v = calloc(n + 1, sizeof *v);
        if (!v)
                return vs_error(err, ENOMEM, "config.json");
        for (size_t i = 0; i < n; i++) {
                Json *e = json_object_array_get_idx(a, i);
                if (!e || json_object_get_type(e) != json_type_string ||
                    strlen(json_object_get_string(e)) != (size_t)json_object_get_string_len(e)) {
                        free(v);
                        return vs_error_input(err,
                                              "config.json: %s.%s[%zu] must be a string without "
                                              "NUL bytes",
                                              field, key, i);
                }
                v[i] = (char *)(uintptr_t)json_object_get_string(e);
        }
        *ret = v;
        return 1;
}

/* A fixed-size list of strings. */
static int get_list(Json *o, const char *key, const char **out, int max, int *ret_n,
                    const char *field, VsError *err)
{
        char **v;
        int r = get_strv(o, key, &v, field, err);
        if (r <= 0)
                return r;
        int n = 0;
        for (; v[n]; n++) {
                if (n == max) {
                        free(v);
                        return vs_error_input(err, "config.json: %s.%s has more than %d entries",
                                              field, key, max);
                }
                out[n] = v[n];
        }
        free(v);
        *ret_n = n;
        return 1;
}

/* A whole JSON document (@what names it in errors); trailing whitespace only. */
static int parse_json(const char *text, size_t len, const char *what, Json **ret, VsError *err)
{
        *ret = NULL;
        if (len > MAX_CONFIG)
                return vs_error_input(err, "%s: larger than %d MiB", what, MAX_CONFIG >> 20);
        json_tokener *tok = json_tokener_new_ex(64);
        if (!tok)
                return vs_error(err, ENOMEM, "%s", what);
        Json *j = json_tokener_parse_ex(tok, text, (int)len);
        enum json_tokener_error je = json_tokener_get_error(tok);
        size_t end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        while (j && end < len && strchr(" \t\r\n", text[end]))
                end++;
        if (!j || je != json_tokener_success || end != len) {
                json_object_put(j);
                return vs_error_input(err, "%s: not valid JSON (%s)", what,
                                      je != json_tokener_success ? json_tokener_error_desc(je)
                                                                 : "text after the object");
        }
        if (json_object_get_type(j) != json_type_object) {
                json_object_put(j);
                return vs_error_input(err, "%s: must be a JSON object", what);
        }
        *ret = j;
        return 0;
}

/* ---- process ---- */

static int parse_caps(Json *caps, VsCaps out[5], VsError *err)
{
        static const char *const sets[5] = {"bounding", "effective", "inheritable", "permitted",
                                            "ambient"};
        for (int s = 0; s < 5; s++) {
                char **names;
                char field[64];
                out[s] = 0;
                int r = get_strv(caps, sets[s], &names, "process.capabilities", err);
                if (r < 0)
                        return r;
                for (int i = 0; r > 0 && names[i]; i++) {
                        VsCaps c;
                        snprintf(field, sizeof field, "process.capabilities.%s", sets[s]);
                        if (strncasecmp(names[i], "CAP_", 4) != 0 ||
                            vs_caps_from_name(names[i], &c) < 0 || streq(names[i] + 4, "ALL")) {
                                vs_error_input(err,
                                               "config.json: %s: unknown capability \"%s\" (names "
                                               "as in capabilities(7), e.g. CAP_NET_BIND_SERVICE)",
                                               field, names[i]);
                                free(names);
                                return -EINVAL;
                        }
                        out[s] |= c;
                }
                free(names);
        }
        return 0;
}

static int parse_rlimits(Json *a, VsOciProcess *p, VsError *err)
{
        size_t n = json_object_array_length(a);
        if (n > VS_OCI_MAX_RLIMITS)
                return vs_error_input(err,
                                      "config.json: process.rlimits has %zu entries (at most "
                                      "%d)",
                                      n, VS_OCI_MAX_RLIMITS);
        for (size_t i = 0; i < n; i++) {
                Json *e = json_object_array_get_idx(a, i);
                const char *type = NULL;
                int64_t soft = 0, hard = 0;
                char field[48];
                snprintf(field, sizeof field, "process.rlimits[%zu]", i);
                if (!e || json_object_get_type(e) != json_type_object)
                        return vs_error_input(err, "config.json: %s must be an object", field);
                int r = get_str(e, "type", &type, field, err);
                if (r == 0)
                        return vs_error_input(err, "config.json: %s.type is missing", field);
                if (r > 0)
                        r = get_int(e, "soft", 0, INT64_MAX, &soft, field, err);
                if (r >= 0)
                        r = get_int(e, "hard", 0, INT64_MAX, &hard, field, err);
                if (r < 0)
                        return r;
                int res = strncmp(type, "RLIMIT_", 7) == 0 ? vs_rlimit_from_name(type + 7) : -1;
                if (res < 0)
                        return vs_error_input(err,
                                              "config.json: %s.type \"%s\" is not a resource "
                                              "(RLIMIT_NOFILE, RLIMIT_NPROC, ... as in "
                                              "getrlimit(2))",
                                              field, type);
                if (soft > hard)
                        return vs_error_input(
                            err, "config.json: %s: soft %" PRId64 " is above hard %" PRId64, field,
                            soft, hard);
                for (int j = 0; j < p->n_rlimits; j++)
                        if (p->rlimits[j].resource == res)
                                return vs_error_input(err, "config.json: %s: %s given twice", field,
                                                      type);
                p->rlimits[p->n_rlimits++] = (VsRlimit){
                    .resource = res,
                    .limit = {.rlim_cur = soft == INT64_MAX ? RLIM_INFINITY : (rlim_t)soft,
                              .rlim_max = hard == INT64_MAX ? RLIM_INFINITY : (rlim_t)hard},
                };
        }
        return 0;
}

static int parse_process(Json *o, VsOciProcess *p, VsError *err)
{
        Json *v;
        int64_t n;
        int r;
        *p = (VsOciProcess){.cwd = "/"};
        r = get_bool(o, "terminal", &p->terminal, "process", err);
        if (r >= 0 && (r = member(o, "consoleSize", json_type_object, &v, "process", err)) > 0) {
                r = get_int(v, "height", 0, 65535, &n, "process.consoleSize", err);
                p->console_rows = r > 0 ? (unsigned)n : 0;
                if (r >= 0)
                        r = get_int(v, "width", 0, 65535, &n, "process.consoleSize", err);
                p->console_cols = r > 0 ? (unsigned)n : 0;
        }
        if (r < 0)
                return r;
        r = member(o, "user", json_type_object, &v, "process", err);
        if (r < 0)
                return r;
        if (r > 0) {
                Json *g;
                if ((r = get_int(v, "uid", 0, UINT32_MAX - 1, &n, "process.user", err)) < 0)
                        return r;
                p->uid = r ? (uid_t)n : 0;
                if ((r = get_int(v, "gid", 0, UINT32_MAX - 1, &n, "process.user", err)) < 0)
                        return r;
                p->gid = r ? (gid_t)n : 0;
                if ((r = get_int(v, "umask", 0, 0777, &n, "process.user", err)) < 0)
                        return r;
                p->has_umask = r > 0;
                p->umask = r ? (mode_t)n : 022;
                if ((r = member(v, "additionalGids", json_type_array, &g, "process.user", err)) < 0)
                        return r;
                for (size_t i = 0; r > 0 && i < json_object_array_length(g); i++) {
                        Json *e = json_object_array_get_idx(g, i);
                        int64_t id = e && json_object_get_type(e) == json_type_int
                                         ? json_object_get_int64(e)
                                         : -1;
                        if (id < 0 || id >= UINT32_MAX)
                                return vs_error_input(err,
                                                      "config.json: "
                                                      "process.user.additionalGids[%zu] must "
                                                      "be a group id",
                                                      i);
                        if (p->n_groups == VS_OCI_MAX_GROUPS)
                                return vs_error_input(err,
                                                      "config.json: process.user.additionalGids "
                                                      "has more than %d entries",
                                                      VS_OCI_MAX_GROUPS);
                        p->groups[p->n_groups++] = (gid_t)id;
                }
                const char *name;
                if (get_str(v, "username", &name, "process.user", err) > 0)
                        return vs_error_input(err, "config.json: process.user.username is for "
                                                   "Windows (give uid and gid)");
        }
        if ((r = get_strv(o, "args", &p->args, "process", err)) < 0)
                return r;
        if (!p->args || !p->args[0] || !p->args[0][0])
                return vs_error_input(err, "config.json: process.args must name the program to "
                                           "run (e.g. [\"/bin/sh\"])");
        if ((r = get_strv(o, "env", &p->env, "process", err)) < 0)
                return r;
        for (int i = 0; p->env && p->env[i]; i++)
                if (!strchr(p->env[i], '='))
                        return vs_error_input(err,
                                              "config.json: process.env[%d] \"%s\" is not "
                                              "NAME=VALUE",
                                              i, p->env[i]);
        if ((r = get_str(o, "cwd", &p->cwd, "process", err)) < 0)
                return r;
        if (p->cwd[0] != '/')
                return vs_error_input(err,
                                      "config.json: process.cwd \"%s\" must be an absolute "
                                      "path",
                                      p->cwd);
        if ((r = member(o, "capabilities", json_type_object, &v, "process", err)) < 0)
                return r;
        if (r > 0 && (r = parse_caps(v, p->caps, err)) < 0)
                return r;
        if ((r = member(o, "rlimits", json_type_array, &v, "process", err)) < 0)
                return r;
        if (r > 0 && (r = parse_rlimits(v, p, err)) < 0)
                return r;
        if ((r = get_bool(o, "noNewPrivileges", &p->no_new_privs, "process", err)) < 0)
                return r;
        if ((r = get_int(o, "oomScoreAdj", -1000, 1000, &n, "process", err)) < 0)
                return r;
        p->has_oom_score_adj = r > 0;
        p->oom_score_adj = r > 0 ? (int)n : 0;
        const char *s;
        /* LSMs this host does not run: crun refuses a label it cannot apply, we do too */
        if ((r = get_str(o, "selinuxLabel", &s, "process", err)) < 0)
                return r;
        if (r > 0 && s[0])
                return vs_error_input(err, "config.json: process.selinuxLabel: SELinux is not "
                                           "enabled on this host (remove the label)");
        if ((r = get_str(o, "apparmorProfile", &s, "process", err)) < 0)
                return r;
        if (r > 0 && s[0] && !streq(s, "unconfined"))
                return vs_error_input(err, "config.json: process.apparmorProfile: AppArmor is not "
                                           "enabled on this host (remove the profile)");
        return 0;
}

VsCred vs_oci_cred(const VsOciProcess *p)
{
        return (VsCred){.uid = p->uid,
                        .gid = p->gid,
                        .groups = p->groups,
                        .n_groups = p->n_groups,
                        .bounding = p->caps[VS_OCI_CAP_BOUNDING],
                        .effective = p->caps[VS_OCI_CAP_EFFECTIVE],
                        .inheritable = p->caps[VS_OCI_CAP_INHERITABLE],
                        .permitted = p->caps[VS_OCI_CAP_PERMITTED],
                        .ambient = p->caps[VS_OCI_CAP_AMBIENT]};
}

void vs_oci_process_free(VsOciProcess *p)
{
        free(p->args);
        free(p->env);
        p->args = p->env = NULL;
}

int vs_oci_process_parse(const char *text, size_t len, VsOciProcess *ret, Json **ret_json,
                         VsError *err)
{
        *ret = (VsOciProcess){0};
        Json *j;
        int r = parse_json(text, len, "process.json", &j, err);
        if (r < 0)
                return r;
        r = parse_process(j, ret, err);
        if (r < 0) {
                vs_oci_process_free(ret);
                json_object_put(j);
                return r;
        }
        *ret_json = j;
        return 0;
}

/* ---- mounts ---- */

static const struct {
        const char *name;
        unsigned long set, clear;
} mount_flags[] = {
    {"ro", MS_RDONLY, 0},
    {"rw", 0, MS_RDONLY},
    {"nosuid", MS_NOSUID, 0},
    {"suid", 0, MS_NOSUID},
    {"nodev", MS_NODEV, 0},
    {"dev", 0, MS_NODEV},
    {"noexec", MS_NOEXEC, 0},
    {"exec", 0, MS_NOEXEC},
    {"sync", MS_SYNCHRONOUS, 0},
    {"async", 0, MS_SYNCHRONOUS},
    {"dirsync", MS_DIRSYNC, 0},
    {"mand", MS_MANDLOCK, 0},
    {"nomand", 0, MS_MANDLOCK},
    {"noatime", MS_NOATIME, 0},
    {"atime", 0, MS_NOATIME},
    {"nodiratime", MS_NODIRATIME, 0},
    {"diratime", 0, MS_NODIRATIME},
    {"relatime", MS_RELATIME, 0},
    {"norelatime", 0, MS_RELATIME},
    {"strictatime", MS_STRICTATIME, 0},
    {"nostrictatime", 0, MS_STRICTATIME},
    {"nosymfollow", MS_NOSYMFOLLOW, 0},
    {"symfollow", 0, MS_NOSYMFOLLOW},
    {"remount", MS_REMOUNT, 0},
    {"defaults", 0, 0},
};

static const struct {
        const char *name;
        unsigned long flags;
} propagations[] = {
    {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
    {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

static unsigned long propagation(const char *s)
{
        for (size_t i = 0; i < ARRAY_SIZE(propagations); i++)
                if (streq(s, propagations[i].name))
                        return propagations[i].flags;
        return 0;
}

static int parse_idmaps(Json *o, const char *key, VsOciIdMap *out, int *ret_n, const char *field,
                        VsError *err)
{
        Json *a;
        int r = member(o, key, json_type_array, &a, field, err);
        if (r <= 0)
                return r;
        size_t n = json_object_array_length(a);
        if (n > VS_OCI_MAX_IDMAPS)
                return vs_error_input(err, "config.json: %s.%s has %zu ranges (at most %d)", field,
                                      key, n, VS_OCI_MAX_IDMAPS);
        for (size_t i = 0; i < n; i++) {
                Json *e = json_object_array_get_idx(a, i);
                char f[64];
                int64_t c, h, s;
                snprintf(f, sizeof f, "%s.%s[%zu]", field, key, i);
                if (!e || json_object_get_type(e) != json_type_object)
                        return vs_error_input(err, "config.json: %s must be an object", f);
                if ((r = get_int(e, "containerID", 0, UINT32_MAX - 1, &c, f, err)) <= 0 ||
                    (r = get_int(e, "hostID", 0, UINT32_MAX - 1, &h, f, err)) <= 0 ||
                    (r = get_int(e, "size", 1, UINT32_MAX, &s, f, err)) <= 0)
                        return r < 0 ? r
                                     : vs_error_input(err,
                                                      "config.json: %s needs containerID, hostID "
                                                      "and size",
                                                      f);
                if (c + s > (int64_t)UINT32_MAX || h + s > (int64_t)UINT32_MAX)
                        return vs_error_input(err, "config.json: %s runs past id 4294967294", f);
                out[i] = (VsOciIdMap){(unsigned)c, (unsigned)h, (unsigned)s};
        }
        *ret_n = (int)n;
        return 1;
}

/* Paths inside the container: absolute, no ".." (resolved in the root anyway). */
static int check_inner_path(const char *p, const char *field, VsError *err)
{
        if (p[0] != '/')
                return vs_error_input(err, "config.json: %s \"%s\" must be an absolute path", field,
                                      p);
        for (const char *s = p; *s;) {
                size_t n = strcspn(s, "/");
                if (n == 2 && s[0] == '.' && s[1] == '.')
                        return vs_error_input(err, "config.json: %s \"%s\" may not contain ..",
                                              field, p);
                s += n;
                s += strspn(s, "/");
        }
        return 0;
}

static int parse_mount(Json *e, VsOciMount *m, const char *f, VsError *err)
{
        int r;
        *m = (VsOciMount){.type = ""};
        if (!e || json_object_get_type(e) != json_type_object)
                return vs_error_input(err, "config.json: %s must be an object", f);
        if ((r = get_str(e, "destination", &m->destination, f, err)) <= 0)
                return r < 0 ? r : vs_error_input(err, "config.json: %s.destination is missing", f);
        char df[80];
        snprintf(df, sizeof df, "%s.destination", f);
        if ((r = check_inner_path(m->destination, df, err)) < 0)
                return r;
        if ((r = get_str(e, "type", &m->type, f, err)) < 0 ||
            (r = get_str(e, "source", &m->source, f, err)) < 0)
                return r;
        char **opts;
        if ((r = get_strv(e, "options", &opts, f, err)) < 0)
                return r;
        size_t dl = 0;
        for (int i = 0; opts && opts[i]; i++) {
                const char *o = opts[i];
                unsigned long pr = propagation(o);
                bool known = true;
                if (pr) {
                        m->propagate = pr;
                } else if (streq(o, "bind") || streq(o, "rbind")) {
                        m->bind = true;
                        m->recursive = o[0] == 'r';
                } else if (streq(o, "idmap") || streq(o, "ridmap")) {
                        m->idmap = true;
                        m->recursive |= o[0] == 'r';
                } else if (streq(o, "tmpcopyup")) {
                        m->tmpcopyup = true;
                } else {
                        known = false;
                        for (size_t k = 0; k < ARRAY_SIZE(mount_flags); k++)
                                if (streq(o, mount_flags[k].name)) {
                                        m->flags =
                                            (m->flags & ~mount_flags[k].clear) | mount_flags[k].set;
                                        m->clear =
                                            (m->clear & ~mount_flags[k].set) | mount_flags[k].clear;
                                        known = true;
                                }
                }
                if (known)
                        continue;
                /* a filesystem's own option, handed to it (e.g. mode=755, size=65536k) */
                size_t ol = strlen(o);
                if (!o[0] || strchr(o, ',') || dl + ol + 2 > sizeof m->data) {
                        free(opts);
                        return vs_error_input(err,
                                              "config.json: %s.options: \"%s\" is empty, "
                                              "holds a comma or makes the options too long",
                                              f, o);
                }
                if (dl)
                        m->data[dl++] = ',';
                memcpy(m->data + dl, o, ol + 1);
                dl += ol;
        }
        free(opts);
        if (streq(m->type, "bind"))
                m->bind = true;
        if (!m->bind && !m->type[0])
                return vs_error_input(err,
                                      "config.json: %s.type is missing (e.g. \"tmpfs\", or "
                                      "\"bind\" with options [\"rbind\"])",
                                      f);
        if (m->bind && (!m->source || !m->source[0]))
                return vs_error_input(err, "config.json: %s.source: a bind mount needs one", f);
        if ((r = parse_idmaps(e, "uidMappings", m->uid_map, &m->n_uid_map, f, err)) < 0 ||
            (r = parse_idmaps(e, "gidMappings", m->gid_map, &m->n_gid_map, f, err)) < 0)
                return r;
        if ((m->n_uid_map || m->n_gid_map) && !m->idmap)
                m->idmap = true;
        if (m->idmap && !m->bind)
                return vs_error_input(err, "config.json: %s: idmap works on bind mounts only", f);
        return 0;
}

/* ---- linux ---- */

static int parse_namespaces(Json *a, VsOciConfig *c, VsError *err)
{
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                Json *e = json_object_array_get_idx(a, i);
                char f[48];
                const char *type = NULL, *path = NULL;
                snprintf(f, sizeof f, "linux.namespaces[%zu]", i);
                if (!e || json_object_get_type(e) != json_type_object)
                        return vs_error_input(err, "config.json: %s must be an object", f);
                int r = get_str(e, "type", &type, f, err);
                if (r == 0)
                        return vs_error_input(err, "config.json: %s.type is missing", f);
                if (r < 0 || (r = get_str(e, "path", &path, f, err)) < 0)
                        return r;
                int t = 0;
                while (t < VS_OCI_NS_N && !streq(ns_names[t], type))
                        t++;
                if (t == VS_OCI_NS_N)
                        return vs_error_input(err,
                                              "config.json: %s.type \"%s\" is not a namespace "
                                              "(pid, network, mount, ipc, uts, user, cgroup, time)",
                                              f, type);
                if (c->ns[t].set)
                        return vs_error_input(err,
                                              "config.json: %s: the %s namespace is listed "
                                              "twice",
                                              f, type);
                if (path && path[0] != '/')
                        return vs_error_input(err, "config.json: %s.path \"%s\" must be absolute",
                                              f, path);
                c->ns[t] = (VsOciNs){.set = true, .path = path && path[0] ? path : NULL};
        }
        return 0;
}

static int parse_devices(Json *a, VsOciConfig *c, VsError *err)
{
        size_t n = json_object_array_length(a);
        if (n > VS_OCI_MAX_DEVICES)
                return vs_error_input(err,
                                      "config.json: linux.devices has %zu entries (at most "
                                      "%d)",
                                      n, VS_OCI_MAX_DEVICES);
        for (size_t i = 0; i < n; i++) {
                Json *e = json_object_array_get_idx(a, i);
                VsOciDevice *d = &c->devices[c->n_devices];
                char f[48];
                const char *type = NULL;
                int64_t v;
                int r;
                snprintf(f, sizeof f, "linux.devices[%zu]", i);
                *d = (VsOciDevice){0};
                if (!e || json_object_get_type(e) != json_type_object)
                        return vs_error_input(err, "config.json: %s must be an object", f);
                if ((r = get_str(e, "path", &d->path, f, err)) <= 0 ||
                    (r = get_str(e, "type", &type, f, err)) <= 0)
                        return r < 0
                                   ? r
                                   : vs_error_input(err, "config.json: %s needs path and type", f);
                if ((r = check_inner_path(d->path, f, err)) < 0)
                        return r;
                if (strlen(type) != 1 || !strchr("cbpu", type[0]))
                        return vs_error_input(err,
                                              "config.json: %s.type \"%s\" is not c, b, u or "
                                              "p",
                                              f, type);
                d->type = type[0] == 'u' ? 'c' : type[0];
                if ((r = get_int(e, "major", 0, 4095, &v, f, err)) < 0)
                        return r;
                d->major = r ? (unsigned)v : 0;
                if ((r = get_int(e, "minor", 0, 1048575, &v, f, err)) < 0)
                        return r;
                d->minor = r ? (unsigned)v : 0;
                if (d->type != 'p' && !r)
                        return vs_error_input(err, "config.json: %s needs major and minor", f);
                if ((r = get_int(e, "fileMode", 0, 07777, &v, f, err)) < 0)
                        return r;
                d->mode = r ? (mode_t)v : 0666;
                if ((r = get_int(e, "uid", 0, UINT32_MAX - 1, &v, f, err)) < 0)
                        return r;
                d->uid = r ? (uid_t)v : 0;
                if ((r = get_int(e, "gid", 0, UINT32_MAX - 1, &v, f, err)) < 0)
                        return r;
                d->gid = r ? (gid_t)v : 0;
                c->n_devices++;
        }
        return 0;
}

static int parse_dev_rules(Json *a, VsOciConfig *c, VsError *err)
{
        size_t n = json_object_array_length(a);
        if (n > VS_OCI_MAX_DEV_RULE)
                return vs_error_input(err,
                                      "config.json: linux.resources.devices has %zu rules "
                                      "(at most %d)",
                                      n, VS_OCI_MAX_DEV_RULE);
        for (size_t i = 0; i < n; i++) {
                Json *e = json_object_array_get_idx(a, i);
                VsOciDevRule *d = &c->dev_rules[i];
                char f[64];
                const char *type = "a", *access = "rwm";
                int64_t v;
                int r;
                snprintf(f, sizeof f, "linux.resources.devices[%zu]", i);
                if (!e || json_object_get_type(e) != json_type_object)
                        return vs_error_input(err, "config.json: %s must be an object", f);
                if ((r = get_bool(e, "allow", &d->allow, f, err)) <= 0)
                        return r < 0 ? r
                                     : vs_error_input(err, "config.json: %s.allow is missing", f);
                if ((r = get_str(e, "type", &type, f, err)) < 0 ||
                    (r = get_str(e, "access", &access, f, err)) < 0)
                        return r;
                if (strlen(type) != 1 || !strchr("acb", type[0]))
                        return vs_error_input(err, "config.json: %s.type \"%s\" is not a, c or b",
                                              f, type);
                d->type = type[0];
                if (strlen(access) > 3 || strspn(access, "rwm") != strlen(access))
                        return vs_error_input(err,
                                              "config.json: %s.access \"%s\" is not made of "
                                              "r, w and m",
                                              f, access);
                snprintf(d->access, sizeof d->access, "%s", access);
                d->major = d->minor = -1;
                if ((r = get_int(e, "major", -1, 4095, &v, f, err)) < 0)
                        return r;
                if (r)
                        d->major = (long)v;
                if ((r = get_int(e, "minor", -1, 1048575, &v, f, err)) < 0)
                        return r;
                if (r)
                        d->minor = (long)v;
        }
        c->n_dev_rules = (int)n;
        return 0;
}

/* blockIO throttle lists: [{major, minor, rate}] into @l's io limits. */
static int parse_throttle(Json *bio, const char *key, VsIoKind kind, VsLimits *l, VsError *err)
{
        Json *a;
        int r = member(bio, key, json_type_array, &a, "linux.resources.blockIO", err);
        for (size_t i = 0; r > 0 && i < json_object_array_length(a); i++) {
                Json *e = json_object_array_get_idx(a, i);
                char f[96], dev[32];
                int64_t maj, min, rate;
                snprintf(f, sizeof f, "linux.resources.blockIO.%s[%zu]", key, i);
                if (!e || json_object_get_type(e) != json_type_object)
                        return vs_error_input(err, "config.json: %s must be an object", f);
                if ((r = get_int(e, "major", 0, 4095, &maj, f, err)) <= 0 ||
                    (r = get_int(e, "minor", 0, 1048575, &min, f, err)) <= 0 ||
                    (r = get_int(e, "rate", 0, INT64_MAX, &rate, f, err)) <= 0)
                        return r < 0 ? r
                                     : vs_error_input(err,
                                                      "config.json: %s needs major, minor "
                                                      "and rate",
                                                      f);
                snprintf(dev, sizeof dev, "%" PRId64 ":%" PRId64, maj, min);
                int k = 0;
                while (k < l->n_io && !streq(l->io[k].device, dev))
                        k++;
                if (k == l->n_io) {
                        if (l->n_io == VS_LIMITS_MAX_IO)
                                return vs_error_input(err, "config.json: %s: more than %d devices",
                                                      f, VS_LIMITS_MAX_IO);
                        snprintf(l->io[k].device, sizeof l->io[k].device, "%s", dev);
                        for (int j = 0; j < VS_IO_KINDS; j++)
                                l->io[k].value[j] = VS_UNLIMITED;
                        l->n_io++;
                }
                l->io[k].value[kind] = rate ? (uint64_t)rate : VS_UNLIMITED;
        }
        return r < 0 ? r : 0;
}

/* OCI amounts: -1 (or absent) is no limit. */
static int get_limit(Json *o, const char *key, uint64_t *ret, const char *field, VsError *err)
{
        int64_t v;
        int r = get_int(o, key, -1, INT64_MAX, &v, field, err);
        if (r > 0)
                *ret = v < 0 ? VS_UNLIMITED : (uint64_t)v;
        return r;
}

static int parse_resources_obj(Json *res, VsLimits *l, VsError *err)
{
        Json *o;
        int64_t v;
        int r;
        if ((r = member(res, "memory", json_type_object, &o, "linux.resources", err)) < 0)
                return r;
        if (r > 0) {
                static const char f[] = "linux.resources.memory";
                uint64_t swap = VS_UNLIMITED;
                int rs;
                if ((r = get_limit(o, "limit", &l->memory, f, err)) < 0 ||
                    (r = get_limit(o, "reservation", &l->memory_soft, f, err)) < 0 ||
                    (rs = get_limit(o, "swap", &swap, f, err)) < 0)
                        return r < 0 ? r : rs;
                /* OCI's swap is memory + swap (memory.memsw); ours is the swap on top */
                if (rs > 0 && swap != VS_UNLIMITED) {
                        if (l->memory == VS_UNLIMITED || swap < l->memory)
                                return vs_error_input(err,
                                                      "config.json: %s.swap (memory plus "
                                                      "swap) needs a limit no larger than it",
                                                      f);
                        l->swap = swap - l->memory;
                } else if (rs > 0) {
                        l->swap = VS_UNLIMITED;
                }
                bool b;
                if ((r = get_int(o, "kernel", -1, INT64_MAX, &v, f, err)) < 0 ||
                    (r = get_int(o, "kernelTCP", -1, INT64_MAX, &v, f, err)) < 0 ||
                    (r = get_int(o, "swappiness", 0, 100, &v, f, err)) < 0 ||
                    (r = get_bool(o, "disableOOMKiller", &b, f, err)) < 0)
                        return r;
        }
        if ((r = member(res, "cpu", json_type_object, &o, "linux.resources", err)) < 0)
                return r;
        if (r > 0) {
                static const char f[] = "linux.resources.cpu";
                int64_t quota = -1, period = 100000;
                const char *s;
                if ((r = get_int(o, "shares", 0, 262144, &v, f, err)) < 0)
                        return r;
                /* crun's mapping of shares (2..262144) onto cpu.weight (1..10000) */
                if (r > 0 && v > 0)
                        l->cpu_weight = (unsigned)(1 + ((v < 2 ? 2 : v) - 2) * 9999 / 262142);
                if ((r = get_int(o, "quota", -1, INT64_MAX, &quota, f, err)) < 0 ||
                    (r = get_int(o, "period", 1000, 1000000, &period, f, err)) < 0 ||
                    (r = get_int(o, "burst", 0, INT64_MAX, &v, f, err)) < 0 ||
                    (r = get_int(o, "realtimeRuntime", -1, INT64_MAX, &v, f, err)) < 0 ||
                    (r = get_int(o, "realtimePeriod", 0, INT64_MAX, &v, f, err)) < 0)
                        return r;
                if (quota > 0) {
                        uint64_t milli = (uint64_t)quota * 1000 / (uint64_t)period;
                        if (milli == 0 || milli > 1000000)
                                return vs_error_input(err,
                                                      "config.json: %s: quota/period must "
                                                      "be between 0.001 and 1000 CPUs",
                                                      f);
                        l->cpu_limit_milli = (unsigned)milli;
                } else if (quota == -1 && json_object_object_get_ex(o, "quota", NULL)) {
                        l->cpu_limit_milli = 0;
                }
                if ((r = get_str(o, "cpus", &s, f, err)) < 0)
                        return r;
                if (r > 0) {
                        if (strlen(s) >= sizeof l->cpuset_cpus ||
                            strspn(s, "0123456789,-") != strlen(s))
                                return vs_error_input(err,
                                                      "config.json: %s.cpus \"%s\" is not a "
                                                      "CPU list (e.g. 0-3,6)",
                                                      f, s);
                        snprintf(l->cpuset_cpus, sizeof l->cpuset_cpus, "%s", s);
                }
                if ((r = get_str(o, "mems", &s, f, err)) < 0)
                        return r;
                if (r > 0) {
                        if (strlen(s) >= sizeof l->cpuset_mems ||
                            strspn(s, "0123456789,-") != strlen(s))
                                return vs_error_input(err,
                                                      "config.json: %s.mems \"%s\" is not a "
                                                      "node list (e.g. 0-1)",
                                                      f, s);
                        snprintf(l->cpuset_mems, sizeof l->cpuset_mems, "%s", s);
                }
        }
        if ((r = member(res, "pids", json_type_object, &o, "linux.resources", err)) < 0)
                return r;
        if (r > 0) {
                if ((r = get_limit(o, "limit", &l->processes, "linux.resources.pids", err)) < 0)
                        return r;
                if (l->processes == 0)
                        l->processes = VS_UNLIMITED; /* runc: 0 is "no limit" */
        }
        if ((r = member(res, "blockIO", json_type_object, &o, "linux.resources", err)) < 0)
                return r;
        if (r > 0) {
                if ((r = get_int(o, "weight", 0, 1000, &v, "linux.resources.blockIO", err)) < 0)
                        return r;
                if ((r = parse_throttle(o, "throttleReadBpsDevice", VS_IO_RBPS, l, err)) < 0 ||
                    (r = parse_throttle(o, "throttleWriteBpsDevice", VS_IO_WBPS, l, err)) < 0 ||
                    (r = parse_throttle(o, "throttleReadIOPSDevice", VS_IO_RIOPS, l, err)) < 0 ||
                    (r = parse_throttle(o, "throttleWriteIOPSDevice", VS_IO_WIOPS, l, err)) < 0)
                        return r;
        }
        /* hugepageLimits and unified are written as they are (oci_run.c); check their shape */
        Json *a;
        if ((r = member(res, "hugepageLimits", json_type_array, &a, "linux.resources", err)) < 0)
                return r;
        for (size_t i = 0; r > 0 && i < json_object_array_length(a); i++) {
                Json *e = json_object_array_get_idx(a, i);
                char f[64];
                const char *size;
                snprintf(f, sizeof f, "linux.resources.hugepageLimits[%zu]", i);
                if (!e || json_object_get_type(e) != json_type_object)
                        return vs_error_input(err, "config.json: %s must be an object", f);
                if ((r = get_str(e, "pageSize", &size, f, err)) <= 0 ||
                    (r = get_int(e, "limit", 0, INT64_MAX, &v, f, err)) <= 0)
                        return r < 0 ? r
                                     : vs_error_input(err,
                                                      "config.json: %s needs pageSize and "
                                                      "limit",
                                                      f);
                if (strlen(size) > 8 || strspn(size, "0123456789KMGB") != strlen(size))
                        return vs_error_input(err,
                                              "config.json: %s.pageSize \"%s\" is not a page "
                                              "size (2MB, 1GB)",
                                              f, size);
        }
        if ((r = member(res, "unified", json_type_object, &o, "linux.resources", err)) < 0)
                return r;
        if (r > 0) {
                json_object_object_foreach(o, key, val)
                {
                        if (!val || json_object_get_type(val) != json_type_string)
                                return vs_error_input(err,
                                                      "config.json: "
                                                      "linux.resources.unified.%s must be a "
                                                      "string",
                                                      key);
                        if (!key[0] || strchr(key, '/') || key[0] == '.' || !strchr(key, '.') ||
                            strncmp(key, "cgroup.", 7) == 0)
                                return vs_error_input(err,
                                                      "config.json: linux.resources.unified: "
                                                      "\"%s\" is not a controller's file (e.g. "
                                                      "memory.high)",
                                                      key);
                }
        }
        return 0;
}

int vs_oci_resources_parse(const char *text, size_t len, VsLimits *l, VsError *err)
{
        Json *j;
        int r = parse_json(text, len, "resources (linux.resources as in config.json)", &j, err);
        if (r < 0)
                return r;
        r = parse_resources_obj(j, l, err);
        json_object_put(j);
        return r;
}

static int parse_hooks(Json *hooks, VsOciConfig *c, VsError *err)
{
        for (int k = 0; k < VS_OCI_HOOK_N; k++) {
                Json *a;
                int r = member(hooks, hook_names[k], json_type_array, &a, "hooks", err);
                if (r < 0)
                        return r;
                size_t n = r ? json_object_array_length(a) : 0;
                if (n > VS_OCI_MAX_HOOKS)
                        return vs_error_input(err,
                                              "config.json: hooks.%s has %zu hooks (at most "
                                              "%d)",
                                              hook_names[k], n, VS_OCI_MAX_HOOKS);
                for (size_t i = 0; i < n; i++) {
                        Json *e = json_object_array_get_idx(a, i);
                        VsOciHook *h = &c->hooks[k][i];
                        char f[64];
                        int64_t t;
                        snprintf(f, sizeof f, "hooks.%s[%zu]", hook_names[k], i);
                        *h = (VsOciHook){0};
                        c->n_hooks[k] = (int)i + 1;
                        if (!e || json_object_get_type(e) != json_type_object)
                                return vs_error_input(err, "config.json: %s must be an object", f);
                        if ((r = get_str(e, "path", &h->path, f, err)) <= 0)
                                return r < 0 ? r
                                             : vs_error_input(err,
                                                              "config.json: %s.path is "
                                                              "missing",
                                                              f);
                        if (h->path[0] != '/')
                                return vs_error_input(err,
                                                      "config.json: %s.path \"%s\" must be "
                                                      "absolute",
                                                      f, h->path);
                        if ((r = get_strv(e, "args", &h->args, f, err)) < 0 ||
                            (r = get_strv(e, "env", &h->env, f, err)) < 0 ||
                            (r = get_int(e, "timeout", 1, 86400, &t, f, err)) < 0)
                                return r;
                        h->timeout = r > 0 ? (int)t : 0;
                }
        }
        return 0;
}

static int parse_linux(Json *lx, VsOciConfig *c, VsError *err)
{
        Json *o;
        const char *s;
        int r;
        static const char F[] = "linux";
        if ((r = member(lx, "namespaces", json_type_array, &o, F, err)) < 0)
                return r;
        if (r > 0 && (r = parse_namespaces(o, c, err)) < 0)
                return r;
        if ((r = parse_idmaps(lx, "uidMappings", c->uid_map, &c->n_uid_map, F, err)) < 0 ||
            (r = parse_idmaps(lx, "gidMappings", c->gid_map, &c->n_gid_map, F, err)) < 0)
                return r;
        if ((c->n_uid_map || c->n_gid_map) && !c->ns[VS_OCI_NS_USER].set)
                return vs_error_input(err, "config.json: linux.uidMappings need a user namespace "
                                           "(add {\"type\": \"user\"} to linux.namespaces)");
        if (c->ns[VS_OCI_NS_USER].set && !c->ns[VS_OCI_NS_USER].path &&
            (!c->n_uid_map || !c->n_gid_map))
                return vs_error_input(err, "config.json: a new user namespace needs "
                                           "linux.uidMappings and linux.gidMappings");
        if ((r = member(lx, "devices", json_type_array, &o, F, err)) < 0)
                return r;
        if (r > 0 && (r = parse_devices(o, c, err)) < 0)
                return r;
        if ((r = member(lx, "resources", json_type_object, &o, F, err)) < 0)
                return r;
        if (r > 0) {
                Json *d;
                c->has_resources = true;
                if ((r = parse_resources_obj(o, &c->limits, err)) < 0)
                        return r;
                if ((r = member(o, "devices", json_type_array, &d, "linux.resources", err)) < 0)
                        return r;
                if (r > 0 && (r = parse_dev_rules(d, c, err)) < 0)
                        return r;
        }
        if ((r = get_str(lx, "cgroupsPath", &c->cgroups_path, F, err)) < 0)
                return r;
        if (c->cgroups_path && c->cgroups_path[0] && !strchr(c->cgroups_path, ':') &&
            !vs_cgroup_path_valid(c->cgroups_path[0] == '/' ? c->cgroups_path + 1
                                                            : c->cgroups_path))
                return vs_error_input(err,
                                      "config.json: linux.cgroupsPath \"%s\" is not a cgroup path "
                                      "(letters, digits, . _ - and / separators)",
                                      c->cgroups_path);
        if ((r = get_list(lx, "maskedPaths", c->masked, VS_OCI_MAX_LIST, &c->n_masked, F, err)) <
                0 ||
            (r = get_list(lx, "readonlyPaths", c->readonly, VS_OCI_MAX_LIST, &c->n_readonly, F,
                          err)) < 0)
                return r;
        for (int i = 0; i < c->n_masked; i++)
                if ((r = check_inner_path(c->masked[i], "linux.maskedPaths", err)) < 0)
                        return r;
        for (int i = 0; i < c->n_readonly; i++)
                if ((r = check_inner_path(c->readonly[i], "linux.readonlyPaths", err)) < 0)
                        return r;
        if ((r = member(lx, "sysctl", json_type_object, &o, F, err)) < 0)
                return r;
        if (r > 0) {
                json_object_object_foreach(o, key, val)
                {
                        if (c->n_sysctl == VS_OCI_MAX_LIST)
                                return vs_error_input(err,
                                                      "config.json: linux.sysctl has more "
                                                      "than %d entries",
                                                      VS_OCI_MAX_LIST);
                        if (!val || json_object_get_type(val) != json_type_string)
                                return vs_error_input(err,
                                                      "config.json: linux.sysctl.%s must be "
                                                      "a string",
                                                      key);
                        if (!key[0] || strstr(key, "..") || key[0] == '.' || key[0] == '/' ||
                            strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789._-/") != strlen(key))
                                return vs_error_input(err,
                                                      "config.json: linux.sysctl: \"%s\" is "
                                                      "not a sysctl name (e.g. "
                                                      "net.ipv4.ip_forward)",
                                                      key);
                        c->sysctl_key[c->n_sysctl] = key;
                        c->sysctl_value[c->n_sysctl++] = json_object_get_string(val);
                }
        }
        if ((r = get_str(lx, "rootfsPropagation", &s, F, err)) < 0)
                return r;
        if (r > 0 && !(c->rootfs_propagation = propagation(s)))
                return vs_error_input(err,
                                      "config.json: linux.rootfsPropagation \"%s\" is not "
                                      "one of private, shared, slave, unbindable (or r...)",
                                      s);
        if ((r = member(lx, "seccomp", json_type_object, &c->seccomp, F, err)) < 0)
                return r;
        if ((r = member(lx, "personality", json_type_object, &o, F, err)) < 0)
                return r;
        if (r > 0) {
                if ((r = get_str(o, "domain", &s, "linux.personality", err)) <= 0)
                        return r < 0 ? r
                                     : vs_error_input(err, "config.json: "
                                                           "linux.personality.domain is missing");
                if (!streq(s, "LINUX") && !streq(s, "LINUX32"))
                        return vs_error_input(err,
                                              "config.json: linux.personality.domain \"%s\" "
                                              "is not LINUX or LINUX32",
                                              s);
                c->has_personality = true;
                c->personality = streq(s, "LINUX") ? PER_LINUX : PER_LINUX32;
        }
        if ((r = member(lx, "timeOffsets", json_type_object, &o, F, err)) < 0)
                return r;
        if (r > 0) {
                static const char *const clocks[2] = {"monotonic", "boottime"};
                for (int i = 0; i < 2; i++) {
                        Json *t;
                        int64_t v;
                        char f[48];
                        snprintf(f, sizeof f, "linux.timeOffsets.%s", clocks[i]);
                        if ((r = member(o, clocks[i], json_type_object, &t, "linux.timeOffsets",
                                        err)) < 0)
                                return r;
                        if (!r)
                                continue;
                        if ((r = get_int(t, "secs", INT32_MIN, INT32_MAX, &v, f, err)) < 0)
                                return r;
                        c->time_offset_s[i] = r ? v : 0;
                        if ((r = get_int(t, "nanosecs", 0, 999999999, &v, f, err)) < 0)
                                return r;
                        c->time_offset_ns[i] = r ? (uint32_t)v : 0;
                }
                c->has_time_offsets = true;
                if (!c->ns[VS_OCI_NS_TIME].set || c->ns[VS_OCI_NS_TIME].path)
                        return vs_error_input(err, "config.json: linux.timeOffsets need a new "
                                                   "time namespace (add {\"type\": \"time\"} to "
                                                   "linux.namespaces)");
        }
        if ((r = get_str(lx, "mountLabel", &s, F, err)) < 0)
                return r;
        if (r > 0 && s[0])
                return vs_error_input(err, "config.json: linux.mountLabel: SELinux is not "
                                           "enabled on this host (remove the label)");
        if ((r = member(lx, "intelRdt", json_type_object, &o, F, err)) < 0)
                return r;
        if (r > 0)
                return vs_error_input(err, "config.json: linux.intelRdt: this host has no "
                                           "resctrl (remove it)");
        return 0;
}

/*
 * VServer's own features through annotations (a Kubernetes RuntimeClass can
 * set them): org.linux-vserver.limits.KEY = VALUE takes any key of a guest
 * file's [limits] (the token bucket, cpu.limit, io.*, ipc.*, ...) on top of
 * linux.resources.  An unknown org.linux-vserver.* name is refused: a typo
 * must not leave a container without the limit its owner asked for.
 */
static int parse_vserver_annotations(VsOciConfig *c, VsError *err)
{
        static const char prefix[] = "org.linux-vserver.";
        static const char limits[] = "org.linux-vserver.limits.";
        for (int i = 0; i < c->n_annotations; i++) {
                const char *k = c->annotation_key[i], *v = c->annotation_value[i];
                if (strncmp(k, prefix, sizeof prefix - 1) != 0)
                        continue;
                if (streq(k, "org.linux-vserver.views")) {
                        if (vs_parse_bool(v, &c->views) < 0)
                                return vs_error_input(err,
                                                      "config.json: annotations: %s: \"%s\" "
                                                      "is not yes or no",
                                                      k, v);
                        continue;
                }
                if (streq(k, "org.linux-vserver.net")) {
                        if (!streq(v, "isolate"))
                                return vs_error_input(err,
                                                      "config.json: annotations: %s: \"%s\" is not "
                                                      "isolate (a network namespace of its own, or "
                                                      "none for the host's, is linux.namespaces')",
                                                      k, v);
                        c->isolate = true;
                        continue;
                }
                if (streq(k, "org.linux-vserver.net.nat")) {
                        if (vs_parse_bool(v, &c->net.nat) < 0)
                                return vs_error_input(err,
                                                      "config.json: annotations: %s: \"%s\" "
                                                      "is not yes or no",
                                                      k, v);
                        c->net.nat_set = true;
                        continue;
                }
                if (streq(k, "org.linux-vserver.net.addresses")) {
                        char list[1024], why[256];
                        if (strlen(v) >= sizeof list)
                                return vs_error_input(err, "config.json: annotations: %s: too long",
                                                      k);
                        snprintf(list, sizeof list, "%s", v);
                        char *save = NULL;
                        for (char *a = strtok_r(list, ", ", &save); a;
                             a = strtok_r(NULL, ", ", &save)) {
                                if (c->net.n_addrs == VS_NET_MAX_ADDRS)
                                        return vs_error_input(err,
                                                              "config.json: annotations: %s: "
                                                              "more than %d addresses",
                                                              k, VS_NET_MAX_ADDRS);
                                if (vs_net_addr_parse(a, &c->net.addrs[c->net.n_addrs], why,
                                                      sizeof why) < 0)
                                        return vs_error_input(err,
                                                              "config.json: annotations: "
                                                              "%s: %s",
                                                              k, why);
                                c->net.n_addrs++;
                        }
                        continue;
                }
                if (strncmp(k, limits, sizeof limits - 1) != 0)
                        return vs_error_input(err,
                                              "config.json: annotations: \"%s\" is not one of "
                                              "vserver's (org.linux-vserver.views, .net, "
                                              ".net.addresses, .net.nat, .limits.KEY with KEY "
                                              "as in a guest file's [limits])",
                                              k);
                const char *key = k + sizeof limits - 1;
                char msg[256] = "";
                if (strncmp(key, "disk", 4) == 0)
                        return vs_error_input(err,
                                              "config.json: annotations: %s: disk limits of a "
                                              "container belong to the engine's storage",
                                              k);
                int r = vs_limits_set_key(&c->limits, key, v, msg, sizeof msg);
                if (r == 0)
                        return vs_error_input(err,
                                              "config.json: annotations: %s: \"%s\" is not a "
                                              "limit (vserver help keys lists them)",
                                              k, key);
                if (r < 0)
                        return vs_error_input(err, "config.json: annotations: %s: %s", k, msg);
                c->has_resources = true;
        }
        if (c->isolate && !c->net.n_addrs)
                return vs_error_input(err, "config.json: annotations: org.linux-vserver.net = "
                                           "isolate needs org.linux-vserver.net.addresses (e.g. "
                                           "198.18.0.5/32@lo)");
        if (!c->isolate && (c->net.n_addrs || c->net.nat_set))
                return vs_error_input(err, "config.json: annotations: "
                                           "org.linux-vserver.net.addresses and .nat need "
                                           "org.linux-vserver.net = isolate");
        if (c->isolate && c->ns[VS_OCI_NS_NET].set)
                return vs_error_input(err, "config.json: annotations: org.linux-vserver.net = "
                                           "isolate keeps the host's network: remove the network "
                                           "namespace from linux.namespaces");
        char msg[256] = "";
        if (vs_limits_check(&c->limits, msg, sizeof msg) < 0)
                return vs_error_input(err, "config.json: %s", msg);
        return 0;
}

static int parse_config(Json *j, VsOciConfig *c, VsError *err)
{
        Json *o;
        int r;
        if ((r = get_str(j, "ociVersion", &c->version, "", err)) <= 0)
                return r < 0 ? r
                             : vs_error_input(err, "config.json: ociVersion is missing (e.g. "
                                                   "\"1.0.2\")");
        unsigned major = 0;
        if (sscanf(c->version, "%u.", &major) != 1 || major != 1)
                return vs_error_input(err,
                                      "config.json: ociVersion \"%s\" is not a 1.x runtime "
                                      "specification (this runtime implements %s)",
                                      c->version, VS_OCI_VERSION);
        if ((r = member(j, "root", json_type_object, &o, "", err)) <= 0)
                return r < 0 ? r
                             : vs_error_input(err, "config.json: root is missing (e.g. "
                                                   "{\"path\": \"rootfs\"})");
        if ((r = get_str(o, "path", &c->root_path, "root", err)) <= 0 || !c->root_path[0])
                return r < 0 ? r : vs_error_input(err, "config.json: root.path is missing");
        if ((r = get_bool(o, "readonly", &c->root_readonly, "root", err)) < 0)
                return r;
        if ((r = member(j, "process", json_type_object, &o, "", err)) < 0)
                return r;
        c->has_process = r > 0;
        if (r > 0 && (r = parse_process(o, &c->process, err)) < 0)
                return r;
        if ((r = get_str(j, "hostname", &c->hostname, "", err)) < 0 ||
            (r = get_str(j, "domainname", &c->domainname, "", err)) < 0)
                return r;
        for (const char *n = c->hostname; n && *n; n++)
                if ((unsigned char)*n <= ' ' || strlen(c->hostname) > 64)
                        return vs_error_input(err,
                                              "config.json: hostname \"%s\" is longer than "
                                              "64 or holds spaces",
                                              c->hostname);
        if ((r = member(j, "mounts", json_type_array, &o, "", err)) < 0)
                return r;
        size_t n = r > 0 ? json_object_array_length(o) : 0;
        if (n > VS_OCI_MAX_MOUNTS)
                return vs_error_input(err, "config.json: mounts has %zu entries (at most %d)", n,
                                      VS_OCI_MAX_MOUNTS);
        for (size_t i = 0; i < n; i++) {
                char f[32];
                snprintf(f, sizeof f, "mounts[%zu]", i);
                if ((r = parse_mount(json_object_array_get_idx(o, i), &c->mounts[i], f, err)) < 0)
                        return r;
                c->n_mounts++;
        }
        if ((r = member(j, "hooks", json_type_object, &o, "", err)) < 0)
                return r;
        if (r > 0 && (r = parse_hooks(o, c, err)) < 0)
                return r;
        if ((r = member(j, "annotations", json_type_object, &o, "", err)) < 0)
                return r;
        if (r > 0) {
                json_object_object_foreach(o, key, val)
                {
                        if (c->n_annotations == VS_OCI_MAX_LIST)
                                return vs_error_input(err,
                                                      "config.json: annotations has more "
                                                      "than %d entries",
                                                      VS_OCI_MAX_LIST);
                        if (!val || json_object_get_type(val) != json_type_string)
                                return vs_error_input(err,
                                                      "config.json: annotations.%s must be a "
                                                      "string",
                                                      key);
                        c->annotation_key[c->n_annotations] = key;
                        c->annotation_value[c->n_annotations++] = json_object_get_string(val);
                }
        }
        if ((r = member(j, "linux", json_type_object, &o, "", err)) < 0)
                return r;
        if (r == 0)
                return vs_error_input(err, "config.json: linux is missing (this runtime runs "
                                           "Linux containers)");
        if ((r = parse_linux(o, c, err)) < 0)
                return r;
        return parse_vserver_annotations(c, err);
}

int vs_oci_config_parse(const char *text, size_t len, VsOciConfig *c, VsError *err)
{
        *c = (VsOciConfig){0};
        vs_limits_init(&c->limits);
        c->process.cwd = "/";
        int r = parse_json(text, len, "config.json", &c->json, err);
        if (r < 0)
                return r;
        r = parse_config(c->json, c, err);
        if (r < 0)
                vs_oci_config_free(c);
        return r;
}

void vs_oci_config_free(VsOciConfig *c)
{
        vs_oci_process_free(&c->process);
        for (int k = 0; k < VS_OCI_HOOK_N; k++)
                for (int i = 0; i < c->n_hooks[k]; i++) {
                        free(c->hooks[k][i].args);
                        free(c->hooks[k][i].env);
                        c->hooks[k][i].args = c->hooks[k][i].env = NULL;
                }
        json_object_put(c->json);
        c->json = NULL;
}

/* ---- spec and features ---- */

static const char default_spec[] =
    "{\"ociVersion\":\"" VS_OCI_VERSION "\","
    "\"process\":{\"terminal\":true,\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"sh\"],"
    "\"env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\","
    "\"TERM=xterm\"],\"cwd\":\"/\","
    "\"capabilities\":{"
    "\"bounding\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
    "\"effective\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
    "\"permitted\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
    "\"ambient\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"]},"
    "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":1024}],"
    "\"noNewPrivileges\":true},"
    "\"root\":{\"path\":\"rootfs\",\"readonly\":true},"
    "\"hostname\":\"vserver\","
    "\"mounts\":["
    "{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
    "{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\","
    "\"options\":[\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]},"
    "{\"destination\":\"/dev/pts\",\"type\":\"devpts\",\"source\":\"devpts\","
    "\"options\":[\"nosuid\",\"noexec\",\"newinstance\",\"ptmxmode=0666\",\"mode=0620\","
    "\"gid=5\"]},"
    "{\"destination\":\"/dev/shm\",\"type\":\"tmpfs\",\"source\":\"shm\","
    "\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"mode=1777\",\"size=65536k\"]},"
    "{\"destination\":\"/dev/mqueue\",\"type\":\"mqueue\",\"source\":\"mqueue\","
    "\"options\":[\"nosuid\",\"noexec\",\"nodev\"]},"
    "{\"destination\":\"/sys\",\"type\":\"sysfs\",\"source\":\"sysfs\","
    "\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"ro\"]},"
    "{\"destination\":\"/sys/fs/cgroup\",\"type\":\"cgroup\",\"source\":\"cgroup\","
    "\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"relatime\",\"ro\"]}],"
    "\"linux\":{\"resources\":{\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]},"
    "\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\"},{\"type\":\"ipc\"},"
    "{\"type\":\"uts\"},{\"type\":\"mount\"},{\"type\":\"cgroup\"}],"
    "\"maskedPaths\":[\"/proc/acpi\",\"/proc/asound\",\"/proc/kcore\",\"/proc/keys\","
    "\"/proc/latency_stats\",\"/proc/timer_list\",\"/proc/timer_stats\",\"/proc/sched_debug\","
    "\"/sys/firmware\",\"/proc/scsi\"],"
    "\"readonlyPaths\":[\"/proc/bus\",\"/proc/fs\",\"/proc/irq\",\"/proc/sys\","
    "\"/proc/sysrq-trigger\"]}}";

static char *to_text(Json *j)
{
        const char *t = json_object_to_json_string_ext(
            j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
        char *s = t ? strdup(t) : NULL;
        json_object_put(j);
        return s;
}

static Json *idmap_one(unsigned host)
{
        Json *a = json_object_new_array(), *m = json_object_new_object();
        json_object_object_add(m, "containerID", json_object_new_int64(0));
        json_object_object_add(m, "hostID", json_object_new_int64(host));
        json_object_object_add(m, "size", json_object_new_int64(1));
        json_object_array_add(a, m);
        return a;
}

char *vs_oci_default_spec(bool rootless)
{
        Json *j = json_tokener_parse(default_spec);
        if (!j)
                return NULL;
        if (rootless) {
                /* runc's --rootless: our own ids as root, no devices rule, /sys bound */
                Json *lx = json_object_object_get(j, "linux"), *mounts;
                json_object_object_del(lx, "resources");
                json_object_array_add(json_object_object_get(lx, "namespaces"),
                                      json_tokener_parse("{\"type\":\"user\"}"));
                json_object_object_add(lx, "uidMappings", idmap_one(getuid()));
                json_object_object_add(lx, "gidMappings", idmap_one(getgid()));
                json_object_object_get_ex(j, "mounts", &mounts);
                Json *keep = json_object_new_array();
                for (size_t i = 0; i < json_object_array_length(mounts); i++) {
                        Json *m = json_object_array_get_idx(mounts, i);
                        const char *d =
                            json_object_get_string(json_object_object_get(m, "destination"));
                        if (streq(d, "/sys/fs/cgroup"))
                                continue;
                        if (streq(d, "/sys"))
                                m = json_tokener_parse(
                                    "{\"destination\":\"/sys\",\"type\":\"none\",\"source\":"
                                    "\"/sys\",\"options\":[\"rbind\",\"nosuid\",\"noexec\","
                                    "\"nodev\",\"ro\"]}");
                        else
                                json_object_get(m);
                        if (streq(d, "/dev/pts")) {
                                Json *o = json_object_object_get(m, "options");
                                json_object_array_del_idx(o, json_object_array_length(o) - 1, 1);
                        }
                        json_object_array_add(keep, m);
                }
                json_object_object_add(j, "mounts", keep);
        }
        return to_text(j);
}

static Json *strings(const char *const *v, size_t n)
{
        Json *a = json_object_new_array();
        for (size_t i = 0; i < n; i++)
                json_object_array_add(a, json_object_new_string(v[i]));
        return a;
}

char *vs_oci_features(void)
{
        Json *j = json_object_new_object(), *lx = json_object_new_object();
        json_object_object_add(j, "ociVersionMin", json_object_new_string("1.0.0"));
        json_object_object_add(j, "ociVersionMax", json_object_new_string(VS_OCI_VERSION));
        json_object_object_add(j, "hooks", strings(hook_names, VS_OCI_HOOK_N));
        const char *opts[ARRAY_SIZE(mount_flags) + ARRAY_SIZE(propagations) + 5];
        size_t n = 0;
        for (size_t i = 0; i < ARRAY_SIZE(mount_flags); i++)
                opts[n++] = mount_flags[i].name;
        for (size_t i = 0; i < ARRAY_SIZE(propagations); i++)
                opts[n++] = propagations[i].name;
        static const char *const more[] = {"bind", "rbind", "idmap", "ridmap", "tmpcopyup"};
        for (size_t i = 0; i < ARRAY_SIZE(more); i++)
                opts[n++] = more[i];
        json_object_object_add(j, "mountOptions", strings(opts, n));
        json_object_object_add(lx, "namespaces", strings(ns_names, VS_OCI_NS_N));
        Json *caps = json_object_new_array();
        for (int c = 0; c < 64; c++) {
                char name[48];
                if (!vs_caps_name(c))
                        continue;
                snprintf(name, sizeof name, "CAP_%s", vs_caps_name(c));
                json_object_array_add(caps, json_object_new_string(name));
        }
        json_object_object_add(lx, "capabilities", caps);
        Json *cg = json_object_new_object();
        json_object_object_add(cg, "v1", json_object_new_boolean(true));
        json_object_object_add(cg, "v2", json_object_new_boolean(true));
        json_object_object_add(cg, "systemd", json_object_new_boolean(false));
        json_object_object_add(cg, "systemdUser", json_object_new_boolean(false));
        json_object_object_add(lx, "cgroup", cg);
        Json *sc = json_object_new_object();
        json_object_object_add(sc, "enabled", json_object_new_boolean(true));
        static const char *const acts[] = {
            "SCMP_ACT_ALLOW",        "SCMP_ACT_ERRNO",       "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
            "SCMP_ACT_NOTIFY",       "SCMP_ACT_TRACE",       "SCMP_ACT_TRAP"};
        json_object_object_add(sc, "actions", strings(acts, ARRAY_SIZE(acts)));
        static const char *const ops[] = {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
                                          "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ",
                                          "SCMP_CMP_NE"};
        json_object_object_add(sc, "operators", strings(ops, ARRAY_SIZE(ops)));
        static const char *const arches[] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
        json_object_object_add(sc, "archs", strings(arches, ARRAY_SIZE(arches)));
        json_object_object_add(lx, "seccomp", sc);
        Json *am = json_object_new_object();
        json_object_object_add(am, "enabled", json_object_new_boolean(false));
        json_object_object_add(lx, "apparmor", am);
        Json *se = json_object_new_object();
        json_object_object_add(se, "enabled", json_object_new_boolean(false));
        json_object_object_add(lx, "selinux", se);
        Json *mx = json_object_new_object();
        json_object_object_add(mx, "enabled", json_object_new_boolean(true));
        json_object_object_add(lx, "mountExtensions", mx);
        json_object_object_add(j, "linux", lx);
        Json *an = json_object_new_object();
        json_object_object_add(an, "org.opencontainers.runc.checkpoint.enabled",
                               json_object_new_string("false"));
        json_object_object_add(an, "org.linux-vserver.runtime", json_object_new_string("vserver"));
        json_object_object_add(j, "annotations", an);
        return to_text(j);
}
