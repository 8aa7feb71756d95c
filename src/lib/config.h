/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>

#include "caps.h"
#include "context.h"
#include "error.h"
#include "limits.h"
#include "mount.h"
#include "net.h"
#include "parse.h"
#include "seccomp.h"

/*
 * Guest files (/etc/vserver/guests/NAME.conf) and host settings
 * (/etc/vserver/vserver.conf): INI, parsed with inih, validated in full.
 * Unknown sections and keys are errors; every error names file, line and
 * key and says what would be right.
 */

/* a line of a guest file or the host settings, without its newline (inih's buffer: 200) */
#define VS_CONFIG_LINE_MAX  198
#define VS_CONFIG_MAX_BINDS 32
/* the binds as written and their parsed copies: each fits a line */
#define VS_CONFIG_BIND_TEXT   (VS_CONFIG_MAX_BINDS * 2 * (VS_CONFIG_LINE_MAX + 1))
#define VS_CONFIG_MAX_RLIMITS 16

#define VS_CONFIG_MAX_EXCLUDES 32

typedef struct VsHostConfig {
        char cgroup_parent[256]; /* "/vserver" */
        bool cgroup_parent_set;  /* named in the file (else per installation, see below) */
        unsigned ctx_min, ctx_max;
        char mirror[512]; /* for the debian template */
        char suite[64];
        char net_device[IFNAMSIZ]; /* where isolate addresses without @DEVICE go: "lo" */
        char bridge[IFNAMSIZ];     /* the netns mode's bridge: "vsbr0" */
        VsNetAddr bridge_addrs[2]; /* the bridge's own: the guests' gateways */
        int n_bridge_addrs;
        bool bridge_nat;          /* netns guests whose file does not say get nat = yes */
        char unify_exclude[1024]; /* host-wide unify patterns, space separated */
        unsigned long long console_log_size; /* rotate NAME.log past this many bytes */
        char unix_guard_cgroup[256];         /* cgroup2 dir of the host-side unix guard: "/" */
        bool userns;                         /* new guests get a user namespace (default yes) */
        bool delegate;                       /* new guests get cgroups of their own (yes) */
        unsigned userns_first, userns_last;  /* the pool of host ids for their ranges */
        int disk_limits;                     /* VsDiskKind: VS_DISK_NONE = pick per filesystem */
} VsHostConfig;

typedef struct VsGuestConfig {
        char name[64];
        unsigned context; /* 0 until assigned */
        char hostname[65];
        char domainname[65];
        char init[1024]; /* "/sbin/init", a command line, or "none" */
        int stop_signal; /* 0: chosen from the init (systemd: SIGRTMIN+3, else SIGTERM) */
        unsigned stop_timeout;
        bool autostart;
        bool tmp_tmpfs;   /* /tmp a tmpfs (default) or the guest's own directory */
        bool console_log; /* console = log: init's output through a pipe, no pty */
        bool views;       /* its own /proc views (meminfo, cpuinfo, ...) from the view server */
        bool delegate;    /* its root may make cgroups below its own (VsContextSpec.delegate) */
        /* uname(2) and /proc's kernel version as the guest sees them; "" = the host's */
        char uname_release[65], uname_version[65], uname_machine[65];
        VsNetMode net;
        VsNetConfig netcfg;
        VsLimits limits;
        VsRlimit rlimits[VS_CONFIG_MAX_RLIMITS];
        int n_rlimits;
        VsCaps caps_add, caps_drop;
        VsCaps caps_host; /* capabilities.host-wide: what acts on the whole host, said so */
        VsSeccompMode seccomp;
        char seccomp_file[PATH_MAX];
        bool allow_userns;
        bool userns; /* a user namespace of its own, ids from the host's pool */
        bool no_new_privs;
        VsBind binds[VS_CONFIG_MAX_BINDS];       /* source, target: into bind_text */
        unsigned bind_spec[VS_CONFIG_MAX_BINDS]; /* as written (SRC:DST[:ro]) at bind_text + this */
        int n_binds;
        unsigned bind_used;
        /* one area, not two PATH_MAX arrays a bind: list loads (and zeroes) every guest's */
        char bind_text[VS_CONFIG_BIND_TEXT];
        char unify_exclude[VS_CONFIG_MAX_EXCLUDES][256]; /* [unify] exclude, in order */
        int n_unify_exclude;
} VsGuestConfig;

void vs_host_config_init(VsHostConfig *h);
/* A missing file leaves the defaults. */
int vs_host_config_load(VsHostConfig *h, const char *path, VsError *err);
/*
 * The cgroup parent of an installation under a root of its own (VSERVER_ROOT,
 * --root-dir) whose settings name none: "/vserver-XXXXXXXX", from the root's
 * path, so two installations on one host never share guests' cgroups.  The
 * system installation keeps "/vserver".
 */
void vs_host_config_own_cgroup(VsHostConfig *h, const char *root);

void vs_guest_config_init(VsGuestConfig *g, const char *name);
/* Parse and validate @path (a guest file); errors read "FILE:LINE: KEY: what (fix)". */
int vs_guest_config_load(VsGuestConfig *g, const char *path, VsError *err);
/* Parse from memory, for tests; @label stands for the file name in errors. */
int vs_guest_config_parse(VsGuestConfig *g, const char *text, const char *label, VsError *err);
/*
 * Set one key, as the file would ("limits.memory", "512M"); used by build
 * options.  @where prefixes errors ("--memory" or "web1.conf:12").
 */
int vs_guest_config_set(VsGuestConfig *g, const char *key, const char *value, const char *where,
                        VsError *err);
/*
 * Change keys ("limits.memory") of the guest file at @path in place:
 * comments and order stay, a key missing from its section is added; the
 * result is validated before it replaces the file (atomically).
 */
int vs_guest_config_edit(const char *path, const char *const *keys, const char *const *values,
                         int n, VsError *err);
/* Checks across keys (after parse, or after a series of sets); "LABEL: [limits]: ..." */
int vs_guest_config_check(const VsGuestConfig *g, const char *label, VsError *err);
/* The whole effective configuration as a guest file. */
int vs_guest_config_write(const VsGuestConfig *g, FILE *f);
/* Write it to @path atomically: a temporary file, fsync, rename. */
int vs_guest_config_save(const VsGuestConfig *g, const char *path, VsError *err);
/*
 * The same without fsync: for notes of the run directory (what a running
 * guest started with), which live only as long as it runs: a tmpfs in
 * /run, and a crash of the host ends the guest with the note.
 */
int vs_guest_config_note(const VsGuestConfig *g, const char *path, VsError *err);

/* A host or domain name: letters, digits, '-' and '.', at most 64, not starting with - or . */
bool vs_hostname_valid(const char *h);
