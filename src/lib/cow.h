/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "error.h"

/*
 * Copy-on-write unification: the guest's root as an overlay.
 *
 *   upper      NAME/rootfs   the guest's own files, as before; it writes here
 *   lower      NAME/base     a stub for each file it shares: an empty file
 *                            with the file's size, owner, mode, times and
 *                            xattrs, marked metacopy, whose redirect names a
 *                            file of the store
 *   data-only  store/        one read-only copy of each shared content
 *              (var/lib/vserver/store/XX/NAME), never visible in a guest
 *   work       NAME/work     overlayfs's own
 *
 * So a guest reads a shared file's bytes from the one store inode (one copy
 * on disk and in the page cache), and a write, chmod, rename or unlink
 * copies it up into its own rootfs, where the other guests never see it.
 * A guest is unified this way while NAME/base exists.  Only the host writes
 * base and the store, and only while the guest does not run; overlayfs
 * follows redirects into the store from lower layers alone (a redirect in
 * the guest's writable rootfs is not followed), and a redirect cannot leave
 * the store.
 */

#define VS_COW_METACOPY "trusted.overlay.metacopy"
#define VS_COW_REDIRECT "trusted.overlay.redirect"
#define VS_COW_PREFIX   "trusted.overlay."

typedef struct VsCowLayers {
        const char *upper; /* NAME/rootfs */
        const char *base;  /* NAME/base */
        const char *work;  /* NAME/work */
        const char *store; /* the installation's store */
        /* in a user namespace: its root's ids on the host, whom overlayfs works as */
        uid_t uid;
        gid_t gid;
} VsCowLayers;

/* Does the guest in @dir (NAME/) have a base layer? */
bool vs_cow_enabled(const char *dir);
/* Does this kernel mount an overlay with a data-only layer (6.5+)? */
bool vs_cow_supported(void);

/*
 * The guest's root as a detached overlay mount.  @userns_fd >= 0: the
 * layers idmapped into that user namespace first.  @readonly: the mount
 * read-only.  The caller must hold the guest's lock; the guest does not run.
 */
int vs_cow_mount(const VsCowLayers *l, int userns_fd, bool readonly, VsError *err);
/*
 * The guest's files as it sees them, read-only, for the host to read (a
 * detached mount: upper and base both as lower layers, so it may run).
 * For a guest without a base layer, its rootfs opened O_PATH.
 */
int vs_cow_view(const VsCowLayers *l, VsError *err);

/*
 * Remove the store files that no stub in @bases (every guest's base, running
 * or not) names, and temporary stubs a killed unify left: the number of
 * files and bytes freed.  Under the unify lock.
 */
int vs_cow_gc(const char *store, const char *const *bases, int n, uint64_t *ret_files,
              uint64_t *ret_bytes, VsError *err);
/*
 * A stopped guest's own copies of its stubs (all, or those under the guest
 * paths @paths): the store's bytes and the stub's owner, mode, times and
 * xattrs, in its rootfs, where nothing of its own hides the stub.  With no
 * stub left, its base and work go, and its rootfs loses overlayfs's
 * whiteouts and xattrs: a plain tree again.
 */
int vs_cow_deunify(const VsCowLayers *l, const char *const *paths, int n_paths, uint64_t *ret_files,
                   VsError *err);
/*
 * @to takes what a guest sees of @from beside its bytes: owner, xattrs (but
 * overlayfs's and the link mark), the file flags it may set, mode, times
 * (@st: @from's).
 */
int vs_cow_copy_meta(int from, int to, const struct stat *st);
/*
 * A store file that was a guest's inode (linked in by unify, no bytes
 * copied): once no guest links it, it is made root's and read-only; while
 * one does, the store takes a copy of its own under the same name.
 */
int vs_cow_settle(int storefd, const char *rel);
/* After a killed unify: every store file settled, temporary names gone. */
int vs_cow_repair(const char *store, VsError *err);
