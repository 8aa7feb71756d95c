/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Copy-on-write unification undone: deunify, and the store's garbage (cow.h). */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cow.h"
#include "syscalls.h"
#include "tree.h"
#include "unify.h"
#include "util.h"

/* base mirrors the guest's directories, which unify follows 64 deep */
#define DEPTH_MAX 80

#define REDIRECT_MAX 48

typedef struct Walk {
        int (*file)(struct Walk *w, int dfd, const char *name, const char *rel);
        bool dirs; /* @file gets directories too, before what is in them */
        char rel[PATH_MAX];
        int error;
        void *data;
} Walk;

/* Every regular file under @dfd (closed here), depth first, @depth bounded. */
static void walk(Walk *w, int dfd, size_t len, int depth)
{
        DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                w->error = errno;
                return;
        }
        struct dirent *de;
        while (!w->error && (de = readdir(d))) {
                const char *nm = de->d_name;
                if (nm[0] == '.' && (!nm[1] || (nm[1] == '.' && !nm[2])))
                        continue;
                size_t nl = strlen(nm);
                if (len + nl + 2 >= sizeof w->rel)
                        continue;
                char *end = w->rel + len;
                if (len)
                        *end++ = '/';
                memcpy(end, nm, nl + 1);
                size_t sublen = (size_t)(end - w->rel) + nl;
                struct stat st;
                if (fstatat(dirfd(d), nm, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                        if (S_ISDIR(st.st_mode) && w->dirs) {
                                int r = w->file(w, dirfd(d), nm, w->rel);
                                if (r < 0)
                                        w->error = -r;
                        }
                        if (S_ISDIR(st.st_mode) && depth < DEPTH_MAX) {
                                int sub = openat(dirfd(d), nm,
                                                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                                if (sub >= 0)
                                        walk(w, sub, sublen, depth + 1);
                        } else if (!S_ISDIR(st.st_mode)) {
                                int r = w->file(w, dirfd(d), nm, w->rel);
                                if (r < 0)
                                        w->error = -r;
                        }
                }
                w->rel[len] = '\0';
        }
        closedir(d);
}

static int walk_dir(Walk *w, const char *dir)
{
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        w->rel[0] = '\0';
        walk(w, fd, 0, 0);
        return -w->error;
}

/* ---- the store's garbage ------------------------------------------------------------- */

typedef struct Names {
        char (*v)[REDIRECT_MAX];
        size_t n, cap;
} Names;

static bool temporary(const char *name)
{
        return strncmp(name, VS_UNIFY_TMP, strlen(VS_UNIFY_TMP)) == 0;
}

static int collect(Walk *w, int dfd, const char *name, const char *rel)
{
        (void)rel;
        Names *n = w->data;
        if (temporary(name)) /* a stub a killed unify did not finish */
                return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
        _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        char v[REDIRECT_MAX];
        ssize_t len = fd < 0 ? -1 : fgetxattr(fd, VS_COW_REDIRECT, v, sizeof v - 1);
        if (len <= 0)
                return 0;
        v[len] = '\0';
        if (n->n == n->cap) {
                size_t cap = n->cap ? n->cap * 2 : 1024;
                void *nv = realloc(n->v, cap * sizeof *n->v);
                if (!nv)
                        return -ENOMEM;
                n->v = nv;
                n->cap = cap;
        }
        memcpy(n->v[n->n++], v, (size_t)len + 1);
        return 0;
}

static int cmp_name(const void *a, const void *b)
{
        return strcmp(a, b);
}

typedef struct Sweep {
        Names *names;
        uint64_t files, bytes;
} Sweep;

static int sweep(Walk *w, int dfd, const char *name, const char *rel)
{
        Sweep *s = w->data;
        char key[REDIRECT_MAX];
        if (snprintf(key, sizeof key, "/%s", rel) >= (int)sizeof key)
                return 0;
        if (s->names->n && bsearch(key, s->names->v, s->names->n, sizeof *s->names->v, cmp_name))
                return 0;
        _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return 0;
        if (unlinkat(dfd, name, 0) < 0)
                return -errno;
        s->files++;
        s->bytes += (uint64_t)st.st_size;
        return 0;
}

int vs_cow_gc(const char *store, const char *const *bases, int n, uint64_t *ret_files,
              uint64_t *ret_bytes, VsError *err)
{
        Names names = {0};
        Walk w = {.file = collect, .data = &names};
        int r = 0;
        for (int i = 0; r == 0 && i < n; i++)
                if ((r = walk_dir(&w, bases[i])) < 0)
                        r = vs_error(err, -r, "read the stubs in %s", bases[i]);
        if (r == 0) {
                if (names.n)
                        qsort(names.v, names.n, sizeof *names.v, cmp_name);
                Sweep s = {.names = &names};
                w = (Walk){.file = sweep, .data = &s};
                if ((r = walk_dir(&w, store)) < 0)
                        r = vs_error(err, -r, "clean the store %s", store);
                if (ret_files)
                        *ret_files = s.files;
                if (ret_bytes)
                        *ret_bytes = s.bytes;
        }
        free(names.v);
        return r;
}

/* ---- the store's own inodes ---------------------------------------------------------- */

int vs_cow_settle(int storefd, const char *rel)
{
        _cleanup_close_ int fd = vs_openat2(storefd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC,
                                            RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (st.st_nlink == 1) {
                /* the store's alone: root's, read-only, nothing of the guest's on it */
                char names[8192];
                ssize_t n = flistxattr(fd, names, sizeof names);
                for (char *x = names; n > 0 && x < names + n; x += strlen(x) + 1)
                        (void)fremovexattr(fd, x);
                if ((st.st_uid || st.st_gid) && fchown(fd, 0, 0) < 0)
                        return -errno;
                return (st.st_mode & 07777) != 0444 && fchmod(fd, 0444) < 0 ? -errno : 0;
        }
        /* a guest still links it: the store takes a copy of its own, under the same name */
        const char *slash = strrchr(rel, '/');
        char dir[PATH_MAX], tmp[64];
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - rel) : 1, slash ? rel : ".");
        _cleanup_close_ int d = vs_openat2(storefd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                                           RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
        if (d < 0)
                return -errno;
        _cleanup_close_ int to = openat(d, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0444);
        if (to < 0)
                return -errno;
        long long n = vs_copy_all(fd, to);
        if (n < 0)
                return (int)n;
        if (fdatasync(to) < 0)
                return -errno;
        snprintf(tmp, sizeof tmp, VS_UNIFY_TMP "%d", getpid());
        (void)unlinkat(d, tmp, 0);
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", to);
        if (linkat(AT_FDCWD, proc, d, tmp, AT_SYMLINK_FOLLOW) < 0)
                return -errno;
        if (renameat(d, tmp, d, slash ? slash + 1 : rel) < 0) {
                int e = errno;
                (void)unlinkat(d, tmp, 0);
                return -e;
        }
        return 0;
}

static int settle_file(Walk *w, int dfd, const char *name, const char *rel)
{
        (void)dfd;
        if (temporary(name))
                return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
        return vs_cow_settle(*(int *)w->data, rel);
}

int vs_cow_repair(const char *store, VsError *err)
{
        _cleanup_close_ int fd = open(store, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : vs_error(err, errno, "open %s", store);
        Walk w = {.file = settle_file, .data = &fd};
        int r = walk_dir(&w, store);
        return r < 0 ? vs_error(err, -r, "repair the store %s (at %s)", store, w.rel) : 0;
}

/* ---- deunify ------------------------------------------------------------------------- */

typedef struct Undo {
        const VsCowLayers *l;
        int rootfd, storefd, viewfd;
        const char *const *paths;
        int n_paths;
        uint64_t files;
        bool left; /* stubs not asked for stay */
} Undo;

static bool wanted(const Undo *u, const char *rel)
{
        if (u->n_paths == 0)
                return true;
        for (int i = 0; i < u->n_paths; i++) {
                const char *p = u->paths[i];
                while (*p == '/')
                        p++;
                size_t n = strlen(p);
                while (n && p[n - 1] == '/')
                        n--;
                if (n == 0 || (strncmp(rel, p, n) == 0 && (rel[n] == '\0' || rel[n] == '/')))
                        return true;
        }
        return false;
}

/* The guest's own copy of one stub, where nothing of its own hides the stub. */
static int private_copy(Undo *u, int stub, const char *rel, const char *redirect)
{
        const char *slash = strrchr(rel, '/');
        const char *name = slash ? slash + 1 : rel;
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - rel) : 1, slash ? rel : ".");
        _cleanup_close_ int pd = vs_openat2(u->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                                            RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS |
                                                RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
        struct stat st;
        char v[8];
        if (pd < 0 || fgetxattr(pd, VS_COW_PREFIX "opaque", v, sizeof v) >= 0 ||
            fstatat(pd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                return 0; /* its own file, a whiteout or a directory above hides the stub */
        _cleanup_close_ int src = vs_openat2(u->storefd, redirect + 1, O_RDONLY | O_CLOEXEC,
                                             RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
        if (src < 0)
                return -errno;
        char tmp[64];
        snprintf(tmp, sizeof tmp, VS_UNIFY_TMP "%d", getpid());
        (void)unlinkat(pd, tmp, 0);
        _cleanup_close_ int to =
            openat(pd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (to < 0)
                return -errno;
        long long n = vs_copy_all(src, to);
        int r = n < 0 ? (int)n : 0;
        if (r == 0)
                r = fstat(stub, &st) < 0 ? -errno : vs_cow_copy_meta(stub, to, &st);
        if (r == 0 && renameat2(pd, tmp, pd, name, RENAME_NOREPLACE) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlinkat(pd, tmp, 0);
                return r;
        }
        u->files++;
        return 0;
}

static int undo_file(Walk *w, int dfd, const char *name, const char *rel)
{
        Undo *u = w->data;
        if (!wanted(u, rel)) {
                u->left = true;
                return 0;
        }
        _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        char v[REDIRECT_MAX];
        ssize_t len = fd < 0 ? -1 : fgetxattr(fd, VS_COW_REDIRECT, v, sizeof v - 1);
        if (len > 1 && v[0] == '/') {
                v[len] = '\0';
                int r = private_copy(u, fd, rel, v);
                if (r < 0)
                        return r;
        }
        return unlinkat(dfd, name, 0) < 0 ? -errno : 0;
}

/*
 * A metadata-only copy-up in the rootfs (a chmod, chown or rename of a
 * shared file) holds no bytes: its own, read through the guest's view.
 */
static int fill_file(Walk *w, int dfd, const char *name, const char *rel)
{
        Undo *u = w->data;
        _cleanup_close_ int fd = openat(dfd, name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
            fgetxattr(fd, VS_COW_METACOPY, NULL, 0) < 0)
                return 0;
        _cleanup_close_ int src =
            vs_openat2(u->viewfd, rel, O_RDONLY | O_CLOEXEC,
                       RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
        if (src < 0)
                return -errno;
        long long n = vs_copy_all(src, fd);
        int r = n < 0 ? (int)n : 0;
        struct timespec times[2] = {st.st_atim, st.st_mtim};
        if (r == 0 && (fremovexattr(fd, VS_COW_METACOPY) < 0 || futimens(fd, times) < 0))
                r = -errno;
        u->files += r == 0;
        return r;
}

/* A plain tree again: no whiteouts, no overlayfs xattrs. */
static int plain_file(Walk *w, int dfd, const char *name, const char *rel)
{
        (void)w;
        (void)rel;
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return 0;
        if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0))
                return unlinkat(dfd, name, 0) < 0 ? -errno : 0;
        if (S_ISLNK(st.st_mode))
                return 0;
        _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        char names[8192];
        ssize_t n = fd < 0 ? -1 : flistxattr(fd, names, sizeof names);
        for (char *s = names; n > 0 && s < names + n; s += strlen(s) + 1)
                if (strncmp(s, VS_COW_PREFIX, strlen(VS_COW_PREFIX)) == 0)
                        (void)fremovexattr(fd, s);
        return 0;
}

int vs_cow_deunify(const VsCowLayers *l, const char *const *paths, int n_paths, uint64_t *ret_files,
                   VsError *err)
{
        Undo u = {.l = l, .paths = paths, .n_paths = n_paths, .viewfd = -1};
        u.rootfd = open(l->upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        u.storefd = open(l->store, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int r = 0;
        if (u.rootfd < 0 || u.storefd < 0)
                r = vs_error(err, errno, "open %s and the store %s", l->upper, l->store);
        /* first what depends on any stub, then the stubs */
        Walk w = {.file = fill_file, .data = &u};
        if (r == 0 && (u.viewfd = vs_cow_view(l, err)) < 0)
                r = u.viewfd;
        if (r == 0 && (r = walk_dir(&w, l->upper)) < 0)
                r = vs_error(err, -r, "fill in %s", w.rel);
        w = (Walk){.file = undo_file, .data = &u};
        if (r == 0 && (r = walk_dir(&w, l->base)) < 0)
                r = vs_error(err, -r, "deunify %s", w.rel);
        if (r == 0 && !u.left) {
                /* nothing shared any more: a plain tree, without its overlay */
                w = (Walk){.file = plain_file, .dirs = true};
                if ((r = walk_dir(&w, l->upper)) < 0)
                        r = vs_error(err, -r, "clean %s", l->upper);
                if (r == 0)
                        r = vs_tree_remove(l->base, err);
                if (r == 0)
                        r = vs_tree_remove(l->work, err);
        }
        if (ret_files)
                *ret_files = u.files;
        if (u.rootfd >= 0)
                close(u.rootfd);
        if (u.storefd >= 0)
                close(u.storefd);
        if (u.viewfd >= 0)
                close(u.viewfd);
        return r;
}
