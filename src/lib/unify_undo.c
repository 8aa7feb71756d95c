/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unification undone: deunify, release before a delete, repair after a crash. */
#include "unify_int.h"

/* ---- deunify, release, repair -------------------------------------------------------- */

/* @fd's path relative to @root ("." for the root itself). */
static int canonical(const char *root, int fd, char *rel, size_t size)
{
        char link[64], real[PATH_MAX], rroot[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, real, sizeof real - 1);
        if (n < 0 || !realpath(root, rroot))
                return -errno;
        real[n] = '\0';
        size_t rl = strlen(rroot);
        if (strncmp(real, rroot, rl) != 0 || (real[rl] && real[rl] != '/'))
                return -EXDEV;
        snprintf(rel, size, "%s", real[rl] ? real + rl + 1 : ".");
        return 0;
}

/* Shared files of one tree: immutable (statx says so without an open) and marked. */
static int marked_files(Ctx *c, const char *const *paths, int n_paths, RecVec *out)
{
        Walk w = {.t = &c->trees[0], .all = true};
        atomic_uint_fast64_t files = 0;
        w.files = &files;
        int r = 0;
        RecVec all = {0};
        if (n_paths == 0) {
                r = unify_walk_tree(&w, &c->err);
                all = w.out;
        } else {
                dev_t dev;
                _cleanup_close_ int rfd = unify_root_fd(c->trees[0].root, &dev, &c->err);
                if (rfd < 0)
                        return rfd;
                w.dev = dev;
                for (int i = 0; i < n_paths && r == 0; i++) {
                        char rel[PATH_MAX];
                        const char *p = paths[i];
                        while (*p == '/')
                                p++;
                        snprintf(rel, sizeof rel, "%s", *p ? p : ".");
                        /* symlinks resolve inside the guest (/lib -> usr/lib), then the real path
                         */
                        int fd =
                            vs_openat2(rfd, rel, O_PATH | O_NOFOLLOW | O_CLOEXEC,
                                       RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
                        struct statx sx;
                        if (fd >= 0 && canonical(c->trees[0].root, fd, rel, sizeof rel) < 0) {
                                close(fd);
                                fd = -1;
                        }
                        if (fd < 0 || statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx) < 0) {
                                r = vs_error_input(&c->err, "%s: no %s in the guest",
                                                   c->trees[0].name, paths[i]);
                                if (fd >= 0)
                                        close(fd);
                                break;
                        }
                        if (S_ISDIR(sx.stx_mode)) {
                                int dfd = vs_openat2(rfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                                                     IN_TREE);
                                if (dfd >= 0) {
                                        if (streq(rel, "."))
                                                rel[0] = '\0';
                                        unify_walk_dir(&w, dfd, rel, strlen(rel), 0, 0);
                                }
                        } else if (S_ISREG(sx.stx_mode)) {
                                Rec rr = {0};
                                unify_fill_rec(&rr, &sx);
                                rr.rel = strdup(rel);
                                if (!rr.rel || unify_push(&w.out, &rr) < 0)
                                        r = vs_error(&c->err, ENOMEM, "deunify");
                        }
                        close(fd);
                        if (w.error && r == 0)
                                r = vs_error(&c->err, w.error, "scan %s/%s", c->trees[0].name, rel);
                }
                all = w.out;
        }
        for (size_t i = 0; i < all.n; i++) {
                Rec *p = &all.v[i];
                bool keep = false;
                if (r == 0 && p->immutable) {
                        int fd =
                            vs_openat2(c->rootfd[0], p->rel,
                                       O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, IN_TREE);
                        keep = fd >= 0 && unify_is_marked(fd);
                        if (fd >= 0)
                                close(fd);
                }
                if (keep ||
                    (r == 0 && strncmp(strrchr(p->rel, '/') ? strrchr(p->rel, '/') + 1 : p->rel,
                                       VS_UNIFY_TMP, strlen(VS_UNIFY_TMP)) == 0)) {
                        if (unify_push(out, p) < 0)
                                r = vs_error(&c->err, ENOMEM, "deunify");
                } else {
                        free(p->rel);
                }
        }
        free(all.v);
        return r;
}

/* A private copy of @fd (same bytes, owner, mode, xattrs but ours, times, flags but immutable). */
static int private_copy(int fd, const struct stat *st, int dfd)
{
        _cleanup_close_ int t = openat(dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (t < 0)
                return -errno;
        loff_t in = 0, out = 0;
        while (in < st->st_size) {
                ssize_t n = copy_file_range(fd, &in, t, &out, (size_t)(st->st_size - in), 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
        }
        char names[8192], val[65536];
        ssize_t nl = flistxattr(fd, names, sizeof names);
        if (fchown(t, st->st_uid, st->st_gid) < 0 || fchmod(t, st->st_mode & 07777) < 0)
                return -errno;
        for (char *s = names; nl > 0 && s < names + nl; s += strlen(s) + 1) {
                if (streq(s, VS_UNIFY_XATTR))
                        continue;
                ssize_t v = fgetxattr(fd, s, val, sizeof val);
                if (v < 0 || fsetxattr(t, s, val, (size_t)v, 0) < 0)
                        return -errno;
        }
        uint32_t f;
        if (unify_get_flags(fd, &f) == 0 && (f & USER_FLAGS & ~FS_IMMUTABLE_FL)) {
                int nf = (int)(f & USER_FLAGS & ~FS_IMMUTABLE_FL);
                (void)ioctl(t, FS_IOC_SETFLAGS, &nf);
        }
        struct timespec ts[2] = {st->st_atim, st->st_mtim};
        if (futimens(t, ts) < 0)
                return -errno;
        return TAKE_FD(t);
}

typedef struct Undo {
        Ctx *c;
        bool copy; /* deunify: a private copy; release: only unlink */
        VsUnifyStats *st;
} Undo;

/* Drop one path's link to a shared inode: replace it by a copy, or remove it. */
static int undo_one(Undo *u, const Rec *p)
{
        Ctx *c = u->c;
        const char *base;
        _cleanup_close_ int dfd = unify_open_parent(c->rootfd[0], p->rel, &base, O_RDONLY);
        if (dfd < 0)
                return dfd == -ENOENT ? 0 : vs_error(&c->err, -dfd, "open /%s", p->rel);
        _cleanup_close_ int fd = openat(dfd, base, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return 0;
        bool tmp = strncmp(base, VS_UNIFY_TMP, strlen(VS_UNIFY_TMP)) == 0;
        bool marked = unify_is_marked(fd);
        if (!u->copy || tmp) {
                /*
                 * Release (the tree is going away) or one of our temporary
                 * names.  An immutable inode cannot lose a name, so the flag
                 * goes for a moment: with every guest that may share the
                 * inode frozen, or one of them could open it for writing then.
                 */
                if (marked) {
                        int f = unify_freeze(c, true);
                        if (f < 0)
                                return f;
                        (void)unify_set_imm(fd, false);
                        c->batch++;
                }
                int r = unlinkat(dfd, base, 0) < 0 ? -errno : 0;
                if (marked && fstat(fd, &st) == 0 && st.st_nlink > 0)
                        (void)unify_set_imm(fd, true);
                return r < 0 ? vs_error(&c->err, -r, "remove /%s", p->rel) : 0;
        }
        if (!marked)
                return 0;
        if (st.st_nlink == 1) { /* nobody else has it: private already */
                int r = unify_set_imm(fd, false);
                if (r == 0 && fremovexattr(fd, VS_UNIFY_XATTR) < 0 && errno != ENODATA)
                        r = -errno;
                if (r < 0)
                        return vs_error(&c->err, -r, "unmark /%s", p->rel);
                u->st->deunified++;
                return 0;
        }
        _cleanup_close_ int t = private_copy(fd, &st, dfd);
        if (t < 0)
                return vs_error(&c->err, -t, "copy /%s", p->rel);
        char tn[64];
        int r = 0;
        for (int tries = 0;; tries++) {
                unify_tmp_name(tn);
                if (linkat(t, "", dfd, tn, AT_EMPTY_PATH) == 0)
                        break;
                if (errno != EEXIST || tries > 8)
                        return vs_error(&c->err, errno, "link a copy of /%s", p->rel);
        }
        if ((r = unify_freeze(c, true)) < 0) {
                (void)unlinkat(dfd, tn, 0);
                return r;
        }
        (void)unify_set_imm(fd, false);
        if (renameat(dfd, tn, dfd, base) < 0) {
                r = vs_error(&c->err, errno, "replace /%s", p->rel);
                (void)unlinkat(dfd, tn, 0);
        } else {
                u->st->deunified++;
                c->batch++;
        }
        if (fstat(fd, &st) == 0 && st.st_nlink > 0)
                (void)unify_set_imm(fd, true);
        return r;
}

static int undo_all(Ctx *c, const char *const *paths, int n_paths, bool copy, VsUnifyStats *st)
{
        RecVec v = {0};
        int r = marked_files(c, paths, n_paths, &v);
        Undo u = {c, copy, st};
        for (size_t i = 0; r == 0 && i < v.n; i++) {
                if ((r = unify_pending(c, true)) < 0)
                        break;
                r = undo_one(&u, &v.v[i]);
                if (c->frozen &&
                    (c->batch >= BATCH_FILES || unify_now_ns() - c->frozen_at > BATCH_NS)) {
                        int t = unify_freeze(c, false);
                        if (r == 0)
                                r = t;
                }
                if (c->o->progress && (i % 256 == 0 || i + 1 == v.n)) {
                        VsUnifyProgress p = {copy ? "deunify" : "release", i + 1, v.n};
                        c->o->progress(c->o->data, &p);
                }
        }
        int t = unify_freeze(c, false);
        if (r == 0)
                r = t;
        if (r == 0)
                r = unify_pending(c, false);
        unify_recvec_free(&v);
        return r;
}

int vs_deunify(const VsUnifyTree *t, const char *const *paths, int n_paths, const VsUnifyOptions *o,
               VsUnifyStats *st, VsError *err)
{
        Ctx c;
        long long t0 = unify_now_ns();
        *st = (VsUnifyStats){.mode = "none"};
        int r = unify_ctx_init(&c, t, 1, o, st);
        /* other guests that run may hold the same inodes: freeze whenever any runs */
        c.any_running = o->freeze != NULL;
        if (r == 0)
                r = undo_all(&c, paths, n_paths, true, st);
        if (r == 0 && n_paths == 0)
                r = unify_dpkg_hook(&c, 0, false);
        st->seconds = (double)(unify_now_ns() - t0) / 1e9;
        if (r < 0 && err)
                *err = c.err;
        unify_ctx_free(&c);
        return r;
}

int vs_unify_release(const char *root, const VsUnifyOptions *o, VsError *err)
{
        VsUnifyTree t = {.name = "", .root = root};
        VsUnifyStats st;
        Ctx c;
        int r = unify_ctx_init(&c, &t, 1, o, &st);
        c.any_running = o->freeze != NULL;
        if (r == 0)
                r = undo_all(&c, NULL, 0, false, &st);
        if (r < 0 && err)
                *err = c.err;
        unify_ctx_free(&c);
        return r;
}

int vs_unify_repair(const VsUnifyTree *trees, int n, const VsUnifyOptions *o, VsError *err)
{
        int r = 0;
        for (int i = 0; i < n && r == 0; i++) {
                Ctx c;
                VsUnifyStats st;
                r = unify_ctx_init(&c, &trees[i], 1, o, &st);
                RecVec all = {0};
                Walk w = {.t = &trees[i], .all = true};
                atomic_uint_fast64_t files = 0;
                w.files = &files;
                if (r == 0)
                        r = unify_walk_tree(&w, &c.err);
                all = w.out;
                for (size_t j = 0; r == 0 && j < all.n; j++) {
                        Rec *p = &all.v[j];
                        const char *base = strrchr(p->rel, '/') ? strrchr(p->rel, '/') + 1 : p->rel;
                        if (strncmp(base, VS_UNIFY_TMP, strlen(VS_UNIFY_TMP)) == 0) {
                                Undo u = {&c, false, &st};
                                r = undo_one(&u, p);
                                continue;
                        }
                        if (p->nlink < 2 || p->immutable)
                                continue;
                        int fd =
                            vs_openat2(c.rootfd[0], p->rel,
                                       O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, IN_TREE);
                        if (fd >= 0 && unify_is_marked(fd) && unify_set_imm(fd, true) < 0)
                                r = vs_error(&c.err, errno, "protect %s:/%s", trees[i].name,
                                             p->rel);
                        if (fd >= 0)
                                close(fd);
                }
                unify_recvec_free(&all);
                if (r < 0 && err)
                        *err = c.err;
                unify_ctx_free(&c);
        }
        return r;
}
