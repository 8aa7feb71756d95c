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
 * Open the parent of @rel in the rootfs (@ret_up) and make the same
 * directories in the base (@ret_base), with the rootfs's owner and mode.
 * 1: done, 0: leave this path alone (a directory above it hides the base).
 */
static int parents(int rootfd, int basefd, const char *rel, int *ret_up, int *ret_base)
{
        int up = fcntl(rootfd, F_DUPFD_CLOEXEC, 3), bp = fcntl(basefd, F_DUPFD_CLOEXEC, 3);
        char comp[NAME_MAX + 1];
        int r = 1;
        for (const char *p = rel; up >= 0 && bp >= 0;) {
                const char *slash = strchr(p, '/');
                if (!slash)
                        break;
                size_t n = (size_t)(slash - p);
                if (n > NAME_MAX) {
                        r = 0;
                        break;
                }
                memcpy(comp, p, n);
                comp[n] = '\0';
                p = slash + 1;
                int nu = openat(up, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                struct stat st;
                if (nu < 0 || fstat(nu, &st) < 0 || redirected(nu)) {
                        if (nu >= 0)
                                close(nu);
                        r = 0;
                        break;
                }
                close(up);
                up = nu;
                bool made = mkdirat(bp, comp, 0700) == 0;
                if (!made && errno != EEXIST) {
                        r = -errno;
                        break;
                }
                int nb = openat(bp, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (nb < 0) {
                        r = errno == ENOTDIR || errno == ELOOP ? 0 : -errno;
                        break;
                }
                close(bp);
                bp = nb;
                if (made &&
                    (fchown(bp, st.st_uid, st.st_gid) < 0 || fchmod(bp, st.st_mode & 07777) < 0)) {
                        r = -errno;
                        break;
                }
        }
        if (up < 0 || bp < 0 || r <= 0) {
                if (up >= 0)
                        close(up);
                if (bp >= 0)
                        close(bp);
                return up < 0 || bp < 0 ? -EIO : r;
        }
        *ret_up = up;
        *ret_base = bp;
        return 1;
}

/*
 * One guest path of @in becomes a stub naming @sname.  1: done, 0: left
 * alone (changed, or under a directory that hides the base), -errno.
 */
static int stub_path(Ctx *c, Ino *in, const Rec *p, const char *sname)
{
        const char *name = strrchr(p->rel, '/') ? strrchr(p->rel, '/') + 1 : p->rel;
        _cleanup_close_ int up = -1;
        _cleanup_close_ int bp = -1;
        int r = parents(c->rootfd[p->tree], c->basefd[p->tree], p->rel, &up, &bp);
        if (r <= 0)
                return r;
        _cleanup_close_ int fd =
            openat(up, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOATIME | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISREG(st.st_mode) || !unchanged(in, &st) ||
            fgetxattr(fd, VS_COW_METACOPY, NULL, 0) >= 0)
                return 0;
        char tmp[64];
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
        /* the stub is whole: the guest's own copy may go */
        struct stat now;
        if (fstatat(up, name, &now, AT_SYMLINK_NOFOLLOW) < 0 || now.st_ino != st.st_ino ||
            now.st_dev != st.st_dev)
                return 0;
        if (unlinkat(up, name, 0) < 0)
                return -errno;
        /* one link fewer moves the ctime: the next path of the inode checks the new one */
        if (fstat(fd, &now) == 0)
                in->r.ctime = now.st_ctim;
        return 1;
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

/* Every guest path of set @s (its store copy @sname) becomes a stub. */
static int stub_set(Ctx *c, const Set *s, const char *sname)
{
        const Rec *with = NULL;
        for (uint32_t i = 0; i < s->n && !with; i++)
                if (!in_guest(c, &c->inos[s->ino[i]]))
                        with = &c->paths[c->inos[s->ino[i]].path];
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
                uint32_t done = 0;
                for (uint32_t k = 0; k < in->npaths; k++) {
                        const Rec *p = &c->paths[in->path + k];
                        if (c->o->report)
                                c->o->report(
                                    c->o->data, c->trees[p->tree].name, p->rel,
                                    with ? "store"
                                         : c->trees[c->paths[c->inos[s->ino[0]].path].tree].name,
                                    with ? with->rel : c->paths[c->inos[s->ino[0]].path].rel,
                                    in->r.size);
                        if (c->o->dry_run) {
                                done++;
                                continue;
                        }
                        int r = stub_path(c, in, p, sname);
                        if (r < 0)
                                return vs_error(&c->err, -r, "%s: make /%s a stub of the store",
                                                c->trees[p->tree].name, p->rel);
                        done += (uint32_t)r;
                }
                c->st->shared += done;
                in->marked = done == in->npaths; /* overlay: all its paths are stubs */
                if (in->marked)
                        c->st->bytes_saved += in->r.size;
                else
                        c->st->changed++;
        }
        return 0;
}

int unify_cow_share_all(Ctx *c)
{
        c->cow_names = calloc(c->ninos + 1, sizeof *c->cow_names);
        char(*names)[STORE_NAME] = calloc(c->nsets + 1, STORE_NAME);
        if (!c->cow_names || !names) {
                free(names);
                return vs_error(&c->err, ENOMEM, "unify");
        }
        int r = 0;
        /* one: the store copies, on disk before anything names them */
        for (size_t i = 0; r >= 0 && i < c->nsets; i++) {
                r = set_store_name(c, &c->sets[i], names[i]);
                if (r == -ESTALE) {
                        names[i][0] = '\0';
                        r = 0;
                } else if (r >= 0) {
                        remember(c, &c->sets[i], names[i]);
                }
        }
        if (r >= 0 && !c->o->dry_run && syncfs(c->storefd) < 0)
                r = vs_error(&c->err, errno, "sync the store %s", c->o->store);
        /* two: the stubs, and the guests' own copies gone */
        for (size_t i = 0; r >= 0 && i < c->nsets; i++)
                if (names[i][0])
                        r = stub_set(c, &c->sets[i], names[i]);
        /* files of link mode shared by nothing else scanned: each one set of its own */
        for (size_t i = 0; r >= 0 && i < c->ninos; i++) {
                Ino *in = &c->inos[i];
                if (!in->r.immutable || !in_guest(c, in) || in->skip || in->r.size == 0)
                        continue;
                uint32_t id = (uint32_t)i;
                Set one = {&id, 1};
                char name[STORE_NAME];
                r = set_store_name(c, &one, name);
                if (r == -ESTALE)
                        r = 0;
                else if (r >= 0)
                        r = stub_set(c, &one, name);
        }
        /* a link-mode guest converted whole: dpkg's hook goes */
        bool *kept = calloc((size_t)c->ntrees, sizeof *kept);
        for (size_t i = 0; kept && i < c->ninos; i++)
                if (c->inos[i].r.immutable && !c->inos[i].marked)
                        kept[c->inos[i].r.tree] = true;
        for (int t = 0; r >= 0 && kept && !c->o->dry_run && t < c->store_tree; t++)
                if (!kept[t])
                        r = unify_dpkg_hook(c, t, false);
        free(kept);
        free(names);
        /* the store's links: its own inodes now, or copies where a guest kept one */
        for (size_t i = 0; r >= 0 && i < c->ncow_linked; i++)
                if ((r = vs_cow_settle(c->storefd, c->cow_linked[i])) < 0)
                        r = vs_error(&c->err, -r, "settle %s/%s", c->o->store, c->cow_linked[i]);
        if (r >= 0)
                r = unify_pending(c, false);
        if (r >= 0 && !c->o->dry_run)
                for (int t = 0; t < c->ntrees; t++)
                        if (t != c->store_tree)
                                (void)syncfs(c->rootfd[t]);
        return r < 0 ? r : 0;
}
