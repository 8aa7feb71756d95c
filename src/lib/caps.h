/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdint.h>

#include "error.h"

/* A capability set as a bit mask, bit N = capability N (CAP_LAST_CAP < 64). */
typedef uint64_t VsCaps;

/*
 * What a normal Linux server needs, VServer style: file ownership and
 * permission work, signals, uid/gid changes, low ports, chroot, audit
 * messages.  Never SYS_ADMIN, NET_ADMIN, NET_RAW, MKNOD, SYS_MODULE ...
 */
VsCaps vs_caps_default(void);
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
