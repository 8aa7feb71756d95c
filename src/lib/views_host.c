/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The host side of the views: the server started on demand, guests recorded, views re-bound. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "syscalls.h"
#include "util.h"
#include "viewd.h"

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

/* ---- records ---------------------------------------------------------------------------- */

int vs_view_record_parse(const char *text, VsViewRecord *ret, VsError *err)
{
        *ret = (VsViewRecord){.cg = VS_CGROUP_INIT};
        const char *cg = strstr(text, "\ncgroup\n");
        if (!cg)
                return vs_error_input(err, "a view record without its cgroup");
        for (const char *l = text; l && l < cg + 1; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
                const char *sp = strchr(l, ' ');
                const char *eol = strchr(l, '\n');
                if (!sp || !eol || sp > eol)
                        continue;
                size_t klen = (size_t)(sp - l), vlen = (size_t)(eol - sp - 1);
                char v[4200];
                snprintf(v, sizeof v, "%.*s", (int)(vlen < sizeof v ? vlen : sizeof v - 1), sp + 1);
#define KEY(k) (klen == strlen(k) && strncmp(l, k, klen) == 0)
                if (KEY("init"))
                        sscanf(v, "%d %llu", &ret->init, &ret->init_start);
                else if (KEY("started"))
                        ret->started_ns = strtoull(v, NULL, 10);
                else if (KEY("rotate"))
                        ret->rotate = (unsigned)strtoul(v, NULL, 10);
                else if (KEY("release"))
                        snprintf(ret->release, sizeof ret->release, "%s", v);
                else if (KEY("version"))
                        snprintf(ret->version, sizeof ret->version, "%s", v);
                else if (KEY("machine"))
                        snprintf(ret->machine, sizeof ret->machine, "%s", v);
#undef KEY
        }
        return vs_cgroup_load(&ret->cg, cg + 8, err);
}

void vs_view_record_release(VsViewRecord *r)
{
        vs_cgroup_release(&r->cg);
}

static void record_path(unsigned ctxid, char *buf, size_t size)
{
        snprintf(buf, size, VS_VIEWS_REG "/%u", ctxid);
}

int vs_views_register(unsigned ctxid, const VsCgroup *cg, pid_t init, const VsViewUname *uname,
                      VsError *err)
{
        char path[256], tmp[280];
        int r;
        struct timespec b;
        clock_gettime(CLOCK_BOOTTIME, &b);
        record_path(ctxid, path, sizeof path);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        (void)mkdir(VS_HOST_RUN, 0700);
        (void)mkdir(VS_VIEWS_REG, 0700);
        FILE *f = fopen(tmp, "we");
        if (!f)
                return vs_error(err, errno, "record the guest for its views: %s", tmp);
        fprintf(f, "init %d %llu\nstarted %llu\nrotate %u\n", (int)init,
                init ? vs_proc_starttime(init) : 0ULL,
                (unsigned long long)b.tv_sec * 1000000000ULL + (unsigned long long)b.tv_nsec,
                ctxid);
        if (uname->release[0])
                fprintf(f, "release %s\n", uname->release);
        if (uname->version[0])
                fprintf(f, "version %s\n", uname->version);
        if (uname->machine[0])
                fprintf(f, "machine %s\n", uname->machine);
        fprintf(f, "cgroup\n");
        vs_cgroup_save(cg, f);
        if (fclose(f) != 0 || rename(tmp, path) < 0) {
                r = -errno;
                unlink(tmp);
                return vs_error(err, -r, "record the guest for its views: %s", path);
        }
        return 0;
}

int vs_views_give(unsigned ctxid, int listener, VsError *err)
{
        _cleanup_close_ int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", VS_VIEWS_SOCK);
        if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) < 0)
                return vs_error(err, errno, "reach the view server at %s", VS_VIEWS_SOCK);
        char id[16];
        int n = snprintf(id, sizeof id, "%u", ctxid);
        int r = vs_send_fds(s, id, (size_t)n, &listener, 1);
        /* its answer says it holds the listener: only then may we close ours */
        char ok;
        if (r == 0 && read(s, &ok, 1) != 1)
                r = -EPIPE;
        return r < 0 ? vs_error(err, -r, "hand the uname/sysinfo listener to the view server") : 0;
}

void vs_views_unregister(unsigned ctxid)
{
        char path[256];
        record_path(ctxid, path, sizeof path);
        unlink(path);
}

/* ---- the server ------------------------------------------------------------------------- */

/* The worker's pid, from the keeper's lock file ("KEEPER WORKER"); 0 if none. */
static pid_t worker_pid(void)
{
        char buf[64];
        int keeper = 0, worker = 0;
        if (vs_read_file_at(AT_FDCWD, VS_VIEWS_LOCK, buf, sizeof buf) <= 0 ||
            sscanf(buf, "%d %d", &keeper, &worker) != 2 || worker <= 0)
                return 0;
        return (pid_t)worker;
}

bool vs_views_serving(void)
{
        _cleanup_close_ int fd = open(VS_VIEWS_LOCK, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
                flock(fd, LOCK_UN);
                return false; /* nobody holds it */
        }
        /* its mount as the worker sees it: we may be in another mount namespace */
        pid_t w = worker_pid();
        char path[128];
        struct statfs sf;
        struct stat st;
        snprintf(path, sizeof path, "/proc/%d/root" VS_VIEWS_MNT, (int)w);
        if (!w || statfs(path, &sf) < 0 || sf.f_type != FUSE_SUPER_MAGIC)
                return false;
        snprintf(path, sizeof path, "/proc/%d/root" VS_VIEWS_MNT "/1/meminfo", (int)w);
        return stat(path, &st) == 0;
}

/* A server of its own: detached from us (its own session), from a sealed copy of this binary. */
static int spawn(VsError *err)
{
        pid_t pid = fork();
        if (pid < 0)
                return vs_error(err, errno, "fork the view server");
        if (pid == 0) {
                setsid();
                if (fork() != 0)
                        _exit(0);
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                int log = open(VS_VIEWS_LOG, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (null >= 0) {
                        dup2(null, 0);
                        dup2(null, 1);
                }
                if (log >= 0)
                        dup2(log, 2);
                close_range(3, ~0U, 0);
                /* the host's server lives in the host's mount namespace, whoever starts it */
                int mnt = open("/proc/1/ns/mnt", O_RDONLY | O_CLOEXEC);
                if (mnt >= 0 && setns(mnt, CLONE_NEWNS) < 0)
                        fprintf(stderr, "vserver-views: stays in its starter's mount namespace\n");
                if (mnt >= 0)
                        close(mnt);
                (void)!chdir("/");
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                char prog[] = "vserver", verb[] = VS_VIEWD_VERB,
                     path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
                char *argv[] = {prog, verb, NULL}, *envp[] = {path, NULL};
                execve("/proc/self/exe", argv, envp);
                _exit(127);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        /* up when it holds its lock and serves its files: a few ms; give it 5 s */
        for (int i = 0; i < 500; i++) {
                if (vs_views_serving())
                        return 0;
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        return vs_error(err, ETIMEDOUT, "the view server did not start (see %s)", VS_VIEWS_LOG);
}

/* A new server: the views of the guests that run go back in; records of the gone go. */
void vs_views_reattach_all(void)
{
        DIR *d = opendir(VS_VIEWS_REG);
        for (struct dirent *e; d && (e = readdir(d));) {
                if (e->d_name[0] == '.' || strchr(e->d_name, '.'))
                        continue;
                char text[16384];
                VsViewRecord rec;
                VsError err = {0};
                if (vs_read_file_at(dirfd(d), e->d_name, text, sizeof text) <= 0 ||
                    vs_view_record_parse(text, &rec, &err) < 0)
                        continue;
                bool alive = rec.init > 0 && vs_proc_starttime(rec.init) == rec.init_start;
                if (!alive && rec.init > 0 && !vs_cgroup_populated(&rec.cg))
                        unlinkat(dirfd(d), e->d_name, 0);
                else if (alive &&
                         vs_views_reattach((unsigned)strtoul(e->d_name, NULL, 10), &rec, &err) < 0)
                        fprintf(stderr, "vserver: views of context %s: %s\n", e->d_name, err.msg);
                vs_view_record_release(&rec);
        }
        if (d)
                closedir(d);
}

int vs_views_ensure(int *gate, VsError *err)
{
        *gate = -EBADF;
        if (mkdir(VS_HOST_RUN, 0700) < 0 && errno != EEXIST)
                return vs_error(err, errno, "mkdir %s", VS_HOST_RUN);
        if (access("/dev/fuse", R_OK | W_OK) < 0)
                return vs_error(err, errno,
                                "the guest's /proc views need /dev/fuse (modprobe fuse; or set "
                                "views = no)");
        int g = open(VS_VIEWS_GATE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (g < 0)
                return vs_error(err, errno, "open %s", VS_VIEWS_GATE);
        /* a server on its way out holds it exclusively until it is gone */
        while (flock(g, LOCK_SH) < 0)
                if (errno != EINTR) {
                        int e = errno;
                        close(g);
                        return vs_error(err, e, "lock %s", VS_VIEWS_GATE);
                }
        int r = 0;
        if (!vs_views_serving())
                r = spawn(err); /* it puts the views back into the guests that run */
        if (r < 0) {
                close(g);
                return r;
        }
        /* a server (new, or with a new worker) puts the running guests' views back first */
        for (int i = 0; i < 500 && access(VS_VIEWS_READY, F_OK) < 0; i++) {
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        *gate = g;
        return 0;
}

/*
 * Clones of the view files, made in the mount namespace we are in.  Each
 * directory a walk passes asks the server for its attributes (they are
 * never cached: see viewd.c): the guest's directory is walked to once.
 */
static int open_here(unsigned ctxid, bool uname, int fds[VS_VIEW_N], VsError *err)
{
        char path[256];
        snprintf(path, sizeof path, VS_VIEWS_MNT "/%u", ctxid);
        _cleanup_close_ int dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0)
                return vs_error(err, errno, "open the views %s", path);
        for (int i = 0; i < VS_VIEW_N; i++) {
                if (vs_view_files[i].uname && !uname)
                        continue;
                snprintf(path, sizeof path, VS_VIEWS_MNT "/%u/%s", ctxid, vs_view_files[i].name);
                fds[i] = open_tree(dir, vs_view_files[i].name,
                                   OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW);
                if (fds[i] < 0) {
                        int e = errno;
                        for (int k = 0; k < i; k++)
                                vs_closep(&fds[k]);
                        return vs_error(err, e, "bind the view %s", path);
                }
        }
        return 0;
}

static bool same_ns(pid_t pid)
{
        char path[64];
        struct stat a, b;
        snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)pid);
        return stat("/proc/self/ns/mnt", &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino;
}

int vs_views_open(unsigned ctxid, bool uname, int fds[VS_VIEW_N], VsError *err)
{
        for (int i = 0; i < VS_VIEW_N; i++)
                fds[i] = -EBADF;
        pid_t w = worker_pid();
        if (!w || same_ns(w))
                return open_here(ctxid, uname, fds, err);
        /*
         * The server's mount is in its mount namespace (the host's), not
         * ours: the clones are made there, by a child that enters it, and
         * come back over a socket (a mount is cloned only in its own).
         */
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return vs_error(err, errno, "socketpair");
        pid_t pid = fork();
        if (pid < 0) {
                int e = errno;
                close(sp[0]);
                close(sp[1]);
                return vs_error(err, e, "fork");
        }
        if (pid == 0) {
                char path[64];
                int mine[VS_VIEW_N], n = 0;
                snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)w);
                int ns = open(path, O_RDONLY | O_CLOEXEC);
                VsError e = {0};
                if (ns < 0 || setns(ns, CLONE_NEWNS) < 0 || open_here(ctxid, uname, fds, &e) < 0)
                        _exit(1);
                for (int i = 0; i < VS_VIEW_N; i++)
                        if (fds[i] >= 0)
                                mine[n++] = fds[i];
                _exit(vs_send_fds(sp[1], "v", 1, mine, n) < 0 ? 1 : 0);
        }
        close(sp[1]);
        int got[VS_VIEW_N], n = 0;
        char tag;
        ssize_t m = vs_recv_fds(sp[0], &tag, 1, got, VS_VIEW_N, &n);
        close(sp[0]);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        int want = 0;
        for (int i = 0; i < VS_VIEW_N; i++)
                want += !vs_view_files[i].uname || uname;
        if (m != 1 || n != want) {
                for (int i = 0; i < n; i++)
                        close(got[i]);
                return vs_error(err, EIO, "bind the views from the server's mount namespace");
        }
        for (int i = 0, k = 0; i < VS_VIEW_N; i++)
                if (!vs_view_files[i].uname || uname)
                        fds[i] = got[k++];
        return 0;
}

/* Is @fd a place a view goes: a dead or live view, or the kernel's own file? */
static bool view_target(int fd)
{
        struct statfs sf;
        if (fstatfs(fd, &sf) < 0)
                return errno == ENOTCONN; /* a dead server's view */
        return sf.f_type == FUSE_SUPER_MAGIC || sf.f_type == PROC_SUPER_MAGIC ||
               sf.f_type == SYSFS_MAGIC;
}

int vs_views_reattach(unsigned ctxid, const VsViewRecord *r, VsError *err)
{
        int fds[VS_VIEW_N];
        int ret = vs_views_open(ctxid, r->release[0] || r->version[0], fds, err);
        if (ret < 0)
                return ret;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)r->init);
        _cleanup_close_ int ns = open(path, O_RDONLY | O_CLOEXEC);
        if (ns < 0 || vs_proc_starttime(r->init) != r->init_start) {
                ret = vs_error(err, ns < 0 ? errno : ESRCH, "the guest's PID 1 is gone");
                goto out;
        }
        pid_t pid = fork();
        if (pid < 0) {
                ret = vs_error(err, errno, "fork");
                goto out;
        }
        if (pid == 0) {
                /* in the guest's mount namespace: its root is "/", no host path is reachable */
                if (setns(ns, CLONE_NEWNS) < 0)
                        _exit(1);
                int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                int failed = 0;
                for (int i = 0; i < VS_VIEW_N; i++) {
                        if (fds[i] < 0)
                                continue;
                        int t = vs_openat2(
                            root, vs_view_files[i].target + 1, O_PATH | O_NOFOLLOW | O_CLOEXEC,
                            RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
                        if (t < 0)
                                continue; /* not there (no /sys): nothing to cover */
                        if (!view_target(t) ||
                            move_mount(fds[i], "", t, "",
                                       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                                failed++;
                        close(t);
                }
                _exit(failed ? 2 : 0);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                ret = vs_error(err, EIO, "bind the views into the guest (status %d)", status);
out:
        for (int i = 0; i < VS_VIEW_N; i++)
                vs_closep(&fds[i]);
        return ret;
}
