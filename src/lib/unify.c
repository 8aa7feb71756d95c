/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "unify.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
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
#include <xxhash.h>

#include "syscalls.h"
#include "template.h"
#include "util.h"

#define IN_TREE (RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)
#define CHUNK   (256 * 1024)
/* flags that make two files different (ext4/xfs/btrfs user-visible ones) */
#define USER_FLAGS                                                                                 \
        (FS_SECRM_FL | FS_UNRM_FL | FS_COMPR_FL | FS_SYNC_FL | FS_IMMUTABLE_FL | FS_APPEND_FL |    \
         FS_NODUMP_FL | FS_NOATIME_FL | FS_JOURNAL_DATA_FL | FS_NOTAIL_FL | FS_DIRSYNC_FL |        \
         FS_TOPDIR_FL | FS_NOCOW_FL | FS_PROJINHERIT_FL)
#define BATCH_FILES 2048
#define BATCH_NS    100000000LL /* a freeze lasts at most about this long */

static const char *const default_excludes[] = {"/etc", "/var",  "/home",      "/root",
                                               "/tmp", "/run",  "/dev",       "/proc",
                                               "/sys", "/boot", "/lost+found"};

/* ---- exclude patterns ---------------------------------------------------------------- */

int vs_unify_pattern_check(const char *p, char *why, size_t size)
{
        if (*p == '+' || *p == '-')
                p++;
        if (*p != '/') {
                snprintf(why, size,
                         "\"%s\" is not a guest path (say /usr/share/doc or +/var/lib/x)", p);
                return -EINVAL;
        }
        for (const char *s = p; *s; s++) {
                if ((unsigned char)*s < 0x20 || *s == 0x7f) {
                        snprintf(why, size, "a pattern has no control characters");
                        return -EINVAL;
                }
                if (s[0] == '/' && s[1] == '.' && s[2] == '.' && (s[3] == '/' || !s[3])) {
                        snprintf(why, size, "\"%s\": no .. in a pattern", p);
                        return -EINVAL;
                }
        }
        return 0;
}

/* +1 include, -1 exclude, 0 no pattern says */
static int classify(const char *path, const char *const *pats, int n)
{
        for (int i = 0; i < n; i++) {
                const char *p = pats[i];
                int verdict = -1;
                if (*p == '+' || *p == '-')
                        verdict = *p++ == '+' ? 1 : -1;
                if (fnmatch(p, path, FNM_PATHNAME | FNM_PERIOD) == 0)
                        return verdict;
        }
        for (size_t i = 0; i < ARRAY_SIZE(default_excludes); i++)
                if (streq(default_excludes[i], path))
                        return -1;
        return 0;
}

/* could an include pattern match below the directory @dir? */
static bool include_below(const char *dir, const char *const *pats, int n)
{
        size_t len = strlen(dir);
        for (int i = 0; i < n; i++) {
                const char *p = pats[i];
                if (*p != '+')
                        continue;
                p++;
                size_t lit = strcspn(p, "*?[");
                if (lit > len ? strncmp(p, dir, len) == 0 && p[len] == '/'
                              : strncmp(p, dir, lit) == 0)
                        return true;
        }
        return false;
}

bool vs_unify_excluded(const char *path, bool is_dir, const char *const *pats, int n)
{
        char buf[PATH_MAX];
        int state = 0;
        (void)is_dir;
        snprintf(buf, sizeof buf, "%s", path);
        for (char *s = buf + 1;; s++) {
                if (*s == '/' || !*s) {
                        char c = *s;
                        *s = '\0';
                        int v = classify(buf, pats, n);
                        if (v)
                                state = v;
                        *s = c;
                        if (!c)
                                break;
                }
        }
        return state < 0;
}

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

static int push(RecVec *v, const Rec *r)
{
        if (v->n == v->cap) {
                size_t cap = v->cap ? v->cap * 2 : 1024;
                Rec *nv = realloc(v->v, cap * sizeof *nv);
                if (!nv)
                        return -ENOMEM;
                v->v = nv;
                v->cap = cap;
        }
        v->v[v->n++] = *r;
        return 0;
}

static void recvec_free(RecVec *v)
{
        for (size_t i = 0; i < v->n; i++)
                free(v->v[i].rel);
        free(v->v);
        *v = (RecVec){0};
}

static void fill_rec(Rec *r, const struct statx *sx)
{
        r->dev = makedev(sx->stx_dev_major, sx->stx_dev_minor);
        r->ino = sx->stx_ino;
        r->size = sx->stx_size;
        r->blocks = sx->stx_blocks;
        r->mode = sx->stx_mode;
        r->uid = sx->stx_uid;
        r->gid = sx->stx_gid;
        r->nlink = sx->stx_nlink;
        r->mtime = (struct timespec){sx->stx_mtime.tv_sec, sx->stx_mtime.tv_nsec};
        r->ctime = (struct timespec){sx->stx_ctime.tv_sec, sx->stx_ctime.tv_nsec};
        r->immutable = sx->stx_attributes & (STATX_ATTR_IMMUTABLE | STATX_ATTR_APPEND);
}

/*
 * How deep a scan follows a guest's tree (it may nest thousands of levels to
 * crash whoever walks it recursively); files deeper stay unshared.
 */
#define WALK_MAX_DEPTH 64

/* @rel: the directory's path in the tree ("" for the root), @state its verdict */
static void walk_dir(Walk *w, int dfd, char *rel, size_t len, int state, int depth)
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
                if (de->d_type != DT_DIR && de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
                        continue;
                size_t nl = strlen(nm);
                if (len + 1 + nl + 2 >= PATH_MAX)
                        continue;
                char *end = rel + len;
                if (len)
                        *end++ = '/';
                memcpy(end, nm, nl + 1);
                size_t sublen = (size_t)(end - rel) + nl;
                struct statx sx;
                if (statx(dirfd(d), nm, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
                          STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_UID | STATX_GID |
                              STATX_MTIME | STATX_CTIME | STATX_INO | STATX_SIZE | STATX_BLOCKS,
                          &sx) < 0) {
                        if (errno != ENOENT) { /* a running guest may remove it: fine */
                                w->error = errno;
                                snprintf(w->where, sizeof w->where, "/%s", rel);
                        }
                        rel[len] = '\0';
                        continue;
                }
                int v = state;
                if (!w->all) {
                        char abs[PATH_MAX];
                        abs[0] = '/';
                        memcpy(abs + 1, rel, sublen + 1);
                        int c = classify(abs, w->t->patterns, w->t->n_patterns);
                        if (c)
                                v = c;
                        if (S_ISDIR(sx.stx_mode) && v < 0 &&
                            !include_below(abs, w->t->patterns, w->t->n_patterns)) {
                                rel[len] = '\0';
                                continue;
                        }
                }
                if (S_ISDIR(sx.stx_mode)) {
                        if (makedev(sx.stx_dev_major, sx.stx_dev_minor) == w->dev) {
                                int sub = openat(dirfd(d), nm,
                                                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                                if (sub >= 0 && depth < WALK_MAX_DEPTH)
                                        walk_dir(w, sub, rel, sublen, v, depth + 1);
                                else if (sub >= 0)
                                        close(sub);
                        }
                } else if (S_ISREG(sx.stx_mode)) {
                        atomic_fetch_add(w->files, 1);
                        if (v < 0) {
                                w->excluded++;
                        } else {
                                Rec r = {.tree = w->tree};
                                fill_rec(&r, &sx);
                                r.rel = strdup(rel);
                                if (!r.rel || push(&w->out, &r) < 0) {
                                        free(r.rel);
                                        w->error = ENOMEM;
                                }
                        }
                }
                rel[len] = '\0';
        }
        closedir(d);
}

static int root_fd(const char *root, dev_t *ret_dev, VsError *err)
{
        int fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0)
                return vs_error(err, errno, "open %s", root);
        if (fstat(fd, &st) < 0) {
                int e = errno;
                close(fd);
                return vs_error(err, e, "stat %s", root);
        }
        if (ret_dev)
                *ret_dev = st.st_dev;
        return fd;
}

static int walk_tree(Walk *w, VsError *err)
{
        int fd = root_fd(w->t->root, &w->dev, err);
        if (fd < 0)
                return fd;
        char rel[PATH_MAX] = "";
        walk_dir(w, fd, rel, 0, 0, 0);
        if (w->error)
                return vs_error(err, w->error, "scan %s%s", w->t->name, w->where);
        return 0;
}

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
        bool link; /* on a filesystem shared by links (not reflinks) */
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
        VsError err;
} Ctx;

static long long now_ns(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return t.tv_sec * 1000000000LL + t.tv_nsec;
}

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
static int open_ino(Ctx *c, const Ino *in, int flags, struct stat *ret)
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

static int get_flags(int fd, uint32_t *ret)
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

static bool is_marked(int fd)
{
        char v[4];
        return fgetxattr(fd, VS_UNIFY_XATTR, v, sizeof v) >= 0;
}

/* flags, xattrs (as a hash and a length) and our mark of a candidate, from its open fd */
static void load_meta(Ino *in, int fd)
{
        static _Thread_local char blob[65536];
        ssize_t n = xattr_blob(fd, blob, sizeof blob, &in->marked);
        if (n < 0 || get_flags(fd, &in->flags) < 0) {
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
static int same_bytes(int a, int b, char *ba, char *bb, uint64_t *read_bytes)
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

static int same_xattrs(int a, int b)
{
        static _Thread_local char xa[65536], xb[65536];
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
#define PREFIX  (64 * 1024)

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
                fd[i] = open_ino(c, in, O_RDONLY | O_NONBLOCK, NULL);
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
                             (f->xlen && !same_xattrs(fd[i], fd[j]))))
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
                int fd = open_ino(c, in, O_RDONLY | O_NONBLOCK, NULL);
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
                for (uint32_t k = i; k < j; k += WAY_MAX) {
                        uint32_t m = j - k < WAY_MAX ? j - k : WAY_MAX;
                        if (m >= 2)
                                prove_side_by_side(c, ids + k, m, buf, &rd);
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

typedef struct ScanJob {
        Walk *walks;
        int n;
        atomic_int next;
} ScanJob;

static void *scan_worker(void *arg)
{
        ScanJob *j = arg;
        for (;;) {
                int i = atomic_fetch_add(&j->next, 1);
                if (i >= j->n)
                        break;
                Walk *w = &j->walks[i];
                VsError e = {0};
                if (walk_tree(w, &e) < 0 && !w->error)
                        w->error = e.code ? e.code : EIO;
        }
        return NULL;
}

static int jobs_of(const VsUnifyOptions *o, int per_cpu)
{
        if (o->jobs > 0)
                return o->jobs > 64 ? 64 : o->jobs;
        long n = sysconf(_SC_NPROCESSORS_ONLN) * per_cpu;
        return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

/*
 * Run @fn on one thread per job; the caller reports progress (@count of
 * @total, 0: unknown) every tenth of a second meanwhile, or works along
 * when nobody watches.
 */
static void run_threads(Ctx *c, void *(*fn)(void *), void *arg, const char *phase,
                        atomic_uint_fast64_t *count, uint64_t total, int per_cpu)
{
        int jobs = jobs_of(c->o, per_cpu);
        pthread_t th[64];
        int started = 0;
        for (int i = c->o->progress ? 0 : 1; i < jobs; i++)
                if (pthread_create(&th[started], NULL, fn, arg) == 0)
                        started++;
        if (!c->o->progress || started == 0)
                fn(arg);
        for (int joined = 0; joined < started;) {
                struct timespec deadline;
                clock_gettime(CLOCK_REALTIME, &deadline);
                deadline.tv_nsec += 100000000;
                if (deadline.tv_nsec >= 1000000000) {
                        deadline.tv_sec++;
                        deadline.tv_nsec -= 1000000000;
                }
                if (!c->o->progress) {
                        pthread_join(th[joined++], NULL);
                } else if (pthread_timedjoin_np(th[joined], NULL, &deadline) == 0) {
                        joined++;
                } else {
                        VsUnifyProgress p = {phase, atomic_load(count), total};
                        c->o->progress(c->o->data, &p);
                }
        }
        if (c->o->progress) {
                VsUnifyProgress p = {phase, atomic_load(count), total ? total : atomic_load(count)};
                c->o->progress(c->o->data, &p);
        }
}

static bool fs_reflinks(int fd)
{
        struct statfs sf;
        if (fstatfs(fd, &sf) < 0)
                return false;
        return sf.f_type == (typeof(sf.f_type))BTRFS_SUPER_MAGIC ||
               sf.f_type == (typeof(sf.f_type))XFS_SUPER_MAGIC;
}

/* ---- sharing ------------------------------------------------------------------------- */

static int freeze(Ctx *c, bool on)
{
        if (c->frozen == on || !c->any_running || !c->o->freeze)
                return 0;
        VsError e = {0};
        if (c->o->freeze(c->o->freeze_data, on, &e) < 0) {
                c->err = e;
                return -e.code;
        }
        c->frozen = on;
        c->frozen_at = on ? now_ns() : 0;
        c->batch = 0;
        return 0;
}

static int pending(Ctx *c, bool on)
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

static int set_imm(int fd, bool on)
{
        int f = 0;
        if (ioctl(fd, FS_IOC_GETFLAGS, &f) < 0)
                return -errno;
        int nf = on ? f | FS_IMMUTABLE_FL : f & ~FS_IMMUTABLE_FL;
        if (nf != f && ioctl(fd, FS_IOC_SETFLAGS, &nf) < 0)
                return -errno;
        return 0;
}

static void tmp_name(char out[64])
{
        unsigned long long r = 0;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
                r = (unsigned long long)now_ns() ^ (unsigned long long)getpid();
        snprintf(out, 64, VS_UNIFY_TMP "%016llx", r);
}

/* The parent directory of a path in its tree (O_PATH), and its last name. */
static int open_parent(int rootfd, const char *rel, const char **ret_base, int flags)
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
        _cleanup_close_ int dfd = open_parent(c->rootfd[p->tree], p->rel, &base, O_PATH);
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
                tmp_name(tmp);
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
        _cleanup_close_ int kfd = open_ino(c, k, O_RDONLY | O_NONBLOCK, &kst);
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
                fds[i] = open_ino(c, m, O_RDONLY | O_NONBLOCK, &mst);
                if (fds[i] < 0)
                        continue;
                bool ok = same_meta(m, &mst), leased = ok && lease(c, fds[i]);
                if (leased && c->any_running)
                        ok = same_bytes(kfd, fds[i], b1, b2, &rd) == 1 && same_xattrs(kfd, fds[i]);
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
        if ((r = set_imm(kfd, false)) < 0) {
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
                        (void)set_imm(fds[i], false);
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
        if (fstat(kfd, &kst) == 0 && kst.st_nlink > 1 && set_imm(kfd, true) < 0 && r == 0)
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
                        (void)set_imm(fds[i], true);
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
        _cleanup_close_ int kfd = open_ino(c, k, O_RDONLY | O_NONBLOCK, NULL);
        if (kfd < 0) {
                c->st->changed += s->n;
                return 0;
        }
        for (uint32_t i = 1; i < s->n; i++) {
                Ino *m = &c->inos[s->ino[i]];
                _cleanup_close_ int fd = open_ino(c, m, O_RDONLY | O_NONBLOCK, NULL);
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
static int dpkg_hook(Ctx *c, int tree, bool on)
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
                if ((r = pending(c, true)) < 0 || (r = freeze(c, true)) < 0)
                        break;
                r = share_links(c, &sub);
                if (c->frozen && (c->batch >= BATCH_FILES || now_ns() - c->frozen_at > BATCH_NS)) {
                        int t = freeze(c, false);
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

static int share_all(Ctx *c)
{
        int r = 0;
        bool parallel = !c->o->dry_run && !c->any_running;
        if (parallel) {
                ShareJob j = {.c = c};
                for (size_t i = 0; i < c->nsets; i++)
                        pick_keeper(c, &c->sets[i]);
                if ((r = pending(c, true)) < 0)
                        return r;
                run_threads(c, share_worker, &j, "share", &j.done, c->nsets, 4);
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
        int t = freeze(c, false);
        if (r == 0)
                r = t;
        if (r == 0)
                r = pending(c, false);
        if (c->o->dry_run)
                return r;
        for (int i = 0; r == 0 && i < c->ntrees && i < 256; i++)
                if (c->touched[i])
                        r = dpkg_hook(c, i, true);
        return r;
}

/* ---- vs_unify -------------------------------------------------------------------------- */

static void ctx_free(Ctx *c)
{
        if (c->rootfd)
                for (int i = 0; i < c->ntrees; i++)
                        if (c->rootfd[i] >= 0)
                                close(c->rootfd[i]);
        free(c->rootfd);
        for (size_t i = 0; i < c->npaths; i++)
                free(c->paths[i].rel);
        free(c->paths);
        free(c->inos);
        free(c->order);
        free(c->runs);
        for (size_t i = 0; i < c->nsets; i++)
                free(c->sets[i].ino);
        free(c->sets);
        pthread_mutex_destroy(&c->lock);
}

static int scan(Ctx *c, bool all)
{
        Walk *walks = calloc((size_t)c->ntrees, sizeof *walks);
        atomic_uint_fast64_t files = 0;
        if (!walks)
                return vs_error(&c->err, ENOMEM, "scan");
        for (int i = 0; i < c->ntrees; i++)
                walks[i] =
                    (Walk){.t = &c->trees[i], .tree = (uint32_t)i, .all = all, .files = &files};
        ScanJob job = {walks, c->ntrees, 0};
        run_threads(c, scan_worker, &job, "scan", &files, 0, 2);
        int r = 0;
        size_t total = 0;
        for (int i = 0; i < c->ntrees; i++) {
                if (walks[i].error && r == 0)
                        r = vs_error(&c->err, walks[i].error, "scan %s%s", c->trees[i].name,
                                     walks[i].where);
                total += walks[i].out.n;
                c->st->excluded += walks[i].excluded;
        }
        c->st->files = files;
        if (r == 0 && total) {
                c->paths = malloc(total * sizeof *c->paths);
                if (!c->paths)
                        r = vs_error(&c->err, ENOMEM, "scan");
        }
        for (int i = 0; i < c->ntrees; i++) {
                if (r == 0) {
                        memcpy(c->paths + c->npaths, walks[i].out.v,
                               walks[i].out.n * sizeof *c->paths);
                        c->npaths += walks[i].out.n;
                        free(walks[i].out.v);
                } else {
                        recvec_free(&walks[i].out);
                }
        }
        free(walks);
        return r;
}

/* paths → inodes (a file hard-linked within the trees is one candidate) */
static int build_inos(Ctx *c)
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

static int group(Ctx *c)
{
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
                            (c->o->mode == VS_UNIFY_AUTO && fs_reflinks(c->rootfd[t]));
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
                in->link = d >= ndev || !reflink_dev[d];
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
        c->st->mode = any_link && any_reflink ? "mixed"
                      : any_reflink           ? "reflink"
                      : any_link              ? "link"
                                              : "none";
        return 0;
}

static int ctx_init(Ctx *c, const VsUnifyTree *trees, int n, const VsUnifyOptions *o,
                    VsUnifyStats *st)
{
        *c = (Ctx){.trees = trees, .ntrees = n, .o = o, .st = st};
        pthread_mutex_init(&c->lock, NULL);
        c->rootfd = malloc((size_t)(n ? n : 1) * sizeof *c->rootfd);
        if (!c->rootfd)
                return vs_error(&c->err, ENOMEM, "unify");
        for (int i = 0; i < n; i++)
                c->rootfd[i] = -1;
        for (int i = 0; i < n; i++) {
                c->rootfd[i] = root_fd(trees[i].root, NULL, &c->err);
                if (c->rootfd[i] < 0)
                        return c->rootfd[i];
                if (trees[i].running)
                        c->any_running = true;
        }
        return 0;
}

int vs_unify(const VsUnifyTree *trees, int n, const VsUnifyOptions *o, VsUnifyStats *st,
             VsError *err)
{
        Ctx c;
        long long t0 = now_ns();
        *st = (VsUnifyStats){.mode = "none"};
        ignore_mtime = o->ignore_mtime;
        int r = ctx_init(&c, trees, n, o, st);
        if (r == 0)
                r = scan(&c, false);
        if (r == 0)
                r = build_inos(&c);
        if (r == 0)
                r = group(&c);
        if (r == 0) {
                c.done = 0;
                uint64_t total = 0;
                for (size_t i = 0; i < c.nruns; i++)
                        total += c.runs[i].n;
                run_threads(&c, prover, &c, "compare", &c.done, total, 4); /* waits on the disk */
                st->bytes_read = c.bytes_read;
                r = share_all(&c);
        }
        st->seconds = (double)(now_ns() - t0) / 1e9;
        if (r < 0 && err)
                *err = c.err;
        ctx_free(&c);
        return r;
}

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
                r = walk_tree(&w, &c->err);
                all = w.out;
        } else {
                dev_t dev;
                _cleanup_close_ int rfd = root_fd(c->trees[0].root, &dev, &c->err);
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
                                        walk_dir(&w, dfd, rel, strlen(rel), 0, 0);
                                }
                        } else if (S_ISREG(sx.stx_mode)) {
                                Rec rr = {0};
                                fill_rec(&rr, &sx);
                                rr.rel = strdup(rel);
                                if (!rr.rel || push(&w.out, &rr) < 0)
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
                        keep = fd >= 0 && is_marked(fd);
                        if (fd >= 0)
                                close(fd);
                }
                if (keep ||
                    (r == 0 && strncmp(strrchr(p->rel, '/') ? strrchr(p->rel, '/') + 1 : p->rel,
                                       VS_UNIFY_TMP, strlen(VS_UNIFY_TMP)) == 0)) {
                        if (push(out, p) < 0)
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
        if (get_flags(fd, &f) == 0 && (f & USER_FLAGS & ~FS_IMMUTABLE_FL)) {
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
        _cleanup_close_ int dfd = open_parent(c->rootfd[0], p->rel, &base, O_RDONLY);
        if (dfd < 0)
                return dfd == -ENOENT ? 0 : vs_error(&c->err, -dfd, "open /%s", p->rel);
        _cleanup_close_ int fd = openat(dfd, base, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return 0;
        bool tmp = strncmp(base, VS_UNIFY_TMP, strlen(VS_UNIFY_TMP)) == 0;
        bool marked = is_marked(fd);
        if (!u->copy || tmp) {
                /*
                 * Release (the tree is going away) or one of our temporary
                 * names.  An immutable inode cannot lose a name, so the flag
                 * goes for a moment: with every guest that may share the
                 * inode frozen, or one of them could open it for writing then.
                 */
                if (marked) {
                        int f = freeze(c, true);
                        if (f < 0)
                                return f;
                        (void)set_imm(fd, false);
                        c->batch++;
                }
                int r = unlinkat(dfd, base, 0) < 0 ? -errno : 0;
                if (marked && fstat(fd, &st) == 0 && st.st_nlink > 0)
                        (void)set_imm(fd, true);
                return r < 0 ? vs_error(&c->err, -r, "remove /%s", p->rel) : 0;
        }
        if (!marked)
                return 0;
        if (st.st_nlink == 1) { /* nobody else has it: private already */
                int r = set_imm(fd, false);
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
                tmp_name(tn);
                if (linkat(t, "", dfd, tn, AT_EMPTY_PATH) == 0)
                        break;
                if (errno != EEXIST || tries > 8)
                        return vs_error(&c->err, errno, "link a copy of /%s", p->rel);
        }
        if ((r = freeze(c, true)) < 0) {
                (void)unlinkat(dfd, tn, 0);
                return r;
        }
        (void)set_imm(fd, false);
        if (renameat(dfd, tn, dfd, base) < 0) {
                r = vs_error(&c->err, errno, "replace /%s", p->rel);
                (void)unlinkat(dfd, tn, 0);
        } else {
                u->st->deunified++;
                c->batch++;
        }
        if (fstat(fd, &st) == 0 && st.st_nlink > 0)
                (void)set_imm(fd, true);
        return r;
}

static int undo_all(Ctx *c, const char *const *paths, int n_paths, bool copy, VsUnifyStats *st)
{
        RecVec v = {0};
        int r = marked_files(c, paths, n_paths, &v);
        Undo u = {c, copy, st};
        for (size_t i = 0; r == 0 && i < v.n; i++) {
                if ((r = pending(c, true)) < 0)
                        break;
                r = undo_one(&u, &v.v[i]);
                if (c->frozen && (c->batch >= BATCH_FILES || now_ns() - c->frozen_at > BATCH_NS)) {
                        int t = freeze(c, false);
                        if (r == 0)
                                r = t;
                }
                if (c->o->progress && (i % 256 == 0 || i + 1 == v.n)) {
                        VsUnifyProgress p = {copy ? "deunify" : "release", i + 1, v.n};
                        c->o->progress(c->o->data, &p);
                }
        }
        int t = freeze(c, false);
        if (r == 0)
                r = t;
        if (r == 0)
                r = pending(c, false);
        recvec_free(&v);
        return r;
}

int vs_deunify(const VsUnifyTree *t, const char *const *paths, int n_paths, const VsUnifyOptions *o,
               VsUnifyStats *st, VsError *err)
{
        Ctx c;
        long long t0 = now_ns();
        *st = (VsUnifyStats){.mode = "none"};
        int r = ctx_init(&c, t, 1, o, st);
        /* other guests that run may hold the same inodes: freeze whenever any runs */
        c.any_running = o->freeze != NULL;
        if (r == 0)
                r = undo_all(&c, paths, n_paths, true, st);
        if (r == 0 && n_paths == 0)
                r = dpkg_hook(&c, 0, false);
        st->seconds = (double)(now_ns() - t0) / 1e9;
        if (r < 0 && err)
                *err = c.err;
        ctx_free(&c);
        return r;
}

int vs_unify_release(const char *root, const VsUnifyOptions *o, VsError *err)
{
        VsUnifyTree t = {.name = "", .root = root};
        VsUnifyStats st;
        Ctx c;
        int r = ctx_init(&c, &t, 1, o, &st);
        c.any_running = o->freeze != NULL;
        if (r == 0)
                r = undo_all(&c, NULL, 0, false, &st);
        if (r < 0 && err)
                *err = c.err;
        ctx_free(&c);
        return r;
}

int vs_unify_repair(const VsUnifyTree *trees, int n, const VsUnifyOptions *o, VsError *err)
{
        int r = 0;
        for (int i = 0; i < n && r == 0; i++) {
                Ctx c;
                VsUnifyStats st;
                r = ctx_init(&c, &trees[i], 1, o, &st);
                RecVec all = {0};
                Walk w = {.t = &trees[i], .all = true};
                atomic_uint_fast64_t files = 0;
                w.files = &files;
                if (r == 0)
                        r = walk_tree(&w, &c.err);
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
                        if (fd >= 0 && is_marked(fd) && set_imm(fd, true) < 0)
                                r = vs_error(&c.err, errno, "protect %s:/%s", trees[i].name,
                                             p->rel);
                        if (fd >= 0)
                                close(fd);
                }
                recvec_free(&all);
                if (r < 0 && err)
                        *err = c.err;
                ctx_free(&c);
        }
        return r;
}
