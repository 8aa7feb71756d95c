/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unification, phase 2: paths to inodes, groups, and the proof byte for byte. */
#include "unify_int.h"

#include <xxhash.h>

#include "cow.h"

static int cmp_rec_ino(const void *a, const void *b)
{
        const Rec *x = a, *y = b;
        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        if (x->ino != y->ino)
                return x->ino < y->ino ? -1 : 1;
        if (x->tree != y->tree)
                return x->tree < y->tree ? -1 : 1;
        return strcmp(x->rel, y->rel);
}

static bool ignore_mtime;

static int cmp_key(const Ino *x, const Ino *y)
{
#define CMP(f)                                                                                     \
        if (x->f != y->f)                                                                          \
                return x->f < y->f ? -1 : 1;
        CMP(r.dev);
        CMP(r.size);
        CMP(link);
        if (x->link) {
                CMP(r.mode);
                CMP(r.uid);
                CMP(r.gid);
                if (!ignore_mtime) {
                        CMP(r.mtime.tv_sec);
                        CMP(r.mtime.tv_nsec);
                }
        }
#undef CMP
        return 0;
}

static Ino *sort_inos;

static int cmp_order(const void *a, const void *b)
{
        const Ino *x = &sort_inos[*(const uint32_t *)a], *y = &sort_inos[*(const uint32_t *)b];
        int c = cmp_key(x, y);
        if (c)
                return c;
        if (x->r.tree != y->r.tree)
                return x->r.tree < y->r.tree ? -1 : 1;
        return x->r.ino < y->r.ino ? -1 : x->r.ino > y->r.ino;
}

/* Open an inode's first path inside its tree, read-only, and check it is still that inode. */
int unify_open_ino(Ctx *c, const Ino *in, int flags, struct stat *ret)
{
        const Rec *p = &c->paths[in->path];
        int fd =
            vs_openat2(c->rootfd[p->tree], p->rel,
                       (unsigned long long)(flags | O_NOFOLLOW | O_CLOEXEC | O_NOATIME), IN_TREE);
        struct stat st;
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_dev != in->r.dev ||
            st.st_ino != in->r.ino) {
                close(fd);
                return -ESTALE;
        }
        if (ret)
                *ret = st;
        return fd;
}

/* The xattrs but ours, as one canonical blob: sorted "name\0" len value. */
static ssize_t xattr_blob(int fd, char *out, size_t size, bool *ret_marked)
{
        char names[8192];
        ssize_t n = flistxattr(fd, names, sizeof names);
        if (ret_marked)
                *ret_marked = false;
        if (n < 0)
                return errno == ENOTSUP ? 0 : -errno;
        const char *list[256];
        int cnt = 0;
        for (char *s = names; s < names + n && cnt < 256; s += strlen(s) + 1) {
                if (!streq(s, VS_UNIFY_XATTR))
                        list[cnt++] = s;
                else if (ret_marked)
                        *ret_marked = true;
        }
        for (int i = 1; i < cnt; i++) /* few names: insertion sort */
                for (int j = i; j > 0 && strcmp(list[j - 1], list[j]) > 0; j--) {
                        const char *t = list[j];
                        list[j] = list[j - 1];
                        list[j - 1] = t;
                }
        size_t used = 0;
        for (int i = 0; i < cnt; i++) {
                size_t nl = strlen(list[i]) + 1;
                if (used + nl + 4 > size)
                        return -E2BIG;
                memcpy(out + used, list[i], nl);
                used += nl;
                ssize_t v = fgetxattr(fd, list[i], out + used + 4, size - used - 4);
                if (v < 0)
                        return -errno;
                uint32_t vl = (uint32_t)v;
                memcpy(out + used, &vl, 4);
                used += 4 + (size_t)v;
        }
        return (ssize_t)used;
}

int unify_get_flags(int fd, uint32_t *ret)
{
        int f = 0;
        if (ioctl(fd, FS_IOC_GETFLAGS, &f) < 0) {
                if (errno != ENOTTY && errno != ENOTSUP && errno != EINVAL)
                        return -errno;
                f = 0;
        }
        *ret = (uint32_t)f;
        return 0;
}

bool unify_is_marked(int fd)
{
        char v[4];
        return fgetxattr(fd, VS_UNIFY_XATTR, v, sizeof v) >= 0;
}

/* flags, xattrs (as a hash and a length) and our mark of a candidate, from its open fd */
static void load_meta(Ino *in, int fd)
{
        char blob[65536]; /* on the stack: thread-local storage is zeroed at every exec */
        ssize_t n = xattr_blob(fd, blob, sizeof blob, &in->marked);
        if (n < 0 || unify_get_flags(fd, &in->flags) < 0) {
                in->skip = true;
                return;
        }
        in->flags &= USER_FLAGS;
        in->xhash = XXH3_64bits(blob, (size_t)n);
        in->xlen = (uint32_t)n;
        /* an admin's immutable or append-only file is not ours to share */
        if ((in->flags & (FS_IMMUTABLE_FL | FS_APPEND_FL)) && !in->marked)
                in->skip = true;
        in->flags &= ~FS_IMMUTABLE_FL; /* ours: the shared state itself */
}

/* Byte for byte, from the start; 1 same, 0 different, -errno. */
int unify_same_bytes(int a, int b, char *ba, char *bb, uint64_t *read_bytes)
{
        off_t off = 0;
        for (;;) {
                ssize_t na = pread(a, ba, CHUNK, off);
                ssize_t nb = pread(b, bb, CHUNK, off);
                if (na < 0 || nb < 0)
                        return errno == EINTR ? -EINTR : -errno;
                *read_bytes += (uint64_t)(na + nb);
                if (na != nb || memcmp(ba, bb, (size_t)na) != 0)
                        return 0;
                if (na == 0)
                        return 1;
                off += na;
        }
}

int unify_same_xattrs(int a, int b)
{
        char xa[65536], xb[65536];
        ssize_t na = xattr_blob(a, xa, sizeof xa, NULL), nb = xattr_blob(b, xb, sizeof xb, NULL);
        return na >= 0 && na == nb && memcmp(xa, xb, (size_t)na) == 0;
}

static void add_set(Ctx *c, const uint32_t *inos, uint32_t n)
{
        uint32_t *copy = malloc(n * sizeof *copy);
        if (!copy)
                return;
        memcpy(copy, inos, n * sizeof *copy);
        pthread_mutex_lock(&c->lock);
        if (c->nsets == c->capsets) {
                size_t cap = c->capsets ? c->capsets * 2 : 256;
                Set *ns = realloc(c->sets, cap * sizeof *ns);
                if (!ns) {
                        pthread_mutex_unlock(&c->lock);
                        free(copy);
                        return;
                }
                c->sets = ns;
                c->capsets = cap;
        }
        c->sets[c->nsets++] = (Set){copy, n};
        pthread_mutex_unlock(&c->lock);
}

static int cmp_hash(const void *a, const void *b)
{
        const Ino *x = &sort_inos[*(const uint32_t *)a], *y = &sort_inos[*(const uint32_t *)b];
        return x->prefix < y->prefix ? -1 : x->prefix > y->prefix;
}

#define WAY_MAX 64 /* files compared side by side */

#define PREFIX (64 * 1024)

/*
 * Up to WAY_MAX files of one size and metadata, read side by side chunk by
 * chunk, each exactly once: the files of each class are compared with its
 * first, and a class splits where they differ.  What stays together to the
 * end is proved equal byte for byte.
 */
static void prove_side_by_side(Ctx *c, const uint32_t *ids, uint32_t n, char *buf, uint64_t *rd)
{
        int fd[WAY_MAX];
        uint32_t cls[WAY_MAX], chunk = n <= 8 ? CHUNK : CHUNK / 8 < 4096 ? 4096 : CHUNK / 8;
        ssize_t got[WAY_MAX];
        uint32_t nclass = 0;
        for (uint32_t i = 0; i < n; i++) {
                const Ino *in = &c->inos[ids[i]];
                fd[i] = unify_open_ino(c, in, O_RDONLY | O_NONBLOCK, NULL);
                /* overlay: a metadata-only copy-up in a rootfs holds no bytes of its own */
                if (fd[i] >= 0 && c->cow && fgetxattr(fd[i], VS_COW_METACOPY, NULL, 0) >= 0) {
                        close(fd[i]);
                        fd[i] = -1;
                }
                cls[i] = fd[i] < 0 ? UINT32_MAX : 0;
                /* all of them at once: the disk gets a deep queue, not one file at a time */
                if (fd[i] >= 0)
                        (void)posix_fadvise(fd[i], 0, 0, POSIX_FADV_WILLNEED);
        }
        nclass = 1;
        for (off_t off = 0;; off += chunk) {
                /* read the members of classes with two or more */
                uint32_t size[WAY_MAX] = {0};
                for (uint32_t i = 0; i < n; i++)
                        if (cls[i] != UINT32_MAX)
                                size[cls[i]]++;
                bool any = false;
                for (uint32_t i = 0; i < n; i++) {
                        if (cls[i] == UINT32_MAX || size[cls[i]] < 2) {
                                if (cls[i] != UINT32_MAX && size[cls[i]] < 2)
                                        cls[i] = UINT32_MAX;
                                continue;
                        }
                        got[i] = pread(fd[i], buf + (size_t)i * chunk, chunk, off);
                        if (got[i] < 0) {
                                cls[i] = UINT32_MAX;
                                continue;
                        }
                        *rd += (uint64_t)got[i];
                        any = true;
                }
                if (!any)
                        break;
                /* split: each member against the first of its class, or of a new one */
                uint32_t first_of[2 * WAY_MAX], parent_of[2 * WAY_MAX], next = nclass;
                for (uint32_t k = 0; k < 2 * WAY_MAX; k++)
                        first_of[k] = UINT32_MAX;
                bool eof = true;
                for (uint32_t i = 0; i < n; i++) {
                        if (cls[i] == UINT32_MAX)
                                continue;
                        if (got[i] > 0)
                                eof = false;
                        uint32_t k = cls[i], placed = UINT32_MAX;
                        /* classes born of k in this round, k itself first */
                        for (uint32_t cand = 0; cand < next && placed == UINT32_MAX; cand++) {
                                if (cand != k && (cand < nclass || parent_of[cand] != k))
                                        continue;
                                uint32_t r = first_of[cand];
                                if (r == UINT32_MAX) {
                                        if (cand == k) {
                                                first_of[k] = i;
                                                placed = k;
                                        }
                                        continue;
                                }
                                if (got[r] == got[i] &&
                                    memcmp(buf + (size_t)r * chunk, buf + (size_t)i * chunk,
                                           (size_t)got[i]) == 0)
                                        placed = cand;
                        }
                        if (placed == UINT32_MAX && next < 2 * WAY_MAX) {
                                placed = next++;
                                parent_of[placed] = k;
                                first_of[placed] = i;
                        }
                        cls[i] = placed;
                }
                /* renumber densely */
                uint32_t map[2 * WAY_MAX];
                for (uint32_t k = 0; k < 2 * WAY_MAX; k++)
                        map[k] = UINT32_MAX;
                nclass = 0;
                for (uint32_t i = 0; i < n; i++)
                        if (cls[i] != UINT32_MAX) {
                                if (map[cls[i]] == UINT32_MAX)
                                        map[cls[i]] = nclass++;
                                cls[i] = map[cls[i]];
                        }
                if (eof || nclass == 0)
                        break;
        }
        /* links: a class splits again by flags and xattrs, the xattrs compared exactly */
        for (uint32_t i = 0; i < n; i++)
                if (cls[i] != UINT32_MAX && c->inos[ids[i]].link) {
                        load_meta(&c->inos[ids[i]], fd[i]);
                        if (c->inos[ids[i]].skip)
                                cls[i] = UINT32_MAX;
                }
        bool done[WAY_MAX] = {false};
        for (uint32_t i = 0; i < n; i++) {
                if (cls[i] == UINT32_MAX || done[i])
                        continue;
                uint32_t members[WAY_MAX], nm = 0;
                const Ino *f = &c->inos[ids[i]];
                for (uint32_t j = i; j < n; j++) {
                        const Ino *m = &c->inos[ids[j]];
                        if (done[j] || cls[j] != cls[i])
                                continue;
                        if (j != i && f->link &&
                            (m->flags != f->flags || m->xhash != f->xhash || m->xlen != f->xlen ||
                             (f->xlen && !unify_same_xattrs(fd[i], fd[j]))))
                                continue;
                        done[j] = true;
                        members[nm++] = ids[j];
                }
                if (nm >= 2)
                        add_set(c, members, nm);
        }
        for (uint32_t i = 0; i < n; i++)
                if (fd[i] >= 0)
                        close(fd[i]);
}

/*
 * Split one run (same size and metadata) into sets of equal bytes.  A run
 * larger than WAY_MAX is first split by the xxh3 of each file's first 64
 * KiB; what still shares a prefix is compared side by side in slices.
 */
static void prove_run(Ctx *c, const Run *run, char *buf)
{
        uint32_t *ids = c->order + run->start;
        uint32_t n = run->n;
        uint64_t rd = 0;
        if (n <= WAY_MAX) {
                prove_side_by_side(c, ids, n, buf, &rd);
                atomic_fetch_add(&c->bytes_read, rd);
                return;
        }
        for (uint32_t i = 0; i < n; i++) {
                Ino *in = &c->inos[ids[i]];
                int fd = unify_open_ino(c, in, O_RDONLY | O_NONBLOCK, NULL);
                ssize_t got = fd < 0 ? -1 : pread(fd, buf, PREFIX, 0);
                in->skip = got < 0;
                in->prefix = got < 0 ? 0 : XXH3_64bits(buf, (size_t)got);
                rd += got > 0 ? (uint64_t)got : 0;
                if (fd >= 0)
                        close(fd);
        }
        /* sort_inos is set once before the threads start; qsort only reads it */
        qsort(ids, n, sizeof *ids, cmp_hash);
        for (uint32_t i = 0; i < n;) {
                uint32_t j = i + 1;
                while (j < n && cmp_hash(&ids[i], &ids[j]) == 0)
                        j++;
                if (c->cow && j - i > WAY_MAX) {
                        /*
                         * overlay: every slice after the first is compared with
                         * the first's first file too, so what is equal across
                         * slices ends in one store copy (unify_cow.c)
                         */
                        prove_side_by_side(c, ids + i, WAY_MAX, buf, &rd);
                        for (uint32_t k = i + WAY_MAX; k < j; k += WAY_MAX - 1) {
                                uint32_t m = j - k < WAY_MAX - 1 ? j - k : WAY_MAX - 1;
                                uint32_t slice[WAY_MAX];
                                slice[0] = ids[i];
                                memcpy(slice + 1, ids + k, m * sizeof *slice);
                                prove_side_by_side(c, slice, m + 1, buf, &rd);
                        }
                } else {
                        for (uint32_t k = i; k < j; k += WAY_MAX) {
                                uint32_t m = j - k < WAY_MAX ? j - k : WAY_MAX;
                                if (m >= 2)
                                        prove_side_by_side(c, ids + k, m, buf, &rd);
                        }
                }
                i = j;
        }
        atomic_fetch_add(&c->bytes_read, rd);
}

static void *prover(void *arg)
{
        Ctx *c = arg;
        char *b1 = malloc((size_t)CHUNK * 8); /* WAY_MAX files side by side */
        if (b1)
                for (;;) {
                        size_t i = atomic_fetch_add(&c->next_run, 1);
                        if (i >= c->nruns)
                                break;
                        prove_run(c, &c->runs[i], b1);
                        atomic_fetch_add(&c->done, c->runs[i].n);
                }
        free(b1);
        return NULL;
}

/* paths → inodes (a file hard-linked within the trees is one candidate) */
int unify_build_inos(Ctx *c)
{
        if (c->npaths)
                qsort(c->paths, c->npaths, sizeof *c->paths, cmp_rec_ino);
        c->inos = calloc(c->npaths + 1, sizeof *c->inos);
        if (!c->inos)
                return vs_error(&c->err, ENOMEM, "unify");
        for (size_t i = 0; i < c->npaths;) {
                size_t j = i + 1;
                while (j < c->npaths && c->paths[j].dev == c->paths[i].dev &&
                       c->paths[j].ino == c->paths[i].ino)
                        j++;
                Ino *in = &c->inos[c->ninos++];
                in->r = c->paths[i];
                in->path = (uint32_t)i;
                in->npaths = (uint32_t)(j - i);
                c->st->bytes += in->r.size;
                if (in->npaths > 1)
                        c->st->already += in->npaths - 1;
                i = j;
        }
        return 0;
}

/* runs of ≥2 inodes with equal keys in order[start..end) */
static int make_runs(Ctx *c, uint32_t *ids, size_t n, Run **out, size_t *nout)
{
        for (size_t i = 0; i < n;) {
                size_t j = i + 1;
                while (j < n && cmp_key(&c->inos[ids[i]], &c->inos[ids[j]]) == 0)
                        j++;
                if (j - i >= 2) {
                        Run *nr = realloc(*out, (*nout + 1) * sizeof **out);
                        if (!nr)
                                return vs_error(&c->err, ENOMEM, "unify");
                        *out = nr;
                        (*out)[(*nout)++] =
                            (Run){(uint32_t)(ids + i - c->order), (uint32_t)(j - i)};
                }
                i = j;
        }
        return 0;
}

int unify_group(Ctx *c)
{
        ignore_mtime = c->o->ignore_mtime;
        bool reflink_dev[64] = {0};
        dev_t devs[64];
        int ndev = 0;
        /* the way of sharing, per filesystem */
        for (int t = 0; t < c->ntrees; t++) {
                struct stat st;
                if (fstat(c->rootfd[t], &st) < 0)
                        return vs_error(&c->err, errno, "stat %s", c->trees[t].root);
                int d = 0;
                while (d < ndev && devs[d] != st.st_dev)
                        d++;
                if (d == ndev && ndev < 64) {
                        devs[ndev] = st.st_dev;
                        reflink_dev[ndev++] =
                            c->o->mode == VS_UNIFY_REFLINK ||
                            (c->o->mode == VS_UNIFY_AUTO && unify_fs_reflinks(c->rootfd[t]));
                }
        }
        size_t n = 0;
        c->order = malloc((c->ninos + 1) * sizeof *c->order);
        if (!c->order)
                return vs_error(&c->err, ENOMEM, "unify");
        bool any_link = false, any_reflink = false;
        for (size_t i = 0; i < c->ninos; i++) {
                Ino *in = &c->inos[i];
                int d = 0;
                while (d < ndev && devs[d] != in->r.dev)
                        d++;
                in->link = !c->cow && (d >= ndev || !reflink_dev[d]);
                if (in->r.size == 0)
                        continue;
                if ((in->r.mode & (S_ISUID | S_ISGID)) && !c->o->setuid) {
                        c->st->setuid++;
                        continue;
                }
                if (in->link && c->trees[in->r.tree].no_link)
                        continue;
                c->order[n++] = (uint32_t)i;
        }
        sort_inos = c->inos;
        qsort(c->order, n, sizeof *c->order, cmp_order);
        /* by stat alone; flags and xattrs are read while the contents are compared */
        if (make_runs(c, c->order, n, &c->runs, &c->nruns) < 0)
                return -c->err.code;
        for (size_t i = 0; i < c->nruns; i++) {
                c->st->candidates += c->runs[i].n;
                *(c->inos[c->order[c->runs[i].start]].link ? &any_link : &any_reflink) = true;
        }
        c->st->mode = c->cow                    ? "overlay"
                      : any_link && any_reflink ? "mixed"
                      : any_reflink             ? "reflink"
                      : any_link                ? "link"
                                                : "none";
        return 0;
}

int unify_prove(Ctx *c)
{
        c->done = 0;
        uint64_t total = 0;
        for (size_t i = 0; i < c->nruns; i++)
                total += c->runs[i].n;
        unify_run_threads(c, prover, c, "compare", &c->done, total, 4); /* waits on the disk */
        c->st->bytes_read = c->bytes_read;
        return 0;
}
