/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The view server: every guest's /proc views from one FUSE mount (libfuse3). */
#define FUSE_USE_VERSION 31
#include "viewd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/sysinfo.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define MAX_GUESTS    4096
#define MAX_THREADS   65536      /* a sample reads at most this many of a guest's threads */
#define CACHE_MAX     (32 << 20) /* texts kept for open files, all guests together */
#define HOST_FILE_MAX (1 << 20)  /* the host files the views are made from */
#define SAMPLE_S      5
#define RECORD_MAX    16384
#define MAX_HANDLES   65536     /* open view files, all guests together */
#define VIEW_SIZE     (4 << 20) /* the size a view claims (see op_getattr) */

typedef struct Guest {
        char id[32];
        char *text; /* its record as read: another text is another start */
        VsViewRecord rec;
        VsViewState st;
        bool kept; /* while the records are read again: still the same */
} Guest;

static struct {
        pthread_mutex_t lock;
        Guest *g[MAX_GUESTS];
        int n;
        struct timespec reg_mtime;
        size_t cached;
        int handles;       /* open view files */
        time_t idle_since; /* 0: busy */
} S = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* An open file: which view, for whom, the text made at its first read. */
typedef struct Handle {
        VsViewFile file;
        char id[32]; /* the context id of its path (no guest with it: the host's own file) */
        char *text;
        size_t len;
} Handle;

static void guest_free(Guest *g)
{
        if (!g)
                return;
        vs_view_record_release(&g->rec);
        free(g->text);
        free(g);
}

static Guest *guest_new(const char *id, const char *text);

/* S.g is kept sorted by id: a guest is found by bsearch, not by comparing every id. */
static int by_id(const void *a, const void *b)
{
        return strcmp((*(Guest *const *)a)->id, (*(Guest *const *)b)->id);
}

static int id_is(const void *id, const void *g)
{
        return strcmp(id, (*(Guest *const *)g)->id);
}

static Guest **find(const char *id)
{
        return S.n ? bsearch(id, S.g, (size_t)S.n, sizeof *S.g, id_is) : NULL;
}

/*
 * Read the records again if the directory changed (or @force: its mtime
 * ticks coarsely, and a restart may rewrite a record within one tick); a
 * guest whose record reads the same keeps its load, any other is new.
 */
static void reload_if(bool force)
{
        struct stat st;
        if (stat(VS_VIEWS_REG, &st) < 0)
                st.st_mtim = (struct timespec){0};
        if (!force && st.st_mtim.tv_sec == S.reg_mtime.tv_sec &&
            st.st_mtim.tv_nsec == S.reg_mtime.tv_nsec && S.n)
                return;
        S.reg_mtime = st.st_mtim;
        Guest *next[MAX_GUESTS];
        int n = 0;
        DIR *d = opendir(VS_VIEWS_REG);
        char *text = malloc(RECORD_MAX);
        for (struct dirent *e; d && text && (e = readdir(d)) && n < MAX_GUESTS;) {
                /* "ID" only: not ".", "..", nor a record being written ("ID.tmp") */
                if (!e->d_name[0] || strspn(e->d_name, "0123456789") != strlen(e->d_name) ||
                    strlen(e->d_name) >= sizeof next[0]->id)
                        continue;
                if (vs_read_file_at(dirfd(d), e->d_name, text, RECORD_MAX) <= 0)
                        continue;
                Guest **hit = find(e->d_name);
                if (hit && !(*hit)->kept && streq((*hit)->text, text)) {
                        (*hit)->kept = true;
                        next[n++] = *hit;
                        continue;
                }
                Guest *g = guest_new(e->d_name, text);
                if (!g)
                        continue;
                next[n++] = g;
        }
        free(text);
        if (d)
                closedir(d);
        for (int i = 0; i < S.n; i++)
                if (!S.g[i]->kept)
                        guest_free(S.g[i]);
        for (int i = 0; i < n; i++)
                next[i]->kept = false;
        memcpy(S.g, next, (size_t)n * sizeof *next);
        S.n = n;
        qsort(S.g, (size_t)S.n, sizeof *S.g, by_id);
}

static void reload(void)
{
        reload_if(false);
}

/* The guest @tid belongs to, by the cgroup the kernel says it is in; NULL: none. */
static Guest *guest_new(const char *id, const char *text)
{
        Guest *g = calloc(1, sizeof *g);
        if (!g || !(g->text = strdup(text))) {
                free(g);
                return NULL;
        }
        VsError err = {0};
        if (vs_view_record_parse(text, &g->rec, &err) < 0) {
                free(g->text);
                free(g);
                return NULL;
        }
        snprintf(g->id, sizeof g->id, "%s", id);
        g->st.rotate = g->rec.rotate;
        g->st.started_ns = g->rec.started_ns;
        snprintf(g->st.release, sizeof g->st.release, "%s", g->rec.release);
        snprintf(g->st.version, sizeof g->st.version, "%s", g->rec.version);
        return g;
}

/*
 * The guest of context @id as its record says now: one small file read, so
 * a restart that rewrote it within the directory's mtime tick is seen.
 */
static Guest *guest_now(const char *id)
{
        static char text[RECORD_MAX];
        char path[64];
        snprintf(path, sizeof path, VS_VIEWS_REG "/%s", id);
        Guest **at = find(id);
        if (vs_read_file_at(AT_FDCWD, path, text, sizeof text) <= 0)
                return NULL; /* gone (its entry goes at the next reload) */
        if (at && streq((*at)->text, text))
                return *at;
        Guest *n = guest_new(id, text);
        if (!n)
                return NULL;
        if (at) {
                guest_free(*at);
                *at = n;
                return n;
        }
        if (S.n == MAX_GUESTS) {
                guest_free(n);
                return NULL;
        }
        int i = S.n;
        while (i > 0 && strcmp(S.g[i - 1]->id, id) > 0) {
                S.g[i] = S.g[i - 1];
                i--;
        }
        S.g[i] = n;
        S.n++;
        return n;
}

/*
 * The tree: /ID/NAME for each context id (its directory is there whether a
 * guest runs with it or not; the guest is looked up at each read), so each
 * guest's files are inodes of their own: their page cache, which sendfile
 * and splice read through, is never another guest's.
 */
static bool id_of(const char *s, size_t len, char *id, size_t size)
{
        if (len == 0 || len >= size || len > 5 || strspn(s, "0123456789") < len)
                return false;
        snprintf(id, size, "%.*s", (int)len, s);
        return true;
}

/* 0: "/", 1: "/ID", 2: "/ID/NAME" (*file set), -1: nothing */
static int parse(const char *path, char id[32], int *file)
{
        if (streq(path, "/"))
                return 0;
        const char *slash = strchr(path + 1, '/');
        if (!id_of(path + 1, slash ? (size_t)(slash - path - 1) : strlen(path + 1), id, 32))
                return -1;
        if (!slash)
                return 1;
        for (int i = 0; i < VS_VIEW_N; i++)
                if (streq(slash + 1, vs_view_files[i].name)) {
                        *file = i;
                        return 2;
                }
        return -1;
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
        (void)fi;
        char id[32];
        int file;
        memset(st, 0, sizeof *st);
        switch (parse(path, id, &file)) {
        case 0:
        case 1:
                st->st_mode = S_IFDIR | 0555;
                st->st_nlink = 2;
                return 0;
        case 2:
                /*
                 * Not 0 as /proc's own: sendfile and splice (busybox cat) go
                 * through the page cache, which stops at the size; a short read
                 * there sets the size to where the text ends, every open asks
                 * again (attr_timeout 0 and default_permissions) and drops
                 * what the last one left in the cache. read(2) is direct
                 * (op_init) and never looks at the size.
                 */
                st->st_mode = S_IFREG | 0444;
                st->st_nlink = 1;
                st->st_size = VIEW_SIZE;
                return 0;
        default:
                return -ENOENT;
        }
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
        (void)off, (void)fi, (void)flags;
        char id[32];
        int file;
        int kind = parse(path, id, &file);
        if (kind != 0 && kind != 1)
                return -ENOTDIR;
        fill(buf, ".", NULL, 0, 0);
        fill(buf, "..", NULL, 0, 0);
        if (kind == 1) {
                for (int i = 0; i < VS_VIEW_N; i++)
                        fill(buf, vs_view_files[i].name, NULL, 0, 0);
                return 0;
        }
        pthread_mutex_lock(&S.lock); /* the running guests */
        reload();
        for (int i = 0; i < S.n; i++)
                fill(buf, S.g[i]->id, NULL, 0, 0);
        pthread_mutex_unlock(&S.lock);
        return 0;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
        char id[32];
        int f = -1;
        if (parse(path, id, &f) != 2)
                return -ENOENT;
        if ((fi->flags & O_ACCMODE) != O_RDONLY)
                return -EACCES;
        Handle *h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        h->file = (VsViewFile)f;
        snprintf(h->id, sizeof h->id, "%s", id);
        pthread_mutex_lock(&S.lock);
        if (S.handles >= MAX_HANDLES) { /* a guest holding files open by the million */
                pthread_mutex_unlock(&S.lock);
                free(h);
                return -ENFILE;
        }
        S.handles++;
        pthread_mutex_unlock(&S.lock);
        fi->fh = (uint64_t)(uintptr_t)h;
        fi->keep_cache = 0;
        return 0;
}

/* @path as the host has it, in this thread's buffer (valid until its next call); NULL if none. */
static const char *host_file(const char *path)
{
        static __thread char *buf;
        if (!buf && !(buf = malloc(HOST_FILE_MAX)))
                return NULL;
        return vs_read_file_at(AT_FDCWD, path, buf, HOST_FILE_MAX) < 0 ? NULL : buf;
}

static uint64_t boot_ns(void)
{
        struct timespec b;
        clock_gettime(CLOCK_BOOTTIME, &b);
        return (uint64_t)b.tv_sec * 1000000000ULL + (uint64_t)b.tv_nsec;
}

/* The text of @h's file now: the guest's view, or the host's own file for anyone else. */
static char *make(const Handle *h, size_t *len)
{
        const VsViewDef *def = &vs_view_files[h->file];
        const char *host = def->host ? host_file(def->host) : NULL;
        char *text = NULL;
        pthread_mutex_lock(&S.lock);
        Guest *g = guest_now(h->id);
        if (g) {
                VsError err = {0};
                if (vs_cgroup_view(&g->rec.cg, def->needs, &g->st.cg, &err) == 0)
                        text = vs_view_make(h->file, &g->st, host, boot_ns(), time(NULL));
        }
        pthread_mutex_unlock(&S.lock);
        if (!g) {
                /* not a guest (the host, or a guest gone): the file as the host has it */
                if (!def->host || !streq(def->host, def->target))
                        host = host_file(def->target);
                text = host ? strdup(host) : NULL;
        }
        *len = text ? strlen(text) : 0;
        return text;
}

static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
        (void)path;
        Handle *h = (Handle *)(uintptr_t)fi->fh;
        char *text = h->text;
        size_t len = h->len;
        if (!text || off == 0) {
                /* a read from the start makes it anew; a later one goes on in the same text */
                text = make(h, &len);
                if (!text)
                        return -EIO;
                pthread_mutex_lock(&S.lock);
                if (h->text) {
                        S.cached -= h->len;
                        free(h->text);
                        h->text = NULL;
                }
                if (S.cached + len <= CACHE_MAX) {
                        h->text = text;
                        h->len = len;
                        S.cached += len;
                }
                pthread_mutex_unlock(&S.lock);
        }
        size_t n = 0;
        if (off >= 0 && (size_t)off < len) {
                n = len - (size_t)off < size ? len - (size_t)off : size;
                memcpy(buf, text + off, n);
        }
        if (text != h->text)
                free(text);
        return (int)n;
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
        (void)path;
        Handle *h = (Handle *)(uintptr_t)fi->fh;
        pthread_mutex_lock(&S.lock);
        if (h->text)
                S.cached -= h->len;
        S.handles--;
        pthread_mutex_unlock(&S.lock);
        free(h->text);
        free(h);
        return 0;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
        (void)conn;
        /*
         * read(2) straight to op_read: one text per open, made at the read
         * from offset 0, the rest of the reads served from it. Through the
         * page cache a short read shrank the kernel's size, the next read
         * past it asked for the attributes, found the size changed, dropped
         * the cache and read (and made) the whole text again: seven requests
         * and two texts per open, read and close, and a read to the end
         * could return the first text with the tail of the second.
         * sendfile and splice still go through the page cache (6.18's FUSE
         * splices direct-I/O files from it too): the size and kernel_cache
         * below are for them.
         */
        cfg->direct_io = 1;
        cfg->kernel_cache = 0;
        cfg->entry_timeout = 3600;
        cfg->attr_timeout = 0;
        cfg->negative_timeout = 3600;
        return NULL;
}

/* ---- load averages: every guest's runnable and blocked threads, every 5 s -------------- */

typedef struct Count {
        unsigned running, blocked, threads, lastpid;
} Count;

static void count_thread(int taskfd, const char *tid, Count *c)
{
        char path[96], buf[2048];
        snprintf(path, sizeof path, "%s/status", tid);
        if (vs_read_file_at(taskfd, path, buf, sizeof buf) <= 0)
                return;
        c->threads++;
        const char *s = strstr(buf, "\nState:\t");
        if (s && s[8] == 'R')
                c->running++;
        else if (s && s[8] == 'D')
                c->blocked++;
        /* NSpid: the last number is the pid in the guest's own namespace */
        const char *p = strstr(buf, "\nNSpid:");
        if (p) {
                const char *eol = strchr(p + 1, '\n');
                const char *last = NULL;
                for (const char *q = p + 7; *q && (!eol || q < eol); q++)
                        if ((*q == '\t' || *q == ' ') && q[1] >= '0' && q[1] <= '9')
                                last = q + 1;
                unsigned v = last ? (unsigned)strtoul(last, NULL, 10) : 0;
                if (v > c->lastpid)
                        c->lastpid = v;
        }
}

static int count_pid(pid_t pid, void *data)
{
        Count *c = data;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd < 0 ? NULL : fdopendir(fd);
        if (!d) {
                if (fd >= 0)
                        close(fd);
                return 0;
        }
        for (struct dirent *e; (e = readdir(d)) && c->threads < MAX_THREADS;)
                if (e->d_name[0] != '.')
                        count_thread(dirfd(d), e->d_name, c);
        closedir(d);
        return c->threads >= MAX_THREADS;
}

static void *sampler(void *arg)
{
        (void)arg;
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);
        for (;;) {
                sleep(SAMPLE_S);
                pthread_mutex_lock(&S.lock);
                reload_if(true);
                for (int i = 0; i < S.n; i++) {
                        Count c = {0};
                        vs_cgroup_foreach_pid(&S.g[i]->rec.cg, count_pid, &c);
                        VsViewState *st = &S.g[i]->st;
                        vs_view_load_sample(st, c.running + c.blocked);
                        st->running = c.running;
                        st->blocked = c.blocked;
                        st->threads = c.threads;
                        st->lastpid = c.lastpid;
                }
                time_t now = time(NULL);
                bool idle = S.n == 0;
                if (!idle)
                        S.idle_since = 0;
                else if (!S.idle_since)
                        S.idle_since = now;
                bool stop = idle && now - S.idle_since >= VS_VIEWS_IDLE_S;
                pthread_mutex_unlock(&S.lock);
                if (stop) {
                        /* no start may be under way (they hold the gate shared) */
                        int gate = open(VS_VIEWS_GATE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
                        if (gate >= 0 && flock(gate, LOCK_EX | LOCK_NB) == 0) {
                                pthread_mutex_lock(&S.lock);
                                reload_if(true);
                                bool still = S.n == 0;
                                pthread_mutex_unlock(&S.lock);
                                if (still) {
                                        /* the gate stays ours until we are gone */
                                        kill(getpid(), SIGTERM);
                                        return NULL;
                                }
                        }
                        if (gate >= 0)
                                close(gate);
                }
        }
        return NULL;
}

/* ---- uname(2) and sysinfo(2): seccomp notifications from the guests' filters ---------- */

#define MAX_LISTENERS 4096

typedef struct Listener {
        int fd;
        char id[32]; /* the guest's context id */
        int slot;    /* the worker's: where in Notifier.ls */
} Listener;

/*
 * Write @len bytes at the address the process that asked gave, if the
 * request still stands.  Its pidfd holds its pid number, so the pid cannot
 * name another process by the time we write; process_vm_writev keeps the
 * page protections (read-only memory: EFAULT, as from the kernel).
 */
static int put_user(int listener, const struct seccomp_notif *req, const void *buf, size_t len)
{
        _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, req->pid, 0);
        if (pidfd < 0 || seccomp_notify_id_valid(listener, req->id) != 0)
                return -ESRCH;
        struct iovec local = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
        struct iovec remote = {.iov_base = (void *)(uintptr_t)req->data.args[0], .iov_len = len};
        ssize_t n = process_vm_writev((pid_t)req->pid, &local, 1, &remote, 1, 0);
        return n == (ssize_t)len ? 0 : -EFAULT;
}

static int answer_uname(int listener, const struct seccomp_notif *req, const Guest *g, int host_uts)
{
        char path[64];
        snprintf(path, sizeof path, "/proc/%u/ns/uts", req->pid);
        _cleanup_close_ int ns = open(path, O_RDONLY | O_CLOEXEC);
        if (ns < 0 || seccomp_notify_id_valid(listener, req->id) != 0)
                return -ESRCH;
        /* its host and domain name are its UTS namespace's: ask there (this thread only) */
        struct utsname u;
        if (setns(ns, CLONE_NEWUTS) < 0)
                return -errno;
        int r = uname(&u) < 0 ? -errno : 0;
        if (setns(host_uts, CLONE_NEWUTS) < 0)
                abort(); /* a thread left in a guest's namespace must not go on */
        if (r < 0)
                return r;
        if (g->rec.release[0])
                snprintf(u.release, sizeof u.release, "%s", g->rec.release);
        if (g->rec.version[0])
                snprintf(u.version, sizeof u.version, "%s", g->rec.version);
        if (g->rec.machine[0])
                snprintf(u.machine, sizeof u.machine, "%s", g->rec.machine);
        return put_user(listener, req, &u, sizeof u);
}

static int answer_sysinfo(int listener, const struct seccomp_notif *req, Guest *g)
{
        const char *host = host_file("/proc/meminfo");
        if (!host)
                return -EIO;
        VsError err = {0};
        (void)vs_cgroup_view(&g->rec.cg, VS_CG_VIEW_MEMORY, &g->st.cg, &err);
        struct sysinfo si;
        vs_view_sysinfo(&g->st, host, boot_ns(), &si);
        return put_user(listener, req, &si, sizeof si);
}

/*
 * The notification being answered, in memory the keeper shares with every
 * worker it starts.  Once a worker has taken a notification, nobody can take
 * it again: a worker killed before its answer would leave the caller waiting
 * for good.  Any holder of the listener may answer a notification whose id it
 * knows, so the next worker answers the one this names.
 */
typedef struct InFlight {
        char id[32]; /* the context of the listener it came from */
        union {
                struct seccomp_notif req; /* id 0: none */
                char room[1024];          /* a later kernel's larger notification */
        };
} InFlight;
static InFlight *inflight; /* NULL: none shared (an answer lost with its worker hangs) */

/*
 * The worker's listeners, in an epoll set: one start or exec, or one guest's
 * uname, costs the same with 10 guests running or 4000 (a poll() over all of
 * them was a fifth of the host's CPU while execs ran with 1000 guests up).
 */
typedef struct Notifier {
        Listener *ls[MAX_LISTENERS];
        int n, ep, host_uts;
        size_t req_size;
        struct seccomp_notif *req, *own; /* where it receives: inflight's, or its own */
        struct seccomp_notif_resp *resp;
        struct seccomp_notif pending; /* a dead worker's, until its listener comes */
        char pending_id[32];
} Notifier;

static void respond(Notifier *nt, const Listener *l, const struct seccomp_notif *req)
{
        struct seccomp_notif_resp *resp = nt->resp;
        memset(resp, 0, sizeof *resp);
        resp->id = req->id;
        pthread_mutex_lock(&S.lock);
        Guest *g = guest_now(l->id);
        int r = 0;
        if (!g)
                resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE; /* not ours: as the kernel has it */
        else if (req->data.nr == __NR_uname)
                r = answer_uname(l->fd, req, g, nt->host_uts);
        else if (req->data.nr == __NR_sysinfo)
                r = answer_sysinfo(l->fd, req, g);
        else
                resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        pthread_mutex_unlock(&S.lock);
        resp->error = r;
        (void)seccomp_notify_respond(l->fd, resp);
}

static void answer(Notifier *nt, const Listener *l)
{
        /* cleared first: a worker killed before the kernel wrote it leaves nothing to answer */
        memset(nt->req, 0, nt->req_size);
        if (nt->req != nt->own)
                snprintf(inflight->id, sizeof inflight->id, "%s", l->id);
        if (seccomp_notify_receive(l->fd, nt->req) < 0)
                return; /* the caller went away */
        respond(nt, l, nt->req);
        nt->req->id = 0;
}

/* A listener the keeper hands over: "CTXID" with its fd; false when the keeper is gone. */
static bool take(int ctl, Notifier *nt)
{
        char id[32] = "";
        int fd = -1, got = 0;
        ssize_t m = vs_recv_fds(ctl, id, sizeof id - 1, &fd, 1, &got);
        if (m <= 0)
                return false;
        if (got != 1)
                return true;
        id[m] = '\0';
        Listener *l = nt->n < MAX_LISTENERS ? calloc(1, sizeof *l) : NULL;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
        if (!l || epoll_ctl(nt->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
                free(l);
                close(fd);
                fprintf(stderr, "vserver-views: a listener of context %s refused\n", id);
                return true;
        }
        l->fd = fd;
        l->slot = nt->n;
        snprintf(l->id, sizeof l->id, "%s", id);
        nt->ls[nt->n++] = l;
        /*
         * A new start or exec: its record may have been rewritten within a clock tick.  Only
         * this guest's is read again: all of them (and matching each against the rest) was
         * the view server's work at every start, which grew with the guests running.
         */
        pthread_mutex_lock(&S.lock);
        (void)guest_now(id);
        pthread_mutex_unlock(&S.lock);
        /* the one a dead worker took from this listener, if it still waits */
        if (nt->pending.id && streq(nt->pending_id, id) &&
            seccomp_notify_id_valid(fd, nt->pending.id) == 0) {
                respond(nt, l, &nt->pending);
                nt->pending.id = 0;
        }
        return true;
}

/* Every process of @l's filter is gone. */
static void drop(Notifier *nt, Listener *l)
{
        (void)epoll_ctl(nt->ep, EPOLL_CTL_DEL, l->fd, NULL);
        close(l->fd);
        nt->ls[l->slot] = nt->ls[--nt->n];
        nt->ls[l->slot]->slot = l->slot;
        free(l);
}

static void *notifier(void *arg)
{
        int ctl = (int)(intptr_t)arg;
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);
        static Notifier nt;
        static char keeper; /* the epoll mark of @ctl */
        struct seccomp_notif_sizes sizes = {0};
        nt.host_uts = open("/proc/thread-self/ns/uts", O_RDONLY | O_CLOEXEC);
        nt.ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event cev = {.events = EPOLLIN, .data.ptr = &keeper};
        if (nt.host_uts < 0 || nt.ep < 0 || epoll_ctl(nt.ep, EPOLL_CTL_ADD, ctl, &cev) < 0 ||
            syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0 ||
            seccomp_notify_alloc(&nt.own, &nt.resp) != 0) {
                fprintf(stderr, "vserver-views: cannot answer uname and sysinfo\n");
                return NULL;
        }
        nt.req_size = sizes.seccomp_notif;
        nt.req = nt.own;
        if (inflight && sizes.seccomp_notif <= sizeof inflight->room) {
                /* a dead worker's notification first, then ours go there */
                nt.pending = inflight->req;
                snprintf(nt.pending_id, sizeof nt.pending_id, "%s", inflight->id);
                nt.req = &inflight->req;
        }
        for (;;) {
                struct epoll_event ev[64];
                int k = epoll_wait(nt.ep, ev, 64, -1);
                for (int i = 0; i < k; i++) {
                        if (ev[i].data.ptr == &keeper) {
                                if (!take(ctl, &nt)) /* the keeper is gone: ours stay answered */
                                        (void)epoll_ctl(nt.ep, EPOLL_CTL_DEL, ctl, NULL);
                                continue;
                        }
                        Listener *l = ev[i].data.ptr;
                        if (ev[i].events & EPOLLIN)
                                answer(&nt, l);
                        else if (ev[i].events & (EPOLLHUP | EPOLLERR))
                                drop(&nt, l);
                }
        }
        return NULL;
}

static const struct fuse_operations ops = {
    .getattr = op_getattr,
    .readdir = op_readdir,
    .open = op_open,
    .read = op_read,
    .release = op_release,
    .init = op_init,
};

/* The worker: the FUSE file system, the sampler, the notifier (listeners from @ctl). */
static int serve(int ctl, VsError *err)
{
        /* a dead predecessor's mount: away, so ours is the one found there */
        (void)umount2(VS_VIEWS_MNT, MNT_DETACH);
        char prog[] = "vserver-views", o[] = "-o",
             opts[] = "allow_other,default_permissions,fsname=vserver-views,subtype=vserver-views";
        char *argv[] = {prog, o, opts, NULL};
        struct fuse_args args = FUSE_ARGS_INIT(3, argv);
        struct fuse *f = fuse_new(&args, &ops, sizeof ops, NULL);
        if (!f)
                return vs_error(err, EIO, "start the FUSE file system");
        if (fuse_mount(f, VS_VIEWS_MNT) != 0) {
                fuse_destroy(f);
                return vs_error(err, EIO, "mount the views on %s", VS_VIEWS_MNT);
        }
        int r = 0;
        pthread_t t;
        if (fuse_set_signal_handlers(fuse_get_session(f)) != 0)
                r = vs_error(err, EIO, "signal handlers");
        else if (pthread_create(&t, NULL, sampler, NULL) != 0 || pthread_detach(t) != 0)
                r = vs_error(err, EAGAIN, "start the sampler");
        else if (pthread_create(&t, NULL, notifier, (void *)(intptr_t)ctl) != 0 ||
                 pthread_detach(t) != 0)
                r = vs_error(err, EAGAIN, "start the notifier");
        else if (fuse_loop(f) < 0)
                r = vs_error(err, EIO, "serve the views");
        fuse_remove_signal_handlers(fuse_get_session(f));
        fuse_unmount(f);
        fuse_destroy(f);
        return r;
}

/* ---- the keeper: holds the listeners, restarts a worker that dies ----------------------- */

/* No guest recorded? */
static bool idle_now(void)
{
        DIR *d = opendir(VS_VIEWS_REG);
        bool none = true;
        for (struct dirent *e; d && none && (e = readdir(d));)
                none = e->d_name[0] == '.' || strchr(e->d_name, '.');
        if (d)
                closedir(d);
        return none;
}

typedef struct Worker {
        pid_t pid;
        int pidfd, ctl;
} Worker;

static int start_worker(Worker *w, const Listener *ls, int n, int lock, int sock)
{
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                close(sp[0]);
                close(sp[1]);
                return -errno;
        }
        if (pid == 0) {
                /* the keeper's lock and socket are not ours: a worker left alone must not hold them
                 */
                close(sp[0]);
                close(lock);
                close(sock);
                prctl(PR_SET_NAME, "vserver-views");
                VsError err = {0};
                int r = serve(sp[1], &err);
                if (r < 0)
                        fprintf(stderr, "vserver-views: %s\n", err.msg);
                _exit(r < 0 ? 1 : 0);
        }
        close(sp[1]);
        *w = (Worker){.pid = pid, .pidfd = (int)syscall(SYS_pidfd_open, pid, 0), .ctl = sp[0]};
        for (int i = 0; i < n; i++)
                (void)vs_send_fds(w->ctl, ls[i].id, strlen(ls[i].id), &ls[i].fd, 1);
        char text[64];
        snprintf(text, sizeof text, "%d %d\n", (int)getpid(), (int)pid);
        /* written, then cut to length: truncated first, a reader could find it empty */
        if (pwrite(lock, text, strlen(text), 0) == (ssize_t)strlen(text))
                (void)!ftruncate(lock, (off_t)strlen(text));
        return 0;
}

/* What the keeper's epoll set holds: data.u64 is the kind << 32 | the fd. */
enum { KEPT_SOCK = 1, KEPT_WORKER, KEPT_LISTENER };

static int keep_watch(int ep, int kind, int fd, unsigned events)
{
        struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)kind << 32 | (unsigned)fd};
        return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/*
 * A listener from vserver start or exec: kept (its hang-up only: the worker
 * answers it), passed to the worker, then acknowledged.
 */
static void keep_listener(int sock, int ep, const Worker *w, Listener *ls, int *n)
{
        _cleanup_close_ int c = accept4(sock, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
                return;
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0)
                return;
        char id[32] = "";
        int fd = -1, got = 0;
        ssize_t m = vs_recv_fds(c, id, sizeof id - 1, &fd, 1, &got);
        if (m <= 0 || got != 1)
                return;
        id[m] = '\0';
        if (*n == MAX_LISTENERS || strspn(id, "0123456789") != strlen(id) ||
            keep_watch(ep, KEPT_LISTENER, fd, 0) < 0) {
                close(fd);
                return;
        }
        ls[*n] = (Listener){.fd = fd};
        snprintf(ls[*n].id, sizeof ls[*n].id, "%s", id);
        (*n)++;
        /* ours now: a worker that is gone gets it with the others when it starts again */
        (void)vs_send_fds(w->ctl, id, strlen(id), &fd, 1);
        (void)send(c, "k", 1, MSG_NOSIGNAL);
}

int vs_viewd_run(VsError *err)
{
        /* a caller gone before our answer must not take every guest's listener with us */
        signal(SIGPIPE, SIG_IGN);
        if (mkdir(VS_HOST_RUN, 0700) < 0 && errno != EEXIST)
                return vs_error(err, errno, "mkdir %s", VS_HOST_RUN);
        if (mkdir(VS_VIEWS_REG, 0700) < 0 && errno != EEXIST)
                return vs_error(err, errno, "mkdir %s", VS_VIEWS_REG);
        if (mkdir(VS_VIEWS_MNT, 0755) < 0 && errno != EEXIST)
                return vs_error(err, errno, "mkdir %s", VS_VIEWS_MNT);
        _cleanup_close_ int lock = open(VS_VIEWS_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lock < 0)
                return vs_error(err, errno, "open %s", VS_VIEWS_LOCK);
        if (flock(lock, LOCK_EX | LOCK_NB) < 0)
                return vs_error(err, errno == EWOULDBLOCK ? EBUSY : errno,
                                "another view server runs");
        /* the guests' uname/sysinfo listeners come in here: ready before the mount says we are */
        _cleanup_close_ int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", VS_VIEWS_SOCK);
        unlink(VS_VIEWS_SOCK);
        if (sock < 0 || bind(sock, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(sock, 64) < 0)
                return vs_error(err, errno, "listen on %s", VS_VIEWS_SOCK);
        static Listener ls[MAX_LISTENERS];
        int n = 0, quick = 0;
        _cleanup_close_ int ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0 || keep_watch(ep, KEPT_SOCK, sock, EPOLLIN) < 0)
                return vs_error(err, errno, "epoll");
        /* shared with every worker (see InFlight); without it, all works but that */
        inflight =
            mmap(NULL, sizeof *inflight, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (inflight == MAP_FAILED)
                inflight = NULL;
        Worker w = {.pid = 0, .pidfd = -EBADF, .ctl = -EBADF};
        time_t last = 0;
        for (;;) {
                if (!w.pid) {
                        /* a worker that keeps dying is not restarted in a tight loop */
                        time_t now = time(NULL);
                        quick = now - last < 10 ? quick + 1 : 0;
                        if (quick > 3)
                                sleep(2);
                        last = now;
                        unlink(VS_VIEWS_READY);
                        int r = start_worker(&w, ls, n, lock, sock);
                        if (r == 0 && keep_watch(ep, KEPT_WORKER, w.pidfd, EPOLLIN) < 0)
                                r = -errno;
                        if (r < 0)
                                return vs_error(err, -r, "start the view server");
                        /* once it serves, the views go back into the guests that run */
                        for (int i = 0; i < 500 && !vs_views_serving(); i++)
                                usleep(10000);
                        vs_views_reattach_all();
                        /* a start or exec waiting on us may go on: its guest's views are back */
                        int rd = open(VS_VIEWS_READY, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                        if (rd >= 0)
                                close(rd);
                }
                struct epoll_event ev[64];
                int k = epoll_wait(ep, ev, 64, -1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return vs_error(err, errno, "epoll_wait");
                }
                bool worker_gone = false, incoming = false;
                for (int j = 0; j < k; j++) {
                        int kind = (int)(ev[j].data.u64 >> 32), fd = (int)(uint32_t)ev[j].data.u64;
                        if (kind == KEPT_SOCK)
                                incoming = true;
                        else if (kind == KEPT_WORKER)
                                worker_gone = true;
                        else /* every process of that filter is gone */
                                for (int i = 0; i < n; i++)
                                        if (ls[i].fd == fd) {
                                                (void)epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                                                close(fd);
                                                ls[i] = ls[--n];
                                                break;
                                        }
                }
                if (worker_gone) {
                        siginfo_t si = {0};
                        (void)waitid(P_PIDFD, (id_t)w.pidfd, &si, WEXITED);
                        (void)epoll_ctl(ep, EPOLL_CTL_DEL, w.pidfd, NULL);
                        close(w.pidfd);
                        close(w.ctl);
                        w = (Worker){.pid = 0, .pidfd = -EBADF, .ctl = -EBADF};
                        bool idle = si.si_code == CLD_EXITED && si.si_status == 0;
                        /* idle: gone with it, unless a start is under way */
                        _cleanup_close_ int gate =
                            idle ? open(VS_VIEWS_GATE, O_RDWR | O_CLOEXEC) : -EBADF;
                        if (gate >= 0 && flock(gate, LOCK_EX | LOCK_NB) == 0 && idle_now()) {
                                unlink(VS_VIEWS_SOCK);
                                unlink(VS_VIEWS_READY);
                                return 0;
                        }
                        if (!idle)
                                fprintf(stderr, "vserver-views: the server died (%s %d); again\n",
                                        si.si_code == CLD_EXITED ? "status" : "signal",
                                        si.si_status);
                        continue;
                }
                if (incoming)
                        keep_listener(sock, ep, &w, ls, &n);
        }
}
