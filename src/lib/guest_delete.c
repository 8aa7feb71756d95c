/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vs_guest_delete: a guest gone with everything it had on this host. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "disk.h"
#include "farm.h"
#include "guest.h"
#include "idmap.h"
#include "tree.h"
#include "util.h"

/*
 * Before its tree goes: its links to files other guests share, with those
 * guests protected (frozen whole through their cgroup parent, so a delete
 * costs the same with ten guests installed or a thousand).
 */
static int unify_release(const VsGuest *g, VsError *err)
{
        VsFarm f;
        int r = vs_farm_open_whole(&f, &g->paths, &g->host, g->cgroup_parent, g->cfg.name, err);
        if (r == 0)
                r = vs_farm_recover(&f, err);
        if (r == 0) {
                VsUnifyOptions o = {0};
                vs_farm_options(&f, &o);
                r = vs_unify_release(g->rootfs, &o, err);
        }
        vs_farm_close(&f);
        return r;
}

/* The console log is append-only while it exists. */
static void remove_log(const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return;
        int flags;
        if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_APPEND_FL)) {
                flags &= ~FS_APPEND_FL;
                (void)ioctl(fd, FS_IOC_SETFLAGS, &flags);
        }
        close(fd);
        unlink(path);
}

int vs_guest_delete(VsGuest *g, bool force, VsError *err)
{
        if (access(g->conf, F_OK) < 0 && access(g->dir, F_OK) < 0)
                return vs_error(err, ENOENT, "no guest \"%s\"", g->cfg.name);
        _cleanup_close_ int lock = -EBADF;
        int r = vs_guest_lock(g, &lock, err);
        if (r < 0)
                return r;
        VsGuestState st;
        r = vs_guest_state(g, &st, err);
        if (r < 0)
                return r;
        bool running = st.running, stale = st.cgroup.n > 0;
        vs_guest_state_release(&st);
        if (running && !force)
                return vs_error(err, EBUSY, "%s is running (stop it first, or use --force)",
                                g->cfg.name);
        /* what it runs with, or its file; a broken file must not keep it from going */
        VsGuest *started = calloc(1, sizeof *started);
        if (!started)
                return vs_error(err, ENOMEM, "delete");
        bool cfg_ok = vs_guest_load_started(started, &g->paths, &g->host, g->cgroup_parent,
                                            g->cfg.name, NULL) == 0;
        if (cfg_ok)
                g->cfg = started->cfg;
        free(started);
        if (running || stale) {
                bool forced;
                r = vs_guest_stop(g, 0, &forced, err);
                if (r < 0)
                        return r;
        }
        if (access(g->rootfs, F_OK) == 0 && (r = unify_release(g, err)) < 0)
                return r;
        VsDiskTree tree = vs_guest_disk_tree(g);
        /* asked before the tree goes: a project not its own is another guest's to keep */
        bool project = vs_disk_kind(&tree) == VS_DISK_PROJECT;
        r = vs_disk_unmount(&tree, err);
        if (r == 0)
                r = vs_tree_remove(g->dir, err);
        /* its project usage and limits, cleared: the id's next guest starts at zero */
        if (r == 0 && project)
                r = vs_disk_forget(g->paths.guests, g->cfg.context, err);
        if (r < 0)
                return r;
        if (unlink(g->conf) < 0 && errno != ENOENT)
                return vs_error(err, errno, "remove %s", g->conf);
        remove_log(g->log);
        char path[PATH_MAX];
        unlink(vs_paths_run(&g->paths, VS_RUN_GUEST_LOCK, g->cfg.name, path, sizeof path));
        unlink(vs_paths_run(&g->paths, VS_RUN_GUEST_STARTED, g->cfg.name, path, sizeof path));
        /*
         * Its id range: free again, unless it may own files outside its tree
         * (written through a bind mount of a host directory, or a guest file
         * we could not read): then kept out of use.
         */
        bool retire = !cfg_ok;
        for (int i = 0; cfg_ok && i < g->cfg.n_binds; i++)
                retire |= !g->cfg.binds[i].readonly && !g->cfg.binds[i].idmap;
        return vs_idmap_release(g->paths.subid, g->cfg.name, retire, err);
}
