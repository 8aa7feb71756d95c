/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unification, phase 3: share each proved set, by links or reflinks. */
#include "unify_int.h"

#include "template.h"

/* ---- sharing ------------------------------------------------------------------------- */

int unify_freeze(Ctx *c, bool on)
{
        if (c->frozen == on || !c->any_running || !c->o->freeze)
                return 0;
        VsError e = {0};
        if (c->o->freeze(c->o->freeze_data, on, &e) < 0) {
                c->err = e;
                return -e.code;
        }
        c->frozen = on;
        c->frozen_at = on ? unify_now_ns() : 0;
        c->batch = 0;
        return 0;
}

int unify_pending(Ctx *c, bool on)
{
        const char *p = c->o->pending;
        if (!p || c->o->dry_run || on == c->pending_made)
                return 0;
        if (on) {
                int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0)
                        return vs_error(&c->err, errno, "create %s", p);
                fsync(fd);
                close(fd);
        } else if (unlink(p) < 0 && errno != ENOENT) {
                return vs_error(&c->err, errno, "remove %s", p);
        }
        c->pending_made = on;
        return 0;
}

int unify_set_imm(int fd, bool on)
{
        int f = 0;
        if (ioctl(fd, FS_IOC_GETFLAGS, &f) < 0)
                return -errno;
        int nf = on ? f | FS_IMMUTABLE_FL : f & ~FS_IMMUTABLE_FL;
        if (nf != f && ioctl(fd, FS_IOC_SETFLAGS, &nf) < 0)
                return -errno;
        return 0;
}

void unify_tmp_name(char out[64])
{
        /* random once a run, then counted: unique enough for O_EXCL and link's EEXIST */
        static _Atomic unsigned long long base, next;
        if (!base) {
                unsigned long long r = 0;
                if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
                        r = (unsigned long long)unify_now_ns() ^ (unsigned long long)getpid();
                base = r | 1;
        }
        snprintf(out, 64, VS_UNIFY_TMP "%016llx", base + next++);
}

/* The parent directory of a path in its tree (O_PATH), and its last name. */
int unify_open_parent(int rootfd, const char *rel, const char **ret_base, int flags)
{
        const char *slash = strrchr(rel, '/');
        char dir[PATH_MAX];
        if (!slash) {
                *ret_base = rel;
                snprintf(dir, sizeof dir, ".");
        } else {
                *ret_base = slash + 1;
                snprintf(dir, sizeof dir, "%.*s", (int)(slash - rel), rel);
        }
        int fd =
            vs_openat2(rootfd, dir, (unsigned long long)(flags | O_DIRECTORY | O_CLOEXEC), IN_TREE);
        return fd < 0 ? -errno : fd;
}

/*
 * A read lease: granted only while nobody has the file open for writing
 * (writable mappings included), and an open for writing waits for us.
 * Where leases are off, only a host without running guests goes on.
 */
static bool lease(Ctx *c, int fd)
{
        if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0)
                return true;
        return errno != EAGAIN && !c->any_running;
}

static bool same_meta(const Ino *in, const struct stat *st);

/*
 * Put a link to @kfd in place of @p, which must still be inode @in as the
 * scan saw it (@first: its ctime too; later paths of one inode see the
 * ctime that the first rename changed).
 */
static int replace_path(Ctx *c, const Rec *p, const Ino *in, int kfd, bool first)
{
        const char *base;
        _cleanup_close_ int dfd = unify_open_parent(c->rootfd[p->tree], p->rel, &base, O_PATH);
        struct stat st;
        char tmp[64];
        if (dfd < 0)
                return dfd;
        if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (st.st_dev != in->r.dev || st.st_ino != in->r.ino)
                return -ESTALE;
        if (first ? !same_meta(in, &st)
                  : st.st_size != (off_t)in->r.size || st.st_mtim.tv_nsec != in->r.mtime.tv_nsec ||
                        st.st_mtim.tv_sec != in->r.mtime.tv_sec)
                return -ESTALE;
        for (int tries = 0;; tries++) {
                unify_tmp_name(tmp);
                if (linkat(kfd, "", dfd, tmp, AT_EMPTY_PATH) == 0)
                        break;
                if (errno != EEXIST || tries > 8)
                        return -errno;
        }
        if (renameat(dfd, tmp, dfd, base) < 0) {
                int e = errno;
                (void)unlinkat(dfd, tmp, 0);
                return -e;
        }
        return 0;
}

static bool same_meta(const Ino *in, const struct stat *st)
{
        return st->st_size == (off_t)in->r.size && st->st_mode == in->r.mode &&
               st->st_uid == in->r.uid && st->st_gid == in->r.gid &&
               st->st_mtim.tv_sec == in->r.mtime.tv_sec &&
               st->st_mtim.tv_nsec == in->r.mtime.tv_nsec &&
               st->st_ctim.tv_sec == in->r.ctime.tv_sec &&
               st->st_ctim.tv_nsec == in->r.ctime.tv_nsec;
}

static void report(Ctx *c, const Ino *in, const Ino *k)
{
        const Rec *kp = &c->paths[k->path];
        for (uint32_t i = 0; i < in->npaths; i++) {
                const Rec *p = &c->paths[in->path + i];
                if (c->o->report)
                        c->o->report(c->o->data, c->trees[p->tree].name, p->rel,
                                     c->trees[kp->tree].name, kp->rel, in->r.size);
        }
}

static uint64_t saved_by(const Ino *in)
{
        return in->npaths >= in->r.nlink ? in->r.blocks * 512 : 0;
}

/*
 * One set by links.  Under a freeze when any guest runs: the keeper and
 * each member are leased (nobody has them open for writing) and proved
 * again, so what was compared is what gets shared.
 */
#define LOCKED(stmt)                                                                               \
        do {                                                                                       \
                pthread_mutex_lock(&c->lock);                                                      \
                stmt;                                                                              \
                pthread_mutex_unlock(&c->lock);                                                    \
        } while (0)

static int share_links(Ctx *c, const Set *s)
{
        Ino *k = &c->inos[s->ino[0]];
        struct stat kst;
        static char b1[CHUNK], b2[CHUNK]; /* only with running guests: the main thread's */
        uint64_t rd = 0;
        int r = 0;
        _cleanup_close_ int kfd = unify_open_ino(c, k, O_RDONLY | O_NONBLOCK, &kst);
        if (kfd < 0 || !same_meta(k, &kst)) {
                LOCKED(c->st->changed += s->n);
                return 0;
        }
        if (!lease(c, kfd)) {
                LOCKED(c->st->busy += s->n);
                return 0;
        }
        int fds[256];
        bool was_imm[256];
        fds[0] = -1;
        for (uint32_t i = 1; i < s->n; i++) {
                Ino *m = &c->inos[s->ino[i]];
                struct stat mst;
                was_imm[i] = false;
                /* no guest runs: nobody can hold it open; its path is checked at the rename */
                if (!c->any_running && !m->marked) {
                        fds[i] = -2;
                        continue;
                }
                fds[i] = unify_open_ino(c, m, O_RDONLY | O_NONBLOCK, &mst);
                if (fds[i] < 0)
                        continue;
                bool ok = same_meta(m, &mst), leased = ok && lease(c, fds[i]);
                if (leased && c->any_running)
                        ok = unify_same_bytes(kfd, fds[i], b1, b2, &rd) == 1 &&
                             unify_same_xattrs(kfd, fds[i]);
                if (!ok || !leased) {
                        if (ok)
                                LOCKED(c->st->busy++);
                        else
                                LOCKED(c->st->changed++);
                        close(fds[i]);
                        fds[i] = -1;
                }
        }
        LOCKED(c->st->bytes_read += rd);
        /* mark first: a crash from here on leaves a marked inode for the repair */
        if (!k->marked && fsetxattr(kfd, VS_UNIFY_XATTR, "1", 1, 0) < 0) {
                LOCKED(r = vs_error(&c->err, errno, "mark %s:/%s",
                                    c->trees[c->paths[k->path].tree].name, c->paths[k->path].rel));
                goto out;
        }
        k->marked = true;
        if ((r = unify_set_imm(kfd, false)) < 0) {
                LOCKED(vs_error(&c->err, -r, "clear the immutable flag of %s:/%s",
                                c->trees[c->paths[k->path].tree].name, c->paths[k->path].rel));
                goto out;
        }
        for (uint32_t i = 1; i < s->n; i++) {
                Ino *m = &c->inos[s->ino[i]];
                if (fds[i] == -1)
                        continue;
                if (m->marked) { /* in another set before: it may be immutable */
                        was_imm[i] = true;
                        (void)unify_set_imm(fds[i], false);
                }
                uint32_t done = 0;
                for (uint32_t p = 0; p < m->npaths; p++) {
                        int e = replace_path(c, &c->paths[m->path + p], m, kfd, p == 0);
                        if (e == 0) {
                                done++;
                                if (c->paths[m->path + p].tree < 256)
                                        LOCKED(c->touched[c->paths[m->path + p].tree] = true);
                        } else if (e == -EMLINK)
                                break;
                        /*
                         * EXDEV: the kernel links no file into another project's
                         * tree (guests with project quotas keep their own copies)
                         */
                        else if (e == -EXDEV)
                                continue;
                        else if (e != -ESTALE && e != -ENOENT) {
                                LOCKED(r = vs_error(&c->err, -e, "link %s:/%s",
                                                    c->trees[c->paths[m->path + p].tree].name,
                                                    c->paths[m->path + p].rel));
                                break;
                        } else
                                LOCKED(c->st->changed++);
                }
                pthread_mutex_lock(&c->lock);
                if (done && c->paths[k->path].tree < 256) /* the keeper's guest shares too */
                        c->touched[c->paths[k->path].tree] = true;
                c->st->shared += done;
                if (done == m->npaths) {
                        c->st->bytes_saved += saved_by(m);
                        report(c, m, k);
                }
                c->batch += (int)done;
                pthread_mutex_unlock(&c->lock);
                if (r < 0)
                        break;
        }
out:
        /* whatever happened above, the keeper ends immutable if it is shared */
        if (fstat(kfd, &kst) == 0 && kst.st_nlink > 1 && unify_set_imm(kfd, true) < 0 && r == 0)
                LOCKED(r = vs_error(&c->err, errno, "set the immutable flag of %s:/%s",
                                    c->trees[c->paths[k->path].tree].name, c->paths[k->path].rel));
        /* the next chunk of this set checks the keeper against what it is now */
        if (fstat(kfd, &kst) == 0)
                k->r.ctime = kst.st_ctim;
        for (uint32_t i = 1; i < s->n; i++) {
                if (fds[i] < 0)
                        continue;
                struct stat mst;
                if (was_imm[i] && fstat(fds[i], &mst) == 0 && mst.st_nlink > 0)
                        (void)unify_set_imm(fds[i], true);
                close(fds[i]);
        }
        return r;
}

/*
 * 1: already sharing their first extent (a rerun need not ask the kernel
 * again); -1: data kept inline in the metadata, which nothing can share.
 */
static int first_extent(int fd, struct fiemap_extent *ret)
{
        /* the extent follows the header in one buffer: fm_extents is a flexible array */
        _Alignas(struct fiemap) char buf[sizeof(struct fiemap) + sizeof(struct fiemap_extent)];
        struct fiemap *fm = (struct fiemap *)(void *)buf;
        memset(buf, 0, sizeof buf);
        fm->fm_length = ~0ULL;
        fm->fm_extent_count = 1;
        fm->fm_flags = FIEMAP_FLAG_SYNC;
        if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0 || fm->fm_mapped_extents != 1)
                return 0;
        *ret = fm->fm_extents[0];
        return 1;
}

static int same_extent(int a, int b)
{
        struct fiemap_extent x, y;
        if (!first_extent(a, &x) || !first_extent(b, &y))
                return 0;
        if ((x.fe_flags | y.fe_flags) & FIEMAP_EXTENT_DATA_INLINE)
                return -1;
        return (x.fe_flags & FIEMAP_EXTENT_SHARED) && x.fe_physical == y.fe_physical;
}

/* One set by FIDEDUPERANGE: the kernel compares again and shares extents. */
static int share_reflinks(Ctx *c, const Set *s)
{
        Ino *k = &c->inos[s->ino[0]];
        _cleanup_close_ int kfd = unify_open_ino(c, k, O_RDONLY | O_NONBLOCK, NULL);
        if (kfd < 0) {
                c->st->changed += s->n;
                return 0;
        }
        for (uint32_t i = 1; i < s->n; i++) {
                Ino *m = &c->inos[s->ino[i]];
                _cleanup_close_ int fd = unify_open_ino(c, m, O_RDONLY | O_NONBLOCK, NULL);
                if (fd < 0) {
                        c->st->changed++;
                        continue;
                }
                int same = same_extent(kfd, fd);
                if (same < 0)
                        continue;
                if (same > 0) {
                        c->st->already += m->npaths;
                        continue;
                }
                uint64_t off = 0, saved = 0;
                bool differs = false;
                while (off < k->r.size) {
                        /* the range and its one destination, laid out as the ioctl reads them */
                        _Alignas(struct file_dedupe_range) unsigned char
                            buf[sizeof(struct file_dedupe_range) +
                                sizeof(struct file_dedupe_range_info)] = {0};
                        struct file_dedupe_range *dr = (struct file_dedupe_range *)(void *)buf;
                        struct file_dedupe_range_info *info = &dr->info[0];
                        dr->src_offset = off;
                        dr->src_length = k->r.size - off;
                        dr->dest_count = 1;
                        info->dest_fd = fd;
                        info->dest_offset = off;
                        if (ioctl(kfd, FIDEDUPERANGE, dr) < 0)
                                return vs_error(&c->err, errno,
                                                "FIDEDUPERANGE %s:/%s (say --mode link where "
                                                "the filesystem has no reflinks)",
                                                c->trees[c->paths[m->path].tree].name,
                                                c->paths[m->path].rel);
                        if (info->status == FILE_DEDUPE_RANGE_DIFFERS) {
                                differs = true;
                                break;
                        }
                        if (info->status < 0)
                                return vs_error(&c->err, -info->status, "FIDEDUPERANGE %s:/%s",
                                                c->trees[c->paths[m->path].tree].name,
                                                c->paths[m->path].rel);
                        if (info->bytes_deduped == 0)
                                break;
                        off += info->bytes_deduped;
                        saved += info->bytes_deduped;
                }
                if (differs) {
                        c->st->changed++;
                        continue;
                }
                c->st->shared += m->npaths;
                c->st->bytes_saved += saved;
                report(c, m, k);
        }
        return 0;
}

/*
 * A Debian guest with shared files gets a dpkg hook that stops package
 * changes with the reason and the fix, instead of dpkg's "Operation not
 * permitted" halfway through an upgrade.  deunify removes it.
 */
int unify_dpkg_hook(Ctx *c, int tree, bool on)
{
        static const char path[] = "etc/dpkg/dpkg.cfg.d/vserver-unified";
        char text[1024];
        int dfd = vs_openat2(c->rootfd[tree], "etc/dpkg/dpkg.cfg.d",
                             O_RDONLY | O_DIRECTORY | O_CLOEXEC, IN_TREE);
        if (dfd < 0)
                return 0; /* not a dpkg guest */
        if (!on) {
                int r = unlinkat(dfd, "vserver-unified", 0) < 0 && errno != ENOENT ? -errno : 0;
                close(dfd);
                return r < 0 ? vs_error(&c->err, -r, "remove /%s", path) : 0;
        }
        close(dfd);
        snprintf(text, sizeof text,
                 "# Written by vserver unify: this guest shares files with other guests,\n"
                 "# and they cannot change until the host runs: vserver deunify %s\n"
                 "pre-invoke=echo 'vserver: the files of this guest are unified with other "
                 "guests and cannot change; on the host, run: vserver deunify %s' >&2; exit 1\n",
                 c->trees[tree].name, c->trees[tree].name);
        VsError e = {0};
        if (vs_write_in_root(c->rootfd[tree], path, text, 0644, &e) < 0) {
                c->err = e;
                return -e.code;
        }
        return 0;
}

/* Keeper first: one of ours already shared, else the inode with most links. */
static void pick_keeper(Ctx *c, Set *s)
{
        uint32_t best = 0;
        for (uint32_t i = 1; i < s->n; i++) {
                const Ino *a = &c->inos[s->ino[i]], *b = &c->inos[s->ino[best]];
                if (a->marked != b->marked ? a->marked : a->r.nlink > b->r.nlink)
                        best = i;
        }
        uint32_t t = s->ino[0];
        s->ino[0] = s->ino[best];
        s->ino[best] = t;
}

/*
 * One set in slices (a keeper and at most 255 members open at once); links
 * under a freeze while guests run, thawed between batches.
 */
static int share_set(Ctx *c, Set *s)
{
        int r = 0;
        bool link = c->inos[s->ino[0]].link;
        for (uint32_t off = 1; r == 0 && off < s->n; off += 255) {
                uint32_t ids[256];
                Set sub = {ids, 1};
                ids[0] = s->ino[0];
                while (sub.n < 256 && off + sub.n - 1 < s->n) {
                        ids[sub.n] = s->ino[off + sub.n - 1];
                        sub.n++;
                }
                if (!link) {
                        r = share_reflinks(c, &sub);
                        continue;
                }
                if ((r = unify_pending(c, true)) < 0 || (r = unify_freeze(c, true)) < 0)
                        break;
                r = share_links(c, &sub);
                if (c->frozen &&
                    (c->batch >= BATCH_FILES || unify_now_ns() - c->frozen_at > BATCH_NS)) {
                        int t = unify_freeze(c, false);
                        if (r == 0)
                                r = t;
                }
        }
        return r;
}

typedef struct ShareJob {
        Ctx *c;
        atomic_size_t next;
        atomic_int failed;
        atomic_uint_fast64_t done;
} ShareJob;

/*
 * No guest runs: link sets go in parallel.  Each link and rename waits on
 * the filesystem's journal (and discard), not on a CPU.
 */
static void *share_worker(void *arg)
{
        ShareJob *j = arg;
        Ctx *c = j->c;
        for (;;) {
                size_t i = atomic_fetch_add(&j->next, 1);
                if (i >= c->nsets || atomic_load(&j->failed))
                        break;
                Set *s = &c->sets[i];
                if (c->inos[s->ino[0]].link && share_set(c, s) < 0)
                        atomic_store(&j->failed, 1);
                atomic_fetch_add(&j->done, 1);
        }
        return NULL;
}

int unify_share_all(Ctx *c)
{
        int r = 0;
        bool parallel = !c->o->dry_run && !c->any_running;
        if (parallel) {
                ShareJob j = {.c = c};
                for (size_t i = 0; i < c->nsets; i++)
                        pick_keeper(c, &c->sets[i]);
                if ((r = unify_pending(c, true)) < 0)
                        return r;
                unify_run_threads(c, share_worker, &j, "share", &j.done, c->nsets, 4);
                if (atomic_load(&j.failed))
                        return -(c->err.code ? c->err.code : EIO);
        }
        for (size_t i = 0; i < c->nsets && r == 0; i++) {
                Set *s = &c->sets[i];
                if (!parallel)
                        pick_keeper(c, s);
                Ino *k = &c->inos[s->ino[0]];
                if (parallel && k->link)
                        continue; /* done above */
                if (c->o->dry_run) {
                        for (uint32_t j = 1; j < s->n; j++) {
                                Ino *m = &c->inos[s->ino[j]];
                                c->st->shared += m->npaths;
                                c->st->bytes_saved += k->link ? saved_by(m) : m->r.size;
                                report(c, m, k);
                        }
                        continue;
                }
                r = share_set(c, s);
                if (c->o->progress && (i % 256 == 0 || i + 1 == c->nsets)) {
                        VsUnifyProgress p = {"share", i + 1, c->nsets};
                        c->o->progress(c->o->data, &p);
                }
        }
        int t = unify_freeze(c, false);
        if (r == 0)
                r = t;
        if (r == 0)
                r = unify_pending(c, false);
        if (c->o->dry_run)
                return r;
        for (int i = 0; r == 0 && i < c->ntrees && i < 256; i++)
                if (c->touched[i])
                        r = unify_dpkg_hook(c, i, true);
        return r;
}
