/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

#include "config.h"
#include "error.h"

/* Filling a new guest's tree.  Every write into the tree resolves inside it (openat2). */

/*
 * The built-in template: the host's static busybox, its applets as links,
 * busybox init with an inittab (sysinit script, syslogd, no getty), and the
 * few files a small server needs.  Offline, well under a second.
 */
int vs_template_busybox(const char *rootfs, VsError *err);

typedef struct VsDebianSpec {
        const char *suite;  /* bookworm */
        const char *mirror; /* http://deb.debian.org/debian */
        bool sysvinit;      /* sysvinit-core instead of systemd */
} VsDebianSpec;

/* debootstrap (minbase) into @rootfs, its progress on our stderr; then make it boot in a context.
 */
int vs_template_debian(const char *rootfs, const VsDebianSpec *spec, VsError *err);
/* The boot fixes alone, for a Debian tree from elsewhere (a directory or tarball). */
int vs_template_debian_fixup(const char *rootfs, bool sysvinit, VsError *err);

/* The guest's identity in its tree: /etc/hostname, /etc/hosts, a fresh /etc/machine-id. */
int vs_template_identity(const char *rootfs, const VsGuestConfig *cfg, VsError *err);

/* Write @content to @path inside the tree at @rootfd (created or replaced, never via a symlink). */
int vs_write_in_root(int rootfd, const char *path, const char *content, int mode, VsError *err);
