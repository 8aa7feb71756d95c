/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup_int.h"
#include "syscalls.h"
#include "util.h"

static const VsCgBackend *be(const VsCgroup *cg, int i)
{
        return cg->dirs[i].v2 ? &vs_cg_v2 : &vs_cg_v1;
}

/* Hosts with many guests have many mounts; a bigger table is cut off, not misread. */
#define MOUNTINFO_MAX (1024 * 1024)

typedef struct Hierarchy {
        char mnt[256];    /* where it is mounted */
        char own[512];    /* our own cgroup in it, relative to the mount */
        char root[512];   /* the mount's root within the hierarchy */
        char prefix[128]; /* "0::" or "4:memory:" as in /proc/PID/cgroup */
        char ctrls[64];   /* v1: the hierarchy's controllers */
        bool v2;
        bool favordynmods; /* mounted so: moves take no RCU grace period */
} Hierarchy;

bool vs_cgroup_path_valid(const char *path)
{
        if (!path || !*path || strlen(path) > 200)
                return false;
        const char *p = path;
        if (*p == '/')
                p++;
        if (!*p)
                return false;
        while (*p) {
                size_t n = strcspn(p, "/");
                if (n == 0)
                        return false; /* "//" or trailing "/" */
                if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                for (size_t i = 0; i < n; i++) {
                        char c = p[i];
                        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
                                return false;
                }
                p += n;
                if (*p == '/')
                        p++;
                if (*p == '\0' && p[-1] == '/')
                        return false;
        }
        return true;
}

bool vs_cg_has_all(const char *opts, const char *ctrls)
{
        char want[256];
        snprintf(want, sizeof want, "%s", ctrls);
        for (char *save = NULL, *c = strtok_r(want, ",", &save); c;
             c = strtok_r(NULL, ",", &save)) {
                size_t n = strlen(c);
                const char *o = opts;
                bool found = false;
                while (*o) {
                        size_t m = strcspn(o, ",");
                        if (m == n && strncmp(o, c, n) == 0)
                                found = true;
                        o += m;
                        if (*o == ',')
                                o++;
                }
                if (!found)
                        return false;
        }
        return true;
}

/*
 * Pair each line of /proc/self/cgroup with its mount in mountinfo.  Each
 * hierarchy is taken once (its first mount); hierarchies that are not
 * mounted on this host are skipped.  Both files are read once: this runs on
 * every start.
 */
static int discover_uncached(Hierarchy *h, int max, VsError *err);

/*
 * Our own cgroups do not change while a command runs: read them once per
 * process (under a lock: `list` asks from several threads).
 */
static Hierarchy cache[VS_CGROUP_MAX_DIRS];
static int cache_n = -1;
static pid_t cache_pid;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static int discover(Hierarchy *h, int max, VsError *err)
{
        pthread_mutex_lock(&cache_lock);
        if (cache_n < 0 || cache_pid != getpid()) {
                int n = discover_uncached(cache, VS_CGROUP_MAX_DIRS, err);
                if (n < 0) {
                        pthread_mutex_unlock(&cache_lock);
                        return n;
                }
                cache_n = n;
                cache_pid = getpid();
        }
        int n = cache_n < max ? cache_n : max;
        memcpy(h, cache, (size_t)n * sizeof *h);
        pthread_mutex_unlock(&cache_lock);
        return n;
}

static int discover_uncached(Hierarchy *h, int max, VsError *err)
{
        char cgbuf[4096];
        _cleanup_free_ char *mibuf = malloc(MOUNTINFO_MAX);
        if (!mibuf)
                return vs_error(err, ENOMEM, "read /proc/self/mountinfo");
        ssize_t n1 = vs_read_file_at(AT_FDCWD, "/proc/self/cgroup", cgbuf, sizeof cgbuf);
        if (n1 < 0)
                return vs_error(err, (int)n1, "read /proc/self/cgroup");
        ssize_t n2 = vs_read_file_at(AT_FDCWD, "/proc/self/mountinfo", mibuf, MOUNTINFO_MAX);
        if (n2 < 0)
                return vs_error(err, (int)n2, "read /proc/self/mountinfo");

        /* the cgroup mounts, parsed once (a host has twenty other mounts or more) */
        enum { MAX_MOUNTS = 64 };
        struct {
                char root[512], mnt[256], superopts[512];
                bool v2;
        } *cm = malloc(MAX_MOUNTS * sizeof *cm);
        if (!cm)
                return vs_error(err, ENOMEM, "read /proc/self/mountinfo");
        int ncm = 0;
        for (const char *m = mibuf; *m && ncm < MAX_MOUNTS;) {
                const char *eol = strchr(m, '\n');
                size_t len = eol ? (size_t)(eol - m) : strlen(m);
                char mline[2048];
                snprintf(mline, sizeof mline, "%.*s", (int)len, m);
                m += len + (eol ? 1 : 0);

                /* id parent maj:min root mountpoint opts... - fstype source superopts */
                char fstype[32];
                char *dash = strstr(mline, " - ");
                if (!dash || strncmp(dash + 3, "cgroup", 6) != 0 ||
                    sscanf(mline, "%*s %*s %*s %511s %255s", cm[ncm].root, cm[ncm].mnt) != 2 ||
                    sscanf(dash + 3, "%31s %*s %511s", fstype, cm[ncm].superopts) != 2)
                        continue;
                cm[ncm].v2 = streq(fstype, "cgroup2");
                if (cm[ncm].v2 || streq(fstype, "cgroup"))
                        ncm++;
        }

        int n = 0;
        for (char *save = NULL, *line = strtok_r(cgbuf, "\n", &save); line && n < max;
             line = strtok_r(NULL, "\n", &save)) {
                char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c1 = *c2 = '\0';
                const char *ctrls = c1 + 1, *own = c2 + 1;
                bool v2 = ctrls[0] == '\0' && streq(line, "0");

                for (int k = 0; k < ncm; k++) {
                        if (cm[k].v2 != v2 || (!v2 && !vs_cg_has_all(cm[k].superopts, ctrls)))
                                continue;
                        const char *root = cm[k].root;
                        /* our path is relative to the hierarchy root; the mount may show a subtree
                         */
                        const char *rel = own;
                        size_t rl = strlen(root);
                        if (!streq(root, "/") && strncmp(own, root, rl) == 0)
                                rel = own + rl;
                        snprintf(h[n].mnt, sizeof h[n].mnt, "%s", cm[k].mnt);
                        snprintf(h[n].root, sizeof h[n].root, "%s", streq(root, "/") ? "" : root);
                        snprintf(h[n].prefix, sizeof h[n].prefix, "%s:%s:", line, ctrls);
                        snprintf(h[n].ctrls, sizeof h[n].ctrls, "%s", ctrls);
                        snprintf(h[n].own, sizeof h[n].own, "%s", streq(rel, "/") ? "" : rel);
                        h[n].v2 = v2;
                        h[n].favordynmods = vs_cg_has_all(cm[k].superopts, "favordynmods");
                        n++;
                        break;
                }
        }
        free(cm);
        return n;
}

/*
 * vserver list looks up some twenty cgroup directories a guest by their
 * whole path (/sys/fs/cgroup/memory/.../PARENT/NAME): the kernel walks
 * every component each time, and that was a fifth of its time.
 * vs_cgroup_lookups_below opens PARENT in every hierarchy once; a lookup
 * below one of them then names only what follows (NAME/...).  A guest's
 * cgroup is then looked for in one hierarchy (vs_cgroup_open), not ten.
 */
typedef struct Below {
        char *path;
        size_t len;
        int fd;
} Below;
static Below below[VS_CGROUP_MAX_DIRS];
static int n_below;

/* PARENT in hierarchy @h (malloc'd; NULL if out of memory): where build_paths puts NAME. */
static char *parent_path(const Hierarchy *h, const char *parent)
{
        char *p = NULL;
        bool bare = streq(parent, "/") || streq(parent, ".");
        const char *sep = parent[0] == '/' || bare ? "" : "/";
        if (asprintf(&p, "%s%s%s%s", h->mnt, parent[0] == '/' ? "" : h->own, sep,
                     bare ? "" : parent) < 0)
                return NULL;
        return p;
}

int vs_cgroup_lookups_below(const char *parent)
{
        Hierarchy h[VS_CGROUP_MAX_DIRS];
        if (n_below > 0)
                return -EBUSY;
        if (!streq(parent, "/") && !streq(parent, ".") && !vs_cgroup_path_valid(parent))
                return -EINVAL;
        int n = discover(h, VS_CGROUP_MAX_DIRS, NULL);
        for (int i = 0; i < n; i++) {
                char *p = parent_path(&h[i], parent);
                int fd = p ? open(p, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
                if (fd < 0) {
                        free(p);
                        continue;
                }
                below[n_below++] = (Below){p, strlen(p), fd};
        }
        return n_below;
}

/* The directory to look @path up from, and what is left of it: PARENT's fd, or AT_FDCWD. */
static int at_below(const char *path, const char **ret_rest)
{
        for (int k = 0; k < n_below; k++)
                if (strncmp(path, below[k].path, below[k].len) == 0 && path[below[k].len] == '/' &&
                    path[below[k].len + 1]) {
                        *ret_rest = path + below[k].len + 1;
                        return below[k].fd;
                }
        *ret_rest = path;
        return AT_FDCWD;
}

VsCgDir vs_cg_dir(const char *path)
{
        VsCgDir d;
        d.at = at_below(path, &d.rel);
        return d;
}

const char *vs_cg_file(VsCgDir d, const char *file, char *buf)
{
        /* a cgroup path is short (vs_cgroup_path_valid): PATH_MAX holds it and a file name */
        snprintf(buf, PATH_MAX, "%s/%s", d.rel, file);
        return buf;
}

int vs_cg_open(const char *path, int flags)
{
        const char *rest;
        int at = at_below(path, &rest);
        return openat(at, rest, flags);
}

static bool cg_exists(const char *path)
{
        const char *rest;
        int at = at_below(path, &rest);
        return faccessat(at, rest, F_OK, 0) == 0;
}

static int build_paths(VsCgroup *cg, const char *parent, const char *name, VsError *err)
{
        Hierarchy h[VS_CGROUP_MAX_DIRS];

        /* "/": right below each hierarchy's root; ".": right below our own cgroup */
        if (!streq(parent, "/") && !streq(parent, ".") && !vs_cgroup_path_valid(parent))
                return vs_error_input(err,
                                      "cgroup parent \"%s\" is not a valid path (letters, "
                                      "digits, . _ - and /)",
                                      parent);
        if (!vs_cgroup_path_valid(name) || strchr(name, '/'))
                return vs_error_input(err, "cgroup name \"%s\" is not valid", name);
        int n = discover(h, VS_CGROUP_MAX_DIRS, err);
        if (n < 0)
                return n;
        if (n == 0)
                return vs_error(err, ENOENT, "no cgroup hierarchy is mounted");
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *dir = parent_path(&h[i], parent);
                char *p = NULL;
                if (!dir || asprintf(&p, "%s/%s", dir, name) < 0)
                        return vs_error(err, ENOMEM, "cgroup path");
                cg->dirs[cg->n].path = p;
                cg->dirs[cg->n].v2 = h[i].v2;
                cg->dirs[cg->n].created = false;
                snprintf(cg->dirs[cg->n].ctrls, sizeof cg->dirs[cg->n].ctrls, "%s", h[i].ctrls);
                /* where we may start enabling v2 controllers: our own cgroup, or the root */
                cg->dirs[cg->n].base =
                    (int)(strlen(h[i].mnt) + (parent[0] == '/' ? 0 : strlen(h[i].own)));
                cg->n++;
        }
        return 0;
}

static int mkdir_parents(char *path, const VsCgBackend *b, const char *ctrls)
{
        for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                int r = mkdir(path, 0755);
                if (r == 0)
                        b->made_below(path, ctrls);
                *s = '/';
                if (r < 0 && errno != EEXIST)
                        return -errno;
        }
        return 0;
}

bool vs_cg_has_word(const char *list, const char *word)
{
        size_t n = strlen(word);
        for (const char *p = list; *p;) {
                p += strspn(p, " \n");
                size_t m = strcspn(p, " \n");
                if (m == n && strncmp(p, word, n) == 0)
                        return true;
                p += m;
        }
        return false;
}

VsCgroupMode vs_cgroup_mode(void)
{
        Hierarchy h[VS_CGROUP_MAX_DIRS];
        int n = discover(h, VS_CGROUP_MAX_DIRS, NULL);
        bool v1 = false, v2 = false;
        for (int i = 0; i < n; i++) {
                v2 |= h[i].v2;
                v1 |= !h[i].v2;
        }
        return v1 && v2 ? VS_CGROUP_HYBRID : v2 ? VS_CGROUP_V2 : v1 ? VS_CGROUP_V1 : VS_CGROUP_NONE;
}

bool vs_cgroup_moves_wait(char *ret_mnt, size_t size)
{
        Hierarchy h[VS_CGROUP_MAX_DIRS];
        int n = discover(h, VS_CGROUP_MAX_DIRS, NULL), v1 = -1;
        for (int i = 0; i < n; i++) {
                if (h[i].favordynmods)
                        return false; /* one root so mounted puts the lock in that mode for all */
                if (!h[i].v2 && v1 < 0)
                        v1 = i;
        }
        if (v1 >= 0)
                snprintf(ret_mnt, size, "%s", h[v1].mnt);
        return v1 >= 0;
}

const char *vs_cgroup_mode_name(VsCgroupMode m)
{
        switch (m) {
        case VS_CGROUP_V1:
                return "v1";
        case VS_CGROUP_HYBRID:
                return "hybrid";
        case VS_CGROUP_V2:
                return "v2";
        default:
                return "none";
        }
}

static int controller_index(const VsCgroup *cg, const char *ctrl, bool *ret_v2)
{
        /* a v1 hierarchy that holds it first (on a hybrid host its files are there) */
        for (int rank = 0; rank <= 1; rank++)
                for (int i = 0; i < cg->n; i++)
                        if (be(cg, i)->rank == rank && cg->dirs[i].created &&
                            be(cg, i)->has_controller(cg->dirs[i].path, cg->dirs[i].ctrls, ctrl)) {
                                *ret_v2 = cg->dirs[i].v2;
                                return i;
                        }
        return -ENOENT;
}

const char *vs_cgroup_controller(const VsCgroup *cg, const char *ctrl, bool *ret_v2)
{
        int i = controller_index(cg, ctrl, ret_v2);
        return i < 0 ? NULL : cg->dirs[i].path;
}

int vs_cgroup_controller_open(const VsCgroup *cg, const char *ctrl, bool *ret_v2)
{
        const char *dir = vs_cgroup_controller(cg, ctrl, ret_v2);
        if (!dir)
                return -ENOENT;
        int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

const char *vs_cgroup_v2_path(const VsCgroup *cg)
{
        for (int i = 0; i < cg->n; i++)
                if (cg->dirs[i].v2)
                        return cg->dirs[i].path;
        return NULL;
}

int vs_cgroup_clone_fd(const VsCgroup *cg)
{
        return cg->v2fd;
}

int vs_cgroup_create(VsCgroup *cg, const char *parent, const char *name, bool delegate,
                     VsError *err)
{
        int r = build_paths(cg, parent, name, err);
        if (r < 0)
                goto fail;
        for (int i = 0; i < cg->n; i++) {
                char *p = cg->dirs[i].path;
                const VsCgBackend *b = be(cg, i);
                /* the parent usually exists: only walk up when it does not */
                r = mkdir(p, 0755) < 0 ? -errno : 0;
                if (r == -ENOENT) {
                        r = mkdir_parents(p, b, cg->dirs[i].ctrls);
                        if (r < 0) {
                                vs_error(err, r, "create cgroup parents of %s", p);
                                goto fail;
                        }
                        r = mkdir(p, 0755) < 0 ? -errno : 0;
                }
                if (r < 0) {
                        errno = -r;
                        r = errno == EEXIST ? vs_error(err, EEXIST,
                                                       "cgroup %s already exists (is the "
                                                       "context running?)",
                                                       p)
                                            : vs_error(err, errno, "create cgroup %s", p);
                        goto fail;
                }
                cg->dirs[i].created = true;
                b->made(p, cg->dirs[i].base, cg->dirs[i].ctrls, delegate);
                /* a leaf where the guest may write (delegable): elsewhere it only reads */
                if (!delegate || !b->delegable(cg->dirs[i].ctrls)) {
                        if (cg->dirs[i].v2 &&
                            (cg->v2fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
                                r = vs_error(err, errno, "open cgroup %s", p);
                                goto fail;
                        }
                        continue;
                }
                char leaf[1100];
                snprintf(leaf, sizeof leaf, "%s/" VS_CGROUP_LEAF, p);
                if (mkdir(leaf, 0755) < 0) {
                        r = vs_error(err, errno, "create cgroup %s", leaf);
                        goto fail;
                }
                b->made_below(leaf, cg->dirs[i].ctrls);
                if (cg->dirs[i].v2) {
                        cg->v2fd = open(leaf, O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (cg->v2fd < 0) {
                                r = vs_error(err, errno, "open cgroup %s", leaf);
                                goto fail;
                        }
                }
        }
        return 0;
fail:
        vs_cgroup_destroy(cg, NULL);
        return r;
}

int vs_cgroup_delegate(const VsCgroup *cg, uid_t uid, gid_t gid, VsError *err)
{
        for (int i = 0; i < cg->n; i++) {
                const char *const *files = be(cg, i)->delegate_files;
                if (!be(cg, i)->delegable(cg->dirs[i].ctrls))
                        continue;
                char leaf[1100];
                snprintf(leaf, sizeof leaf, "%s/" VS_CGROUP_LEAF, cg->dirs[i].path);
                _cleanup_close_ int dfd = open(leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0 || fchown(dfd, uid, gid) < 0)
                        return vs_error(err, errno, "delegate cgroup %s", leaf);
                for (size_t f = 0; files[f]; f++)
                        if (fchownat(dfd, files[f], uid, gid, AT_SYMLINK_NOFOLLOW) < 0 &&
                            errno != ENOENT)
                                return vs_error(err, errno, "delegate cgroup %s/%s", leaf,
                                                files[f]);
        }
        return 0;
}

static int primary(const VsCgroup *cg);

int vs_cgroup_open(VsCgroup *cg, const char *parent, const char *name, VsError *err)
{
        int r = build_paths(cg, parent, name, err);
        if (r < 0) {
                vs_cgroup_release(cg);
                return r;
        }
        int found = 0;
        if (n_below > 0 && cg->n > 0) {
                /* list's lookups: one look, where its processes are listed from (kept open
                 * for that); a file of a hierarchy without it then reads as absent (and list
                 * clones nothing) */
                for (int i = 0; i < cg->n; i++)
                        cg->dirs[i].created = true;
                int p = primary(cg);
                cg->walkfd = vs_cg_open(cg->dirs[p].path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (cg->walkfd >= 0)
                        return 0;
                for (int i = 0; i < cg->n; i++)
                        cg->dirs[i].created = false;
        }
        for (int i = 0; i < cg->n; i++) {
                if (cg_exists(cg->dirs[i].path)) {
                        cg->dirs[i].created = true;
                        found++;
                        if (cg->dirs[i].v2) {
                                /* the leaf, or NAME itself for a guest not delegated */
                                char leaf[1100];
                                snprintf(leaf, sizeof leaf, "%s/" VS_CGROUP_LEAF, cg->dirs[i].path);
                                cg->v2fd = vs_cg_open(leaf, O_PATH | O_DIRECTORY | O_CLOEXEC);
                                if (cg->v2fd < 0 && errno == ENOENT)
                                        cg->v2fd = vs_cg_open(cg->dirs[i].path,
                                                              O_PATH | O_DIRECTORY | O_CLOEXEC);
                        }
                }
        }
        if (!found) {
                vs_cgroup_release(cg);
                return vs_error(err, ENOENT, "cgroup %s/%s", parent, name);
        }
        return 0;
}

int vs_cgroup_open_if(VsCgroup *cg, const char *parent, const char *name, VsError *err)
{
        VsError e = {0};
        int r = vs_cgroup_open(cg, parent, name, &e);
        if (r == -ENOENT)
                return 0;
        if (r < 0 && err)
                *err = e;
        return r;
}

int vs_cgroup_base(const char *parent, char *ret_abs, size_t abs_size, char *ret_rel,
                   size_t rel_size, char *ret_prefix, size_t prefix_size, VsError *err)
{
        Hierarchy h[VS_CGROUP_MAX_DIRS];
        if (!vs_cgroup_path_valid(parent))
                return vs_error_input(err, "cgroup parent \"%s\" is not a valid path", parent);
        int n = discover(h, VS_CGROUP_MAX_DIRS, err);
        if (n < 0)
                return n;
        if (n == 0)
                return vs_error(err, ENOENT, "no cgroup hierarchy is mounted");
        int k = 0;
        for (int i = 0; i < n; i++)
                if (h[i].v2) {
                        k = i;
                        break;
                }
        const char *own = parent[0] == '/' ? "" : h[k].own;
        const char *sep = parent[0] == '/' ? "" : "/";
        snprintf(ret_abs, abs_size, "%s%s%s%s", h[k].mnt, own, sep, parent);
        snprintf(ret_rel, rel_size, "%s%s%s%s", h[k].root, own, sep, parent);
        snprintf(ret_prefix, prefix_size, "%s", h[k].prefix);
        return 0;
}

int vs_cgroup_v2_dir(const char *path, char *ret, size_t size, VsError *err)
{
        Hierarchy h[VS_CGROUP_MAX_DIRS];
        if (path[0] != '/' || (path[1] && !vs_cgroup_path_valid(path)))
                return vs_error_input(err, "\"%s\" is not an absolute cgroup path", path);
        int n = discover(h, VS_CGROUP_MAX_DIRS, err);
        if (n < 0)
                return n;
        for (int i = 0; i < n; i++)
                if (h[i].v2) {
                        snprintf(ret, size, "%s%s", h[i].mnt, path[1] ? path : "");
                        return 0;
                }
        return vs_error(err, ENOENT, "no cgroup2 tree is mounted");
}

/*
 * One directory of a walk, read with getdents64 itself: fdopendir costs an
 * fstat and two fcntl a directory, and vserver list walks five a guest.
 * Its link count tells how many sub-cgroups to look for (kernfs counts
 * them: two and one a subdirectory): none, and it is not read at all; once
 * all are found, it is not read to its end.  One, and it is first looked
 * for by the name a guest's leaf has: a guest's cgroup is not read either
 * (a read lists all twenty of its files).
 */
typedef struct WalkDir {
        _Alignas(8) char buf[2048]; /* Dirent64 records */
        int fd;
        bool borrowed; /* @fd is the caller's: not read (its offset stays), not closed */
        bool guessed;  /* VS_CGROUP_LEAF was tried */
        int pos, len;
        long left; /* sub-cgroups not yet found; -1: unknown (read to the end) */
} WalkDir;

/* The sub-cgroups the link count of @rel in @at says it has: -1 where it does not say. */
static long subdirs(int at, const char *rel)
{
        struct stat st;
        if (fstatat(at, rel, &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISDIR(st.st_mode) || st.st_nlink < 2)
                return -1;
        return (long)st.st_nlink - 2;
}

bool vs_cg_childless(int at, const char *rel)
{
        return subdirs(at, rel) == 0;
}

static WalkDir *walk_dir(int fd, bool borrowed)
{
        WalkDir *d = malloc(sizeof *d);
        if (d)
                *d = (WalkDir){.fd = fd, .borrowed = borrowed, .left = subdirs(fd, "")};
        return d;
}

static void walk_dir_free(WalkDir *d)
{
        if (!d->borrowed)
                close(d->fd);
        free(d);
}

typedef struct Dirent64 {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[];
} Dirent64;

/*
 * The next sub-cgroup's name in @d; NULL at the end or on an error.
 * @ret_guess: the name is only what the one sub-cgroup is likely called.
 */
static const char *next_subdir(WalkDir *d, bool *ret_guess)
{
        *ret_guess = d->left == 1 && !d->guessed && d->len == 0; /* before any read */
        if (*ret_guess) {
                d->guessed = true;
                return VS_CGROUP_LEAF;
        }
        while (d->left != 0) {
                if (d->pos >= d->len) {
                        if (d->borrowed) { /* read a copy of our own */
                                int fd = openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                                if (fd < 0)
                                        return NULL;
                                d->fd = fd;
                                d->borrowed = false;
                        }
                        long n = syscall(SYS_getdents64, d->fd, d->buf, sizeof d->buf);
                        if (n <= 0)
                                return NULL;
                        d->len = (int)n;
                        d->pos = 0;
                }
                const Dirent64 *de = (const Dirent64 *)(d->buf + d->pos);
                d->pos += de->reclen;
                if (de->type == DT_DIR && de->name[0] != '.') {
                        if (d->left > 0)
                                d->left--;
                        return de->name;
                }
        }
        return NULL;
}

/* Depth first over the cgroup @fd (closed unless @borrowed) and its sub-cgroups. */
static int walk_from(int fd, bool borrowed, int (*fn)(int dfd, int depth, void *data), void *data)
{
        WalkDir *stack[VS_CGROUP_WALK_DEPTH + 1];
        int depth = 0, r;
        bool cut = false;

        r = fn(fd, 0, data);
        if (r != 0 || !(stack[0] = walk_dir(fd, borrowed))) {
                if (!borrowed)
                        close(fd);
                return r;
        }
        /* iterative, and bounded: a guest may nest its cgroups thousands deep */
        while (depth >= 0) {
                WalkDir *top = stack[depth];
                bool guess;
                const char *name = next_subdir(top, &guess);
                if (!name) {
                        walk_dir_free(top);
                        depth--;
                        continue;
                }
                int sub = openat(top->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        continue; /* gone meanwhile, or not the guess: read the directory */
                if (guess)
                        top->left = 0; /* the one sub-cgroup there is */
                r = fn(sub, depth + 1, data);
                WalkDir *d = r == 0 && depth < VS_CGROUP_WALK_DEPTH ? walk_dir(sub, false) : NULL;
                if (!d) {
                        close(sub);
                        if (r != 0)
                                break;
                        cut = true;
                        continue;
                }
                stack[++depth] = d;
        }
        for (; depth >= 0; depth--)
                walk_dir_free(stack[depth]);
        return r != 0 ? r : cut ? -ELOOP : 0;
}

int vs_cgroup_walk(const char *dir, int (*fn)(int dfd, int depth, void *data), void *data)
{
        int fd = vs_cg_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? 0 : walk_from(fd, false, fn, data);
}

typedef struct PidWalk {
        int (*fn)(pid_t pid, void *data);
        void *data;
} PidWalk;

/*
 * @fn for each pid in cgroup.procs of the cgroup @dfd, until it returns
 * non-zero (that is returned); a list that cannot be opened is empty.
 * Plain reads: vserver list reads this file twice for each guest.
 */
static int each_pid_in(int dfd, int (*fn)(pid_t pid, void *data), void *data)
{
        _cleanup_close_ int fd = openat(dfd, "cgroup.procs", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return 0;
        char buf[4096];
        long long pid = -1;
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
                for (ssize_t i = 0; i < n; i++) {
                        if (buf[i] >= '0' && buf[i] <= '9') {
                                pid = (pid < 0 ? 0 : pid) * 10 + (buf[i] - '0');
                                if (pid > INT_MAX)
                                        return 0; /* not a pid: the kernel wrote no such list */
                                continue;
                        }
                        int r = pid > 0 ? fn((pid_t)pid, data) : 0;
                        pid = -1;
                        if (r != 0)
                                return r;
                }
        return pid > 0 ? fn((pid_t)pid, data) : 0;
}

static int each_listed(int dfd, int depth, void *data)
{
        PidWalk *w = data;
        (void)depth;
        return each_pid_in(dfd, w->fn, w->data);
}

/*
 * The hierarchy to list processes from: the cgroup2 tree, else the first
 * v1 one; one this process cannot see (a mount namespace without it, as
 * the view server may run in) is passed over.
 */
static int primary(const VsCgroup *cg)
{
        for (int pass = 0; pass < 2; pass++)
                for (int i = 0; i < cg->n; i++)
                        if ((pass || cg->dirs[i].v2) && cg->dirs[i].created &&
                            (n_below > 0 || cg_exists(cg->dirs[i].path)))
                                return i;
        return -1;
}

int vs_cgroup_own_trees(VsCgroupTree *ret, int max, VsError *err)
{
        Hierarchy h[VS_CGROUP_MAX_DIRS];
        int n = discover(h, VS_CGROUP_MAX_DIRS, err), k = 0;
        for (int i = 0; i < n && k < max; i++) {
                char path[PATH_MAX];
                const char *dir = h[i].v2                                ? "unified"
                                  : strncmp(h[i].ctrls, "name=", 5) == 0 ? h[i].ctrls + 5
                                                                         : h[i].ctrls;
                if (!*dir || strchr(dir, '/') || dir[0] == '.' ||
                    snprintf(path, sizeof path, "%s/%s", h[i].mnt, h[i].own) >= (int)sizeof path)
                        continue;
                int fd = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
                if (fd < 0) {
                        int e = errno;
                        for (int j = 0; j < k; j++)
                                close(ret[j].fd);
                        return vs_error(err, e, "bind cgroup %s", path);
                }
                ret[k].fd = fd;
                snprintf(ret[k].dir, sizeof ret[k].dir, "%s", dir);
                ret[k].readonly = !h[i].v2 && strncmp(h[i].ctrls, "name=", 5) != 0;
                k++;
        }
        return n < 0 ? n : k;
}

pid_t vs_cgroup_prime_migration(void)
{
        Hierarchy h[VS_CGROUP_MAX_DIRS];
        int n = discover(h, VS_CGROUP_MAX_DIRS, NULL), v1 = -1;
        for (int i = 0; i < n && v1 < 0; i++)
                if (!h[i].v2)
                        v1 = i;
        if (v1 < 0)
                return 0; /* cgroup2 alone: CLONE_INTO_CGROUP, no migration to wait for */
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s/cgroup.procs", h[v1].mnt, h[v1].own) >=
            (int)sizeof path)
                return 0;
        pid_t pid = fork();
        if (pid != 0)
                return pid > 0 ? pid : 0;
        /* the child goes at once; its child takes the wait, reaped by whoever inherits it */
        if (fork() == 0) {
                int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd >= 0) {
                        (void)!write(fd, "0", 1); /* ourselves, into the cgroup we are in */
                        close(fd);
                }
        }
        _exit(0);
}

int vs_cgroup_foreach_pid(const VsCgroup *cg, int (*fn)(pid_t pid, void *data), void *data)
{
        int i = primary(cg);
        if (i < 0)
                return 0;
        PidWalk w = {fn, data};
        int r = cg->walkfd >= 0 ? walk_from(cg->walkfd, true, each_listed, &w)
                                : vs_cgroup_walk(cg->dirs[i].path, each_listed, &w);
        return r == -ELOOP ? 0 : r;
}

/*
 * Into the leaf where there is one (a hierarchy the guest may write), else
 * PARENT/NAME.  Where the link count says PARENT/NAME has no sub-cgroup,
 * the leaf is not looked for: a lookup that fails costs kernfs more than a
 * stat, and eight of a hybrid host's ten hierarchies have no leaf.
 */
static int attach_one(const char *outer, bool exact, pid_t pid, VsError *err)
{
        char buf[32], dir[1100];
        snprintf(dir, sizeof dir, "%s", outer);
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return vs_error(err, errno, "open cgroup %s", dir);
        if (!exact && !vs_cg_childless(dfd, "")) {
                int leaf =
                    openat(dfd, VS_CGROUP_LEAF, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                snprintf(dir, sizeof dir, "%s/" VS_CGROUP_LEAF, outer);
                if (leaf < 0 && errno != ENOENT)
                        return vs_error(err, errno, "open cgroup %s", dir);
                if (leaf >= 0) {
                        close(dfd);
                        dfd = leaf;
                } else {
                        snprintf(dir, sizeof dir, "%s", outer);
                }
        }
        snprintf(buf, sizeof buf, "%d", (int)pid);
        int r = vs_write_file_at(dfd, "cgroup.procs", buf);
        if (r < 0)
                return vs_error(err, r, "move process into cgroup %s", dir);
        return 0;
}

int vs_cgroup_of_pid(VsCgroup *cg, pid_t pid, VsError *err)
{
        Hierarchy h[VS_CGROUP_MAX_DIRS];
        char path[64], buf[4096];
        *cg = (VsCgroup)VS_CGROUP_INIT;
        cg->exact = true;
        int n = discover(h, VS_CGROUP_MAX_DIRS, err);
        if (n < 0)
                return n;
        snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
        ssize_t len = vs_read_file_at(AT_FDCWD, path, buf, sizeof buf);
        if (len < 0)
                return vs_error(err, (int)len, "read %s", path);
        for (int i = 0; i < n; i++) {
                size_t pl = strlen(h[i].prefix);
                for (char *l = buf; *l;) {
                        char *eol = strchr(l, '\n');
                        if (eol)
                                *eol = '\0';
                        if (strncmp(l, h[i].prefix, pl) == 0) {
                                const char *rel = l + pl;
                                size_t rl = strlen(h[i].root);
                                if (rl && strncmp(rel, h[i].root, rl) == 0)
                                        rel += rl;
                                if (strstr(rel, "/..") || strstr(rel, "(deleted)"))
                                        break;
                                char *p = NULL;
                                if (asprintf(&p, "%s%s", h[i].mnt, rel) < 0) {
                                        vs_cgroup_release(cg);
                                        return vs_error(err, ENOMEM, "cgroup path");
                                }
                                cg->dirs[cg->n].path = p;
                                cg->dirs[cg->n].v2 = h[i].v2;
                                cg->dirs[cg->n].created = true;
                                cg->dirs[cg->n].base = (int)strlen(p);
                                snprintf(cg->dirs[cg->n].ctrls, sizeof cg->dirs[cg->n].ctrls, "%s",
                                         h[i].ctrls);
                                if (h[i].v2)
                                        cg->v2fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
                                cg->n++;
                        }
                        if (eol)
                                *eol = '\n';
                        l = eol ? eol + 1 : l + strlen(l);
                }
        }
        return 0;
}

int vs_cgroup_attach_v1(const VsCgroup *cg, pid_t pid, VsError *err)
{
        for (int i = 0; i < cg->n; i++) {
                if (cg->dirs[i].v2 || !cg->dirs[i].created)
                        continue;
                int r = attach_one(cg->dirs[i].path, cg->exact, pid, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

int vs_cgroup_attach(const VsCgroup *cg, pid_t pid, VsError *err)
{
        for (int i = 0; i < cg->n; i++) {
                if (!cg->dirs[i].created)
                        continue;
                int r = attach_one(cg->dirs[i].path, cg->exact, pid, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int any_listed(int dfd, int depth, void *data)
{
        (void)data, (void)depth;
        char buf[64];
        /* any pid listed (threads of a dying process included) */
        return vs_read_file_at(dfd, "cgroup.procs", buf, sizeof buf) > 0;
}

bool vs_cg_any_listed(const char *dir)
{
        return vs_cgroup_walk(dir, any_listed, NULL) > 0;
}

int vs_cgroup_set(const VsCgroup *cg, const char *v1_file, const char *v2_file, const char *value,
                  VsError *err)
{
        bool done = false;
        for (int i = 0; i < cg->n; i++) {
                if (!cg->dirs[i].created)
                        continue;
                const char *file = cg->dirs[i].v2 ? v2_file : v1_file;
                _cleanup_close_ int dfd =
                    vs_cg_open(cg->dirs[i].path, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (!file || dfd < 0 || faccessat(dfd, file, F_OK, 0) < 0)
                        continue;
                int r = vs_write_file_at(dfd, file, value);
                if (r < 0)
                        return vs_error(err, r, "write %s to %s/%s", value, cg->dirs[i].path, file);
                done = true;
        }
        if (!done)
                return vs_error(err, ENOENT, "no cgroup controller has %s", v2_file);
        return 0;
}

bool vs_cgroup_populated(const VsCgroup *cg)
{
        for (int i = 0; i < cg->n; i++)
                if (cg->dirs[i].created && be(cg, i)->populated(cg->dirs[i].path))
                        return true;
        return false;
}

bool vs_cgroup_delegated(const VsCgroup *cg)
{
        for (int i = 0; i < cg->n; i++) {
                char leaf[1100];
                snprintf(leaf, sizeof leaf, "%s/" VS_CGROUP_LEAF, cg->dirs[i].path);
                if (cg->dirs[i].created && be(cg, i)->delegable(cg->dirs[i].ctrls) &&
                    cg_exists(leaf))
                        return true;
        }
        return false;
}

/* v1 has no cgroup.kill: signal each listed pid until the list stays empty. */
static int kill_one(pid_t pid, void *data)
{
        (void)data;
        if (pid > 1)
                kill(pid, SIGKILL);
        return 0;
}

static int kill_listed(int dfd, int depth, void *data)
{
        (void)data, (void)depth;
        return each_pid_in(dfd, kill_one, NULL);
}

static void pause_ms(long ms)
{
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
}

/* The directory whose freezer counts: the cgroup2 tree's where it has one (rank), else v1's. */
static int freezer(const VsCgroup *cg, int rank)
{
        for (int i = 0; i < cg->n; i++)
                if (cg->dirs[i].created && be(cg, i)->rank == rank &&
                    be(cg, i)->has_controller(cg->dirs[i].path, cg->dirs[i].ctrls, "freezer"))
                        return i;
        return -1;
}

static int the_freezer(const VsCgroup *cg)
{
        int i = freezer(cg, 1);
        return i >= 0 ? i : freezer(cg, 0);
}

/* Freeze or thaw; a freeze waits up to @wait_ms for every task to stop
 * (-ETIMEDOUT: asked for, not yet complete). */
static int freeze_within(const VsCgroup *cg, bool freeze, int wait_ms, VsError *err)
{
        int i = the_freezer(cg);
        if (i < 0)
                return vs_error(err, ENOTSUP, "no cgroup freezer on this host");
        const VsCgBackend *b = be(cg, i);
        _cleanup_close_ int dfd = vs_cg_open(cg->dirs[i].path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return vs_error(err, errno, "open cgroup %s", cg->dirs[i].path);
        int r = b->freeze(dfd, freeze);
        if (r < 0)
                return vs_error(err, r, "%s %s (cgroup %s)", freeze ? "freeze" : "thaw",
                                cg->dirs[i].path, b->name);
        /* thawing: also what the guest froze itself at its own root */
        if (!freeze && b->guest_freezes && !cg->exact) {
                _cleanup_close_ int lfd =
                    openat(dfd, VS_CGROUP_LEAF, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (lfd >= 0)
                        (void)b->freeze(lfd, false);
        }
        /* a hybrid host may have frozen it through the other interface too */
        for (int j = 0; !freeze && j < cg->n; j++) {
                if (j == i || be(cg, j) == b || !cg->dirs[j].created ||
                    !be(cg, j)->has_controller(cg->dirs[j].path, cg->dirs[j].ctrls, "freezer"))
                        continue;
                _cleanup_close_ int jfd = open(cg->dirs[j].path, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (jfd >= 0)
                        (void)be(cg, j)->freeze(jfd, false);
        }
        if (!freeze)
                return 0;
        for (int tries = 0; tries < wait_ms; tries++) {
                if (b->stopped(dfd))
                        return 0;
                pause_ms(1);
        }
        return vs_error(err, ETIMEDOUT, "freeze %s", cg->dirs[i].path);
}

int vs_cgroup_freeze(const VsCgroup *cg, bool freeze, VsError *err)
{
        return freeze_within(cg, freeze, 10000, err); /* every task stopped: 10 s at most */
}

int vs_cgroup_frozen(const VsCgroup *cg)
{
        for (int rank = 1; rank >= 0; rank--) {
                int i = freezer(cg, rank);
                if (i >= 0 && be(cg, i)->frozen(vs_cg_dir(cg->dirs[i].path), cg->exact))
                        return 1;
        }
        return 0;
}

int vs_cgroup_kill(const VsCgroup *cg, VsError *err)
{
        bool done = false;
        for (int i = 0; i < cg->n && !done; i++) {
                if (!cg->dirs[i].created)
                        continue;
                _cleanup_close_ int dfd =
                    vs_cg_open(cg->dirs[i].path, O_PATH | O_DIRECTORY | O_CLOEXEC);
                int r = dfd < 0 ? -errno : be(cg, i)->kill(dfd);
                if (r == 0)
                        done = true; /* the whole subtree in one write */
                else if (r != -ENOENT)
                        return vs_error(err, r, "kill cgroup %s", cg->dirs[i].path);
        }
        if (done)
                return 0;
        /*
         * No hierarchy kills in one write: freeze first, so nothing forks while we read the
         * lists; the SIGKILLs land on thaw.  A freeze can hang (a vfork parent
         * waiting for its frozen child never counts as frozen): after 100 ms,
         * signal what is listed anyway; the caller signals until it is empty.
         */
        int r = freeze_within(cg, true, 100, NULL);
        bool frozen = r == 0 || r == -ETIMEDOUT;
        for (int i = 0; i < cg->n; i++)
                if (cg->dirs[i].created)
                        vs_cgroup_walk(cg->dirs[i].path, kill_listed, NULL);
        if (frozen)
                (void)vs_cgroup_freeze(cg, false, NULL);
        return 0;
}

/* A directory stream of its own on @dfd (a dup would share, and move, @dfd's offset). */
static DIR *reopen_dir(int dfd)
{
        int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d && fd >= 0)
                close(fd);
        return d;
}

static bool has_subdir(int dfd)
{
        DIR *d = reopen_dir(dfd);
        bool found = false;
        struct dirent *de;
        while (d && !found && (de = readdir(d)))
                found = de->d_type == DT_DIR && de->d_name[0] != '.';
        if (d)
                closedir(d);
        return found;
}

/*
 * Remove @dir's sub-cgroups bottom up, then @dir; -errno of the first
 * failure.  Without recursion or a stack (a guest may nest its cgroups
 * thousands deep): go down into any sub-cgroup that will not go yet, come
 * back up through "..", and stop after a bounded number of steps.
 */
static int rmdir_tree(const char *dir)
{
        /* most have no sub-cgroup: one rmdir, no read of a directory of thirty files */
        if (rmdir(dir) == 0)
                return 0;
        if (errno != EBUSY && errno != ENOTEMPTY)
                return -errno;
        int cur = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cur < 0)
                return -errno;
        long depth = 0, steps = 0, r = 0;
        while (r == 0) {
                DIR *d = reopen_dir(cur);
                if (!d) {
                        r = -errno;
                        break;
                }
                int down = -1;
                struct dirent *de;
                while ((de = readdir(d)) && down < 0) {
                        if (de->d_type != DT_DIR || de->d_name[0] == '.')
                                continue;
                        if (++steps > 1000000) {
                                r = -ELOOP;
                                break;
                        }
                        if (unlinkat(cur, de->d_name, AT_REMOVEDIR) == 0 || errno == ENOENT)
                                continue;
                        if (errno != ENOTEMPTY && errno != EBUSY) {
                                r = -errno;
                                break;
                        }
                        /* busy: children of its own keep it; populated: go on, fail below */
                        down = openat(cur, de->d_name,
                                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (down >= 0 && !has_subdir(down)) {
                                close(down);
                                down = -1;
                                r = -EBUSY; /* processes still in it */
                        }
                }
                closedir(d);
                if (r != 0)
                        break;
                if (down >= 0) {
                        close(cur);
                        cur = down;
                        depth++;
                        continue;
                }
                if (depth == 0)
                        break;
                int up = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                close(cur);
                if (up < 0)
                        return -errno;
                cur = up;
                depth--;
        }
        close(cur);
        if (r != 0)
                return (int)r;
        return rmdir(dir) < 0 ? -errno : 0;
}

int vs_cgroup_destroy(VsCgroup *cg, VsError *err)
{
        int r = 0;
        bool killed = false;

        for (int i = cg->n - 1; i >= 0; i--) {
                if (!cg->dirs[i].created)
                        continue;
                /* Dying processes hold the cgroup for a moment: retry, then give up. */
                for (int tries = 0;; tries++) {
                        int e = rmdir_tree(cg->dirs[i].path);
                        if (e == 0 || e == -ENOENT) {
                                cg->dirs[i].created = false;
                                break;
                        }
                        if (e != -EBUSY || tries >= 2000) {
                                r = vs_error(err, -e, "remove cgroup %s", cg->dirs[i].path);
                                break;
                        }
                        if (!killed) {
                                vs_cgroup_kill(cg, NULL);
                                killed = true;
                        } else if (tries % 100 == 99) {
                                vs_cgroup_kill(cg, NULL);
                        }
                        struct timespec ts = {0, tries < 20 ? 100000 : 1000000};
                        nanosleep(&ts, NULL);
                }
        }
        vs_cgroup_release(cg);
        return r;
}

void vs_cgroup_release(VsCgroup *cg)
{
        for (int i = 0; i < cg->n; i++)
                free(cg->dirs[i].path);
        cg->n = 0;
        vs_closep(&cg->v2fd);
        vs_closep(&cg->walkfd);
        cg->v2fd = cg->walkfd = -EBADF;
}

int vs_cgroup_kv(const char *text, const char *key, uint64_t *ret)
{
        size_t n = strlen(key);
        for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
                if (strncmp(l, key, n) == 0 && l[n] == ' ') {
                        unsigned long long v;
                        if (sscanf(l + n + 1, "%llu", &v) != 1)
                                return -EINVAL;
                        *ret = v;
                        return 0;
                }
        }
        return -ENOENT;
}

int vs_cgroup_usage(const VsCgroup *cg, bool brief, VsCgUsage *ret, VsError *err)
{
        /* brief: the first four (no throttling) */
        static const char *const ctrls[] = {"cpuacct", "memory", "io", "pids", "cpu"};
        char *buf = malloc(VS_CG_BIGFILE);
        if (!buf)
                return vs_error(err, ENOMEM, "cgroup usage");
        memset(ret, 0xff, sizeof *ret);
        for (size_t c = 0; c < (brief ? 4 : ARRAY_SIZE(ctrls)); c++) {
                bool v2;
                int i = controller_index(cg, ctrls[c], &v2);
                if (i >= 0)
                        be(cg, i)->usage(vs_cg_dir(cg->dirs[i].path), cg->dirs[i].path, ctrls[c],
                                         brief, ret, buf);
        }
        free(buf);
        return 0;
}

bool vs_cg_read_u64(int dfd, const char *file, uint64_t *ret)
{
        char buf[64];
        unsigned long long v;
        if (vs_read_kernel_at(dfd, file, buf, sizeof buf) < 0 || sscanf(buf, "%llu", &v) != 1)
                return false;
        *ret = v;
        return true;
}

void vs_cg_kv_into(const char *text, const char *key, uint64_t *dst, uint64_t div)
{
        uint64_t v;
        if (vs_cgroup_kv(text, key, &v) == 0)
                *dst = v / div;
}
