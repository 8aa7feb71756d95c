/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A container's state directory (oci_state.c), for oci_run.c. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cgroup.h"
#include "error.h"
#include "oci.h"
#include "oci_run.h"

/* What state.json holds. */
typedef struct VsOciRecord {
        char id[VS_OCI_ID_MAX + 1];
        pid_t pid;
        unsigned long long starttime; /* of @pid, so a reused pid is not taken for it */
        char bundle[4096], rootfs[4096];
        char created[40];
        char cgroup_parent[4096], cgroup_name[256];
        char owner[32];
        unsigned context;    /* a context id of its own (views, isolate), 0: none */
        char net_device[16]; /* isolate: where its addresses without a device went */
} VsOciRecord;

/* Context ids for OCI containers with views: above the guests' default range. */
#define VS_OCI_CTX_FIRST 49152
#define VS_OCI_CTX_LAST  65535

void vs_oci_record_init(VsOciRecord *rec, const char *id);
int vs_oci_state_save(int dirfd, const VsOciRecord *rec, VsError *err);
int vs_oci_state_load(int dirfd, VsOciRecord *rec, VsError *err);
/* The container's directory under @root (O_DIRECTORY); a named error if there is none. */
int vs_oci_open_dir(const char *root, const char *id, VsError *err);
/* Write @name in @dirfd whole or not at all (a temporary file renamed over it). */
int vs_oci_write_atomic(int dirfd, const char *name, const char *data, size_t len, VsError *err);
char *vs_oci_read(int dirfd, const char *name, size_t max, size_t *ret_len);
/* Remove the container's directory @id under @rootfd with everything we write there. */
int vs_oci_remove_dir(int rootfd, const char *id);
/* A pidfd of the container's process if it still runs (same start time), else -ESRCH. */
int vs_oci_pidfd(const VsOciRecord *rec);
/* The container's cgroup (cg->n 0 if gone). */
int vs_oci_cgroup(const VsOciRecord *rec, VsCgroup *cg, VsError *err);
VsOciStatus vs_oci_status_of(int dirfd, const VsOciRecord *rec);
/* isolate's spec for a container: its addresses, @ctx, the BPF objects under @root/bpf. */
struct VsNetSpec;
void vs_oci_isolate_spec(const VsOciConfig *c, const char *root, unsigned ctx, const char *device,
                         const char *guard, char *bpf_dir, size_t size, struct VsNetSpec *ret);
/* The state a hook gets on stdin. */
char *vs_oci_hook_state(const char *id, VsOciStatus status, pid_t pid, const char *bundle,
                        const VsOciConfig *c);
