/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

#include "cgroup.h"
#include "error.h"

typedef struct VsBind {
        const char *source; /* host path */
        const char *target; /* path inside the guest */
        bool readonly;
        bool idmap; /* in a userns guest: mapped like its root (host root's files are its root's) */
} VsBind;

typedef struct VsRootSpec {
        const char *rootfs;
        const struct VsCowLayers *cow; /* NULL, or the layers mounted as an overlay on @rootfs */
        const VsBind *binds;
        int n_binds;
        bool readonly_root; /* the guest's / itself read-only */
        bool tmp_tmpfs;     /* a tmpfs on /tmp */
        bool boot;          /* an init boots here: the cgroup tree (rooted at our own cgroup)
                             * on /sys/fs/cgroup, a tmpfs on /run/lock */
        bool cgroup_ro;     /* that tree all read-only (a guest not delegated) */
        /*
         * In a user namespace of its own (not the host's): device nodes are
         * the host's, bound (mknod is the host's privilege).  The trees are
         * made by the host side first (the root idmapped): @rootfs_fd, and
         * @bind_fds[i] for @binds[i].  @host_sysfs: the network namespace is
         * the host's, whose sysfs only the host may mount: @sysfs_fd, a
         * sysfs the host side made (without the host's mounts below it).
         */
        bool userns;
        bool host_sysfs;
        int rootfs_fd;       /* -1: clone @rootfs here */
        int sysfs_fd;        /* -1: mount sysfs here */
        const int *bind_fds; /* NULL: open each bind's source here */
        /*
         * Files bound over the guest's own last, after /proc and /sys are in
         * place and masked (the /proc views): detached mounts the caller
         * made; a target that is not there is left alone.
         */
        const struct VsOverlay {
                int fd;
                const char *target;
        } * overlays;
        int n_overlays;
        /* @boot: the caller's own cgroups, bound (vs_cgroup_own_trees); NULL: fresh mounts */
        const VsCgroupTree *cgroup_trees;
        int n_cgroup_trees;
        /*
         * Sysctls ("net/ipv4/NAME", value; NULL-ended pairs) written, best effort, through
         * the guest's new /proc before it is attached.  Through the host's /proc, the
         * entries of every network namespace share one dcache hash chain, which each
         * lookup walks: a start's cost grew with the guests running.
         */
        const char *const *sysctls;
} VsRootSpec;

/*
 * In the calling process's own (new) mount namespace, in two steps, so a
 * caller may change credentials between them (a user namespace's root):
 *
 * place: make the tree private and put the root in place (resolving host
 * paths), returning an O_PATH fd of it, ready for vs_mount_pivot();
 * fill: mount /proc, /sys (ro), /dev (tmpfs with the basic nodes, devpts,
 * shm, mqueue) and /run in it, apply the user's bind mounts, mask and
 * write-protect the sensitive /proc and /sys paths; 0 or -errno.
 *
 * Every mount target is resolved inside the root: user bind targets may not
 * pass a symlink that leads out of it.
 */
int vs_mount_place_root(const VsRootSpec *spec, VsError *err);
int vs_mount_fill_root(const VsRootSpec *spec, int rootfd, VsError *err);
/*
 * Host side of a user-namespaced root: a detached clone of @spec->rootfs,
 * idmapped to the user namespace @userns_fd (and read-only if asked), a
 * sysfs if @spec->host_sysfs, and detached clones of the bind sources (the
 * idmap ones idmapped), in that order into @fds; returns how many.  A
 * filesystem without idmapped mounts is named in the error.
 */
int vs_mount_make_trees(const VsRootSpec *spec, int userns_fd, int *fds, VsError *err);
/* pivot_root into @rootfd and detach the old root: nothing of the host stays reachable. */
int vs_mount_pivot(int rootfd, VsError *err);
/* Bind @source (an fd, e.g. a pty) over @target (a path below the new root's /dev). */
int vs_mount_bind_fd(int rootfd, int source_fd, const char *target, VsError *err);
/* Parse "SRC:DST[:OPTS]", OPTS ro, rw, idmap, comma separated; points into @spec, which it
 * modifies. */
int vs_bind_parse(char *spec, VsBind *ret, VsError *err);

/* For the OCI front (oci_run.c), which mounts what config.json lists. */
/* Open @path below @rootfd (O_PATH, RESOLVE_* @resolve), creating a dir or an empty file. */
int vs_mount_open_target(int rootfd, const char *path, bool dir, unsigned long long resolve);
/* move_mount the detached @mntfd onto @targetfd; 0 or -errno. */
int vs_mount_attach(int mntfd, int targetfd);
/*
 * A new proc superblock as a detached mount (nosuid, nodev, noexec); -errno.
 * Net sysctls are best written through one: through the host's /proc, the
 * entries of every network namespace share one dcache hash chain, which each
 * lookup walks.
 */
int vs_mount_new_proc(void);
/*
 * The cgroup tree on @at, as a booting guest gets it on /sys/fs/cgroup; all
 * read-only if asked.  With @trees (vs_cgroup_own_trees), those are bound;
 * else each hierarchy is mounted afresh (rooted at our cgroup namespace).
 */
int vs_mount_cgroups(int rootfd, const char *at, bool readonly, const VsCgroupTree *trees,
                     int n_trees, VsError *err);
/*
 * Mask and write-protect paths (NULL-terminated lists) below @rootfd, before
 * the pivot; files are masked with the host's /dev/null: @nullfd
 * (vs_mount_host_null(): an O_PATH fd of it, checked to be 1:3), or -1 to
 * take it now; directories with @empty (a detached mount of an empty
 * directory, made read-only here), or -1 for an empty tmpfs.
 */
int vs_mount_mask(int rootfd, const char *const *masked, const char *const *readonly, int nullfd,
                  int empty, VsError *err);
int vs_mount_host_null(void);

/* For docs and tests. */
extern const char *const vs_masked_paths[];
extern const char *const vs_readonly_paths[];
