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

/* A new store file with @src's bytes: "XX/NAME" in @ret. */
static int store_copy(int store, int src, uint64_t size, char ret[STORE_NAME])
{
        unsigned char rnd[16];
        if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
                return -EIO;
        char hex[33];
        for (int i = 0; i < 16; i++)
                snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
        char dir[3] = {hex[0], hex[1], '\0'};
        if (mkdirat(store, dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        _cleanup_close_ int d = openat(store, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d < 0)
                return -errno;
        _cleanup_close_ int fd = openat(d, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0444);
        if (fd < 0)
                return -errno;
        long long n = vs_copy_all(src, fd);
        if (n < 0)
                return (int)n;
        if ((uint64_t)n != size)
                return -ESTALE; /* changed since it was proved */
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        if (linkat(AT_FDCWD, proc, d, hex + 2, AT_SYMLINK_FOLLOW) < 0)
                return -errno;
        snprintf(ret, STORE_NAME, "%s/%s", dir, hex + 2);
        return 0;
}

/* Copy @from's xattrs to @to, but overlayfs's and our link mark. */
static int copy_xattrs(int from, int to)
{
        char names[8192], val[65536];
        ssize_t n = flistxattr(from, names, sizeof names);
        if (n < 0)
                return errno == ENOTSUP ? 0 : -errno;
        for (char *s = names; s < names + n; s += strlen(s) + 1) {
                if (strncmp(s, VS_COW_PREFIX, strlen(VS_COW_PREFIX)) == 0 ||
                    streq(s, VS_UNIFY_XATTR))
                        continue;
                ssize_t v = fgetxattr(from, s, val, sizeof val);
                if (v < 0 || fsetxattr(to, s, val, (size_t)v, 0) < 0)
                        return -errno;
        }
        return 0;
}

/* The file flags a guest sees (nodump, noatime...), but those that would lock the stub. */
static int copy_flags(int from, int to)
{
        uint32_t f = 0, t = 0;
        int r = unify_get_flags(from, &f);
        f &= USER_FLAGS & ~(FS_IMMUTABLE_FL | FS_APPEND_FL);
        if (r < 0 || f == 0 || (r = unify_get_flags(to, &t)) < 0)
                return r;
        int nf = (int)(t | f); /* over what the filesystem gave the stub (extents...) */
        return ioctl(to, FS_IOC_SETFLAGS, &nf) < 0 ? -errno : 0;
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
static int stub_path(Ctx *c, const Ino *in, const Rec *p, const char *sname)
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
        if (!S_ISREG(st.st_mode) || st.st_dev != in->r.dev || st.st_ino != in->r.ino ||
            st.st_size != (off_t)in->r.size || fgetxattr(fd, VS_COW_METACOPY, NULL, 0) >= 0)
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
        struct timespec times[2] = {st.st_atim, st.st_mtim};
        if (fchown(s, st.st_uid, st.st_gid) < 0 || (r = copy_xattrs(fd, s)) < 0 ||
            ftruncate(s, st.st_size) < 0 || fsetxattr(s, VS_COW_METACOPY, "", 0, 0) < 0 ||
            fsetxattr(s, VS_COW_REDIRECT, redirect, strlen(redirect), 0) < 0 ||
            fchmod(s, st.st_mode & 07777) < 0 || futimens(s, times) < 0 ||
            (r = copy_flags(fd, s)) < 0 || renameat(bp, tmp, bp, name) < 0) {
                int e = r < 0 ? -r : errno;
                (void)unlinkat(bp, tmp, 0);
                return -e;
        }
        /*
         * the stub is whole: the guest's own copy may go.  A link of link mode
         * loses its flag first: until its last link is gone it is writable and
         * shared, so the pending note makes a start wait for the repair.
         */
        if (in->r.immutable && (unify_pending(c, true) < 0 || unify_set_imm(fd, false) < 0))
                return -EIO;
        struct stat now;
        if (fstatat(up, name, &now, AT_SYMLINK_NOFOLLOW) < 0 || now.st_ino != st.st_ino ||
            now.st_dev != st.st_dev)
                return 0;
        return unlinkat(up, name, 0) < 0 ? -errno : 1;
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
                const Ino *in = &c->inos[s->ino[i]];
                if (!movable(c, in))
                        continue;
                _cleanup_close_ int fd = unify_open_ino(c, in, O_RDONLY | O_NONBLOCK, NULL);
                if (fd < 0)
                        continue;
                int r = store_copy(c->storefd, fd, in->r.size, sname);
                if (r == -ESTALE)
                        continue;
                if (r < 0)
                        return vs_error(&c->err, -r, "copy /%s of %s into the store %s",
                                        c->paths[in->path].rel, c->trees[in->r.tree].name,
                                        c->o->store);
                c->st->bytes_saved -= in->r.size;
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
        if (r >= 0)
                r = unify_pending(c, false);
        if (r >= 0 && !c->o->dry_run)
                for (int t = 0; t < c->ntrees; t++)
                        if (t != c->store_tree)
                                (void)syncfs(c->rootfd[t]);
        return r < 0 ? r : 0;
}
