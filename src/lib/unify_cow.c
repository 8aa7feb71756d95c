/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unification, phase 3 for copy-on-write (cow.h): each proved set gets one
 * copy in the store (or keeps the one already there), then each guest path
 * of it becomes a stub in the guest's base layer and leaves its rootfs.
 *
 * Crash safety by order alone: the store copy is written and synced before
 * any stub names it; a stub is made whole under a temporary name and renamed
 * into place; only then does the rootfs file go.  Killed anywhere, a path is
 * the guest's own file (a stub below it is hidden by it) or the stub; what
 * is left is a store file nobody names or a temporary stub, both reclaimed
 * by the next run (vs_cow_gc).  Only stopped guests get here.
 */
#include "unify_int.h"

#include "cow.h"

#include <xxhash.h>

#define STORE_NAME 40 /* "XX/" + 32 hex + NUL, rounded */

/*
 * Is @st still the inode proved equal, unchanged since the scan?  A write,
 * truncate, chmod or chown moves its ctime (guests are stopped, but the
 * host's own tools are not).
 */
static bool unchanged(const Ino *in, const struct stat *st)
{
        return st->st_dev == in->r.dev && st->st_ino == in->r.ino &&
               st->st_size == (off_t)in->r.size && st->st_ctim.tv_sec == in->r.ctime.tv_sec &&
               st->st_ctim.tv_nsec == in->r.ctime.tv_nsec;
}

/*
 * A new name in the store, "XX/NAME" in @ret: 22 characters with the slash
 * and the redirect's leading one, so a stub's two overlayfs xattrs fit in
 * an ext4 inode's own space (no xattr block per stub).  The directory XX is
 * returned open.
 */
static int store_name(int store, char ret[STORE_NAME])
{
        unsigned char rnd[11];
        if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
                return -EIO;
        char hex[23];
        for (size_t i = 0; i < sizeof rnd; i++)
                snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
        snprintf(ret, STORE_NAME, "%.2s/%s", hex, hex + 2);
        char dir[3] = {hex[0], hex[1], '\0'};
        if (mkdirat(store, dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        int d = openat(store, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return d < 0 ? -errno : d;
}

/*
 * The store takes the inode @in itself (@src open on it): a link, no bytes
 * copied.  Until its guest paths are gone the store shares an inode with a
 * guest: the pending note makes a start wait for the repair (vs_cow_repair),
 * and unify_cow_share_all settles it at the end.
 */
static int store_link(Ctx *c, int src, Ino *in, char ret[STORE_NAME])
{
        struct stat st;
        if (fstat(src, &st) < 0 || !unchanged(in, &st))
                return -ESTALE;
        int r = unify_pending(c, true);
        if (r < 0)
                return r;
        for (int tries = 0;; tries++) {
                _cleanup_close_ int d = store_name(c->storefd, ret);
                if (d < 0)
                        return d;
                const char *name = strchr(ret, '/') + 1;
                if (linkat(src, "", d, name, AT_EMPTY_PATH) == 0)
                        break;
                if (errno != EEXIST || tries > 8)
                        return -errno;
        }
        if (fstat(src, &st) < 0)
                return -errno;
        in->r.ctime = st.st_ctim; /* a link moves it */
        return 0;
}

/* A new store file with the bytes of @src (inode @in), for what cannot be linked. */
static int store_copy(int store, int src, const Ino *in, char ret[STORE_NAME])
{
        _cleanup_close_ int d = store_name(store, ret);
        if (d < 0)
                return d;
        _cleanup_close_ int fd = openat(d, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0444);
        if (fd < 0)
                return -errno;
        long long n = vs_copy_all(src, fd);
        struct stat st;
        if (n < 0)
                return (int)n;
        if (fstat(src, &st) < 0 || !unchanged(in, &st) || (uint64_t)n != in->r.size)
                return -ESTALE; /* changed since it was proved */
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        if (linkat(AT_FDCWD, proc, d, strchr(ret, '/') + 1, AT_SYMLINK_FOLLOW) < 0)
                return -errno;
        return 0;
}

/* Does directory @fd send overlayfs elsewhere (opaque, or a renamed directory's redirect)? */
static bool redirected(int fd)
{
        char v[8];
        return fgetxattr(fd, VS_COW_PREFIX "opaque", v, sizeof v) >= 0 ||
               fgetxattr(fd, VS_COW_REDIRECT, NULL, 0) >= 0;
}

/*
 * The directories of the path worked on, in the rootfs and the base, kept
 * open while the next path (in sorted order) shares them: a level open in
 * both, or hidden (a rootfs directory that is opaque or redirected, or not
 * a directory in the base) and all below it with it.
 */
#define DIRS_MAX 80 /* scan depth 64 and some */

typedef struct Dirs {
        int tree; /* -1: none yet */
        int depth;
        bool hidden;                            /* at depth */
        int up[DIRS_MAX + 1], bp[DIRS_MAX + 1]; /* [0]: the tree's own, not ours */
        char name[DIRS_MAX][NAME_MAX + 1];
} Dirs;

static void dirs_close(Dirs *d, int keep)
{
        for (; d->depth > keep; d->depth--) {
                if (d->up[d->depth] >= 0)
                        close(d->up[d->depth]);
                if (d->bp[d->depth] >= 0)
                        close(d->bp[d->depth]);
        }
        d->hidden = false;
}

/* Level @i + 1: component @comp under level @i, made in the base with the rootfs's owner and mode.
 */
static int dirs_push(Dirs *d, const char *comp)
{
        int i = d->depth;
        snprintf(d->name[i], sizeof d->name[i], "%s", comp);
        d->up[i + 1] = d->bp[i + 1] = -1;
        d->depth = i + 1;
        int nu = openat(d->up[i], comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (nu < 0 || fstat(nu, &st) < 0 || redirected(nu)) {
                if (nu >= 0)
                        close(nu);
                d->hidden = true;
                return 0;
        }
        d->up[i + 1] = nu;
        bool made = mkdirat(d->bp[i], comp, 0700) == 0;
        if (!made && errno != EEXIST)
                return -errno;
        int nb = openat(d->bp[i], comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nb < 0) {
                if (errno != ENOTDIR && errno != ELOOP)
                        return -errno;
                d->hidden = true;
                return 0;
        }
        d->bp[i + 1] = nb;
        if (made && (fchown(nb, st.st_uid, st.st_gid) < 0 || fchmod(nb, st.st_mode & 07777) < 0))
                return -errno;
        return 0;
}

/*
 * The parent of @p in its rootfs (@ret_up) and base (@ret_bp), borrowed
 * from @d.  1: there, 0: leave the path alone (hidden), -errno.
 */
static int dirs_open(Dirs *d, Ctx *c, const Rec *p, int *ret_up, int *ret_bp)
{
        if (d->tree != (int)p->tree) {
                dirs_close(d, 0);
                d->tree = (int)p->tree;
                d->up[0] = c->rootfd[p->tree];
                d->bp[0] = c->basefd[p->tree];
        }
        char comp[NAME_MAX + 1];
        int level = 0;
        for (const char *q = p->rel, *slash; (slash = strchr(q, '/')); q = slash + 1, level++) {
                size_t n = (size_t)(slash - q);
                if (n > NAME_MAX || level >= DIRS_MAX)
                        return 0;
                memcpy(comp, q, n);
                comp[n] = '\0';
                if (level < d->depth && streq(d->name[level], comp))
                        continue; /* the same as the last path's */
                dirs_close(d, level);
                int r = dirs_push(d, comp);
                if (r < 0)
                        return r;
        }
        if (d->depth > level)
                dirs_close(d, level);
        if (d->hidden)
                return 0;
        *ret_up = d->up[level];
        *ret_bp = d->bp[level];
        return 1;
}

/* The stub is whole: the guest's own path @name (open as @fd, @st) goes. */
static int unlink_own(Ino *in, int up, const char *name, int fd, const struct stat *st)
{
        struct stat now;
        if (fstatat(up, name, &now, AT_SYMLINK_NOFOLLOW) < 0 || now.st_ino != st->st_ino ||
            now.st_dev != st->st_dev)
                return 0;
        if (unlinkat(up, name, 0) < 0)
                return -errno;
        /* one link fewer moves the ctime: the next path of the inode checks the new one */
        if (in->npaths > 1 && fstat(fd, &now) == 0)
                in->r.ctime = now.st_ctim;
        return 1;
}

/*
 * Stubs made in this run, by what a guest sees of them (store file, owner,
 * mode, mtime, flags, xattrs): another guest whose copy looks the same gets
 * a hard link to the same stub, not an inode of its own (as in link mode,
 * its link count shows how many guests share it).  Never two paths of one
 * guest: those stay two files.
 */
typedef struct StubKey {
        const char *sname;
        uid_t uid;
        gid_t gid;
        mode_t mode;
        struct timespec mtime;
        uint64_t xhash;
} StubKey;

typedef struct Stub {
        StubKey k;
        uint32_t tree, path; /* where it was made: base of tree, at paths[path].rel */
        bool used;
} Stub;

typedef struct Stubs {
        Stub *v;
        size_t cap; /* a power of two */
} Stubs;

static uint64_t key_hash(const StubKey *k)
{
        uint64_t h = XXH3_64bits(k->sname, strlen(k->sname));
        uint64_t m[] = {
            k->uid,  k->gid, k->mode, (uint64_t)k->mtime.tv_sec, (uint64_t)k->mtime.tv_nsec,
            k->xhash};
        return XXH3_64bits_withSeed(m, sizeof m, h);
}

static bool key_eq(const StubKey *a, const StubKey *b)
{
        return a->uid == b->uid && a->gid == b->gid && a->mode == b->mode &&
               a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
               a->xhash == b->xhash && streq(a->sname, b->sname);
}

/* The slot of @k: its stub, or the empty slot it would take. */
static Stub *stub_slot(Stubs *t, const StubKey *k)
{
        for (size_t i = key_hash(k) & (t->cap - 1);; i = (i + 1) & (t->cap - 1))
                if (!t->v[i].used || key_eq(&t->v[i].k, k))
                        return &t->v[i];
}

/* What a guest sees of @fd besides owner, mode and times: its xattrs and flags, hashed. */
static uint64_t look_hash(int fd)
{
        char names[8192], val[4096];
        uint32_t f = 0;
        (void)unify_get_flags(fd, &f);
        uint64_t h = f & USER_FLAGS & ~(FS_IMMUTABLE_FL | FS_APPEND_FL);
        ssize_t n = flistxattr(fd, names, sizeof names);
        for (char *x = names; n > 0 && x < names + n; x += strlen(x) + 1) {
                if (strncmp(x, VS_COW_PREFIX, strlen(VS_COW_PREFIX)) == 0 ||
                    streq(x, VS_UNIFY_XATTR))
                        continue;
                ssize_t v = fgetxattr(fd, x, val, sizeof val);
                h = XXH3_64bits_withSeed(x, strlen(x), h);
                h = v < 0 ? h + 1 : XXH3_64bits_withSeed(val, (size_t)v, h); /* sorted by the fs */
        }
        return h;
}

/*
 * One guest path of @in becomes a stub naming @sname.  1: done, 0: left
 * alone (changed, or under a directory that hides the base), -errno.
 */
static int stub_path(Ctx *c, Dirs *d, Stubs *stubs, Ino *in, const Rec *p, const char *sname)
{
        const char *name = strrchr(p->rel, '/') ? strrchr(p->rel, '/') + 1 : p->rel;
        int up = -1, bp = -1;
        int r = dirs_open(d, c, p, &up, &bp);
        if (r <= 0)
                return r;
        _cleanup_close_ int fd =
            openat(up, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOATIME | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        /* unchanged since it was proved (not a metadata-only copy-up then, nor now) */
        if (!S_ISREG(st.st_mode) || !unchanged(in, &st))
                return 0;
        char tmp[64];
        StubKey key = {sname, st.st_uid, st.st_gid, st.st_mode, st.st_mtim, look_hash(fd)};
        Stub *same = stub_slot(stubs, &key);
        if (same->used && same->tree != p->tree) {
                /* another guest's stub that looks the same: linked, made whole already */
                unify_tmp_name(tmp);
                if (linkat(c->basefd[same->tree], c->paths[same->path].rel, bp, tmp, 0) == 0) {
                        if (renameat(bp, tmp, bp, name) < 0) {
                                int e = errno;
                                (void)unlinkat(bp, tmp, 0);
                                return -e;
                        }
                        return unlink_own(in, up, name, fd, &st);
                }
        }
        _cleanup_close_ int s = -1;
        for (int tries = 0; s < 0 && tries < 8; tries++) {
                unify_tmp_name(tmp);
                s = openat(bp, tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
        }
        if (s < 0)
                return -errno;
        char redirect[STORE_NAME + 1];
        snprintf(redirect, sizeof redirect, "/%s", sname);
        r = 0;
        if (ftruncate(s, st.st_size) < 0 || fsetxattr(s, VS_COW_METACOPY, "", 0, 0) < 0 ||
            fsetxattr(s, VS_COW_REDIRECT, redirect, strlen(redirect), 0) < 0 ||
            (r = vs_cow_copy_meta(fd, s, &st)) < 0 || renameat(bp, tmp, bp, name) < 0) {
                int e = r < 0 ? -r : errno;
                (void)unlinkat(bp, tmp, 0);
                return -e;
        }
        if (!same->used) {
                *same = (Stub){key, p->tree, (uint32_t)(p - c->paths), true};
                same->k.sname = sname; /* lives as long as the run */
        }
        return unlink_own(in, up, name, fd, &st);
}

static bool in_guest(const Ctx *c, const Ino *in)
{
        return (int)in->r.tree != c->store_tree;
}

/* May @in's paths leave their rootfs?  All its links are ours, and a link-mode mark is ours. */
static bool movable(Ctx *c, const Ino *in)
{
        if (in->r.nlink != in->npaths)
                return false; /* hard links outside what we scanned, or in running guests */
        if (!in->r.immutable)
                return true;
        _cleanup_close_ int fd = unify_open_ino(c, in, O_RDONLY | O_NONBLOCK, NULL);
        return fd >= 0 && unify_is_marked(fd); /* an admin's immutable file stays */
}

/* Noted: a store name that is a guest's inode until the end of the run. */
static int linked(Ctx *c, const char *sname)
{
        char **v = realloc(c->cow_linked, (c->ncow_linked + 1) * sizeof *v);
        if (!v)
                return -ENOMEM;
        c->cow_linked = v;
        return (v[c->ncow_linked] = strdup(sname)) ? (int)++c->ncow_linked : -ENOMEM;
}

/* The store name of set @s: the one already stored, else a new copy of its first member. */
static int set_store_name(Ctx *c, const Set *s, char *sname)
{
        for (uint32_t i = 0; i < s->n; i++) {
                const Ino *in = &c->inos[s->ino[i]];
                if (!in_guest(c, in)) {
                        snprintf(sname, STORE_NAME, "%s", c->paths[in->path].rel);
                        return 0;
                }
                if (c->cow_names[s->ino[i]]) {
                        snprintf(sname, STORE_NAME, "%s", c->cow_names[s->ino[i]]);
                        return 0;
                }
        }
        if (c->o->dry_run) {
                snprintf(sname, STORE_NAME, "(new)");
                return 1;
        }
        for (uint32_t i = 0; i < s->n; i++) {
                Ino *in = &c->inos[s->ino[i]];
                if (!movable(c, in))
                        continue;
                _cleanup_close_ int fd = unify_open_ino(c, in, O_RDONLY | O_NONBLOCK, NULL);
                if (fd < 0)
                        continue;
                /* a link-mode inode keeps its flag until its stubs are made: copied */
                bool link = !in->r.immutable && in->r.dev == c->store_dev;
                int r = link ? store_link(c, fd, in, sname) : store_copy(c->storefd, fd, in, sname);
                if (r == -ESTALE)
                        continue;
                if (r < 0)
                        return vs_error(&c->err, -r, "put /%s of %s into the store %s",
                                        c->paths[in->path].rel, c->trees[in->r.tree].name,
                                        c->o->store);
                c->st->bytes_saved -= in->r.size; /* the store's one copy, linked or not */
                if (link && linked(c, sname) < 0)
                        return vs_error(&c->err, ENOMEM, "unify");
                return 1;
        }
        return -ESTALE;
}

static void remember(Ctx *c, const Set *s, const char *sname)
{
        for (uint32_t i = 0; i < s->n; i++)
                if (!c->cow_names[s->ino[i]])
                        c->cow_names[s->ino[i]] = strdup(sname);
}

/*
 * A link of link mode loses its flag before its paths can go: until the last
 * is gone it is writable and shared, so the pending note makes a start wait
 * for the repair.  Its ctime moves: the new one is what the stubs check.
 */
static int unlock(Ctx *c, Ino *in)
{
        struct stat st;
        _cleanup_close_ int fd = unify_open_ino(c, in, O_RDONLY | O_NONBLOCK, &st);
        if (fd < 0 || !unchanged(in, &st))
                return 0; /* changed: each path is left alone below */
        int r = unify_pending(c, true);
        if (r < 0)
                return r;
        if ((r = unify_set_imm(fd, false)) < 0 || fstat(fd, &st) < 0)
                return vs_error(&c->err, r < 0 ? -r : errno, "%s: unlock /%s",
                                c->trees[in->r.tree].name, c->paths[in->path].rel);
        in->r.ctime = st.st_ctim;
        return 0;
}

/* A guest path to make a stub of: set by set first, then in path order. */
typedef struct Task {
        uint32_t ino, path;
        const char *sname;
} Task;

typedef struct Tasks {
        Task *v;
        size_t n, cap;
} Tasks;

static int task_push(Tasks *t, Task k)
{
        if (t->n == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 4096;
                Task *v = realloc(t->v, cap * sizeof *v);
                if (!v)
                        return -ENOMEM;
                t->v = v;
                t->cap = cap;
        }
        t->v[t->n++] = k;
        return 0;
}

/* Every guest path of set @s (its store copy @sname) queued to become a stub. */
static int stub_set(Ctx *c, const Set *s, const char *sname, Tasks *t)
{
        const Rec *with = NULL;
        for (uint32_t i = 0; i < s->n && !with; i++)
                if (!in_guest(c, &c->inos[s->ino[i]]))
                        with = &c->paths[c->inos[s->ino[i]].path];
        const Rec *first = &c->paths[c->inos[s->ino[0]].path];
        for (uint32_t i = 0; i < s->n; i++) {
                Ino *in = &c->inos[s->ino[i]];
                if (!in_guest(c, in) || in->skip)
                        continue;
                in->skip = true; /* once, whatever set it is in */
                if (!movable(c, in)) {
                        c->st->busy++;
                        continue;
                }
                if (!c->o->dry_run && in->r.immutable && unlock(c, in) < 0)
                        return -c->err.code;
                in->queued = true;
                for (uint32_t k = 0; k < in->npaths; k++) {
                        const Rec *p = &c->paths[in->path + k];
                        if (c->o->report)
                                c->o->report(c->o->data, c->trees[p->tree].name, p->rel,
                                             with ? "store" : c->trees[first->tree].name,
                                             with ? with->rel : first->rel, in->r.size);
                        if (task_push(t, (Task){s->ino[i], in->path + k, sname}) < 0)
                                return vs_error(&c->err, ENOMEM, "unify");
                }
        }
        return 0;
}

static const Rec *sort_paths;

static int cmp_task(const void *a, const void *b)
{
        const Rec *x = &sort_paths[((const Task *)a)->path],
                  *y = &sort_paths[((const Task *)b)->path];
        if (x->tree != y->tree)
                return x->tree < y->tree ? -1 : 1;
        return strcmp(x->rel, y->rel);
}

/* The queued paths, tree by tree in path order (their directories opened once). */
static int stub_all(Ctx *c, Tasks *t)
{
        uint32_t *done = calloc(c->ninos + 1, sizeof *done);
        if (!done)
                return vs_error(&c->err, ENOMEM, "unify");
        sort_paths = c->paths;
        if (t->n)
                qsort(t->v, t->n, sizeof *t->v, cmp_task);
        Dirs d = {.tree = -1};
        Stubs stubs = {.cap = 1024};
        while (stubs.cap < t->n * 2)
                stubs.cap *= 2;
        stubs.v = calloc(stubs.cap, sizeof *stubs.v);
        int r = stubs.v ? 0 : vs_error(&c->err, ENOMEM, "unify");
        for (size_t i = 0; r >= 0 && i < t->n; i++) {
                const Task *k = &t->v[i];
                const Rec *p = &c->paths[k->path];
                if (c->o->dry_run) {
                        done[k->ino]++;
                        continue;
                }
                r = stub_path(c, &d, &stubs, &c->inos[k->ino], p, k->sname);
                if (r < 0)
                        r = vs_error(&c->err, -r, "%s: make /%s a stub of the store",
                                     c->trees[p->tree].name, p->rel);
                else
                        done[k->ino] += (uint32_t)r;
        }
        dirs_close(&d, 0);
        free(stubs.v);
        for (size_t i = 0; r >= 0 && i < c->ninos; i++) {
                Ino *in = &c->inos[i];
                if (!in->queued)
                        continue;
                c->st->shared += done[i];
                in->marked = done[i] == in->npaths; /* overlay: all its paths are stubs */
                if (in->marked)
                        c->st->bytes_saved += in->r.size;
                else
                        c->st->changed++;
        }
        free(done);
        return r < 0 ? r : 0;
}

/* A file of link mode: its own set if it shares with nothing else scanned. */
static bool lone_link(const Ctx *c, const Ino *in)
{
        return in->r.immutable && in_guest(c, in) && in->r.size > 0;
}

int unify_cow_share_all(Ctx *c)
{
        c->cow_names = calloc(c->ninos + 1, sizeof *c->cow_names);
        char(*names)[STORE_NAME] = calloc(c->nsets + 1, STORE_NAME);
        Tasks tasks = {0};
        if (!c->cow_names || !names) {
                free(names);
                return vs_error(&c->err, ENOMEM, "unify");
        }
        int r = 0;
        /* one: the store's files, on disk before anything names them */
        for (size_t i = 0; r >= 0 && i < c->nsets; i++) {
                r = set_store_name(c, &c->sets[i], names[i]);
                if (r == -ESTALE) {
                        names[i][0] = '\0';
                        r = 0;
                } else if (r >= 0) {
                        remember(c, &c->sets[i], names[i]);
                }
        }
        for (size_t i = 0; r >= 0 && i < c->ninos; i++) {
                if (!lone_link(c, &c->inos[i]) || c->cow_names[i])
                        continue;
                uint32_t id = (uint32_t)i;
                Set one = {&id, 1};
                char name[STORE_NAME];
                r = set_store_name(c, &one, name);
                if (r == -ESTALE)
                        r = 0;
                else if (r >= 0)
                        remember(c, &one, name);
        }
        if (r >= 0 && !c->o->dry_run && syncfs(c->storefd) < 0)
                r = vs_error(&c->err, errno, "sync the store %s", c->o->store);
        /* two: the stubs, and the guests' own paths gone */
        for (size_t i = 0; r >= 0 && i < c->nsets; i++)
                if (names[i][0])
                        r = stub_set(c, &c->sets[i], names[i], &tasks);
        for (size_t i = 0; r >= 0 && i < c->ninos; i++) {
                uint32_t id = (uint32_t)i;
                if (lone_link(c, &c->inos[i]) && !c->inos[i].skip && c->cow_names[i])
                        r = stub_set(c, &(Set){&id, 1}, c->cow_names[i], &tasks);
        }
        if (r >= 0)
                r = stub_all(c, &tasks);
        free(tasks.v);
        free(names);
        /* a link-mode guest converted whole: dpkg's hook goes */
        bool *kept = calloc((size_t)c->ntrees, sizeof *kept);
        for (size_t i = 0; kept && i < c->ninos; i++)
                if (c->inos[i].r.immutable && !c->inos[i].marked)
                        kept[c->inos[i].r.tree] = true;
        for (int t = 0; r >= 0 && kept && !c->o->dry_run && t < c->store_tree; t++)
                if (!kept[t])
                        r = unify_dpkg_hook(c, t, false);
        free(kept);
        /* the store's links: its own inodes now, or copies where a guest kept one */
        for (size_t i = 0; r >= 0 && i < c->ncow_linked; i++)
                if ((r = vs_cow_settle(c->storefd, c->cow_linked[i])) < 0)
                        r = vs_error(&c->err, -r, "settle %s/%s", c->o->store, c->cow_linked[i]);
        if (r >= 0)
                r = unify_pending(c, false);
        /* durable: one sync per filesystem the trees are on */
        for (int t = 0; r >= 0 && !c->o->dry_run && t < c->store_tree; t++) {
                struct stat st, o;
                bool seen = fstat(c->rootfd[t], &st) < 0;
                for (int u = 0; u < t && !seen; u++)
                        seen = fstat(c->rootfd[u], &o) == 0 && o.st_dev == st.st_dev;
                if (!seen)
                        (void)syncfs(c->rootfd[t]);
        }
        return r < 0 ? r : 0;
}
