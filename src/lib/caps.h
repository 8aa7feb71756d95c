/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* A capability set as a bit mask, bit N = capability N (CAP_LAST_CAP < 64). */
typedef uint64_t VsCaps;

/*
 * What a normal Linux server needs, VServer style: file ownership and
 * permission work, signals, uid/gid changes, low ports, chroot, audit
 * messages.  Never SYS_ADMIN, NET_ADMIN, NET_RAW, MKNOD, SYS_MODULE ...
 */
VsCaps vs_caps_default(void);
/*
 * Capabilities that act on the whole host: the kernel has no namespace for
 * what they govern (the clock, modules, raw I/O, reboot, MAC policy, the
 * kernel log, BPF, perf, audit, accounting), or, held in the host's user
 * namespace, they reach past the guest (SYS_ADMIN; SYS_PTRACE reaches our
 * own processes while they set up a guest).  Only given when a guest file
 * or command line names them as host-wide.
 */
VsCaps vs_caps_host_wide(void);
/*
 * A guest with a user namespace of its own: every capability, as root of
 * that namespace (mounts, its own network stack, nested containers), but
 * those the kernel only honours in the host's user namespace (the clock,
 * modules, raw I/O, MAC policy, the kernel log, BPF, perf, audit control,
 * accounting, wake alarms, suspend blocking, immutable flags): useless
 * there, so not handed out.
 */
VsCaps vs_caps_userns(void);

/* "NET_RAW", "cap_net_raw", "net_raw"; "ALL" gives every known cap. -EINVAL if unknown. */
int vs_caps_from_name(const char *name, VsCaps *ret);
/* Name without the CAP_ prefix, upper case ("NET_RAW"); NULL if unknown. */
const char *vs_caps_name(int cap);
/* "CHOWN,KILL,..." into buf. */
const char *vs_caps_format(VsCaps caps, char *buf, unsigned long size);
/*
 * In the calling process: drop everything outside @caps from the bounding
 * set, clear ambient caps, and set permitted/effective/inheritable to @caps.
 */
int vs_caps_apply(VsCaps caps, VsError *err);

/* A process's identity and its five capability sets, as an OCI process gives them. */
typedef struct VsCred {
        uid_t uid;
        gid_t gid;
        const gid_t *groups;
        int n_groups;
        VsCaps bounding, effective, inheritable, permitted, ambient;
} VsCred;
/*
 * In the calling process: drop the bounding set to @c->bounding, become
 * uid/gid with the supplementary groups (keeping capabilities across), then
 * set effective, permitted and inheritable, and raise the ambient ones.
 */
int vs_cred_apply(const VsCred *c, VsError *err);
