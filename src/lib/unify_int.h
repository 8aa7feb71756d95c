/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once
/*
 * Inside unification (unify.h says what it does), split by phase, each
 * file using only those before it:
 *
 *   unify_ctx.c    a run's context: trees opened, threads, clocks
 *   unify_scan.c   walk the trees into path records (patterns: pattern.c)
 *   unify_prove.c  paths to inodes, groups by size and metadata, the
 *                  proof byte for byte: sets of files to share
 *   unify_share.c  share each set (links or reflinks), freezing guests
 *   unify_cow.c    or, copy-on-write: a store copy and stubs (cow.h)
 *   unify.c        vs_unify: the phases in order
 *   unify_undo.c   deunify, release and repair
 */

#include <dirent.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>

#include "error.h"
#include "pattern.h"
#include "syscalls.h"
#include "unify.h"
#include "util.h"

#define IN_TREE (RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)

#define CHUNK (256 * 1024)

/* flags that make two files different (ext4/xfs/btrfs user-visible ones) */
#define USER_FLAGS                                                                                 \
        (FS_SECRM_FL | FS_UNRM_FL | FS_COMPR_FL | FS_SYNC_FL | FS_IMMUTABLE_FL | FS_APPEND_FL |    \
         FS_NODUMP_FL | FS_NOATIME_FL | FS_JOURNAL_DATA_FL | FS_NOTAIL_FL | FS_DIRSYNC_FL |        \
         FS_TOPDIR_FL | FS_NOCOW_FL | FS_PROJINHERIT_FL)

#define BATCH_FILES 2048

#define BATCH_NS 100000000LL /* a freeze lasts at most about this long */

/* ---- the scan ------------------------------------------------------------------------ */

typedef struct Rec {
        dev_t dev;
        ino_t ino;
        uint64_t size, blocks;
        uint32_t mode, uid, gid, nlink;
        struct timespec mtime, ctime;
        bool immutable; /* or append-only */
        uint32_t tree;
        char *rel; /* "usr/bin/x" */
} Rec;

typedef struct RecVec {
        Rec *v;
        size_t n, cap;
} RecVec;

typedef struct Walk {
        const VsUnifyTree *t;
        uint32_t tree;
        dev_t dev;
        RecVec out;
        bool all; /* no patterns: repair and release walks */
        atomic_uint_fast64_t *files;
        uint64_t excluded;
        int error;
        char where[PATH_MAX];
} Walk;

/* ---- inodes, groups and the proof ---------------------------------------------------- */

typedef struct Ino {
        Rec r;         /* of its first path */
        uint32_t path; /* first index in paths[] */
        uint32_t npaths;
        uint32_t flags;
        uint64_t xhash;
        uint32_t xlen;
        uint64_t prefix; /* xxh3 of the first 64 KiB, for runs over WAY_MAX */
        bool marked;
        bool skip;
        bool link;   /* on a filesystem shared by links (not reflinks) */
        bool queued; /* overlay: its paths are to become stubs */
} Ino;

typedef struct Set {
        uint32_t *ino; /* [0] is the keeper */
        uint32_t n;
} Set;

typedef struct Run {
        uint32_t start, n; /* in order[] */
} Run;

typedef struct Ctx {
        const VsUnifyTree *trees;
        int ntrees;
        const VsUnifyOptions *o;
        VsUnifyStats *st;
        int *rootfd;
        Rec *paths; /* all paths, sorted by inode */
        size_t npaths;
        Ino *inos;
        size_t ninos;
        uint32_t *order; /* ino indices sorted by group key */
        Run *runs;
        size_t nruns;
        atomic_size_t next_run;
        atomic_uint_fast64_t done, bytes_read;

        pthread_mutex_t lock;
        Set *sets;
        size_t nsets, capsets;
        bool any_running, frozen;
        bool touched[256]; /* trees that got links (the first 256) */
        long long frozen_at;
        int batch;
        bool pending_made;
        /* overlay (cow.h): the store is the last tree */
        bool cow;
        int store_tree; /* -1: none */
        int storefd;
        int *basefd;
        char **cow_names;  /* per inode: its store file, once it has one */
        char **cow_linked; /* store files that were a guest's inode (settled at the end) */
        size_t ncow_linked;
        dev_t store_dev;
        VsError err;
} Ctx;

/* unify_ctx.c */
long long unify_now_ns(void);
void unify_run_threads(Ctx *c, void *(*fn)(void *), void *arg, const char *phase,
                       atomic_uint_fast64_t *count, uint64_t total, int per_cpu);
int unify_root_fd(const char *root, dev_t *ret_dev, VsError *err);
bool unify_fs_reflinks(int fd);
int unify_ctx_init(Ctx *c, const VsUnifyTree *trees, int n, const VsUnifyOptions *o,
                   VsUnifyStats *st);
void unify_ctx_free(Ctx *c);

/* unify_scan.c */
int unify_push(RecVec *v, const Rec *r);
void unify_recvec_free(RecVec *v);
void unify_fill_rec(Rec *r, const struct statx *sx);
void unify_walk_dir(Walk *w, int dfd, char *rel, size_t len, int state, int depth);
int unify_walk_tree(Walk *w, VsError *err);
int unify_scan(Ctx *c, bool all);

/* unify_prove.c */
int unify_open_ino(Ctx *c, const Ino *in, int flags, struct stat *ret);
int unify_get_flags(int fd, uint32_t *ret);
bool unify_is_marked(int fd);
int unify_same_bytes(int a, int b, char *ba, char *bb, uint64_t *read_bytes);
int unify_same_xattrs(int a, int b);
int unify_build_inos(Ctx *c);
/* Groups of files that may be the same, in runs (c->runs). */
int unify_group(Ctx *c);
/* Prove each run byte for byte, on threads: the sets to share (c->sets). */
int unify_prove(Ctx *c);

/* unify_share.c */
int unify_freeze(Ctx *c, bool on);
int unify_pending(Ctx *c, bool on);
int unify_set_imm(int fd, bool on);
void unify_tmp_name(char out[64]);
int unify_open_parent(int rootfd, const char *rel, const char **ret_base, int flags);
int unify_dpkg_hook(Ctx *c, int tree, bool on);
int unify_share_all(Ctx *c);

/* unify_cow.c */
int unify_cow_share_all(Ctx *c);
