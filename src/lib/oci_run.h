/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "limits.h"
#include "oci.h"

/*
 * The OCI runtime: containers from bundles, as runc's command line drives
 * them, with no process of ours left per container (the engine's monitor,
 * conmon or the containerd shim, is the parent).  State lives in one
 * directory per container under the state root (--root), written crash-safe
 * (a file is complete or not there); status is read from the kernel.
 */

#define VS_OCI_DEFAULT_ROOT "/run/vserver-runc"
#define VS_OCI_ID_MAX       1024

typedef enum VsOciStatus {
        VS_OCI_CREATING,
        VS_OCI_CREATED,
        VS_OCI_RUNNING,
        VS_OCI_PAUSED,
        VS_OCI_STOPPED,
} VsOciStatus;

const char *vs_oci_status_name(VsOciStatus s);

typedef struct VsOciState {
        char id[VS_OCI_ID_MAX + 1];
        VsOciStatus status;
        pid_t pid; /* 0 once stopped, or before the process exists */
        unsigned long long starttime;
        char bundle[4096];
        char rootfs[4096];
        char created[40]; /* RFC 3339, UTC, nanoseconds */
        char owner[32];
} VsOciState;

typedef struct VsOciCreateOpts {
        const char *root; /* the state root */
        const char *id;
        const char *bundle;
        const char *console_socket; /* process.terminal: the pty master goes there */
        const char *pid_file;
        int preserve_fds;
        bool systemd_cgroup;
        bool no_new_keyring;
        /* host settings for org.linux-vserver.net = isolate (NULL: lo, the cgroup2 root) */
        const char *net_device;
        const char *unix_guard;
        /* run: stdio for the process when it is not ours to pass on (NULL: 0, 1, 2) */
        const int *stdio;
        int *ret_pty; /* run without a console socket: the pty master comes back here */
} VsOciCreateOpts;

/* "abc_1.2-x+y": what runc takes as an id. */
bool vs_oci_id_valid(const char *id);
int vs_oci_create(const VsOciCreateOpts *o, pid_t *ret_pid, VsError *err);
int vs_oci_start(const char *root, const char *id, VsError *err);
int vs_oci_state(const char *root, const char *id, VsOciState *ret, VsError *err);
/* The state as `runc state` prints it (JSON, allocated). */
char *vs_oci_state_json(const char *root, const VsOciState *s);
int vs_oci_kill(const char *root, const char *id, int sig, bool all, VsError *err);
int vs_oci_delete(const char *root, const char *id, bool force, VsError *err);
int vs_oci_pause(const char *root, const char *id, bool pause, VsError *err);
/* The ids under @root, sorted; *ret NULL-terminated, free each and the array. */
int vs_oci_list(const char *root, char ***ret, VsError *err);
/* Call @fn for each process of the container (pids in our namespace). */
int vs_oci_pids(const char *root, const char *id, pid_t **ret, int *ret_n, VsError *err);
/* linux.resources (JSON) on top of what the container has now. */
int vs_oci_update(const char *root, const char *id, const char *resources_json, VsError *err);
/* `events --stats`: one JSON object (allocated). */
int vs_oci_stats(const char *root, const char *id, char **ret, VsError *err);

typedef struct VsOciExecOpts {
        const char *root;
        const char *id;
        const char *process_file; /* the whole process; else config.json's, with the below */
        char *const *args;
        char *const *env; /* added to (replacing by name) the container's */
        const char *cwd;
        const char *user; /* "UID[:GID]" */
        const gid_t *groups;
        int n_groups;
        const char *const *caps; /* added to every set but ambient */
        int n_caps;
        bool no_new_privs;
        bool tty;
        const char *console_socket;
        const char *pid_file;
        int preserve_fds;
        int *ret_pty; /* tty without a console socket: the master comes back */
} VsOciExecOpts;

/* Start the process; *ret_pidfd to wait for it (its parent is us). */
int vs_oci_exec(const VsOciExecOpts *o, int *ret_pidfd, VsError *err);
