/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "util.h"

#define MAX_CONSOLES 4096
#define CHUNK        16384 /* per console and turn: one busy guest cannot starve the rest */
/*
 * What one console may write a second.  Past it, its master leaves the
 * poll set until the next second: the guest's writes then block on a full
 * pty (backpressure), so a flood costs the host's keeper no more than this.
 */
#define RATE_BYTES (1 << 20)

typedef struct AttachMsg {
        char name[64];
        char log[PATH_MAX];
        unsigned long long max_size;
} AttachMsg;

typedef struct Console {
        int master, log;
        /* ours: the console outlives the guest closing it (systemd does); -EBADF for a pipe */
        int slave;
        int pidfd; /* the guest's PID 1: its end is the console's */
        unsigned long long size, max_size;
        long long second; /* the second @spent counts in (CLOCK_MONOTONIC) */
        size_t spent;     /* bytes read in it */
        bool paused;      /* out of the poll set until the next second */
        char path[PATH_MAX];
} Console;

static long long now_s(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (long long)t.tv_sec;
}

static int sock_path(const char *run_dir, struct sockaddr_un *sa, VsError *err)
{
        *sa = (struct sockaddr_un){.sun_family = AF_UNIX};
        if (snprintf(sa->sun_path, sizeof sa->sun_path, "%s/console.sock", run_dir) >=
            (int)sizeof sa->sun_path)
                return vs_error(err, ENAMETOOLONG, "%s/console.sock", run_dir);
        return 0;
}

static int open_log(Console *c)
{
        vs_closep(&c->log);
        c->log = open(c->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (c->log < 0)
                return -errno;
        struct stat st;
        if (fstat(c->log, &st) < 0 || !S_ISREG(st.st_mode)) {
                vs_closep(&c->log);
                c->log = -EBADF;
                return -EINVAL;
        }
        c->size = (unsigned long long)st.st_size;
        return 0;
}

/* NAME.log becomes NAME.log.1 (the one before is dropped); a new NAME.log. */
static void rotate(Console *c)
{
        char old[PATH_MAX + 4];
        snprintf(old, sizeof old, "%s.1", c->path);
        if (rename(c->path, old) < 0 && errno != ENOENT)
                (void)!ftruncate(c->log, 0);
        (void)open_log(c);
}

/* Read a chunk into the log; false once this console has had its second's worth. */
static bool pump(Console *c)
{
        char buf[CHUNK];
        long long now = now_s();
        if (now != c->second) {
                c->second = now;
                c->spent = 0;
        }
        ssize_t n = read(c->master, buf, sizeof buf);
        if (n <= 0)
                return true; /* EAGAIN, or nothing more */
        c->spent += (size_t)n;
        if (c->log >= 0 && c->size + (unsigned long long)n > c->max_size)
                rotate(c);
        if (c->log >= 0 && vs_write_all(c->log, buf, (size_t)n) == 0)
                c->size += (unsigned long long)n;
        return c->spent < RATE_BYTES;
}

static void stamp(Console *c)
{
        char line[128];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(line, sizeof line, "--- vserver start %Y-%m-%dT%H:%M:%SZ ---\n", &tm);
        if (c->log >= 0 && vs_write_all(c->log, line, strlen(line)) == 0)
                c->size += strlen(line);
}

/* One attach request on @conn: a console to keep, or an errno back. */
static Console *take(int conn)
{
        AttachMsg m;
        char cbuf[CMSG_SPACE(2 * sizeof(int))];
        struct iovec iov = {.iov_base = &m, .iov_len = sizeof m};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        struct ucred cred;
        socklen_t len = sizeof cred;
        int code = EPROTO;
        Console *c = NULL;

        ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
        struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
        int fds[2] = {-EBADF, -EBADF};
        if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
            cm->cmsg_len == CMSG_LEN(sizeof fds))
                memcpy(fds, CMSG_DATA(cm), sizeof fds);
        if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0)
                code = EPERM;
        else if (n == (ssize_t)sizeof m && fds[0] >= 0 && fds[1] >= 0 &&
                 (c = calloc(1, sizeof *c))) {
                m.log[sizeof m.log - 1] = '\0';
                snprintf(c->path, sizeof c->path, "%s", m.log);
                c->log = -EBADF;
                c->max_size = m.max_size;
                /* a pty's master, or the read end of a log-only console's pipe */
                struct stat st;
                bool pipe = fstat(fds[0], &st) == 0 && S_ISFIFO(st.st_mode);
                c->slave =
                    pipe ? -EBADF : ioctl(fds[0], TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
                code = !pipe && c->slave < 0 ? errno : -open_log(c);
                if (code == 0) {
                        c->master = TAKE_FD(fds[0]);
                        c->pidfd = TAKE_FD(fds[1]);
                        fcntl(c->master, F_SETFL, O_NONBLOCK);
                        stamp(c);
                } else {
                        vs_closep(&c->slave);
                        free(c);
                        c = NULL;
                }
        }
        vs_closep(&fds[0]);
        vs_closep(&fds[1]);
        (void)!send(conn, &code, sizeof code, MSG_NOSIGNAL);
        return c;
}

/* Consoles out of the poll set for the rest of this second (RATE_BYTES). */
static Console *paused[MAX_CONSOLES];
static int n_paused;

static void pause_console(int ep, Console *c)
{
        struct epoll_event mev = {.events = 0, .data.ptr = c};
        if (c->paused || n_paused >= MAX_CONSOLES)
                return;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->master, &mev);
        c->paused = true;
        paused[n_paused++] = c;
}

/* Back in the poll set once their second is over (or, with @c, that one at once). */
static void resume_consoles(int ep, const Console *only)
{
        long long now = now_s();
        for (int i = 0; i < n_paused;) {
                Console *c = paused[i];
                if (only ? c != only : c->second == now) {
                        i++;
                        continue;
                }
                struct epoll_event mev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->master, &mev);
                c->paused = false;
                paused[i] = paused[--n_paused];
        }
}

static void drop(int ep, Console *c)
{
        resume_consoles(ep, c); /* off the paused list */
        pump(c);                /* its last words */
        epoll_ctl(ep, EPOLL_CTL_DEL, c->master, NULL);
        epoll_ctl(ep, EPOLL_CTL_DEL, c->pidfd, NULL);
        close(c->master);
        vs_closep(&c->slave);
        close(c->pidfd);
        vs_closep(&c->log);
        free(c);
}

/* epoll data: the listening socket is NULL, a console's master is c, its pidfd c|1 */
static _Noreturn void keeper(int lsock, const char *sock_path, const char *lock_path)
{
        int ep = epoll_create1(EPOLL_CLOEXEC);
        int live = 0;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lsock, &ev) < 0)
                _exit(1);
        for (;;) {
                struct epoll_event evs[64];
                int n = epoll_wait(ep, evs, 64, n_paused ? 100 : live ? -1 : 1000);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n == 0 && live == 0) {
                        /* nothing to keep: go, unless somebody is attaching right now */
                        int lk = open(lock_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
                        if (lk < 0 || flock(lk, LOCK_EX | LOCK_NB) == 0) {
                                /* (no lock file: the installation itself is gone) */
                                unlink(sock_path);
                                _exit(0);
                        }
                        vs_closep(&lk);
                }
                for (int i = 0; i < n; i++) {
                        uintptr_t tag = (uintptr_t)evs[i].data.ptr;
                        Console *c = (Console *)(tag & ~(uintptr_t)1);
                        if (!c) {
                                _cleanup_close_ int conn = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
                                if (conn < 0)
                                        continue;
                                c = live < MAX_CONSOLES ? take(conn) : NULL;
                                if (!c)
                                        continue;
                                struct epoll_event mev = {.events = EPOLLIN, .data.ptr = c};
                                struct epoll_event pev = {.events = EPOLLIN,
                                                          .data.ptr = (void *)((uintptr_t)c | 1)};
                                epoll_ctl(ep, EPOLL_CTL_ADD, c->master, &mev);
                                epoll_ctl(ep, EPOLL_CTL_ADD, c->pidfd, &pev);
                                live++;
                        } else if (tag & 1) {
                                drop(ep, c); /* PID 1 is gone */
                                live--;
                                /* a master reported in this same batch would be freed */
                                for (int j = i + 1; j < n; j++)
                                        if (((uintptr_t)evs[j].data.ptr & ~(uintptr_t)1) ==
                                            (uintptr_t)c)
                                                evs[j].data.ptr = (void *)(uintptr_t)2;
                        } else if (tag != 2 && !pump(c)) {
                                pause_console(ep, c);
                        } else if (tag != 2 && c->slave < 0 && (evs[i].events & EPOLLHUP)) {
                                /* a pipe nobody writes to any more: its PID 1 may live on */
                                pump(c);
                                epoll_ctl(ep, EPOLL_CTL_DEL, c->master, NULL);
                        }
                }
                if (n_paused)
                        resume_consoles(ep, NULL);
        }
}

/* A new keeper listening on @sa, detached from us (its own session, reaped by init). */
static int spawn(const struct sockaddr_un *sa, const char *lock_path, VsError *err)
{
        _cleanup_close_ int lsock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (lsock < 0)
                return vs_error(err, errno, "socket");
        (void)unlink(sa->sun_path);
        mode_t old = umask(077);
        int r = bind(lsock, (const struct sockaddr *)sa, sizeof *sa);
        umask(old);
        if (r < 0 || listen(lsock, 64) < 0)
                return vs_error(err, errno, "listen on %s", sa->sun_path);
        pid_t pid = fork();
        if (pid < 0)
                return vs_error(err, errno, "fork");
        if (pid == 0) {
                if (setsid() < 0 || fork() != 0 || chdir("/") < 0)
                        _exit(0);
                int null = open("/dev/null", O_RDWR);
                for (int i = 0; i < 3 && null >= 0; i++)
                        dup2(null, i);
                int keep = fcntl(lsock, F_DUPFD_CLOEXEC, 3);
                if (keep < 0 || (keep > 3 && close_range(3, (unsigned)keep - 1, 0) < 0) ||
                    close_range((unsigned)keep + 1, ~0U, 0) < 0)
                        _exit(1);
                signal(SIGPIPE, SIG_IGN);
                signal(SIGHUP, SIG_IGN);
                signal(SIGINT, SIG_IGN);
                /* what the start freed (the kernel's BTF, say) goes back */
                malloc_trim(0);
                keeper(keep, sa->sun_path, lock_path);
        }
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        return 0;
}

int vs_console_attach(const char *run_dir, const char *name, const char *log_path,
                      unsigned long long max_size, int master, int pidfd, VsError *err)
{
        struct sockaddr_un sa;
        char lock[PATH_MAX];
        AttachMsg m = {.max_size = max_size};
        int r = sock_path(run_dir, &sa, err);
        if (r < 0)
                return r;
        if (strlen(name) >= sizeof m.name || strlen(log_path) >= sizeof m.log)
                return vs_error(err, ENAMETOOLONG, "%s", log_path);
        snprintf(m.name, sizeof m.name, "%s", name);
        snprintf(m.log, sizeof m.log, "%s", log_path);
        snprintf(lock, sizeof lock, "%s/console.lock", run_dir);
        _cleanup_close_ int lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (lockfd < 0 || flock(lockfd, LOCK_EX) < 0)
                return vs_error(err, errno, "lock %s", lock);
        _cleanup_close_ int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (s < 0)
                return vs_error(err, errno, "socket");
        if (connect(s, (const struct sockaddr *)&sa, sizeof sa) < 0) {
                if (errno != ENOENT && errno != ECONNREFUSED)
                        return vs_error(err, errno, "connect to the console keeper");
                r = spawn(&sa, lock, err);
                if (r < 0)
                        return vs_error_prefix(err, "start the console keeper");
                if (connect(s, (const struct sockaddr *)&sa, sizeof sa) < 0)
                        return vs_error(err, errno, "connect to the console keeper");
        }
        int fds[2] = {master, pidfd};
        r = vs_send_fds(s, &m, sizeof m, fds, 2);
        if (r < 0)
                return vs_error(err, -r, "hand the console to its keeper");
        int code = EPROTO;
        if (recv(s, &code, sizeof code, 0) != sizeof code)
                return vs_error(err, EPROTO, "no answer from the console keeper");
        if (code != 0)
                return vs_error(err, code, "the console keeper: open %s", log_path);
        return 0;
}
