/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "context.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <grp.h>
#include <termios.h>
#include <time.h>

#include "context_int.h"
#include "netlink.h"
#include "limits.h"
#include "rlimit.h"
#include "selfexe.h"
#include "syscalls.h"
#include "util.h"

static char env_path[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
static char env_home[] = "HOME=/root";
static char env_container[] = "container=vserver";
char *const vs_context_env[] = {env_path, env_home, env_container, NULL};

/* From clone to exec: set-up takes milliseconds; a frozen or stalled one is refused. */
#define EXEC_TIMEOUT_MS 30000

/*
 * The end of a child we cloned: exit 0 on success (@r >= 0), else send
 * @cerr to the parent over @sock first (the parent reads it as the error).
 */
_Noreturn void vs_ctx_child_exit(int sock, int r, const VsError *cerr)
{
        if (r >= 0)
                _exit(0);
        ChildMsg m = {.type = MSG_ERROR, .error = *cerr};
        (void)!write(sock, &m, sizeof m);
        _exit(127);
}

void vs_context_spec_init(VsContextSpec *spec)
{
        *spec = (VsContextSpec){
            .caps = vs_caps_default(),
            .no_new_privs = true,
            .seccomp = {.mode = VS_SECCOMP_DEFAULT},
            .net = VS_NET_NONE,
            .stdio = {-1, -1, -1},
        };
}

int vs_ctx_send_fd_value(int sock, int type, int fd, int value)
{
        ChildMsg m = {.type = type, .error.code = value};
        return vs_send_fds(sock, &m, sizeof m, &fd, 1);
}

int vs_ctx_send_fd(int sock, int type, int fd)
{
        return vs_ctx_send_fd_value(sock, type, fd, 0);
}

/*
 * Close every descriptor but @keep (-1 entries ignored), the caller's
 * stdio included: the first thing a child does, so nothing of the host
 * (a cgroup directory, a log, the caller's terminal) is there to be named
 * through /proc/self/fd while we set up, let alone after the exec.
 */
int vs_ctx_keep_only(const int *keep, int n, int n_preserve)
{
        int sorted[16 + VS_CONTEXT_MAX_OVERLAYS + VS_CONTEXT_MAX_PRESERVE], m = 0;
        for (int i = 0; i < n_preserve && i < VS_CONTEXT_MAX_PRESERVE; i++)
                sorted[m++] = 3 + i;
        for (int i = 0; i < n && m < (int)ARRAY_SIZE(sorted); i++) {
                if (keep[i] < 3 + n_preserve && keep[i] >= 3)
                        continue;
                if (keep[i] < 0)
                        continue;
                int j = m++;
                for (; j > 0 && sorted[j - 1] > keep[i]; j--)
                        sorted[j] = sorted[j - 1];
                sorted[j] = keep[i];
        }
        unsigned from = 0;
        for (int i = 0; i < m; i++) {
                if ((unsigned)sorted[i] > from && close_range(from, (unsigned)sorted[i] - 1, 0) < 0)
                        return -errno;
                from = (unsigned)sorted[i] + 1;
        }
        return close_range(from, ~0U, 0) < 0 ? -errno : 0;
}

/*
 * chdir to @cwd inside the root we run in, never through a magic link
 * (CVE-2024-21626: /proc/self/fd/N leads to wherever N is) nor out of it.
 */
int vs_ctx_chdir_in_root(const char *cwd, bool or_root, VsError *err)
{
        _cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return vs_error(err, errno, "open /");
        _cleanup_close_ int dir =
            vs_openat2(root, cwd ? cwd : "/", O_PATH | O_DIRECTORY | O_CLOEXEC,
                       RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
        if (dir < 0 && or_root)
                dir = TAKE_FD(root);
        if (dir < 0)
                return vs_error(err, errno, "chdir %s", cwd);
        if (fchdir(dir) < 0)
                return vs_error(err, errno, "chdir %s", cwd ? cwd : "/");
        return 0;
}

int vs_ctx_find_program(const char *file, char *const *envp, char *buf, size_t size, VsError *err)
{
        if (strchr(file, '/')) {
                if ((size_t)snprintf(buf, size, "%s", file) >= size)
                        return vs_error_input(err, "exec: \"%s\": name too long", file);
                return 0;
        }
        const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        for (char *const *e = envp; e && *e; e++)
                if (strncmp(*e, "PATH=", 5) == 0)
                        path = *e + 5;
        for (const char *p = path; *p;) {
                size_t n = strcspn(p, ":");
                if (n && (size_t)snprintf(buf, size, "%.*s/%s", (int)n, p, file) < size) {
                        struct stat st;
                        if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
                                return 0;
                }
                p += n;
                p += *p == ':';
        }
        return vs_error(err, ENOENT, "exec: \"%s\": executable file not found in $PATH", file);
}

int vs_ctx_timens(const char *offsets, VsError *err)
{
        if (unshare(CLONE_NEWTIME) < 0)
                return vs_error(err, errno, "new time namespace");
        int r = vs_write_file_at(AT_FDCWD, "/proc/self/timens_offsets", offsets);
        if (r < 0)
                return vs_error(err, r, "set time namespace offsets");
        _cleanup_close_ int ns = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
        if (ns < 0 || setns(ns, CLONE_NEWTIME) < 0)
                return vs_error(err, errno, "enter the time namespace");
        return 0;
}

/* Uptime from zero: boottime and monotonic offsets of a new time namespace (Linux 5.6). */
static int setup_timens(VsError *err)
{
        struct timespec mono, boot;
        char buf[128];

        clock_gettime(CLOCK_MONOTONIC, &mono);
        clock_gettime(CLOCK_BOOTTIME, &boot);
        /* offset = -now, normalized so 0 <= nsec < 1e9 */
        long long ms = -(long long)mono.tv_sec - (mono.tv_nsec ? 1 : 0);
        long mn = mono.tv_nsec ? 1000000000L - mono.tv_nsec : 0;
        long long bs = -(long long)boot.tv_sec - (boot.tv_nsec ? 1 : 0);
        long bn = boot.tv_nsec ? 1000000000L - boot.tv_nsec : 0;
        snprintf(buf, sizeof buf, "monotonic %lld %ld\nboottime %lld %ld\n", ms, mn, bs, bn);
        return vs_ctx_timens(buf, err);
}

/* A pty master from the guest's devpts must really be one: the guest owns that path. */
bool vs_ctx_is_ptmx(int fd)
{
        struct stat st;
        return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 5 &&
               minor(st.st_rdev) == 2;
}

/*
 * A pty from the guest's own devpts instance (@rootfd: the guest's root);
 * the master (opened with @flags added) goes to the caller over @sock, the
 * terminal is returned.
 */
int vs_ctx_open_pty(int rootfd, int flags, int sock, VsError *err)
{
        _cleanup_close_ int master =
            vs_openat2(rootfd, "dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | flags,
                       RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
        if (master < 0)
                return vs_error(err, errno, "open /dev/pts/ptmx");
        if (!vs_ctx_is_ptmx(master))
                return vs_error(err, ENOTTY, "/dev/pts/ptmx is not a pty multiplexer");
        int unlock = 0;
        if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
                return vs_error(err, errno, "unlock the pty");
        int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0)
                return vs_error(err, errno, "open the pty's terminal");
        int r = vs_ctx_send_fd(sock, MSG_PTY, master);
        if (r < 0) {
                close(slave);
                return vs_error(err, r, "pass the pty to the caller");
        }
        return slave;
}

/*
 * A console that is a log only: a pipe, its read end to the caller, its
 * write end returned (init's stdout and stderr); the guest's /dev/null is
 * bound over /dev/console and returned in *ret_null (stdin).  No pty: its
 * two line disciplines hold 24 KiB of vmalloc'd buffers a guest.
 */
static int setup_pipe(int rootfd, int sock, int *ret_write, int *ret_null, VsError *err)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return vs_error(err, errno, "pipe for the console");
        _cleanup_close_ int rd = p[0], wr = p[1];
        int r = vs_ctx_send_fd(sock, MSG_PTY, rd);
        if (r < 0)
                return vs_error(err, r, "pass the console to the caller");
        _cleanup_close_ int null =
            vs_openat2(rootfd, "dev/null", O_RDWR | O_NOCTTY | O_CLOEXEC,
                       RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
        if (null < 0)
                return vs_error(err, errno, "open /dev/null");
        r = vs_mount_bind_fd(rootfd, null, "/dev/console", err);
        if (r < 0)
                return r;
        *ret_write = TAKE_FD(wr);
        *ret_null = TAKE_FD(null);
        return 0;
}

/* The guest's console: a pty, its terminal bound over /dev/console. */
static int setup_pty(int rootfd, int sock, int *ret_slave, VsError *err)
{
        _cleanup_close_ int slave = vs_ctx_open_pty(rootfd, 0, sock, err);
        if (slave < 0)
                return slave;
        int r = vs_mount_bind_fd(rootfd, slave, "/dev/console", err);
        if (r < 0)
                return r;
        *ret_slave = TAKE_FD(slave);
        return 0;
}

/*
 * stdio from @stdio (pipes the caller relays), else the pty @slave; with
 * @ctty the pty becomes our controlling terminal.  A session of our own
 * either way: nothing of the caller's session reaches the guest.
 */
int vs_ctx_setup_stdio(const int stdio[3], int slave, bool ctty, VsError *err)
{
        if (setsid() < 0)
                return vs_error(err, errno, "new session");
        if (slave >= 0 && ctty && ioctl(slave, TIOCSCTTY, 0) < 0)
                return vs_error(err, errno, "make the pty the controlling terminal");
        for (int i = 0; i < 3; i++) {
                int fd = stdio[i] >= 0 ? stdio[i] : slave;
                if (fd < 0)
                        return vs_error(err, EBADF, "no stdio for the guest (a pipe or a pty)");
                if (fd != i && dup2(fd, i) < 0)
                        return vs_error(err, errno, "connect stdio");
                /* already in place (our fds 0-2 were closed first): keep it across exec */
                if (fd == i && fcntl(i, F_SETFD, 0) < 0)
                        return vs_error(err, errno, "connect stdio");
        }
        return 0;
}

/*
 * In a new user namespace: become its root (host ids from the range) before
 * anything is created, so files and mounts are the guest's.  A credential
 * change clears the parent-death signal: set it again, then make sure the
 * caller did not die in between (its end of @sock hangs up).
 */
int vs_ctx_become_ns_root(int sock, VsError *err)
{
        if (setresgid(0, 0, 0) < 0 || setgroups(0, NULL) < 0 || setresuid(0, 0, 0) < 0)
                return vs_error(err, errno, "become root of the guest's user namespace");
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                return vs_error(err, errno, "set the parent-death signal");
        struct pollfd p = {.fd = sock, .events = POLLRDHUP};
        if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP)))
                return vs_error(err, EPIPE, "the caller is gone");
        return 0;
}

/* The caller's go, with the trees it made for us (user namespaces) in @fds. */
int vs_ctx_wait_for_go(int sock, int *fds, int max, int *ret_n, VsError *err)
{
        char go;
        ssize_t n = vs_recv_fds(sock, &go, 1, fds, max, ret_n);
        if (n != 1) {
                for (int i = 0; i < *ret_n; i++)
                        close(fds[i]);
                *ret_n = 0;
                return vs_error(err, n < 0 ? (int)-n : EPIPE, "wait for the caller");
        }
        return 0;
}

void vs_ctx_reset_signals(void)
{
        sigset_t none;
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        for (int s = 1; s < NSIG; s++)
                sigaction(s, &dfl, NULL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The last steps before exec, shared by start, join and the OCI front. */
int vs_ctx_lockdown(const VsLockdown *l, int sock, VsError *err)
{
        /* as many CPUs as its views show (its children inherit them) */
        if (l->affinity && sched_setaffinity(0, sizeof *l->affinity, l->affinity) < 0)
                return vs_error(err, errno, "set the CPU affinity");
        for (int i = 0; i < l->n_rlimits; i++) {
                const VsRlimit *rl = &l->rlimits[i];
                if (setrlimit(rl->resource, &rl->limit) == 0)
                        continue;
                int e = errno;
                struct rlimit now = {0};
                char want[32], have[32];
                getrlimit(rl->resource, &now);
                return vs_error(err, e,
                                "set rlimit %s to hard %s (ours is %s; raising a hard limit needs "
                                "CAP_SYS_RESOURCE)",
                                vs_rlimit_name(rl->resource),
                                vs_rlimit_format(rl->limit.rlim_max, want, sizeof want),
                                vs_rlimit_format(now.rlim_max, have, sizeof have));
        }
        if (l->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return vs_error(err, errno, "set no_new_privs");
        /* before the caps go: without no_new_privs, loading needs CAP_SYS_ADMIN */
        if (l->notify) {
                /* first: the deny list may refuse seccomp() itself; its listener to the caller */
                int fd = vs_seccomp_load_listener(l->notify, err);
                if (fd < 0)
                        return fd;
                int r = vs_ctx_send_fd(sock, MSG_NOTIFY, fd);
                close(fd);
                if (r < 0)
                        return vs_error(err, r, "pass the notification listener to the caller");
        }
        int r = vs_seccomp_load(l->deny, err);
        if (r < 0)
                return r;
        r = l->cred ? vs_cred_apply(l->cred, err) : vs_caps_apply(l->caps, err);
        if (r < 0)
                return r;
        umask(l->set_umask ? l->umask : 022);
        vs_ctx_reset_signals();
        if (prctl(PR_SET_PDEATHSIG, 0) < 0)
                return vs_error(err, errno, "clear the parent-death signal");
        /* No fd of the caller's may reach the guest (but those it was asked to pass on). */
        if (close_range(3 + (unsigned)l->n_preserve, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                return vs_error(err, errno, "close inherited fds");
        return 0;
}

/*
 * init = none: a PID 1 that only reaps orphans and ends on a stop signal.
 * It never execs; closing the sync socket tells the caller it runs.
 */
static _Noreturn void reaper(int sock)
{
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        close(sock);
        for (int fd = 3; fd < 1024; fd++)
                close(fd);
        for (;;) {
                siginfo_t si;
                int sig = sigwaitinfo(&all, &si);
                if (sig == SIGCHLD) {
                        while (waitpid(-1, NULL, WNOHANG) > 0)
                                ;
                } else if (sig == SIGTERM || sig == SIGINT || sig == SIGPWR || sig == SIGHUP ||
                           sig == SIGRTMIN + 3) {
                        _exit(0);
                }
        }
}

/* The root as this context mounts it: user namespace, where its sysfs comes from. */
static VsRootSpec root_spec(const VsContextSpec *spec)
{
        VsRootSpec root = spec->root;
        root.userns = spec->userns.count > 0;
        root.cgroup_ro = !spec->delegate;
        root.host_sysfs = root.userns && (spec->net == VS_NET_HOST || spec->net == VS_NET_ISOLATE);
        root.rootfs_fd = root.sysfs_fd = -1;
        root.bind_fds = NULL;
        return root;
}

/* Runs in the new context; returns only on failure. */
static int child(const VsContextSpec *spec, const Filters *filters, int sock, VsError *err)
{
        int r;
        bool userns = spec->userns.count > 0;

        int keep[4 + VS_CONTEXT_MAX_OVERLAYS] = {sock, spec->stdio[0], spec->stdio[1],
                                                 spec->stdio[2]};
        int n_keep = 4;
        for (int i = 0; i < spec->root.n_overlays && i < VS_CONTEXT_MAX_OVERLAYS; i++)
                keep[n_keep++] = spec->root.overlays[i].fd;
        if (vs_ctx_keep_only(keep, n_keep, 0) < 0)
                return vs_error(err, errno, "close inherited fds");
        /* A dead caller mid-setup must not leave a half-made context behind. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                return vs_error(err, errno, "set the parent-death signal");
        int trees[1 + VS_MAX_PASS_FDS], n_trees = 0;
        r = vs_ctx_wait_for_go(sock, trees, (int)ARRAY_SIZE(trees), &n_trees, err);
        if (r < 0)
                return r;
        VsRootSpec root = root_spec(spec);
        /*
         * ping without NET_RAW: ICMP datagram sockets for every group, in its own netns (in
         * a user namespace, the groups it maps: a group it does not map refuses the range)
         */
        char groups[32];
        const char *own_net[] = {"net/ipv4/ping_group_range", groups, NULL};
        snprintf(groups, sizeof groups, "0 %u",
                 spec->userns.count ? spec->userns.count - 1 : 2147483647U);
        if (spec->net == VS_NET_NONE || spec->net == VS_NET_NETNS)
                root.sysctls = own_net;
        if (userns) {
                int want = 1 + root.host_sysfs + root.n_binds;
                if (n_trees != want)
                        return vs_error(err, EPROTO, "the caller sent %d trees, not %d", n_trees,
                                        want);
                root.rootfs_fd = trees[0];
                root.sysfs_fd = root.host_sysfs ? trees[1] : -1;
                root.bind_fds = trees + 1 + root.host_sysfs;
        } else if (n_trees) {
                return vs_error(err, EPROTO, "unexpected trees from the caller");
        }

        /* a booting guest's /sys/fs/cgroup: our own cgroups, bound while we see their paths */
        VsCgroupTree cgtrees[VS_CGROUP_MAX_DIRS];
        if (root.boot) {
                r = vs_cgroup_own_trees(cgtrees, VS_CGROUP_MAX_DIRS, err);
                if (r < 0)
                        return r;
                root.cgroup_trees = cgtrees;
                root.n_cgroup_trees = r;
        }
        /* Now that our cgroups are set, make them the root of our view. */
        if (unshare(CLONE_NEWCGROUP) < 0)
                return vs_error(err, errno, "new cgroup namespace");
        r = setup_timens(err);
        if (r < 0)
                return r;
        /* the root goes in place through host paths, while we still reach them */
        _cleanup_close_ int rootfd = vs_mount_place_root(&root, err);
        if (rootfd < 0)
                return rootfd;
        if (userns) {
                r = vs_ctx_become_ns_root(sock, err);
                if (r < 0)
                        return r;
        }
        if (spec->hostname && sethostname(spec->hostname, strlen(spec->hostname)) < 0)
                return vs_error(err, errno, "set the hostname");
        if (spec->domainname && setdomainname(spec->domainname, strlen(spec->domainname)) < 0)
                return vs_error(err, errno, "set the domain name");
        /* our new IPC namespace, through the host's /proc while we still see it */
        if (spec->limits) {
                r = vs_limits_apply_ipc(spec->limits, err);
                if (r < 0)
                        return r;
        }
        if (spec->net == VS_NET_NONE || spec->net == VS_NET_NETNS) {
                r = vs_netlink_link_up(1, err); /* lo is always ifindex 1 in a new netns */
                if (r < 0)
                        return vs_error_prefix(err, "bring up loopback");
        }

        r = vs_mount_fill_root(&root, rootfd, err);
        for (int i = 1; i < n_trees; i++) /* the root's is rootfd's now */
                close(trees[i]);
        if (r < 0)
                return r;
        _cleanup_close_ int slave = -EBADF, null = -EBADF;
        if (spec->console && spec->console_pipe && !spec->tty)
                r = setup_pipe(rootfd, sock, &slave, &null, err);
        else if (spec->tty || spec->console)
                r = setup_pty(rootfd, sock, &slave, err);
        if (r < 0)
                return r;
        r = vs_mount_pivot(rootfd, err);
        if (r < 0)
                return r;
        r = vs_ctx_chdir_in_root(spec->cwd, false, err);
        if (r < 0)
                return r;
        r = vs_ctx_setup_stdio(spec->stdio, slave, spec->tty, err);
        if (r == 0 && null >= 0 && spec->stdio[0] < 0 && dup2(null, 0) < 0)
                r = vs_error(err, errno, "connect stdin");
        if (r < 0)
                return r;
        VsLockdown l = {.rlimits = spec->rlimits,
                        .n_rlimits = spec->n_rlimits,
                        .no_new_privs = spec->no_new_privs,
                        .deny = filters->deny,
                        .notify = filters->notify,
                        .caps = spec->caps,
                        .affinity = spec->affinity};
        r = vs_ctx_lockdown(&l, sock, err);
        if (r < 0)
                return r;
        if (!spec->argv)
                reaper(sock);
        if (spec->envp)
                execvpe(spec->argv[0], spec->argv, spec->envp);
        else
                execvpe(spec->argv[0], spec->argv, vs_context_env);
        return vs_error(err, errno, "exec %s", spec->argv[0]);
}

/*
 * Read the child's reports until the socket closes: CLOEXEC closes it at the
 * exec, so EOF without an error means the command runs.
 */
int vs_ctx_wait(int sock, VsContext *ctx, int *ret_into, int *ret_stop, VsError *err)
{
        if (ret_stop)
                *ret_stop = 0;
        for (;;) {
                /* bounded: a guest may freeze the cgroup we join, or stall our set-up */
                struct pollfd p = {.fd = sock, .events = POLLIN};
                int pr = poll(&p, 1, EXEC_TIMEOUT_MS);
                if (pr < 0 && errno == EINTR)
                        continue;
                if (pr == 0)
                        return vs_error(err, ETIMEDOUT, "the command did not start within %d s",
                                        EXEC_TIMEOUT_MS / 1000);
                ChildMsg m;
                char cbuf[CMSG_SPACE(sizeof(int))];
                struct iovec iov = {.iov_base = &m, .iov_len = sizeof m};
                struct msghdr mh = {.msg_iov = &iov,
                                    .msg_iovlen = 1,
                                    .msg_control = cbuf,
                                    .msg_controllen = sizeof cbuf};
                ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return vs_error(err, errno, "read from the context");
                if (n == 0)
                        return 0;
                if ((size_t)n != sizeof m)
                        return vs_error(err, EPROTO, "short message from the context");
                if (m.type == MSG_ERROR) {
                        m.error.msg[sizeof m.error.msg - 1] = '\0';
                        if (err)
                                *err = m.error;
                        return -(m.error.code ? m.error.code : EIO);
                }
                if ((m.type == MSG_READY || m.type == MSG_HOOKS) && ret_stop) {
                        *ret_stop = m.type;
                        return 0;
                }
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                if ((m.type != MSG_PTY && m.type != MSG_PIDFD && m.type != MSG_NOTIFY) || !c ||
                    c->cmsg_type != SCM_RIGHTS)
                        return vs_error(err, EPROTO, "unexpected message from the context");
                int fd;
                memcpy(&fd, CMSG_DATA(c), sizeof fd);
                int *slot = m.type == MSG_PTY     ? &ctx->pty_master
                            : m.type == MSG_PIDFD ? &ctx->pidfd
                                                  : &ctx->notify;
                if (*slot >= 0) {
                        close(fd);
                        return vs_error(err, EPROTO, "a second descriptor from the context");
                }
                *slot = fd;
                if (m.type == MSG_PIDFD && ret_into)
                        *ret_into = m.error.code;
                if (m.type == MSG_PIDFD)
                        return 0; /* the caller goes on from here */
        }
}

/*
 * clone3, born straight into the cgroup2 directory @cgfd where the kernel
 * can (CLONE_INTO_CGROUP, Linux 5.7); *ret_into says whether it was, else
 * the caller moves the child after the fact.
 */
long vs_ctx_clone_into(struct clone_args *args, int cgfd, bool *ret_into)
{
        *ret_into = cgfd >= 0;
        if (*ret_into) {
                args->flags |= CLONE_INTO_CGROUP;
                args->cgroup = (unsigned long)cgfd;
        }
        long pid = vs_clone3(args);
        if (pid < 0 && *ret_into && (errno == EOPNOTSUPP || errno == EINVAL || errno == EBUSY)) {
                *ret_into = false;
                args->flags &= ~(unsigned long long)CLONE_INTO_CGROUP;
                args->cgroup = 0;
                pid = vs_clone3(args);
        }
        return pid;
}

/* A child that failed half-way: gone, and reaped, before we report. */
void vs_ctx_kill_and_reap(int pidfd)
{
        siginfo_t si;
        if (pidfd < 0)
                return;
        pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
        while (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR)
                ;
}

/*
 * What a guest may be handed as stdio: a pipe or socket the caller relays,
 * or the null device; with a pty, -1.  Never a host file or terminal.
 */
static int check_stdio(const int stdio[3], bool pty, VsError *err)
{
        for (int i = 0; i < 3; i++) {
                struct stat st;
                if (stdio[i] < 0 && pty)
                        continue;
                if (stdio[i] < 0 || fstat(stdio[i], &st) < 0)
                        return vs_error(err, EBADF, "stdio %d for the guest: not open", i);
                if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) ||
                    (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)))
                        continue;
                return vs_error(err, EPERM,
                                "stdio %d for the guest is a host file or terminal (only pipes "
                                "that we relay, or a pty)",
                                i);
        }
        return 0;
}

int vs_ctx_check_caller(const int stdio[3], bool pty, VsError *err)
{
        if (!vs_selfexe_sealed())
                return vs_error(err, EPERM,
                                "refusing to enter a guest from an unsealed copy of "
                                "the program (CVE-2019-5736; see selfexe.h)");
        return check_stdio(stdio, pty, err);
}

/*
 * The go for a child in its own user namespace, with the trees only the
 * host may make: its root idmapped to that namespace, and its bind sources.
 */
static int send_trees(int sock, const VsContextSpec *spec, pid_t pid, VsError *err)
{
        VsRootSpec r = root_spec(spec);
        const VsRootSpec *root = &r;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
        _cleanup_close_ int userns = open(path, O_RDONLY | O_CLOEXEC);
        if (userns < 0)
                return vs_error(err, errno, "open the guest's user namespace");
        int fds[VS_MAX_PASS_FDS];
        int n = vs_mount_make_trees(root, userns, fds, err);
        if (n < 0)
                return n;
        int rc = vs_send_fds(sock, "g", 1, fds, n);
        for (int i = 0; i < n; i++)
                close(fds[i]);
        return rc < 0 ? vs_error(err, rc, "start the context") : 0;
}

int vs_context_start(const VsContextSpec *spec, VsContext *ret, VsError *err)
{
        VsContext ctx = VS_CONTEXT_INIT;
        Filters filters = {NULL, NULL};
        int sv[2] = {-EBADF, -EBADF};
        int r;

        bool userns = spec->userns.count > 0;
        if ((spec->argv && !spec->argv[0]) || !spec->root.rootfs)
                return vs_error_input(err, "no command or root given");
        /* the relaxed filter is only safe behind a user namespace: fail closed */
        if (spec->seccomp.userns && !userns)
                return vs_error_input(err, "the user-namespace seccomp filter needs a user "
                                           "namespace (no id range given)");
        if (spec->root.n_overlays > VS_CONTEXT_MAX_OVERLAYS)
                return vs_error_input(err, "too many files to bind over (at most %d)",
                                      VS_CONTEXT_MAX_OVERLAYS);
        if (spec->root.n_binds > VS_MAX_PASS_FDS - 2)
                return vs_error_input(err, "too many bind mounts (at most %d)",
                                      VS_MAX_PASS_FDS - 2);
        r = vs_ctx_check_caller(spec->stdio, spec->tty || spec->console, err);
        if (r < 0)
                return r;

        r = vs_seccomp_build_filters(&spec->seccomp, spec->notify, &filters.deny, &filters.notify,
                                     err);
        if (r < 0)
                return r;
        r = vs_cgroup_create(&ctx.cgroup, spec->cgroup_parent ? spec->cgroup_parent : "/vserver",
                             spec->name, spec->delegate, err);
        if (r < 0)
                goto out;
        if (spec->limits) {
                r = vs_limits_apply(&ctx.cgroup, spec->limits, NULL, false, err);
                if (r < 0)
                        goto fail;
        }
        if (userns && spec->delegate) {
                /* the guest's root may make cgroups below its own (systemd must) */
                r = vs_cgroup_delegate(&ctx.cgroup, spec->userns.start, spec->userns.start, err);
                if (r < 0)
                        goto fail;
        }
        if (spec->net_cgroup) {
                r = spec->net_cgroup(&ctx.cgroup, spec->net_data, err);
                if (r < 0)
                        goto fail;
        }
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
                r = vs_error(err, errno, "socketpair");
                goto fail;
        }

        int pidfd = -1;
        struct clone_args args = {
            .flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_PIDFD |
                     (spec->net == VS_NET_NONE || spec->net == VS_NET_NETNS ? CLONE_NEWNET : 0) |
                     (userns ? CLONE_NEWUSER : 0),
            .pidfd = (unsigned long)&pidfd,
            .exit_signal = SIGCHLD,
        };
        bool into;
        long pid = vs_ctx_clone_into(&args, vs_cgroup_clone_fd(&ctx.cgroup), &into);
        if (pid < 0) {
                r = vs_error(err, errno, "clone3");
                goto fail;
        }
        if (pid == 0) {
                VsError cerr = {0};
                close(sv[0]);
                vs_ctx_child_exit(sv[1], child(spec, &filters, sv[1], &cerr),
                                  &cerr); /* returns on failure */
        }
        ctx.pid = (pid_t)pid;
        ctx.pidfd = pidfd;
        vs_closep(&sv[1]);
        sv[1] = -EBADF;

        r = into ? vs_cgroup_attach_v1(&ctx.cgroup, ctx.pid, err)
                 : vs_cgroup_attach(&ctx.cgroup, ctx.pid, err);
        if (r < 0)
                goto fail;
        if (userns) {
                r = vs_idmap_write(ctx.pid, spec->userns, err);
                if (r < 0)
                        goto fail;
        }
        if (spec->net_child) {
                r = spec->net_child(ctx.pid, ctx.pidfd, spec->net_data, err);
                if (r < 0)
                        goto fail;
        }
        r = userns ? send_trees(sv[0], spec, ctx.pid, err)
                   : (write(sv[0], "g", 1) == 1 ? 0 : vs_error(err, errno, "start the context"));
        if (r < 0)
                goto fail;
        r = vs_ctx_wait(sv[0], &ctx, NULL, NULL, err);
        if (r < 0)
                goto fail;
        vs_closep(&sv[0]);
        vs_seccomp_free(filters.deny);
        vs_seccomp_free(filters.notify);
        *ret = ctx;
        return 0;

fail:
        vs_ctx_kill_and_reap(ctx.pidfd);
        vs_context_destroy(&ctx, NULL);
out:
        vs_closep(&sv[0]);
        vs_closep(&sv[1]);
        vs_seccomp_free(filters.deny);
        vs_seccomp_free(filters.notify);
        return r;
}

int vs_context_wait(VsContext *ctx, int *ret_code, VsError *err)
{
        siginfo_t si = {0};
        while (waitid(P_PIDFD, (id_t)ctx->pidfd, &si, WEXITED) < 0)
                if (errno != EINTR)
                        return vs_error(err, errno, "wait for the context");
        *ret_code = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
        return 0;
}

int vs_context_destroy(VsContext *ctx, VsError *err)
{
        int r = vs_cgroup_destroy(&ctx->cgroup, err);
        vs_closep(&ctx->pidfd);
        vs_closep(&ctx->pty_master);
        vs_closep(&ctx->notify);
        ctx->pidfd = ctx->pty_master = ctx->notify = -EBADF;
        return r;
}

void vs_context_release(VsContext *ctx)
{
        vs_closep(&ctx->pidfd);
        vs_closep(&ctx->pty_master);
        vs_closep(&ctx->notify);
        ctx->pidfd = ctx->pty_master = ctx->notify = -EBADF;
        vs_cgroup_release(&ctx->cgroup);
}

/*
 * The joining command, born inside every namespace of the guest (the
 * intermediate entered them); returns only on failure.
 */
static int join_child(const VsJoinSpec *spec, const Filters *filters, bool userns, int sock,
                      VsError *err)
{
        char go;
        int r;

        const int keep[] = {sock, spec->stdio[0], spec->stdio[1], spec->stdio[2]};
        if (vs_ctx_keep_only(keep, (int)ARRAY_SIZE(keep), spec->n_preserve) < 0)
                return vs_error(err, errno, "close inherited fds");
        /* Until exec, nothing in the guest may look into us (/proc/PID/fd, exe, mem, environ). */
        if (prctl(PR_SET_DUMPABLE, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                return vs_error(err, errno, "prctl");
        if (read(sock, &go, 1) != 1)
                return vs_error(err, EPIPE, "wait for the caller");
        if (userns) {
                r = vs_ctx_become_ns_root(sock, err);
                if (r < 0)
                        return r;
        }
        r = vs_ctx_chdir_in_root(spec->cwd, spec->cwd_or_root, err);
        if (r < 0)
                return r;

        _cleanup_close_ int slave = -EBADF;
        if (spec->tty) {
                _cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                slave = vs_ctx_open_pty(root, O_NONBLOCK, sock, err);
                if (slave < 0)
                        return slave;
        }
        r = vs_ctx_setup_stdio(spec->stdio, slave, spec->tty, err);
        if (r < 0)
                return r;
        VsLockdown l = {.rlimits = spec->rlimits,
                        .n_rlimits = spec->n_rlimits,
                        .no_new_privs = spec->no_new_privs,
                        .deny = spec->filter ? spec->filter : filters->deny,
                        .notify = filters->notify,
                        .caps = spec->caps,
                        .cred = spec->cred,
                        .affinity = spec->affinity,
                        .set_umask = spec->set_umask,
                        .umask = spec->umask,
                        .n_preserve = spec->n_preserve};
        r = vs_ctx_lockdown(&l, sock, err);
        if (r < 0)
                return r;
        const char *file = spec->path ? spec->path : spec->argv[0];
        if (spec->path_lookup) {
                char found[4096];
                r = vs_ctx_find_program(file, spec->envp, found, sizeof found, err);
                if (r < 0)
                        return r;
                execve(found, spec->argv, spec->envp);
        } else {
                execvpe(file, spec->argv, spec->envp ? spec->envp : vs_context_env);
        }
        return vs_error(err, errno, "exec %s", file);
}

/*
 * Still in the host's pid namespace, where the guest cannot see us: enter
 * the guest's mount, uts, ipc, net, cgroup and time namespaces first, its
 * pid namespace last, and only then fork the command.  Born there, it
 * never shows the host's mounts or sockets through /proc/PID.  Its parent
 * is the caller (CLONE_PARENT), whom its pidfd goes to.
 */
static int join_intermediate(const VsJoinSpec *spec, const Filters *filters, bool userns, int cgfd,
                             int sock, VsError *err)
{
        const int keep[] = {sock,           spec->stdio[0], spec->stdio[1],
                            spec->stdio[2], spec->pidfd,    cgfd};
        if (vs_ctx_keep_only(keep, (int)ARRAY_SIZE(keep), spec->n_preserve) < 0)
                return vs_error(err, errno, "close inherited fds");
        if (prctl(PR_SET_DUMPABLE, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                return vs_error(err, errno, "prctl");
        /* Linux 5.8: setns on a pidfd enters several namespaces at once. */
        if (setns(spec->pidfd, CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET |
                                   CLONE_NEWCGROUP | CLONE_NEWTIME | CLONE_NEWPID |
                                   (userns ? CLONE_NEWUSER : 0)) < 0)
                return vs_error(err, errno, "enter the namespaces");
        close(spec->pidfd);
        int pidfd = -1;
        struct clone_args args = {
            .flags = CLONE_PIDFD | CLONE_PARENT,
            .pidfd = (unsigned long)&pidfd,
        };
        bool into;
        long pid = vs_ctx_clone_into(&args, cgfd, &into);
        if (pid < 0)
                return vs_error(err, errno, "clone3");
        if (pid == 0) {
                VsError cerr = {0};
                if (cgfd >= 0)
                        close(cgfd);
                /* v1 placement is the caller's, after our pidfd reaches it; returns on failure */
                vs_ctx_child_exit(sock, join_child(spec, filters, userns, sock, &cerr), &cerr);
        }
        /* with whether it was born in the cgroup2 leaf: the caller moves it otherwise */
        int r = vs_ctx_send_fd_value(sock, MSG_PIDFD, pidfd, into);
        if (r < 0) {
                vs_ctx_kill_and_reap(pidfd);
                return vs_error(err, r, "pass the command's pidfd to the caller");
        }
        return 0;
}

int vs_context_own_userns(pid_t pid, bool *ret, VsError *err)
{
        char path[64];
        struct stat theirs, ours;
        snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
        if (stat(path, &theirs) < 0 || stat("/proc/self/ns/user", &ours) < 0)
                return vs_error(err, errno, "the context's user namespace");
        *ret = theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev;
        return 0;
}

int vs_context_join(const VsJoinSpec *spec, VsContext *ret, VsError *err)
{
        VsContext ctx = VS_CONTEXT_INIT;
        Filters filters = {NULL, NULL};
        int sv[2] = {-EBADF, -EBADF};
        int mid_pidfd = -EBADF;
        int r;

        if (!spec->argv || !spec->argv[0])
                return vs_error_input(err, "no command given");
        r = vs_ctx_check_caller(spec->stdio, spec->tty, err);
        if (r < 0)
                return r;
        pid_t init = vs_pidfd_pid(spec->pidfd);
        if (init < 0)
                return vs_error(err, errno, "the context's PID 1");
        /* a user namespace of its own: we enter it and act as its root */
        bool userns = false;
        r = vs_context_own_userns(init, &userns, err);
        if (r < 0)
                return r;
        if (pidfd_send_signal(spec->pidfd, 0, NULL, 0) < 0) /* still the one we looked at */
                return vs_error(err, errno, "the context's PID 1");
        if (spec->seccomp.userns && !userns)
                return vs_error_input(err, "the user-namespace seccomp filter needs a guest with "
                                           "a user namespace of its own");
        r = spec->filter ? vs_seccomp_build_notify(spec->notify, &filters.notify, err)
                         : vs_seccomp_build_filters(&spec->seccomp, spec->notify, &filters.deny,
                                                    &filters.notify, err);
        if (r < 0)
                return r;
        r = vs_cgroup_of_pid(&ctx.cgroup, init, err);
        if (r < 0)
                goto out;
        /* a guest may freeze its own cgroup; what we start there would never run */
        if (vs_cgroup_frozen(&ctx.cgroup) > 0) {
                r = vs_error(err, EBUSY,
                             "its cgroup is frozen from inside (vserver resume thaws it)");
                goto out;
        }
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
                r = vs_error(err, errno, "socketpair");
                goto out;
        }
        struct clone_args args = {
            .flags = CLONE_PIDFD,
            .pidfd = (unsigned long)&mid_pidfd,
            .exit_signal = SIGCHLD,
        };
        long pid = vs_clone3(&args);
        if (pid < 0) {
                r = vs_error(err, errno, "clone3");
                goto out;
        }
        if (pid == 0) {
                VsError cerr = {0};
                close(sv[0]);
                vs_ctx_child_exit(sv[1],
                                  join_intermediate(spec, &filters, userns,
                                                    vs_cgroup_clone_fd(&ctx.cgroup), sv[1], &cerr),
                                  &cerr);
        }
        vs_closep(&sv[1]);
        sv[1] = -EBADF;
        int into = 0;
        r = vs_ctx_wait(sv[0], &ctx, &into, NULL, err); /* up to the command's pidfd */
        if (r == 0 && ctx.pidfd < 0)
                r = vs_error(err, EPROTO, "the context ended before the command was made");
        vs_ctx_kill_and_reap(mid_pidfd); /* done with its part, or failed */
        vs_closep(&mid_pidfd);
        if (r < 0)
                goto fail;
        ctx.pid = vs_pidfd_pid(ctx.pidfd);
        if (ctx.pid <= 0) {
                r = vs_error(err, ESRCH, "the command's pid");
                goto fail;
        }
        r = into ? vs_cgroup_attach_v1(&ctx.cgroup, ctx.pid, err)
                 : vs_cgroup_attach(&ctx.cgroup, ctx.pid, err);
        if (r == 0 && write(sv[0], "g", 1) != 1)
                r = vs_error(err, errno, "start the command");
        if (r == 0)
                r = vs_ctx_wait(sv[0], &ctx, NULL, NULL, err);
        if (r == 0 && ctx.pty_master >= 0 && !vs_ctx_is_ptmx(ctx.pty_master))
                r = vs_error(err, ENOTTY, "the guest passed a pty that is not one");
        if (r < 0)
                goto fail;
        vs_cgroup_release(&ctx.cgroup);
        vs_closep(&sv[0]);
        vs_seccomp_free(filters.deny);
        vs_seccomp_free(filters.notify);
        *ret = ctx;
        return 0;
fail:
        vs_ctx_kill_and_reap(ctx.pidfd);
out:
        vs_context_release(&ctx);
        vs_closep(&mid_pidfd);
        vs_closep(&sv[0]);
        vs_closep(&sv[1]);
        vs_seccomp_free(filters.deny);
        vs_seccomp_free(filters.notify);
        return r;
}
