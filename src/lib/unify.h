/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/*
 * Unification (vhashify): files that guests have in common are stored once.
 *
 * Scan the trees, group regular files by size (and, for links, by owner,
 * group, mode, mtime), read flags and xattrs of the colliding ones only,
 * hash (xxh3-128) only groups of three or more, and prove every match byte
 * for byte before anything is shared.  Two ways to share, by filesystem:
 *
 *   reflink  (btrfs, xfs) FIDEDUPERANGE: each guest keeps its own inode;
 *            the kernel compares again under its locks and shares extents.
 *   link     (ext4 and the rest) one inode, hard-linked into each guest,
 *            marked immutable and with the xattr trusted.vserver.unified.
 *            No guest can write, truncate, chmod, chown, unlink or rename
 *            it; `deunify` gives a guest its private copies back.
 *
 * Links are made through a temporary name in the same directory and a
 * rename over the original, so a SIGKILL loses no file; a marker file in
 * the run directory says work may be half done (an inode shared but not yet
 * immutable) until a later run has repaired it.  While an inode is shared
 * and writable, or an immutable one must take or lose a link, every running
 * guest is frozen (through @freeze), its writers are excluded with a read
 * lease, and the match is proved again.
 */

#define VS_UNIFY_XATTR "trusted.vserver.unified"
#define VS_UNIFY_TMP   ".vserver-unify." /* prefix of our temporary names */

typedef enum { VS_UNIFY_AUTO, VS_UNIFY_LINK, VS_UNIFY_REFLINK, VS_UNIFY_OVERLAY } VsUnifyMode;

typedef struct VsUnifyTree {
        const char *name; /* the guest */
        const char *root; /* its rootfs */
        const char *base; /* overlay: its base layer (cow.h), made if missing */
        const char *work; /* overlay: overlayfs's work directory, made if missing */
        bool running;     /* frozen around link batches */
        bool no_link;     /* may change file flags (LINUX_IMMUTABLE...): never hard-linked */
        const char *const *patterns; /* its exclude patterns, then the host's (pattern.h) */
        int n_patterns;
} VsUnifyTree;

typedef struct VsUnifyStats {
        uint64_t files;       /* regular files looked at */
        uint64_t bytes;       /* their size */
        uint64_t excluded;    /* files left out by a pattern */
        uint64_t candidates;  /* files whose size (and metadata) collide */
        uint64_t bytes_read;  /* read to hash and compare */
        uint64_t shared;      /* paths now sharing with another */
        uint64_t already;     /* paths that already shared */
        uint64_t bytes_saved; /* freed (links) or deduplicated (reflinks) */
        uint64_t busy;        /* skipped: open for writing */
        uint64_t changed;     /* skipped: changed while we worked */
        uint64_t setuid;      /* setuid/setgid files left alone */
        uint64_t deunified;   /* private copies made (deunify) */
        double seconds;
        const char *mode; /* "link", "reflink", "mixed" or "none" */
} VsUnifyStats;

typedef struct VsUnifyProgress {
        const char *phase; /* "scan", "compare", "share" */
        uint64_t done, total;
} VsUnifyProgress;

typedef struct VsUnifyOptions {
        bool dry_run;
        bool ignore_mtime;
        bool setuid; /* setuid/setgid files too */
        VsUnifyMode mode;
        int jobs; /* threads; 0: one per online CPU */
        /* freeze (true) or thaw every running guest; may be NULL if none runs */
        int (*freeze)(void *data, bool freeze, VsError *err);
        void *freeze_data;
        /* each path shared (or that would be, with dry_run) */
        void (*report)(void *data, const char *guest, const char *path, const char *with_guest,
                       const char *with_path, uint64_t size);
        void (*progress)(void *data, const VsUnifyProgress *p);
        void *data;
        const char *pending; /* the run directory's marker file */
        const char *store;   /* overlay: the installation's store (every tree stopped) */
} VsUnifyOptions;

int vs_unify(const VsUnifyTree *trees, int n, const VsUnifyOptions *o, VsUnifyStats *st,
             VsError *err);
/*
 * Give @t private copies (same content and metadata) of its shared files,
 * all of them or those under @paths (guest paths).
 */
int vs_deunify(const VsUnifyTree *t, const char *const *paths, int n_paths, const VsUnifyOptions *o,
               VsUnifyStats *st, VsError *err);
/* Before a tree is removed: drop its links to inodes other guests share. */
int vs_unify_release(const char *root, const VsUnifyOptions *o, VsError *err);
/*
 * After an interrupted run (@o->pending exists): make every shared inode
 * in @trees immutable again and remove our temporary names.
 */
int vs_unify_repair(const VsUnifyTree *trees, int n, const VsUnifyOptions *o, VsError *err);
