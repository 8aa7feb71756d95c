/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unification, phase 1: walk the trees into path records. */
#include "unify_int.h"

int unify_push(RecVec *v, const Rec *r)
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

void unify_recvec_free(RecVec *v)
{
        for (size_t i = 0; i < v->n; i++)
                free(v->v[i].rel);
        free(v->v);
        *v = (RecVec){0};
}

void unify_fill_rec(Rec *r, const struct statx *sx)
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
void unify_walk_dir(Walk *w, int dfd, char *rel, size_t len, int state, int depth)
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
                        int c = vs_pattern_classify(abs, w->t->patterns, w->t->n_patterns);
                        if (c)
                                v = c;
                        if (S_ISDIR(sx.stx_mode) && v < 0 &&
                            !vs_pattern_include_below(abs, w->t->patterns, w->t->n_patterns)) {
                                rel[len] = '\0';
                                continue;
                        }
                }
                if (S_ISDIR(sx.stx_mode)) {
                        if (makedev(sx.stx_dev_major, sx.stx_dev_minor) == w->dev) {
                                int sub = openat(dirfd(d), nm,
                                                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                                if (sub >= 0 && depth < WALK_MAX_DEPTH)
                                        unify_walk_dir(w, sub, rel, sublen, v, depth + 1);
                                else if (sub >= 0)
                                        close(sub);
                        }
                } else if (S_ISREG(sx.stx_mode)) {
                        atomic_fetch_add(w->files, 1);
                        if (v < 0) {
                                w->excluded++;
                        } else {
                                Rec r = {.tree = w->tree};
                                unify_fill_rec(&r, &sx);
                                r.rel = strdup(rel);
                                if (!r.rel || unify_push(&w->out, &r) < 0) {
                                        free(r.rel);
                                        w->error = ENOMEM;
                                }
                        }
                }
                rel[len] = '\0';
        }
        closedir(d);
}

int unify_walk_tree(Walk *w, VsError *err)
{
        int fd = unify_root_fd(w->t->root, &w->dev, err);
        if (fd < 0)
                return fd;
        char rel[PATH_MAX] = "";
        unify_walk_dir(w, fd, rel, 0, 0, 0);
        if (w->error)
                return vs_error(err, w->error, "scan %s%s", w->t->name, w->where);
        return 0;
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
                if (unify_walk_tree(w, &e) < 0 && !w->error)
                        w->error = e.code ? e.code : EIO;
        }
        return NULL;
}

int unify_scan(Ctx *c, bool all)
{
        Walk *walks = calloc((size_t)c->ntrees, sizeof *walks);
        atomic_uint_fast64_t files = 0;
        if (!walks)
                return vs_error(&c->err, ENOMEM, "scan");
        for (int i = 0; i < c->ntrees; i++)
                walks[i] =
                    (Walk){.t = &c->trees[i], .tree = (uint32_t)i, .all = all, .files = &files};
        ScanJob job = {walks, c->ntrees, 0};
        unify_run_threads(c, scan_worker, &job, "scan", &files, 0, 2);
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
                        unify_recvec_free(&walks[i].out);
                }
        }
        free(walks);
        return r;
}
