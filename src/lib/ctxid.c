/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Context ids: reserved by builds, noted by starts, checked against the kernel. */
#include "ctxid.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "idmap.h"
#include "util.h"

/*
 * VS_HOST_RUN/context.ID: who runs with context ID on this host, whatever
 * its installation (a context's loopback address and veth name are
 * host-wide): "PID STARTTIME NAME" and the installation's root on a line
 * of its own; PID is the guest's PID 1 as the host sees it.
 */
typedef struct Running {
        pid_t pid;
        unsigned long long start;
        char name[64];
        char root[PATH_MAX / 4];
} Running;

static void running_path(unsigned ctx, char *buf, size_t size)
{
        snprintf(buf, size, VS_HOST_RUN "/context.%u", ctx);
}

/* The note of context @ctx as it is (-1: none; 0: not a note, @path to remove). */
static int note_read(unsigned ctx, Running *ret, char *path, size_t size)
{
        char buf[PATH_MAX];
        running_path(ctx, path, size);
        /* written in one write(), smaller than a page: one read has all of it (list reads
         * one a guest) */
        if (vs_read_kernel_at(AT_FDCWD, path, buf, sizeof buf) <= 0)
                return -1;
        int pid = 0, used = 0;
        char *nl = strchr(buf, '\n');
        *ret = (Running){0};
        if (!nl || sscanf(buf, "%d %llu %63s%n", &pid, &ret->start, ret->name, &used) != 3 ||
            pid <= 0 || buf + used != nl || ret->start == 0)
                return 0;
        snprintf(ret->root, sizeof ret->root, "%.*s", (int)strcspn(nl + 1, "\n"), nl + 1);
        ret->pid = pid;
        return 1;
}

/* The note of context @ctx, if its PID 1 still runs (a stale one is removed). */
static bool running_read(unsigned ctx, Running *ret)
{
        char path[PATH_MAX];
        int r = note_read(ctx, ret, path, sizeof path);
        if (r < 0)
                return false;
        /* a zombie PID 1 (its reaper slow) is a context that ended */
        VsProcStat ps;
        if (r == 0 || vs_proc_stat(ret->pid, &ps) < 0 || ps.starttime != ret->start ||
            ps.state == 'Z' || ps.state == 'X') {
                unlink(path);
                return false;
        }
        return true;
}

bool vs_ctxid_live(unsigned ctx)
{
        Running r;
        return running_read(ctx, &r);
}

/* Is @r the note of guest @name of the installation at @paths? */
static bool running_is(const Running *r, const VsPaths *paths, const char *name)
{
        return streq(r->root, paths->root) && streq(r->name, name);
}

/* "web1", or "web1 of the installation under /srv/b" if not @paths'. */
static void describe(const Running *r, const VsPaths *paths, char *who, size_t size)
{
        if (streq(r->root, paths->root))
                snprintf(who, size, "%s", r->name);
        else
                snprintf(who, size, "%s of the installation under %s", r->name,
                         r->root[0] ? r->root : "/");
}

pid_t vs_ctxid_init(const VsGuest *g, unsigned long long *ret_start)
{
        Running r;
        char path[PATH_MAX];
        if (note_read(g->cfg.context, &r, path, sizeof path) <= 0 ||
            !running_is(&r, &g->paths, g->cfg.name))
                return 0;
        *ret_start = r.start;
        return r.pid;
}

/*
 * VS_HOST_RUN/address.IP and VS_HOST_RUN/ids.START: which guest, of any
 * installation, runs with address IP, or with the host ids from START (a
 * user namespace's range): "CTX NAME" and the installation's root on a
 * line of its own (held_write).  It holds them while context CTX's note
 * is that guest's and live.  One file each: a start checks its own
 * without loading any other guest.  Ranges are aligned blocks of
 * VS_IDMAP_COUNT (idmap.c), so two overlap only if they start alike.
 */
static int address_path(const VsNetAddr *a, char *buf, size_t size)
{
        char ip[INET6_ADDRSTRLEN];
        if (!inet_ntop(a->family, a->addr, ip, sizeof ip))
                return -EINVAL;
        int n = snprintf(buf, size, VS_HOST_RUN "/address.%s", ip);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static void ids_path(unsigned start, char *buf, size_t size)
{
        snprintf(buf, size, VS_HOST_RUN "/ids.%u", start);
}

/* Write the note of @ctx: @pid runs with it for @name of @root; with @excl only if none is there.
 */
static int note_write(unsigned ctx, const char *name, const char *root, pid_t pid, bool excl)
{
        char path[PATH_MAX], note[PATH_MAX];
        if (vs_mkdir_p(VS_HOST_RUN, 0755) < 0)
                return -errno;
        running_path(ctx, path, sizeof path);
        int n = snprintf(note, sizeof note, "%d %llu %s\n%s\n", (int)pid, vs_proc_starttime(pid),
                         name, root);
        int fd = open(path, O_WRONLY | O_CREAT | (excl ? O_EXCL : O_TRUNC) | O_CLOEXEC | O_NOFOLLOW,
                      0644);
        if (fd < 0)
                return -errno;
        int r = vs_write_all(fd, note, (size_t)n);
        close(fd);
        return r;
}

/* Note at @path that @g runs with what it names. */
static void held_write(const char *path, const VsGuest *g)
{
        char note[PATH_MAX];
        int n =
            snprintf(note, sizeof note, "%u %s\n%s\n", g->cfg.context, g->cfg.name, g->paths.root);
        _cleanup_close_ int fd =
            open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd >= 0 && n > 0 && n < (int)sizeof note)
                (void)vs_write_all(fd, note, (size_t)n);
}

/* The guest the note @path names (context, name, root), whether it runs or not. */
static bool held_note(const char *path, unsigned *ctx, Running *ret)
{
        char buf[PATH_MAX];
        int used = 0;
        *ret = (Running){0};
        if (vs_read_file_at(AT_FDCWD, path, buf, sizeof buf) <= 0 ||
            sscanf(buf, "%u %63s%n", ctx, ret->name, &used) != 2 || buf[used] != '\n')
                return false;
        snprintf(ret->root, sizeof ret->root, "%.*s", (int)strcspn(buf + used + 1, "\n"),
                 buf + used + 1);
        return true;
}

/* The running guest other than @g the note @path names, if its context's note agrees. */
static bool held_by_other(const char *path, const VsGuest *g, char *who, size_t size)
{
        Running named, r;
        unsigned ctx;
        if (!held_note(path, &ctx, &named) || !running_read(ctx, &r) ||
            !streq(r.name, named.name) || !streq(r.root, named.root) ||
            running_is(&r, &g->paths, g->cfg.name))
                return false;
        describe(&r, &g->paths, who, size);
        return true;
}

/* Remove the note @path if it names @g. */
static void held_forget(const char *path, const VsGuest *g)
{
        Running named;
        unsigned ctx;
        if (held_note(path, &ctx, &named) && running_is(&named, &g->paths, g->cfg.name))
                unlink(path);
}

static int check_ids(const VsGuest *g, const VsIdRange *ids, VsError *err)
{
        char path[PATH_MAX], who[PATH_MAX];
        if (!ids->count)
                return 0;
        ids_path(ids->start, path, sizeof path);
        if (!held_by_other(path, g, who, sizeof who))
                return 0;
        return vs_error_input(err,
                              "host ids %u-%u are in use by the running guest %s (stop one of "
                              "them, or remove %s's line from %s: its next start takes a free "
                              "range)",
                              ids->start, ids->start + (ids->count - 1), who, g->cfg.name,
                              g->paths.subid);
}

void vs_ctxid_note_running(const VsGuest *g, pid_t pid)
{
        (void)note_write(g->cfg.context, g->cfg.name, g->paths.root, pid, false);
}

int vs_ctxid_claim(unsigned lo, unsigned hi, const char *name, const char *root, unsigned *ret,
                   VsError *err)
{
        for (unsigned ctx = lo; ctx <= hi; ctx++) {
                Running run;
                if (running_read(ctx, &run)) /* a live note; a stale one is gone now */
                        continue;
                int r = note_write(ctx, name, root, getpid(), true);
                if (r == -EEXIST)
                        continue; /* taken meanwhile */
                if (r < 0)
                        return vs_error(err, r, "note context %u", ctx);
                *ret = ctx;
                return 0;
        }
        return vs_error(err, EAGAIN, "no free context id from %u to %u", lo, hi);
}

void vs_ctxid_note_pid(unsigned ctx, const char *name, const char *root, pid_t pid)
{
        (void)note_write(ctx, name, root, pid, false);
}

void vs_ctxid_release(unsigned ctx, const char *name, const char *root)
{
        Running run;
        char path[PATH_MAX];
        /* a stale note (its PID 1 gone) is removed by the read itself */
        if (running_read(ctx, &run) && streq(run.name, name) && streq(run.root, root)) {
                running_path(ctx, path, sizeof path);
                unlink(path);
        }
}

/* Who runs with @ctx, if not guest @name of @paths. */
static bool context_taken(const VsPaths *paths, const char *name, unsigned ctx, char *who,
                          size_t size)
{
        Running r;
        if (!running_read(ctx, &r) || running_is(&r, paths, name))
                return false;
        describe(&r, paths, who, size);
        return true;
}

/* Guest files' context ids, as owner names by id (NULL: unused); -errno. */
static int contexts_in_use(const VsPaths *paths, unsigned lo, unsigned hi, char ***ret_owner,
                           VsError *err)
{
        char **names;
        int n;
        *ret_owner = NULL;
        int r = vs_guest_list(paths, &names, &n, err);
        if (r < 0)
                return r;
        char **owner = calloc((size_t)(hi - lo) + 1, sizeof *owner);
        if (!owner)
                r = vs_error(err, ENOMEM, "context ids");
        for (int i = 0; i < n; i++) {
                VsGuestConfig c;
                char path[PATH_MAX];
                snprintf(path, sizeof path, "%s/%s.conf", paths->guests_conf, names[i]);
                vs_guest_config_init(&c, names[i]);
                if (owner && vs_guest_config_load(&c, path, NULL) == 0 && c.context >= lo &&
                    c.context <= hi && !owner[c.context - lo])
                        owner[c.context - lo] = TAKE_PTR(names[i]);
                free(names[i]);
        }
        free(names);
        *ret_owner = owner;
        return r;
}

static void free_owners(char **owner, unsigned span)
{
        for (unsigned i = 0; owner && i < span; i++)
                free(owner[i]);
        free(owner);
}

static void reserved_path(const VsPaths *paths, unsigned ctx, char *buf, size_t size)
{
        char id[16];
        snprintf(id, sizeof id, "%u", ctx);
        vs_paths_run(paths, VS_RUN_CONTEXT_RESERVED, id, buf, size);
}

/*
 * A context id taken by a build that has not written its guest file yet:
 * run/vserver/context.ID holds "PID NAME"; a dead PID's reservation is gone.
 */
static bool reserved(const VsPaths *paths, unsigned ctx, char *who, size_t size)
{
        char path[PATH_MAX], buf[128];
        reserved_path(paths, ctx, path, sizeof path);
        if (vs_read_file_at(AT_FDCWD, path, buf, sizeof buf) <= 0)
                return false;
        char *sp = strchr(buf, ' ');
        unsigned long long pid;
        if (sp)
                *sp = '\0';
        if (!sp || vs_parse_u64(buf, &pid) < 0 || pid == 0 || pid > INT_MAX ||
            (kill((pid_t)pid, 0) < 0 && errno == ESRCH)) {
                unlink(path);
                return false;
        }
        snprintf(who, size, "%s", sp + 1);
        who[strcspn(who, "\n")] = '\0';
        return true;
}

/* The lock every change of who holds a context id takes: a reservation made or dropped. */
static int lock_contexts(const VsPaths *paths, VsError *err)
{
        char lockpath[PATH_MAX];
        vs_paths_run(paths, VS_RUN_CONTEXT_LOCK, NULL, lockpath, sizeof lockpath);
        return vs_lock_in(paths->run, lockpath, err);
}

/*
 * Under the lock, the guest files are read first and the reservations
 * after: a build that wrote its file and dropped its reservation in
 * between would be in neither, and its id handed out twice.  So a
 * reservation is dropped under the lock too (vs_guest_release_context),
 * and is still there, or its guest file was read, when this looks.
 */
int vs_guest_reserve_context(const VsPaths *paths, const VsHostConfig *host, const char *name,
                             unsigned *ctx, VsError *err)
{
        _cleanup_close_ int lock = lock_contexts(paths, err);
        if (lock < 0)
                return lock;
        int r;
        unsigned lo = host->ctx_min, hi = host->ctx_max;
        if (*ctx && (*ctx < lo || *ctx > hi)) {
                lo = hi = *ctx; /* a given id outside the host's range is the caller's call */
        }
        char **owner;
        r = contexts_in_use(paths, lo, hi, &owner, err);
        if (r < 0) {
                free_owners(owner, hi - lo + 1);
                return r;
        }
        char who[PATH_MAX];
        if (*ctx) {
                if (owner[*ctx - lo])
                        r = vs_error_input(err,
                                           "context %u is %s's (pick another, or leave "
                                           "--context out)",
                                           *ctx, owner[*ctx - lo]);
                else if (reserved(paths, *ctx, who, sizeof who))
                        r = vs_error_input(err,
                                           "context %u is being built as %s (pick another, "
                                           "or leave --context out)",
                                           *ctx, who);
                else if (context_taken(paths, name, *ctx, who, sizeof who))
                        r = vs_error_input(err,
                                           "context %u is in use by the running guest %s (pick "
                                           "another, or leave --context out)",
                                           *ctx, who);
        } else {
                r = vs_error(err, ENOSPC,
                             "no free context id in %u-%u (widen the host setting "
                             "context-range)",
                             lo, hi);
                for (unsigned c = lo; c <= hi && c >= lo; c++)
                        if (!owner[c - lo] && !reserved(paths, c, who, sizeof who) &&
                            !context_taken(paths, name, c, who, sizeof who)) {
                                *ctx = c;
                                r = 0;
                                break;
                        }
        }
        free_owners(owner, hi - lo + 1);
        if (r < 0)
                return r;
        char path[PATH_MAX], note[128];
        reserved_path(paths, *ctx, path, sizeof path);
        snprintf(note, sizeof note, "%d %s\n", (int)getpid(), name);
        _cleanup_close_ int fd =
            open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0 || vs_write_all(fd, note, strlen(note)) < 0)
                return vs_error(err, errno, "reserve context %u", *ctx);
        return 0;
}

void vs_guest_release_context(const VsPaths *paths, unsigned ctx)
{
        char path[PATH_MAX];
        int lock = lock_contexts(paths, NULL);
        reserved_path(paths, ctx, path, sizeof path);
        unlink(path);
        vs_closep(&lock);
}

/*
 * Another guest running with @g's context id, of this installation or
 * another, would share its loopback, its veth's name and its accounting.
 * The note of who started with the id is checked against the kernel (its
 * PID 1 and that process's start time): one lookup, however many guests.
 */
static int check(const VsGuest *g, VsError *err)
{
        char who[PATH_MAX], buf[96];
        if (context_taken(&g->paths, g->cfg.name, g->cfg.context, who, sizeof who))
                return vs_error_input(err,
                                      "context %u is in use by the running guest %s (give one "
                                      "of them another context in its guest file)",
                                      g->cfg.context, who);
        for (int i = 0; i < g->cfg.netcfg.n_addrs; i++) {
                const VsNetAddr *a = &g->cfg.netcfg.addrs[i];
                char path[PATH_MAX];
                if (address_path(a, path, sizeof path) == 0 &&
                    held_by_other(path, g, who, sizeof who))
                        return vs_error_input(err, "address %s is in use by the running guest %s",
                                              vs_net_addr_format(a, buf, sizeof buf), who);
        }
        return 0;
}

void vs_ctxid_forget_running(const VsGuest *g)
{
        Running run;
        char path[PATH_MAX];
        VsIdRange ids;
        if (g->cfg.userns && vs_idmap_lookup(g->paths.subid, g->cfg.name, &ids, NULL) > 0) {
                ids_path(ids.start, path, sizeof path);
                held_forget(path, g);
        }
        for (int i = 0; i < g->cfg.netcfg.n_addrs; i++)
                if (address_path(&g->cfg.netcfg.addrs[i], path, sizeof path) == 0)
                        held_forget(path, g);
        if (running_read(g->cfg.context, &run) && running_is(&run, &g->paths, g->cfg.name)) {
                running_path(g->cfg.context, path, sizeof path);
                unlink(path);
        }
}

/*
 * The checks and the notes under one host-wide lock (a few file operations,
 * not the start): two starts at once, of guests whose files share an
 * address or an id (a standby clone, start --all), both passed their
 * checks before either noted anything, and both ran.  The notes name the
 * starting process until vs_ctxid_note_running names the guest's PID 1.
 */
int vs_ctxid_claim_start(const VsGuest *g, const VsIdRange *ids, VsError *err)
{
        _cleanup_close_ int lock = vs_lock_in(VS_HOST_RUN, VS_HOST_RUN "/claim.lock", err);
        if (lock < 0)
                return lock;
        int r = check(g, err);
        if (r == 0)
                r = check_ids(g, ids, err);
        if (r < 0)
                return r;
        char path[PATH_MAX];
        vs_ctxid_note_running(g, getpid());
        if (ids->count) {
                ids_path(ids->start, path, sizeof path);
                held_write(path, g);
        }
        for (int i = 0; i < g->cfg.netcfg.n_addrs; i++)
                if (address_path(&g->cfg.netcfg.addrs[i], path, sizeof path) == 0)
                        held_write(path, g);
        return 0;
}
