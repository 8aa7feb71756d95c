/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "build.h"
#include "cow.h"
#include "farm.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "disk.h"
#include "idmap.h"
#include "net.h"
#include "tree.h"
#include "util.h"

static int template_kind(const char *src, VsTemplateKind *ret, VsError *err)
{
        struct stat st;
        if (streq(src, "busybox"))
                *ret = VS_TEMPLATE_BUSYBOX;
        else if (streq(src, "debian"))
                *ret = VS_TEMPLATE_DEBIAN;
        else if (strncmp(src, "clone:", 6) == 0)
                *ret = VS_TEMPLATE_CLONE;
        else if (src[0] == '/' && stat(src, &st) == 0 && S_ISDIR(st.st_mode))
                *ret = VS_TEMPLATE_DIR;
        else if (src[0] == '/' && stat(src, &st) == 0 && S_ISREG(st.st_mode))
                *ret = VS_TEMPLATE_TARBALL;
        else
                return vs_error_input(err,
                                      "--template \"%s\": say busybox, debian, clone:GUEST, or the "
                                      "absolute path of a directory or tarball",
                                      src);
        return 0;
}

static int debian_options(const VsBuildSpec *s, VsTemplateKind kind, VsError *err)
{
        if ((s->suite || s->mirror || s->sysvinit) && kind != VS_TEMPLATE_DEBIAN)
                return vs_error_input(err, "--suite, --mirror and --debian-init are for "
                                           "--template debian");
        if (s->mirror && strncmp(s->mirror, "http://", 7) && strncmp(s->mirror, "https://", 8) &&
            strncmp(s->mirror, "file:/", 6))
                return vs_error_input(err, "--mirror \"%s\" is not an http(s):// or file:/ URL",
                                      s->mirror);
        for (const char *p = s->suite; p && *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
                        return vs_error_input(err, "--suite \"%s\" is not a suite name", s->suite);
        return 0;
}

/* Which mechanism holds its disk limit on the guests' filesystem; one line if none can. */
static int disk_plan(VsBuild *b, VsError *err)
{
        VsGuest *g = &b->g;
        const VsLimits *l = &g->cfg.limits;
        VsDiskSupport s;
        vs_disk_probe(g->paths.guests, (VsDiskKind)g->host.disk_limits, &s);
        if (s.pick == VS_DISK_NONE)
                return vs_disk_unsupported(&s, (VsDiskKind)g->host.disk_limits, err);
        if (s.pick == VS_DISK_PROJECT && l->disk_reserved_pct)
                return vs_error_input(err, "limits.disk.reserved: project quotas keep no reserve "
                                           "for root (leave it out, or set disk-limits = image "
                                           "in the host settings)");
        if (s.pick == VS_DISK_IMAGE && l->disk == VS_UNLIMITED)
                return vs_error_input(err,
                                      "limits.disk.inodes: %s has no project quotas, so the "
                                      "guest gets its own disk image, which needs a size "
                                      "(say disk = 10G too)",
                                      s.fs);
        b->disk = (int)s.pick;
        return 0;
}

int vs_build_plan(VsBuild *b, const VsPaths *paths, const VsHostConfig *host,
                  const char *cgroup_parent, const char *name, const VsBuildSpec *spec,
                  VsError *err)
{
        VsGuest *g = &b->g;
        int r = vs_guest_init(g, paths, host, cgroup_parent, name, err);
        if (r < 0)
                return r;
        g->cfg.userns = host->userns; /* the host's defaults for new guests */
        g->cfg.delegate = host->delegate;
        for (int i = 0; i < spec->n_sets; i++) {
                /* "--memory" rather than the key in errors about build options */
                const char *w = spec->where && spec->where[i] ? spec->where[i] : spec->sets[i][0];
                if (w[0] != '-')
                        w = spec->sets[i][0];
                r = vs_guest_config_set(&g->cfg, spec->sets[i][0], spec->sets[i][1], w, err);
                if (r < 0)
                        return r;
        }
        r = vs_guest_config_check(&g->cfg, "options", err);
        /* what this host must have for it: known now, not at its first start */
        if (r == 0)
                r = vs_limits_check_host(&g->cfg.limits, err);
        if (r == 0 && g->cfg.net == VS_NET_ISOLATE)
                r = vs_net_isolate_check(&g->cfg.netcfg, host->net_device, err);
        b->src = spec->template_arg ? spec->template_arg : "busybox";
        if (r == 0)
                r = template_kind(b->src, &b->kind, err);
        if (r == 0)
                r = debian_options(spec, b->kind, err);
        if (r < 0)
                return r;
        if (vs_limits_has_disk(&g->cfg.limits) && (r = disk_plan(b, err)) < 0)
                return r;
        b->debian = (VsDebianSpec){.suite = spec->suite ? spec->suite : host->suite,
                                   .mirror = spec->mirror ? spec->mirror : host->mirror,
                                   .sysvinit = spec->sysvinit};
        if (spec->sysvinit && !g->cfg.stop_signal)
                g->cfg.stop_signal = SIGPWR;
        return 0;
}

/* Builds killed with SIGKILL leave .NAME.build-PID behind: sweep those whose PID is gone. */
static void sweep_stale_builds(const VsPaths *p)
{
        DIR *d = opendir(p->guests);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                const char *bp = strstr(de->d_name, ".build-");
                if (de->d_name[0] != '.' || !bp)
                        continue;
                long pid = strtol(bp + 7, NULL, 10);
                if (pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno == EPERM))
                        continue;
                char path[PATH_MAX];
                char root[PATH_MAX + 8];
                snprintf(path, sizeof path, "%s/%s", p->guests, de->d_name);
                snprintf(root, sizeof root, "%s/rootfs", path);
                vs_disk_unmount(&(VsDiskTree){.dir = path, .rootfs = root}, NULL);
                vs_tree_remove(path, NULL);
        }
        closedir(d);
}

static bool has_etc(const char *root)
{
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "%s/etc", root);
        return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * clone:GUEST's tree, from a guest that is not running, held still until the
 * copy is done: its own lock (no start), and the unify lock shared (no unify,
 * gc, deunify or delete changes its tree or the store files its stubs name).
 */
static int clone_source(VsBuild *b, VsGuest *other, int locks[2], VsError *err)
{
        int r = vs_guest_load(other, &b->g.paths, &b->g.host, b->g.cgroup_parent, b->src + 6, err);
        if (r == 0)
                r = vs_farm_share_lock(&b->g.paths, &locks[0], err);
        if (r == 0)
                r = vs_guest_lock(other, &locks[1], err);
        if (r < 0)
                return r;
        VsGuestState st;
        r = vs_guest_state(other, &st, err);
        if (r < 0)
                return r;
        bool running = st.running;
        vs_guest_state_release(&st);
        if (running)
                return vs_error(err, EBUSY, "%s is running; stop it before cloning it",
                                other->cfg.name);
        /* a tree on its own image is there only while the image is mounted (after a reboot: not) */
        VsDiskTree t = vs_guest_disk_tree(other);
        return vs_disk_attach(&t, err);
}

/*
 * A unified guest's clone shares its store files from the start (VServer's
 * vclone): its stubs are copied (no bytes), and its own files.
 */
static int clone_layers(const VsGuest *other, const char *dir, VsError *err)
{
        char base[PATH_MAX], work[PATH_MAX];
        snprintf(base, sizeof base, "%s/base", dir);
        snprintf(work, sizeof work, "%s/work", dir);
        int r = vs_tree_copy(other->base, base, err);
        if (r == 0 && mkdir(work, 0700) < 0)
                r = vs_error(err, errno, "create %s", work);
        return r;
}

/* The template into @tmproot: a directory, or a disk-limited root that charges all it gets. */
static int fill(VsBuild *b, const VsGuest *other, const VsDiskTree *t, VsError *err)
{
        const char *tmproot = t->rootfs;
        int r = vs_disk_create(t, (VsDiskKind)b->disk, &b->g.cfg.limits, err);
        if (r < 0)
                return r;
        switch (b->kind) {
        case VS_TEMPLATE_DIR:
                return vs_tree_copy(b->src, tmproot, err);
        case VS_TEMPLATE_CLONE:
                r = vs_tree_copy(other->rootfs, tmproot, err);
                if (r == 0 && vs_cow_enabled(other->dir))
                        r = clone_layers(other, t->dir, err);
                return r;
        default:
                break;
        }
        if (b->kind == VS_TEMPLATE_BUSYBOX)
                r = vs_template_busybox(tmproot, err);
        else if (b->kind == VS_TEMPLATE_DEBIAN) {
                if (b->note) {
                        char msg[1024];
                        snprintf(msg, sizeof msg, "debootstrap %s from %s into %s", b->debian.suite,
                                 b->debian.mirror, b->g.cfg.name);
                        b->note(b->note_data, msg);
                }
                r = vs_template_debian(tmproot, &b->debian, err);
        } else
                r = vs_tree_extract(b->src, tmproot, err);
        return r;
}

int vs_build_run(VsBuild *b, VsError *err)
{
        VsGuest *g = &b->g;
        VsGuest *other = NULL;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        _cleanup_close_ int src_unify = -EBADF, src_lock = -EBADF;
        if (b->kind == VS_TEMPLATE_CLONE) {
                other = calloc(1, sizeof *other);
                if (!other)
                        return vs_error(err, ENOMEM, "build");
                int locks[2] = {-EBADF, -EBADF};
                int r = clone_source(b, other, locks, err);
                src_unify = locks[0];
                src_lock = locks[1];
                if (r < 0) {
                        free(other);
                        return r;
                }
        }
        int r = vs_paths_ensure(&g->paths, err);
        _cleanup_close_ int lock = -EBADF;
        if (r == 0)
                r = vs_guest_lock(g, &lock, err);
        if (r == 0 && access(g->conf, F_OK) == 0)
                r = vs_error(err, EEXIST, "guest %s exists (%s)", g->cfg.name, g->conf);
        if (r == 0 && access(g->dir, F_OK) == 0)
                r = vs_error(err, EEXIST,
                             "%s exists without a guest file (left by a crash? vserver delete %s)",
                             g->dir, g->cfg.name);
        /* the context id: given and unused, or the lowest free one, held until the file is written
         */
        if (r == 0)
                r = vs_guest_reserve_context(&g->paths, &g->host, g->cfg.name, &g->cfg.context,
                                             err);
        /*
         * An own-userns guest's id range is taken now, not at its first
         * start: a full pool is said before the tree is made, and the
         * record's fsync (a journal commit, which after a build carries the
         * new tree's data) is not paid by a start.
         */
        if (r == 0 && g->cfg.userns) {
                VsIdRange ids;
                r = vs_guest_range(g, true, &ids, err);
                if (r < 0)
                        vs_guest_release_context(&g->paths, g->cfg.context);
        }
        if (r < 0) {
                free(other);
                return r;
        }
        sweep_stale_builds(&g->paths);

        char tmp[PATH_MAX], tmproot[PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s/.%s.build-%d", g->paths.guests, g->cfg.name, (int)getpid());
        snprintf(tmproot, sizeof tmproot, "%s/rootfs", tmp);
        VsDiskTree tree = {.dir = tmp, .rootfs = tmproot, .context = g->cfg.context};
        r = mkdir(tmp, 0700) < 0 ? vs_error(err, errno, "mkdir %s", tmp) : 0;
        if (r == 0)
                r = fill(b, other, &tree, err);
        free(other);
        if (r == 0 && vs_tree_interrupted)
                r = vs_error(err, EINTR, "interrupted");
        /* a root filesystem, not any file or directory */
        if (r == 0 && (b->kind == VS_TEMPLATE_DIR || b->kind == VS_TEMPLATE_TARBALL) &&
            !has_etc(tmproot))
                r = vs_error(err, ENOTDIR,
                             "--template %s has no /etc: not a root file system (say a "
                             "directory or tarball of one, busybox, debian or clone:GUEST)",
                             b->src);
        if (r == 0)
                r = vs_template_identity(tmproot, &g->cfg, err);
        /* the guest's root directory is root's, whatever the template said */
        if (r == 0 && (chown(tmproot, 0, 0) < 0 || chmod(tmproot, 0755) < 0))
                r = vs_error(err, errno, "chown %s", tmproot);
        if (r == 0 && rename(tmp, g->dir) < 0)
                r = vs_error(err, errno, "rename %s to %s", tmp, g->dir);
        if (r < 0) {
                bool project = vs_disk_kind(&tree) == VS_DISK_PROJECT; /* tagged by this build */
                vs_disk_unmount(&tree, NULL);
                vs_tree_remove(tmp, NULL);
                if (project)
                        vs_disk_forget(g->paths.guests, g->cfg.context, NULL);
                vs_guest_release_context(&g->paths, g->cfg.context);
                if (g->cfg.userns)
                        vs_idmap_release(g->paths.subid, g->cfg.name, false, NULL);
                if (!err || err->code != EINTR)
                        vs_error_prefix(err, "%s", g->cfg.name);
                return r;
        }
        r = vs_guest_config_save(&g->cfg, g->conf, err);
        if (r < 0) {
                if (g->cfg.userns)
                        vs_idmap_release(g->paths.subid, g->cfg.name, false, NULL);
                tree = (VsDiskTree){.dir = g->dir, .rootfs = g->rootfs, .context = g->cfg.context};
                vs_disk_unmount(&tree, NULL);
                vs_tree_remove(g->dir, NULL);
        }
        vs_guest_release_context(&g->paths, g->cfg.context);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        b->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        return r;
}
