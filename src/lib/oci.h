/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "caps.h"
#include "error.h"
#include "limits.h"
#include "net.h"
#include "rlimit.h"

/*
 * The OCI runtime specification's config.json (runtime-spec 1.0 - 1.2),
 * read with json-c into what the library runs: pure (text in, struct out),
 * so the fuzzer and the unit tests drive it.  Strings point into the parsed
 * JSON, which the config holds until vs_oci_config_free().
 *
 * Every refusal names the field as the specification spells it and says
 * what to write instead: an engine shows the message to its user as is.
 */

#define VS_OCI_MAX_MOUNTS   256
#define VS_OCI_MAX_IDMAPS   8
#define VS_OCI_MAX_HOOKS    16
#define VS_OCI_MAX_DEVICES  256
#define VS_OCI_MAX_GROUPS   64
#define VS_OCI_MAX_RLIMITS  16
#define VS_OCI_MAX_LIST     128   /* maskedPaths, readonlyPaths, sysctl, annotations */
#define VS_OCI_MAX_ARGS     65536 /* args and env of a process or hook */
#define VS_OCI_MAX_DEV_RULE 128

/* The namespaces in the order a joining process must enter them (user first). */
typedef enum VsOciNsType {
        VS_OCI_NS_USER,
        VS_OCI_NS_PID,
        VS_OCI_NS_NET,
        VS_OCI_NS_IPC,
        VS_OCI_NS_UTS,
        VS_OCI_NS_MOUNT,
        VS_OCI_NS_CGROUP,
        VS_OCI_NS_TIME,
        VS_OCI_NS_N
} VsOciNsType;

typedef struct VsOciNs {
        bool set;         /* listed: a new one, or @path's */
        const char *path; /* join this one (e.g. a pod's netns); NULL: new */
} VsOciNs;

typedef struct VsOciIdMap {
        unsigned container, host, size;
} VsOciIdMap;

typedef struct VsOciMount {
        const char *destination, *type, *source;
        unsigned long flags;     /* MS_* set */
        unsigned long clear;     /* MS_RDONLY etc. explicitly cleared (rw, suid, ...) */
        unsigned long propagate; /* MS_SHARED / MS_SLAVE / MS_PRIVATE / MS_UNBINDABLE, MS_REC */
        bool bind, recursive, idmap, tmpcopyup;
        char data[512]; /* the options that are not flags, comma separated */
        VsOciIdMap uid_map[VS_OCI_MAX_IDMAPS], gid_map[VS_OCI_MAX_IDMAPS];
        int n_uid_map, n_gid_map;
} VsOciMount;

typedef struct VsOciHook {
        const char *path;
        char **args; /* NULL-terminated; none given: { path } */
        char **env;  /* NULL-terminated, may be empty */
        int timeout; /* seconds; 0: none */
} VsOciHook;

typedef enum VsOciHookKind {
        VS_OCI_HOOK_PRESTART,
        VS_OCI_HOOK_CREATE_RUNTIME,
        VS_OCI_HOOK_CREATE_CONTAINER,
        VS_OCI_HOOK_START_CONTAINER,
        VS_OCI_HOOK_POSTSTART,
        VS_OCI_HOOK_POSTSTOP,
        VS_OCI_HOOK_N
} VsOciHookKind;

typedef struct VsOciDevice {
        const char *path;
        char type; /* 'c', 'b', 'p' ('u' reads as 'c') */
        unsigned major, minor;
        mode_t mode; /* permission bits; 0: 0666 */
        uid_t uid;
        gid_t gid;
} VsOciDevice;

/* One linux.resources.devices rule: the device cgroup's allow/deny list. */
typedef struct VsOciDevRule {
        bool allow;
        char type;      /* 'a', 'c', 'b' */
        long major;     /* -1: any */
        long minor;     /* -1: any */
        char access[4]; /* "rwm" subset */
} VsOciDevRule;

/* What `exec --process` and config.json's "process" say. */
typedef struct VsOciProcess {
        bool terminal;
        unsigned console_rows, console_cols;
        uid_t uid;
        gid_t gid;
        gid_t groups[VS_OCI_MAX_GROUPS];
        int n_groups;
        mode_t umask;
        bool has_umask;
        /* NULL-terminated; the strings belong to the JSON (char * for execve only) */
        char **args;
        char **env;
        const char *cwd;
        /* bounding, effective, inheritable, permitted, ambient */
        VsCaps caps[5];
        VsRlimit rlimits[VS_OCI_MAX_RLIMITS];
        int n_rlimits;
        bool no_new_privs;
        int oom_score_adj;
        bool has_oom_score_adj;
} VsOciProcess;

enum {
        VS_OCI_CAP_BOUNDING,
        VS_OCI_CAP_EFFECTIVE,
        VS_OCI_CAP_INHERITABLE,
        VS_OCI_CAP_PERMITTED,
        VS_OCI_CAP_AMBIENT
};

typedef struct VsOciConfig {
        struct json_object *json; /* owns every string below */
        const char *version;
        const char *root_path; /* as written: relative to the bundle or absolute */
        bool root_readonly;
        const char *hostname, *domainname;
        VsOciProcess process;
        bool has_process;
        VsOciMount mounts[VS_OCI_MAX_MOUNTS];
        int n_mounts;
        VsOciNs ns[VS_OCI_NS_N];
        VsOciIdMap uid_map[VS_OCI_MAX_IDMAPS], gid_map[VS_OCI_MAX_IDMAPS];
        int n_uid_map, n_gid_map;
        const char *masked[VS_OCI_MAX_LIST];
        int n_masked;
        const char *readonly[VS_OCI_MAX_LIST];
        int n_readonly;
        const char *sysctl_key[VS_OCI_MAX_LIST], *sysctl_value[VS_OCI_MAX_LIST];
        int n_sysctl;
        const char *annotation_key[VS_OCI_MAX_LIST], *annotation_value[VS_OCI_MAX_LIST];
        int n_annotations;
        VsOciDevice devices[VS_OCI_MAX_DEVICES];
        int n_devices;
        VsOciDevRule dev_rules[VS_OCI_MAX_DEV_RULE];
        int n_dev_rules;
        VsLimits limits; /* linux.resources in our terms */
        bool has_resources;
        bool views; /* org.linux-vserver.views: the /proc views of its own limits */
        /* org.linux-vserver.net = isolate: the host's stack, kept to its addresses (cgroup-BPF) */
        bool isolate;
        VsNetConfig net; /* org.linux-vserver.net.addresses, .nat */
        const char *cgroups_path;
        unsigned long rootfs_propagation; /* MS_* propagation (0: private, recursive) */
        struct json_object *seccomp;      /* linux.seccomp as written; NULL: none */
        unsigned long personality;        /* PER_LINUX or PER_LINUX32; ~0UL: unset */
        bool has_personality;
        /* linux.timeOffsets: seconds and nanoseconds for monotonic and boottime */
        int64_t time_offset_s[2];
        uint32_t time_offset_ns[2];
        bool has_time_offsets;
        VsOciHook hooks[VS_OCI_HOOK_N][VS_OCI_MAX_HOOKS];
        int n_hooks[VS_OCI_HOOK_N];
} VsOciConfig;

/* The OCI runtime spec version we write (state, spec, features). */
#define VS_OCI_VERSION "1.2.0"

/*
 * Parse config.json text.  Refuses versions other than 1.x, and names the
 * field of every malformed or unknown value.
 */
int vs_oci_config_parse(const char *text, size_t len, VsOciConfig *ret, VsError *err);
void vs_oci_config_free(VsOciConfig *c);
/* Parse a "process" object alone (exec --process FILE); its strings live in *ret_json. */
int vs_oci_process_parse(const char *text, size_t len, VsOciProcess *ret,
                         struct json_object **ret_json, VsError *err);
void vs_oci_process_free(VsOciProcess *p);
/* The process's user, groups and five capability sets, for vs_cred_apply(). */
VsCred vs_oci_cred(const VsOciProcess *p);
/* Apply a linux.resources object (update --resources) on top of @l. */
int vs_oci_resources_parse(const char *text, size_t len, VsLimits *l, VsError *err);

const char *vs_oci_ns_name(VsOciNsType t); /* "network" */
int vs_oci_ns_clone_flag(VsOciNsType t);   /* CLONE_NEWNET */
const char *vs_oci_hook_name(VsOciHookKind k);

/* The default config.json `spec` writes (runc's, with our root path "rootfs"). */
char *vs_oci_default_spec(bool rootless);
/* The `features` document. */
char *vs_oci_features(void);
