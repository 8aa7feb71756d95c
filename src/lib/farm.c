/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "farm.h"

#include "cow.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "util.h"

void vs_farm_close(VsFarm *f)
{
        for (int i = 0; i < f->n; i++) {
                if (f->m[i].have_state)
                        vs_guest_state_release(&f->m[i].st);
                if (f->m[i].lock >= 0)
                        close(f->m[i].lock);
        }
        free(f->m);
        f->m = NULL;
        f->n = 0;
        if (f->unify_lock >= 0)
                close(f->unify_lock);
        f->unify_lock = -1;
}

/* Write the names we froze (for a rerun after a crash), or remove the list. */
static int note_frozen(VsFarm *f)
{
        char buf[65536];
        size_t used = 0;
        for (int i = 0; i < f->n; i++)
                if (f->m[i].froze && used + strlen(f->m[i].g.cfg.name) + 2 < sizeof buf)
                        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s\n",
                                                 f->m[i].g.cfg.name);
        if (!used)
                return unlink(f->frozen_list) < 0 && errno != ENOENT ? -errno : 0;
        int fd = open(f->frozen_list, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        int r = vs_write_all(fd, buf, used);
        fsync(fd);
        close(fd);
        return r;
}

/* The installation's cgroup parent as a cgroup of its own: "/vserver" is "vserver" under "/". */
static int parent_open(const char *parent, VsCgroup *cg, VsError *err)
{
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", parent);
        char *slash = strrchr(dir, '/');
        const char *base = slash ? slash + 1 : dir;
        const char *up = !slash ? "." : slash == dir ? "/" : dir;
        if (slash && slash != dir)
                *slash = '\0';
        return vs_cgroup_open(cg, up, base, err);
}

/* Freeze or thaw every guest at once: their common cgroup parent (noted as "*"). */
static int freeze_whole(VsFarm *f, bool on, VsError *err)
{
        VsCgroup cg = VS_CGROUP_INIT;
        if (on) {
                int fd = open(f->frozen_list, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                              0600);
                if (fd < 0 || vs_write_all(fd, "*\n", 2) < 0 || fsync(fd) < 0) {
                        int e = errno;
                        if (fd >= 0)
                                close(fd);
                        return vs_error(err, e, "write %s", f->frozen_list);
                }
                close(fd);
        }
        int r = parent_open(f->cgroup_parent, &cg, err);
        if (r == -ENOENT)
                r = 0; /* no guest ever ran: nothing to freeze */
        else if (r == 0)
                r = vs_cgroup_freeze(&cg, on, err);
        vs_cgroup_release(&cg);
        if (r < 0)
                return vs_error_prefix(err, "%s the guests", on ? "freeze" : "thaw");
        if (!on)
                unlink(f->frozen_list);
        return 0;
}

/* What the unify library freezes every running guest through, around a batch. */
static int farm_freeze(void *data, bool on, VsError *err)
{
        VsFarm *f = data;
        int r = 0;
        if (f->whole)
                return freeze_whole(f, on, err);
        if (on) {
                for (int i = 0; i < f->n; i++) {
                        VsFarmMember *m = &f->m[i];
                        m->froze = m->have_state && m->st.running && !m->st.frozen;
                }
                if ((r = note_frozen(f)) < 0)
                        return vs_error(err, -r, "write %s", f->frozen_list);
        }
        for (int i = 0; i < f->n && r == 0; i++) {
                VsFarmMember *m = &f->m[i];
                if (m->froze && vs_guest_suspend(&m->st, on, err) < 0) {
                        r = -err->code;
                        vs_error_prefix(err, "%s %s", on ? "freeze" : "thaw", m->g.cfg.name);
                }
        }
        if (!on && r == 0) {
                for (int i = 0; i < f->n; i++)
                        f->m[i].froze = false;
                (void)note_frozen(f);
        }
        return r;
}

static int load_member(VsFarm *f, VsFarmMember *m, const VsPaths *paths, const char *cgroup_parent,
                       const char *name, const char *skip, bool tolerant, VsError *err)
{
        VsError ignored = {0};
        m->lock = -1;
        int r = vs_guest_init(&m->g, paths, f->host, cgroup_parent, name, err);
        /* a broken file, where tolerated: the guest is still locked and frozen */
        if (r == 0 && vs_guest_config_load(&m->g.cfg, m->g.conf, tolerant ? &ignored : err) < 0 &&
            !tolerant)
                r = -(err && err->code ? err->code : EINVAL);
        if (r == 0 && !(skip && streq(skip, name)))
                r = vs_guest_lock(&m->g, &m->lock, err);
        if (r == 0)
                r = vs_guest_state(&m->g, &m->st, err);
        if (r == 0)
                m->have_state = true;
        return r;
}

/* The unify lock and the run files' names; no guest loaded. */
static int farm_lock(VsFarm *f, const VsPaths *paths, const VsHostConfig *host,
                     const char *cgroup_parent, VsError *err)
{
        *f = (VsFarm){.host = host, .unify_lock = -1, .cgroup_parent = cgroup_parent};
        vs_paths_run(paths, VS_RUN_UNIFY_PENDING, NULL, f->pending, sizeof f->pending);
        vs_paths_run(paths, VS_RUN_UNIFY_FROZEN, NULL, f->frozen_list, sizeof f->frozen_list);
        vs_paths_run(paths, VS_RUN_UNIFY_LOCK, NULL, f->lockpath, sizeof f->lockpath);
        snprintf(f->store, sizeof f->store, "%s", paths->store);
        (void)vs_mkdir_p(paths->run, 0755);
        f->unify_lock = open(f->lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (f->unify_lock < 0 || flock(f->unify_lock, LOCK_EX | LOCK_NB) < 0)
                return vs_error(err, EBUSY,
                                "another unify, deunify, delete or clone is at work (%s)",
                                f->lockpath);
        return 0;
}

int vs_farm_share_lock(const VsPaths *paths, int *ret_fd, VsError *err)
{
        char path[PATH_MAX];
        vs_paths_run(paths, VS_RUN_UNIFY_LOCK, NULL, path, sizeof path);
        (void)vs_mkdir_p(paths->run, 0755);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return vs_error(err, errno, "open %s", path);
        if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
                int e = errno;
                close(fd);
                return e == EWOULDBLOCK
                           ? vs_error(err, EBUSY,
                                      "a unify, deunify or delete is at work (%s): clone when it "
                                      "has ended",
                                      path)
                           : vs_error(err, e, "lock %s", path);
        }
        *ret_fd = fd;
        return 0;
}

int vs_farm_open_whole(VsFarm *f, const VsPaths *paths, const VsHostConfig *host,
                       const char *cgroup_parent, const char *skip, VsError *err)
{
        int r = farm_lock(f, paths, host, cgroup_parent, err);
        if (r < 0)
                return r;
        if (vs_farm_interrupted(f)) {
                vs_farm_close(f);
                return vs_farm_open(f, paths, host, cgroup_parent, skip, true, err);
        }
        f->whole = true;
        return 0;
}

int vs_farm_open(VsFarm *f, const VsPaths *paths, const VsHostConfig *host,
                 const char *cgroup_parent, const char *skip, bool tolerant, VsError *err)
{
        int r = farm_lock(f, paths, host, cgroup_parent, err);
        if (r < 0)
                return r;
        char **names = NULL;
        int n = 0;
        r = vs_guest_list(paths, &names, &n, err);
        if (r < 0)
                return r;
        f->m = calloc((size_t)(n ? n : 1), sizeof *f->m);
        if (!f->m)
                r = vs_error(err, ENOMEM, "load the guests");
        for (int i = 0; i < n && r == 0; i++) {
                VsFarmMember *m = &f->m[f->n++];
                r = load_member(f, m, paths, cgroup_parent, names[i], skip, tolerant, err);
        }
        vs_guest_names_free(names, n);
        return r;
}

VsFarmMember *vs_farm_find(VsFarm *f, const char *name)
{
        for (int i = 0; i < f->n; i++)
                if (streq(f->m[i].g.cfg.name, name))
                        return &f->m[i];
        return NULL;
}

bool vs_farm_any_running(const VsFarm *f)
{
        for (int i = 0; i < f->n; i++)
                if (f->m[i].have_state && f->m[i].st.running)
                        return true;
        return false;
}

void vs_farm_tree(VsFarm *f, VsFarmMember *m, VsUnifyTree *t)
{
        int n = 0;
        for (int i = 0; i < m->g.cfg.n_unify_exclude; i++)
                m->pats[n++] = m->g.cfg.unify_exclude[i];
        snprintf(m->host_pats, sizeof m->host_pats, "%s", f->host->unify_exclude);
        char *save = NULL;
        for (char *s = strtok_r(m->host_pats, " \t", &save); s && n < (int)ARRAY_SIZE(m->pats);
             s = strtok_r(NULL, " \t", &save))
                m->pats[n++] = s;
        VsCaps caps = vs_guest_caps(&m->g.cfg);
        *t = (VsUnifyTree){
            .name = m->g.cfg.name,
            .root = m->g.rootfs,
            .running = m->st.running,
            /*
             * a guest that may set file flags or mount over the host's could undo the
             * protection; in a user namespace of its own its mounts are its own
             */
            .no_link = (caps & ((VsCaps)1 << CAP_LINUX_IMMUTABLE)) ||
                       (!m->g.cfg.userns && (caps & ((VsCaps)1 << CAP_SYS_ADMIN))),
            .patterns = m->pats,
            .n_patterns = n,
        };
}

void vs_farm_options(VsFarm *f, VsUnifyOptions *o)
{
        o->freeze = farm_freeze;
        o->freeze_data = f;
        o->pending = f->pending;
}

bool vs_farm_interrupted(const VsFarm *f)
{
        return access(f->pending, F_OK) == 0;
}

int vs_farm_recover(VsFarm *f, VsError *err)
{
        if (!vs_farm_interrupted(f))
                return 0;
        VsUnifyTree *trees = calloc((size_t)(f->n ? f->n : 1), sizeof *trees);
        if (!trees)
                return vs_error(err, ENOMEM, "repair");
        VsUnifyOptions o = {0};
        vs_farm_options(f, &o);
        o.pending = NULL;
        for (int i = 0; i < f->n; i++)
                vs_farm_tree(f, &f->m[i], &trees[i]);
        /* the store first: a file it shares with a guest gets a copy of its own */
        int r = vs_cow_repair(f->store, err);
        if (r == 0)
                r = vs_unify_repair(trees, f->n, &o, err);
        free(trees);
        if (r < 0)
                return r;
        /* the guests it froze (and only those) */
        char buf[65536];
        ssize_t n = vs_read_file_at(AT_FDCWD, f->frozen_list, buf, sizeof buf);
        for (char *save = NULL, *s = n > 0 ? strtok_r(buf, "\n", &save) : NULL; s;
             s = strtok_r(NULL, "\n", &save)) {
                if (streq(s, "*")) { /* a delete froze them all at once */
                        r = freeze_whole(f, false, err);
                        if (r < 0)
                                return r;
                        continue;
                }
                VsFarmMember *m = vs_farm_find(f, s);
                if (m && m->have_state && m->st.running && m->st.frozen) {
                        r = vs_guest_suspend(&m->st, false, err);
                        if (r < 0)
                                return r;
                        m->st.frozen = false;
                }
        }
        unlink(f->frozen_list);
        if (unlink(f->pending) < 0 && errno != ENOENT)
                return vs_error(err, errno, "remove %s", f->pending);
        return 0;
}
