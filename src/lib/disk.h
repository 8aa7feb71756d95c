/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "limits.h"

/*
 * Disk limits: VServer's tagged filesystem and vdlimit on a mainline
 * kernel.  Two mechanisms, picked per filesystem:
 *
 *  - project: the guest's tree is tagged with project id = context id and
 *    project inheritance; the limits are project quotas (quotactl).  The
 *    guests share one filesystem; statfs of the tagged root gives df the
 *    limit.  Needs a filesystem with project quotas enforced (ext4 with the
 *    project and quota features mounted prjquota, xfs mounted pquota) and
 *    a kernel with them (QFMT_V2 for ext4, XFS_QUOTA).
 *  - image: the guest's tree lives in its own ext4 image (DIR/disk.img,
 *    sparse: it takes what the guest wrote), loop-mounted on DIR/rootfs
 *    from build to delete.  Works on any filesystem and kernel with loop
 *    devices; each guest pays a loop device, a mount and a journal.
 *
 * A guest without a disk limit has neither: its tree is a plain directory.
 */

typedef enum VsDiskKind {
        VS_DISK_NONE,
        VS_DISK_PROJECT,
        VS_DISK_IMAGE,
} VsDiskKind;

const char *vs_disk_kind_name(VsDiskKind k); /* "none", "project", "image" */
/* "auto" (VS_DISK_NONE), "project", "image"; -EINVAL otherwise. */
int vs_disk_kind_parse(const char *s, VsDiskKind *ret);

/* What the filesystem holding a directory can give. */
typedef struct VsDiskSupport {
        char fs[32];           /* "ext4" */
        char dir[256];         /* the directory asked about */
        bool project;          /* project quotas enforced there */
        bool image;            /* loop devices and mkfs.ext4 */
        VsDiskKind pick;       /* what a new limit gets; VS_DISK_NONE: nothing works */
        char why_project[256]; /* why not, when not */
        char why_image[256];
} VsDiskSupport;

/* @want: VS_DISK_NONE to pick (project, else image), or the one the host settings name. */
void vs_disk_probe(const char *dir, VsDiskKind want, VsDiskSupport *s);
/* The one line for a directory where @s has nothing: the filesystem and the fix. */
int vs_disk_unsupported(const VsDiskSupport *s, VsDiskKind want, VsError *err);

/* A guest's tree: its directory (the image's home), its root, its context id. */
typedef struct VsDiskTree {
        const char *dir;
        const char *rootfs;
        unsigned context;
        VsDiskKind want; /* the host settings' disk-limits (VS_DISK_NONE: auto) */
} VsDiskTree;

typedef struct VsDiskUsage {
        VsDiskKind kind;
        bool known;     /* the figures below are read (an image not mounted: from its superblock) */
        uint64_t bytes; /* used */
        uint64_t bytes_limit; /* VS_UNLIMITED: none */
        uint64_t inodes;
        uint64_t inodes_limit;
        uint64_t reserved; /* bytes kept for the guest's root (an image's reserved blocks) */
} VsDiskUsage;

/* How @t is limited now, from its directory: its image, or its root's project tag. */
VsDiskKind vs_disk_kind(const VsDiskTree *t);
int vs_disk_usage(const VsDiskTree *t, VsDiskUsage *u, VsError *err);

/*
 * Build: make @t->rootfs (which does not exist yet) a root limited by @l,
 * with mechanism @kind: an empty image mounted there, or a directory
 * tagged with the project.  Everything then written into it is charged.
 */
int vs_disk_create(const VsDiskTree *t, VsDiskKind kind, const VsLimits *l, VsError *err);
/* Whatever needs the tree: an image guest's image mounted on its root (nothing for others). */
int vs_disk_attach(const VsDiskTree *t, VsError *err);
/*
 * Make the kernel hold @l.  A tree with no mechanism in place (built
 * without a limit, or moved from another filesystem) is tagged now where
 * its filesystem has project quotas; else ENOTSUP, with the fix.  Project quotas: the limits, at
 * once; one below what is used is set anyway (the kernel refuses further writes) and said in @note.
 * An image: resized to it.  While the guest runs (@stopped false) an image only grows, and only
 * where the kernel lets ext4 grow mounted (CAP_SYS_RESOURCE); stopped, it is unmounted, checked,
 * resized either way (not below what it holds) and mounted again.
 */
int vs_disk_set(const VsDiskTree *t, const VsLimits *l, bool stopped, char *note, size_t nsz,
                VsError *err);
/* Delete, before the tree goes: the image unmounted (lazily if something holds it). */
int vs_disk_unmount(const VsDiskTree *t, VsError *err);
/*
 * Delete, after the tree went: project @context's limits and usage cleared
 * on the filesystem of @dir, so a guest that gets the id next starts at
 * zero.  Nothing where that filesystem has no project quotas.  Only for
 * a tree that was tagged with it (vs_disk_kind said VS_DISK_PROJECT before
 * it went): else the id may be another installation's guest's.
 */
int vs_disk_forget(const char *dir, unsigned context, VsError *err);

#define VS_DISK_IMAGE_NAME "disk.img"
