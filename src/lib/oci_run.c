/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * create, start, kill, delete, pause: a container from a bundle's
 * config.json.  create clones the process into its namespaces and cgroup;
 * the child mounts what the config lists inside the root (every target
 * resolved in it), pivots, locks itself down (the same steps as a guest's
 * start) and tells us it is ready, then waits on the exec fifo until start
 * writes to it.  We exit: the engine's monitor (conmon, the shim), a child
 * subreaper, becomes its parent.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "context_int.h"
#include "limits.h"
#include "mount.h"
#include "oci_int.h"
#include "oci_run.h"
#include "oci_state.h"
#include "paths.h"
#include "syscalls.h"
#include "tree.h"
#include "ctxid.h"
#include "viewd.h"
#include "util.h"

#ifndef NS_GET_NSTYPE
#define NS_GET_NSTYPE 0xb703
#endif

#define RESOLVE_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

/* Everything the child needs, made before the clone. */
typedef struct Child {
        const VsOciConfig *c;
        const char *bundle;
        const char *rootfs;
        int sock, fifo;
        int nsfd[VS_OCI_NS_N]; /* -1 or the namespace to join */
        const int *stdio;      /* 0-2 as given */
        int n_preserve;
        VsSeccomp *filter;
        bool notify; /* @filter has SCMP_ACT_NOTIFY rules */
        bool userns_new;
        int views[VS_VIEW_N]; /* the /proc views to bind over its own, or -1 */
        VsSeccomp *sysinfo;   /* with views: sysinfo(2) answered by the view server */
        char state[65536];    /* for the container's own hooks: from the caller after the go */
} Child;

/* ---- hooks ---- */

/* Run one hook with @state on its stdin; its timeout kills it. */
static int run_hook(const VsOciHook *h, const char *kind, const char *state, VsError *err)
{
        int in[2];
        if (pipe2(in, O_CLOEXEC) < 0)
                return vs_error(err, errno, "hook %s: pipe", h->path);
        int pidfd = -1;
        struct clone_args args = {
            .flags = CLONE_PIDFD, .pidfd = (unsigned long)&pidfd, .exit_signal = SIGCHLD};
        long pid = vs_clone3(&args);
        if (pid < 0) {
                close(in[0]);
                close(in[1]);
                return vs_error(err, errno, "hook %s: fork", h->path);
        }
        if (pid == 0) {
                static char *none[] = {NULL};
                char *argv1[] = {(char *)(uintptr_t)h->path, NULL};
                dup2(in[0], 0);
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (null >= 0)
                        dup2(null, 1);
                vs_ctx_reset_signals();
                close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
                execve(h->path, h->args && h->args[0] ? h->args : argv1, h->env ? h->env : none);
                _exit(127);
        }
        close(in[0]);
        signal(SIGPIPE, SIG_IGN);
        (void)!vs_write_all(in[1], state, strlen(state));
        close(in[1]);
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        int pr;
        while ((pr = poll(&p, 1, h->timeout ? h->timeout * 1000 : -1)) < 0 && errno == EINTR)
                ;
        bool timed_out = pr == 0;
        if (timed_out)
                pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
        siginfo_t si = {0};
        while (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR)
                ;
        close(pidfd);
        if (timed_out)
                return vs_error(err, ETIMEDOUT, "%s hook %s did not finish within %d s", kind,
                                h->path, h->timeout);
        if (si.si_code != CLD_EXITED || si.si_status != 0)
                return vs_error(err, ECANCELED, "%s hook %s %s %d", kind, h->path,
                                si.si_code == CLD_EXITED ? "exited with" : "was killed by signal",
                                si.si_status);
        return 0;
}

int vs_oci_run_hooks(const VsOciConfig *c, VsOciHookKind k, const char *state, bool stop_on_error,
                     VsError *err)
{
        for (int i = 0; i < c->n_hooks[k]; i++) {
                VsError e = {0};
                int r = run_hook(&c->hooks[k][i], vs_oci_hook_name(k), state, &e);
                if (r < 0 && stop_on_error) {
                        if (err)
                                *err = e;
                        return r;
                }
        }
        return 0;
}

/* ---- mounts, in the child ---- */

static unsigned mount_attrs(unsigned long flags)
{
        unsigned a = 0;
        a |= flags & MS_RDONLY ? MOUNT_ATTR_RDONLY : 0;
        a |= flags & MS_NOSUID ? MOUNT_ATTR_NOSUID : 0;
        a |= flags & MS_NODEV ? MOUNT_ATTR_NODEV : 0;
        a |= flags & MS_NOEXEC ? MOUNT_ATTR_NOEXEC : 0;
        a |= flags & MS_NODIRATIME ? MOUNT_ATTR_NODIRATIME : 0;
        a |= flags & MS_NOSYMFOLLOW ? MOUNT_ATTR_NOSYMFOLLOW : 0;
        if (flags & MS_NOATIME)
                a |= MOUNT_ATTR_NOATIME;
        else if (flags & MS_STRICTATIME)
                a |= MOUNT_ATTR_STRICTATIME;
        return a;
}

static int set_propagation(int rootfd, const char *dest, unsigned long prop, VsError *err)
{
        if (!prop)
                return 0;
        _cleanup_close_ int t = vs_openat2(rootfd, dest[1] ? dest + 1 : ".", O_PATH | O_CLOEXEC,
                                           RESOLVE_ROOT | RESOLVE_NO_SYMLINKS);
        struct mount_attr a = {.propagation = prop & ~(unsigned long)MS_REC};
        if (t < 0 || mount_setattr(t, "", AT_EMPTY_PATH | (prop & MS_REC ? AT_RECURSIVE : 0), &a,
                                   sizeof a) < 0)
                return vs_error(err, errno, "mount %s: set its propagation", dest);
        return 0;
}

/* A filesystem of its own: fsopen, the options one by one, fsmount. */
static int new_fs(const VsOciMount *m, bool userns, VsError *err)
{
        _cleanup_close_ int fs = fsopen(m->type, FSOPEN_CLOEXEC);
        if (fs < 0)
                return vs_error(err, errno, "mount %s on %s", m->type, m->destination);
        if (m->source && m->source[0] &&
            fsconfig(fs, FSCONFIG_SET_STRING, "source", m->source, 0) < 0)
                return vs_error(err, errno, "mount %s on %s: source %s", m->type, m->destination,
                                m->source);
        char data[sizeof m->data];
        memcpy(data, m->data, sizeof data);
        char *save = NULL;
        for (char *o = strtok_r(data, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(o, '=');
                if (eq)
                        *eq = '\0';
                int r = eq ? fsconfig(fs, FSCONFIG_SET_STRING, o, eq + 1, 0)
                           : fsconfig(fs, FSCONFIG_SET_FLAG, o, NULL, 0);
                /* ids the user namespace does not map (devpts gid=5): the kernel's default */
                if (r < 0 && userns && errno == EINVAL && (streq(o, "gid") || streq(o, "uid")))
                        continue;
                if (r < 0)
                        return vs_error(err, errno, "mount %s on %s: option %s%s%s", m->type,
                                        m->destination, o, eq ? "=" : "", eq ? eq + 1 : "");
        }
        static const struct {
                unsigned long flag;
                const char *name;
        } sb[] = {{MS_SYNCHRONOUS, "sync"}, {MS_DIRSYNC, "dirsync"}, {MS_MANDLOCK, "mand"}};
        for (size_t i = 0; i < ARRAY_SIZE(sb); i++)
                if ((m->flags & sb[i].flag) &&
                    fsconfig(fs, FSCONFIG_SET_FLAG, sb[i].name, NULL, 0) < 0)
                        return vs_error(err, errno, "mount %s on %s: option %s", m->type,
                                        m->destination, sb[i].name);
        if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return vs_error(err, errno, "mount %s on %s", m->type, m->destination);
        int mnt = fsmount(fs, FSMOUNT_CLOEXEC, mount_attrs(m->flags));
        if (mnt < 0)
                return vs_error(err, errno, "mount %s on %s", m->type, m->destination);
        return mnt;
}

static int host_path(const Child *ch, const char *src, char *buf, size_t size)
{
        int n = src[0] == '/' ? snprintf(buf, size, "%s", src)
                              : snprintf(buf, size, "%s/%s", ch->bundle, src);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int do_mount(const Child *ch, int rootfd, const VsOciMount *m, int tree, VsError *err)
{
        _cleanup_close_ int mnt = -EBADF;
        bool dir = true;
        if (m->bind) {
                mnt = fcntl(tree, F_DUPFD_CLOEXEC, 3);
                if (mnt < 0)
                        return vs_error(err, errno, "bind %s on %s: open the source", m->source,
                                        m->destination);
                struct stat st;
                if (fstat(mnt, &st) < 0)
                        return vs_error(err, errno, "bind %s", m->source);
                dir = S_ISDIR(st.st_mode);
                struct mount_attr a = {.attr_set = mount_attrs(m->flags),
                                       .attr_clr = mount_attrs(m->clear)};
                if ((a.attr_set & MOUNT_ATTR__ATIME) || (m->clear & (MS_NOATIME | MS_STRICTATIME)))
                        a.attr_clr |= MOUNT_ATTR__ATIME;
                if ((a.attr_set || a.attr_clr) &&
                    mount_setattr(mnt, "", AT_EMPTY_PATH | (m->recursive ? AT_RECURSIVE : 0), &a,
                                  sizeof a) < 0)
                        return vs_error(err, errno, "bind %s on %s: set its options", m->source,
                                        m->destination);
        } else if (streq(m->type, "cgroup") || streq(m->type, "cgroup2")) {
                return vs_mount_cgroups(rootfd, m->destination, m->flags & MS_RDONLY, NULL, 0, err);
        } else {
                mnt = new_fs(m, ch->userns_new, err);
                /* sysfs only for the owner of the network namespace: bind the host's, as runc */
                if (mnt == -EPERM && streq(m->type, "sysfs")) {
                        mnt = open_tree(AT_FDCWD, "/sys",
                                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
                        struct mount_attr a = {.attr_set = mount_attrs(m->flags) |
                                                           MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                                           MOUNT_ATTR_NOEXEC};
                        if (mnt < 0 ||
                            mount_setattr(mnt, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0)
                                return vs_error(err, errno, "bind the host's /sys on %s",
                                                m->destination);
                }
                if (mnt < 0)
                        return mnt;
        }
        _cleanup_close_ int t = vs_mount_open_target(rootfd, m->destination, dir, RESOLVE_ROOT);
        if (t < 0)
                return vs_error(err, t, "mount on %s: open the mount point", m->destination);
        struct stat tst;
        if (fstat(t, &tst) < 0 || S_ISLNK(tst.st_mode) || S_ISDIR(tst.st_mode) != dir)
                return vs_error_input(err, "mount on %s: the mount point is %s", m->destination,
                                      S_ISLNK(tst.st_mode) ? "a symlink"
                                      : dir                ? "not a directory"
                                                           : "a directory, the source a file");
        /* tmpcopyup: what the image has there, copied into the new tmpfs (no symlink followed) */
        if (m->tmpcopyup && !m->bind && streq(m->type, "tmpfs")) {
                _cleanup_close_ int from = openat(t, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                _cleanup_close_ int to = openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                int r = from < 0 || to < 0 ? vs_error(err, errno, "tmpcopyup %s", m->destination)
                                           : vs_tree_copy_fd(from, to, err);
                if (r < 0)
                        return vs_error_prefix(err, "tmpcopyup %s", m->destination);
        }
        int r = vs_mount_attach(mnt, t);
        if (r < 0)
                return vs_error(err, r, "mount %s on %s", m->bind ? m->source : m->type,
                                m->destination);
        return set_propagation(rootfd, m->destination, m->propagate, err);
}

/* Where a device goes: its directory (created) and base name. */
static int device_dir(int rootfd, const char *path, const char **ret_base)
{
        char parent[4096];
        snprintf(parent, sizeof parent, "%s", path);
        char *slash = strrchr(parent, '/');
        *ret_base = path + (slash - parent) + 1;
        if (!**ret_base || streq(*ret_base, ".") || streq(*ret_base, ".."))
                return -EINVAL;
        *slash = '\0';
        _cleanup_close_ int p =
            vs_mount_open_target(rootfd, parent[0] ? parent : "/", true, RESOLVE_ROOT);
        if (p < 0)
                return p;
        int d = openat(p, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return d < 0 ? -errno : d;
}

/* One device node: mknod, or in a user namespace the host's node bound over a file. */
static int make_device(int rootfd, const VsOciDevice *d, bool userns, bool replace, VsError *err)
{
        const char *base;
        _cleanup_close_ int dir = device_dir(rootfd, d->path, &base);
        if (dir < 0)
                return vs_error(err, dir, "device %s", d->path);
        struct stat st;
        if (fstatat(dir, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (!replace)
                        return 0;
                if (unlinkat(dir, base, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
                        return vs_error(err, errno, "device %s: remove what is there", d->path);
        }
        mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
        dev_t dev = makedev(d->major, d->minor);
        if (!userns || d->type == 'p') {
                if (mknodat(dir, base, type | (d->mode & 07777), dev) < 0)
                        return vs_error(err, errno, "mknod %s", d->path);
        } else {
                /* the host's own node with that number, at the same path */
                _cleanup_close_ int host =
                    open_tree(AT_FDCWD, d->path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
                struct stat hst;
                if (host < 0 || fstat(host, &hst) < 0 || (hst.st_mode & S_IFMT) != type ||
                    hst.st_rdev != dev)
                        return vs_error(err, host < 0 ? errno : ENODEV,
                                        "device %s: in a user namespace it is the host's node "
                                        "bound, and the host has none with that number there",
                                        d->path);
                int f =
                    openat(dir, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (f < 0)
                        return vs_error(err, errno, "device %s", d->path);
                close(f);
                _cleanup_close_ int t = openat(dir, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                int r = t < 0 ? -errno : vs_mount_attach(host, t);
                if (r < 0)
                        return vs_error(err, r, "bind the host's %s", d->path);
                return 0;
        }
        if (fchmodat(dir, base, d->mode & 07777, 0) < 0 ||
            fchownat(dir, base, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
                return vs_error(err, errno, "device %s: owner and mode", d->path);
        return 0;
}

static bool dev_is_tmpfs(const VsOciConfig *c)
{
        for (int i = 0; i < c->n_mounts; i++)
                if (streq(c->mounts[i].destination, "/dev") && !c->mounts[i].bind)
                        return true;
        return false;
}

/* runc's default devices and links where /dev is a tmpfs of the container's, then linux.devices. */
static int make_devices(int rootfd, const VsOciConfig *c, bool userns, VsError *err)
{
        static const VsOciDevice defaults[] = {
            {"/dev/null", 'c', 1, 3, 0666, 0, 0},    {"/dev/zero", 'c', 1, 5, 0666, 0, 0},
            {"/dev/full", 'c', 1, 7, 0666, 0, 0},    {"/dev/random", 'c', 1, 8, 0666, 0, 0},
            {"/dev/urandom", 'c', 1, 9, 0666, 0, 0}, {"/dev/tty", 'c', 5, 0, 0666, 0, 0},
        };
        static const struct {
                const char *name, *target;
        } links[] = {
            {"dev/fd", "/proc/self/fd"},       {"dev/stdin", "/proc/self/fd/0"},
            {"dev/stdout", "/proc/self/fd/1"}, {"dev/stderr", "/proc/self/fd/2"},
            {"dev/ptmx", "pts/ptmx"},
        };
        if (dev_is_tmpfs(c)) {
                for (size_t i = 0; i < ARRAY_SIZE(defaults); i++) {
                        int r = make_device(rootfd, &defaults[i], userns, false, err);
                        if (r < 0)
                                return r;
                }
                _cleanup_close_ int dev =
                    vs_openat2(rootfd, "dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                               RESOLVE_ROOT | RESOLVE_NO_SYMLINKS);
                if (dev < 0)
                        return vs_error(err, errno, "open /dev");
                for (size_t i = 0; i < ARRAY_SIZE(links); i++)
                        if (symlinkat(links[i].target, dev, links[i].name + 4) < 0 &&
                            errno != EEXIST)
                                return vs_error(err, errno, "symlink /%s", links[i].name);
        }
        for (int i = 0; i < c->n_devices; i++) {
                int r = make_device(rootfd, &c->devices[i], userns, true, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The console: a pty of the container's devpts, its terminal over /dev/console. */
static int setup_console(int rootfd, const Child *ch, int *ret_slave, VsError *err)
{
        int slave = vs_ctx_open_pty(rootfd, 0, ch->sock, err);
        if (slave < 0)
                return slave;
        *ret_slave = slave;
        _cleanup_close_ int t = vs_mount_open_target(rootfd, "/dev/console", false, RESOLVE_ROOT);
        if (t < 0)
                return vs_error(err, t, "create /dev/console");
        return vs_mount_bind_fd(rootfd, slave, "/dev/console", err);
}

static int set_sysctls(const VsOciConfig *c, int rootfd, VsError *err)
{
        for (int i = 0; i < c->n_sysctl; i++) {
                char path[512];
                int n = snprintf(path, sizeof path, "proc/sys/%s", c->sysctl_key[i]);
                if (n < 0 || (size_t)n >= sizeof path)
                        return vs_error_input(err, "sysctl %s: name too long", c->sysctl_key[i]);
                for (char *p = path + 9; *p; p++)
                        if (*p == '.')
                                *p = '/';
                _cleanup_close_ int fd =
                    vs_openat2(rootfd, path, O_WRONLY | O_CLOEXEC | O_NOCTTY,
                               RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
                struct statfs sf;
                if (fd < 0)
                        return vs_error(err, errno, "sysctl %s", c->sysctl_key[i]);
                if (fstatfs(fd, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)
                        return vs_error_input(err,
                                              "sysctl %s: /proc in the container is not proc "
                                              "(mount proc on /proc)",
                                              c->sysctl_key[i]);
                int r = vs_write_all(fd, c->sysctl_value[i], strlen(c->sysctl_value[i]));
                if (r < 0)
                        return vs_error(err, r, "sysctl %s = %s", c->sysctl_key[i],
                                        c->sysctl_value[i]);
        }
        return 0;
}

static int setup_time(const VsOciConfig *c, VsError *err)
{
        char buf[128];
        snprintf(buf, sizeof buf, "monotonic %lld %u\nboottime %lld %u\n",
                 (long long)c->time_offset_s[0], c->time_offset_ns[0],
                 (long long)c->time_offset_s[1], c->time_offset_ns[1]);
        int r = vs_ctx_timens(buf, err);
        return r < 0 ? vs_error_prefix(err, "linux.timeOffsets") : 0;
}

/*
 * While we are still the host's root (before a new user namespace's root):
 * the root bound on itself (returned, an O_PATH fd) and every bind source
 * opened (@srcs[i] for mounts[i], -1 where no bind; the idmap ones are the
 * trees the caller made, @trees).  Host paths resolve here and nowhere else.
 */
static int open_sources(const Child *ch, const int *trees, int *srcs, VsError *err)
{
        const VsOciConfig *c = ch->c;
        /* nothing mounted here reaches the host, unless rootfsPropagation shares it */
        unsigned long prop = c->rootfs_propagation ? c->rootfs_propagation : MS_SLAVE | MS_REC;
        if (mount(NULL, "/", NULL, (prop & MS_SHARED) ? MS_SLAVE | MS_REC : prop, NULL) < 0)
                return vs_error(err, errno, "make the mount tree %s",
                                (prop & MS_PRIVATE) ? "private" : "a slave");
        _cleanup_close_ int tree =
            open_tree(AT_FDCWD, ch->rootfs, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (tree < 0 || move_mount(tree, "", AT_FDCWD, ch->rootfs, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return vs_error(err, errno, "bind the root %s", ch->rootfs);
        int rootfd = open(ch->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return vs_error(err, errno, "open the root %s", ch->rootfs);
        for (int i = 0, t = 0; i < c->n_mounts; i++) {
                const VsOciMount *m = &c->mounts[i];
                char src[4096];
                srcs[i] = -1;
                if (!m->bind)
                        continue;
                if (m->idmap) {
                        srcs[i] = trees[t++];
                        continue;
                }
                if (host_path(ch, m->source, src, sizeof src) < 0) {
                        close(rootfd);
                        return vs_error(err, ENAMETOOLONG, "bind %s", m->source);
                }
                srcs[i] = open_tree(AT_FDCWD, src,
                                    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
                                        (m->recursive ? AT_RECURSIVE : 0));
                if (srcs[i] < 0) {
                        int e = errno;
                        close(rootfd);
                        return vs_error(err, e, "bind %s on %s: open the source", m->source,
                                        m->destination);
                }
        }
        return rootfd;
}

/* Everything listed mounted inside the root, the devices, the console; then pivot. */
static int fill_root(Child *ch, int rootfd, const int *srcs, int null, int *ret_slave, VsError *err)
{
        const VsOciConfig *c = ch->c;
        int r;
        for (int i = 0; i < c->n_mounts; i++) {
                r = do_mount(ch, rootfd, &c->mounts[i], srcs[i], err);
                if (r < 0)
                        return r;
        }
        r = make_devices(rootfd, c, ch->userns_new || ch->nsfd[VS_OCI_NS_USER] >= 0, err);
        if (r < 0)
                return r;
        if (c->process.terminal) {
                r = setup_console(rootfd, ch, ret_slave, err);
                if (r < 0)
                        return r;
        }
        /* prestart and createRuntime: the caller runs them now, in the runtime's namespaces */
        if (c->n_hooks[VS_OCI_HOOK_PRESTART] || c->n_hooks[VS_OCI_HOOK_CREATE_RUNTIME]) {
                ChildMsg m = {.type = MSG_HOOKS};
                char done;
                if (write(ch->sock, &m, sizeof m) != sizeof m || read(ch->sock, &done, 1) != 1)
                        return vs_error(err, EPIPE, "wait for the createRuntime hooks");
        }
        /* createContainer: in the container's namespaces, its paths still the runtime's */
        r = vs_oci_run_hooks(c, VS_OCI_HOOK_CREATE_CONTAINER, ch->state, true, err);
        if (r < 0)
                return r;
        /* the sysctls through its own /proc, then the masks (podman lists /proc/sys read-only) */
        if ((r = set_sysctls(c, rootfd, err)) < 0)
                return r;
        const char *masked[VS_OCI_MAX_LIST + 1] = {0}, *ro[VS_OCI_MAX_LIST + 1] = {0};
        memcpy(masked, c->masked, sizeof(char *) * (size_t)c->n_masked);
        memcpy(ro, c->readonly, sizeof(char *) * (size_t)c->n_readonly);
        if ((r = vs_mount_mask(rootfd, masked, ro, null, -1, err)) < 0)
                return r;
        /* the /proc views over the kernel's files, last (a file that is not there stays so) */
        for (int i = 0; i < VS_VIEW_N; i++) {
                if (ch->views[i] < 0)
                        continue;
                const char *target = vs_view_files[i].target;
                _cleanup_close_ int t =
                    vs_openat2(rootfd, target + 1, O_PATH | O_NOFOLLOW | O_CLOEXEC,
                               RESOLVE_ROOT | RESOLVE_NO_SYMLINKS);
                if (t >= 0 && (r = vs_mount_attach(ch->views[i], t)) < 0)
                        return vs_error(err, r, "bind the view over %s", target);
                close(ch->views[i]);
                ch->views[i] = -1;
        }
        r = vs_mount_pivot(rootfd, err);
        if (r < 0)
                return r;
        if (c->root_readonly) {
                _cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};
                if (root < 0 || mount_setattr(root, "", AT_EMPTY_PATH, &a, sizeof a) < 0)
                        return vs_error(err, errno, "make the root read-only");
        }
        if (c->rootfs_propagation && mount(NULL, "/", NULL, c->rootfs_propagation, NULL) < 0)
                return vs_error(err, errno, "linux.rootfsPropagation");
        return 0;
}

static int join_namespaces(const Child *ch, VsError *err)
{
        for (int t = 0; t < VS_OCI_NS_N; t++) {
                if (ch->nsfd[t] < 0 || t == VS_OCI_NS_PID)
                        continue;
                if (setns(ch->nsfd[t], vs_oci_ns_clone_flag(t)) < 0)
                        return vs_error(err, errno, "join the %s namespace %s", vs_oci_ns_name(t),
                                        ch->c->ns[t].path);
                close(ch->nsfd[t]);
        }
        return 0;
}

/* Runs in the new container; returns only on failure. */
static int child(Child *ch, VsError *err)
{
        const VsOciConfig *c = ch->c;
        const VsOciProcess *p = &c->process;
        int r;
        int keep[5 + VS_OCI_NS_N + VS_VIEW_N] = {ch->sock, ch->fifo, ch->stdio[0], ch->stdio[1],
                                                 ch->stdio[2]};
        int n_keep = 5;
        for (int t = 0; t < VS_OCI_NS_N; t++)
                keep[n_keep++] = ch->nsfd[t];
        for (int i = 0; i < VS_VIEW_N; i++)
                keep[n_keep++] = ch->views[i];
        if (vs_ctx_keep_only(keep, n_keep, ch->n_preserve) < 0)
                return vs_error(err, errno, "close inherited fds");
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                return vs_error(err, errno, "set the parent-death signal");
        int trees[VS_MAX_PASS_FDS], n_trees = 0;
        r = vs_ctx_wait_for_go(ch->sock, trees, (int)ARRAY_SIZE(trees), &n_trees, err);
        if (r < 0)
                return r;
        int want = 0;
        for (int i = 0; i < c->n_mounts; i++)
                want += c->mounts[i].idmap;
        if (n_trees != want)
                return vs_error(err, EPROTO, "the caller sent %d trees, not %d", n_trees, want);
        if (c->n_hooks[VS_OCI_HOOK_CREATE_CONTAINER] || c->n_hooks[VS_OCI_HOOK_START_CONTAINER]) {
                ssize_t n = read(ch->sock, ch->state, sizeof ch->state - 1);
                if (n <= 0)
                        return vs_error(err, n < 0 ? errno : EPIPE, "read the state for hooks");
                ch->state[n] = '\0';
        }
        r = join_namespaces(ch, err);
        if (r < 0)
                return r;
        /* now in our cgroup: make it the root of our view */
        if (c->ns[VS_OCI_NS_CGROUP].set && !c->ns[VS_OCI_NS_CGROUP].path &&
            unshare(CLONE_NEWCGROUP) < 0)
                return vs_error(err, errno, "new cgroup namespace");
        if (c->ns[VS_OCI_NS_TIME].set && !c->ns[VS_OCI_NS_TIME].path &&
            (r = setup_time(c, err)) < 0)
                return r;
        /* the ipc.* limits, in the container's own IPC namespace */
        if (c->ns[VS_OCI_NS_IPC].set && !c->ns[VS_OCI_NS_IPC].path &&
            (r = vs_limits_apply_ipc(&c->limits, err)) < 0)
                return r;
        if (c->hostname && c->hostname[0] && sethostname(c->hostname, strlen(c->hostname)) < 0)
                return vs_error(err, errno, "set the hostname");
        if (c->domainname && c->domainname[0] &&
            setdomainname(c->domainname, strlen(c->domainname)) < 0)
                return vs_error(err, errno, "set the domain name");
        _cleanup_close_ int slave = -EBADF, rootfd = -EBADF;
        int srcs[VS_OCI_MAX_MOUNTS];
        rootfd = open_sources(ch, trees, srcs, err);
        if (rootfd < 0)
                return rootfd;
        /* what masks files: the host's null, while the host's tree is there */
        _cleanup_close_ int null = vs_mount_host_null();
        if (null < 0)
                return vs_error(err, errno, "open the host's /dev/null");
        /* then a new user namespace's root: what we create in the root is its */
        if (ch->userns_new && (r = vs_ctx_become_ns_root(ch->sock, err)) < 0)
                return r;
        r = fill_root(ch, rootfd, srcs, null, &slave, err);
        for (int i = 0; i < c->n_mounts; i++)
                if (srcs[i] >= 0)
                        close(srcs[i]);
        if (r < 0)
                return r;
        if (c->has_personality && personality(c->personality) < 0)
                return vs_error(err, errno, "linux.personality");
        r = vs_ctx_chdir_in_root(p->cwd, false, err);
        if (r < 0)
                return vs_error_prefix(err, "process.cwd");
        r = vs_ctx_setup_stdio(ch->stdio, slave, p->terminal, err);
        if (r < 0)
                return r;
        char prog[4096];
        r = vs_ctx_find_program(p->args[0], p->env, prog, sizeof prog, err);
        if (r < 0)
                return r;
        VsCred cred = vs_oci_cred(p);
        VsLockdown l = {.rlimits = p->rlimits,
                        .n_rlimits = p->n_rlimits,
                        .no_new_privs = p->no_new_privs,
                        .deny = ch->notify ? NULL : ch->filter,
                        .notify = ch->notify ? ch->filter : ch->sysinfo,
                        .cred = &cred,
                        .set_umask = p->has_umask,
                        .umask = p->umask,
                        .n_preserve = ch->n_preserve};
        r = vs_ctx_lockdown(&l, ch->sock, err);
        if (r < 0)
                return r;
        /* ready: the caller returns, and start writes to the fifo */
        ChildMsg ready = {.type = MSG_READY};
        if (write(ch->sock, &ready, sizeof ready) != sizeof ready)
                return vs_error(err, errno, "tell the caller");
        close(ch->sock);
        ssize_t n;
        char go;
        while ((n = read(ch->fifo, &go, 1)) < 0 && errno == EINTR)
                ;
        if (n != 1)
                _exit(127);
        close(ch->fifo);
        VsError herr = {0};
        if (vs_oci_run_hooks(c, VS_OCI_HOOK_START_CONTAINER, ch->state, true, &herr) < 0) {
                char text[VS_ERROR_MSG_MAX + 128], msg[VS_ERROR_MSG_MAX + 160];
                int len = snprintf(msg, sizeof msg, "vserver-runc: %s\n",
                                   vs_error_text(&herr, text, sizeof text));
                (void)!write(2, msg, (size_t)len);
                _exit(127);
        }
        execve(prog, p->args, p->env ? p->env : vs_context_env);
        _exit(127);
}

/* ---- create, in the caller ---- */

static int write_maps(pid_t pid, const char *file, const VsOciIdMap *m, int n, VsError *err)
{
        char buf[VS_OCI_MAX_IDMAPS * 40] = "", path[64];
        size_t len = 0;
        for (int i = 0; i < n; i++)
                len += (size_t)snprintf(buf + len, sizeof buf - len, "%u %u %u\n", m[i].container,
                                        m[i].host, m[i].size);
        snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
        int r = vs_write_file_at(AT_FDCWD, path, buf);
        return r < 0 ? vs_error(err, r, "write the container's %s", file) : 0;
}

/* Namespaces a config names by path, opened (and checked to be of that type). */
static int open_namespaces(const VsOciConfig *c, int *fds, VsError *err)
{
        for (int t = 0; t < VS_OCI_NS_N; t++) {
                fds[t] = -1;
                if (!c->ns[t].path)
                        continue;
                fds[t] = open(c->ns[t].path, O_RDONLY | O_CLOEXEC);
                if (fds[t] < 0)
                        return vs_error_input(err, "linux.namespaces: %s namespace %s: %s",
                                              vs_oci_ns_name(t), c->ns[t].path, strerror(errno));
                int type = ioctl(fds[t], NS_GET_NSTYPE);
                if (type != vs_oci_ns_clone_flag(t))
                        return vs_error_input(err, "linux.namespaces: %s is not a %s namespace",
                                              c->ns[t].path, vs_oci_ns_name(t));
        }
        return 0;
}

/* What the spec leaves to us, checked before anything is made. */
static int check_config(const VsOciConfig *c, VsError *err)
{
        if (!c->has_process)
                return vs_error_input(err, "config.json: process is missing (create needs the "
                                           "process to run)");
        if (!c->ns[VS_OCI_NS_MOUNT].set || c->ns[VS_OCI_NS_MOUNT].path)
                return vs_error_input(err, "config.json: linux.namespaces needs a new mount "
                                           "namespace ({\"type\": \"mount\"})");
        if (c->hostname && c->hostname[0] && !c->ns[VS_OCI_NS_UTS].set)
                return vs_error_input(err, "config.json: hostname needs a uts namespace of the "
                                           "container's (add {\"type\": \"uts\"})");
        bool ipc_limits = c->limits.ipc_sem[0];
        for (int i = 0; i < VS_IPC_N; i++)
                ipc_limits |= c->limits.ipc[i] != VS_UNLIMITED;
        if (ipc_limits && (!c->ns[VS_OCI_NS_IPC].set || c->ns[VS_OCI_NS_IPC].path))
                return vs_error_input(err, "config.json: annotations: the ipc.* limits need an "
                                           "IPC namespace of the container's own");
        for (int i = 0; i < c->n_sysctl; i++) {
                const char *k = c->sysctl_key[i];
                bool ipc = strncmp(k, "kernel.msg", 10) == 0 || streq(k, "kernel.sem") ||
                           strncmp(k, "kernel.shm", 10) == 0 || strncmp(k, "fs.mqueue.", 10) == 0;
                bool net = strncmp(k, "net.", 4) == 0;
                bool uts = streq(k, "kernel.hostname") || streq(k, "kernel.domainname");
                if ((ipc && c->ns[VS_OCI_NS_IPC].set) || (net && c->ns[VS_OCI_NS_NET].set) ||
                    (uts && c->ns[VS_OCI_NS_UTS].set))
                        continue;
                return vs_error_input(err,
                                      "config.json: linux.sysctl.%s would change the host: only "
                                      "sysctls of a namespace the container has of its own "
                                      "(kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, net.*)",
                                      k);
        }
        for (int i = 0; i < c->n_mounts; i++) {
                const VsOciMount *m = &c->mounts[i];
                if (m->idmap && !c->ns[VS_OCI_NS_USER].set)
                        return vs_error_input(err,
                                              "config.json: mounts: idmap on %s needs a user "
                                              "namespace",
                                              m->destination);
                if (m->idmap && (m->n_uid_map || m->n_gid_map) &&
                    (m->n_uid_map != c->n_uid_map ||
                     memcmp(m->uid_map, c->uid_map, sizeof *m->uid_map * (size_t)m->n_uid_map) ||
                     m->n_gid_map != c->n_gid_map ||
                     memcmp(m->gid_map, c->gid_map, sizeof *m->gid_map * (size_t)m->n_gid_map)))
                        return vs_error_input(err,
                                              "config.json: mounts: %s has id mappings of "
                                              "its own; only the container's are supported "
                                              "(drop uidMappings/gidMappings)",
                                              m->destination);
        }
        return 0;
}

/*
 * A leaf of its own below cgroupsPath (vs_cgroup_create) only where the
 * container may write its cgroup tree: a cgroup mount without "ro", or
 * SYS_ADMIN without a user namespace (it could mount one; in a user
 * namespace of its own the files are the host root's, unmapped there).
 * Else its processes live in cgroupsPath itself, as with runc and crun: a
 * cgroup fewer a hierarchy, on a cgroup2 host a memory cgroup fewer.
 */
static bool own_cgroups(const VsOciConfig *c)
{
        for (int i = 0; i < c->n_mounts; i++) {
                const VsOciMount *m = &c->mounts[i];
                if (m->type && (streq(m->type, "cgroup") || streq(m->type, "cgroup2")) &&
                    !(m->flags & MS_RDONLY))
                        return true;
        }
        return !c->ns[VS_OCI_NS_USER].set &&
               (c->process.caps[VS_OCI_CAP_BOUNDING] & (1ULL << CAP_SYS_ADMIN));
}

/* Split cgroupsPath into parent and name (ours: /vserver-runc/ID). */
static int cgroup_place(const VsOciConfig *c, const char *id, bool systemd, char *parent,
                        size_t psize, char *name, size_t nsize, VsError *err)
{
        const char *path = c->cgroups_path;
        if (systemd || (path && strchr(path, ':')))
                return vs_error_input(err,
                                      "the systemd cgroup driver (\"%s\") needs systemd as "
                                      "PID 1, and this host runs another init: use cgroupfs "
                                      "(podman --cgroup-manager=cgroupfs; containerd "
                                      "SystemdCgroup = false)",
                                      path ? path : "--systemd-cgroup");
        char buf[4096];
        if (!path || !path[0])
                snprintf(buf, sizeof buf, "/vserver-runc/%s", id);
        else
                snprintf(buf, sizeof buf, "%s", path);
        size_t n = strlen(buf);
        while (n > 1 && buf[n - 1] == '/')
                buf[--n] = '\0';
        char *slash = strrchr(buf, '/');
        const char *base = slash ? slash + 1 : buf;
        if (!base[0] || strlen(base) >= nsize)
                return vs_error_input(err, "linux.cgroupsPath \"%s\" names no cgroup", path);
        snprintf(name, nsize, "%s", base);
        if (!slash)
                snprintf(parent, psize, ".");
        else if (slash == buf)
                snprintf(parent, psize, "/");
        else {
                *slash = '\0';
                snprintf(parent, psize, "%s", buf);
        }
        return 0;
}

/* linux.resources beyond VsLimits: hugepages, unified files, the device rules. */
static int apply_extra_resources(const VsOciConfig *c, const VsCgroup *cg, VsError *err)
{
        json_object *lx, *res, *a;
        if (!json_object_object_get_ex(c->json, "linux", &lx) ||
            !json_object_object_get_ex(lx, "resources", &res) || !res)
                return 0;
        int r;
        if (json_object_object_get_ex(res, "hugepageLimits", &a) && a &&
            json_object_get_type(a) == json_type_array)
                for (size_t i = 0; i < json_object_array_length(a); i++) {
                        json_object *e = json_object_array_get_idx(a, i), *v;
                        const char *size = json_object_object_get_ex(e, "pageSize", &v)
                                               ? json_object_get_string(v)
                                               : "";
                        char v1[64], v2[64], val[32];
                        snprintf(v1, sizeof v1, "hugetlb.%s.limit_in_bytes", size);
                        snprintf(v2, sizeof v2, "hugetlb.%s.max", size);
                        snprintf(val, sizeof val, "%lld",
                                 json_object_object_get_ex(e, "limit", &v)
                                     ? (long long)json_object_get_int64(v)
                                     : 0LL);
                        r = vs_cgroup_set(cg, v1, v2, val, err);
                        if (r < 0)
                                return vs_error_prefix(err, "linux.resources.hugepageLimits");
                }
        if (json_object_object_get_ex(res, "unified", &a) && a &&
            json_object_get_type(a) == json_type_object) {
                json_object_object_foreach(a, key, val)
                {
                        r = vs_cgroup_set(cg, NULL, key, json_object_get_string(val), err);
                        if (r < 0)
                                return vs_error_prefix(err, "linux.resources.unified (cgroup v2 "
                                                            "files only)");
                }
        }
        return vs_oci_devices_apply(c, cg, err);
}

/* @fd and @text to the unix socket at @path (what names it in errors: @what). */
static int send_to(const char *path, const char *what, const char *text, int fd, VsError *err)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof sa.sun_path)
                return vs_error_input(err, "%s %s: path too long", what, path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        _cleanup_close_ int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) < 0)
                return vs_error(err, errno, "%s %s", what, path);
        int r = vs_send_fds(s, text, strlen(text), &fd, 1);
        return r < 0 ? vs_error(err, r, "%s %s: send", what, path) : 0;
}

int vs_oci_send_console(const char *path, int master, VsError *err)
{
        unsigned ptn = 0;
        char name[32] = "/dev/console";
        if (ioctl(master, TIOCGPTN, &ptn) == 0)
                snprintf(name, sizeof name, "/dev/pts/%u", ptn);
        return send_to(path, "--console-socket", name, master, err);
}

/* The seccomp listener, with the state, to linux.seccomp.listenerPath (runtime-spec 1.1). */
static int send_listener(const VsOciConfig *c, const char *state, int fd, VsError *err)
{
        json_object *v;
        const char *path = json_object_object_get_ex(c->seccomp, "listenerPath", &v)
                               ? json_object_get_string(v)
                               : NULL;
        return path ? send_to(path, "linux.seccomp.listenerPath", state, fd, err) : 0;
}

int vs_oci_write_pid_file(const char *path, pid_t pid, VsError *err)
{
        char tmp[4200], text[32];
        snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
        snprintf(text, sizeof text, "%d", (int)pid);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        int r = fd < 0 ? -errno : vs_write_all(fd, text, strlen(text));
        if (fd >= 0)
                close(fd);
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return vs_error(err, r, "--pid-file %s", path);
        }
        return 0;
}

static int read_config(const char *bundle, VsOciConfig *c, char **ret_text, size_t *ret_len,
                       VsError *err)
{
        _cleanup_close_ int bfd = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (bfd < 0)
                return vs_error_input(err, "bundle %s: %s", bundle, strerror(errno));
        size_t len = 0;
        char *text = vs_oci_read(bfd, "config.json", 4 << 20, &len);
        if (!text)
                return vs_error_input(err, "bundle %s: config.json: %s (runc spec writes one)",
                                      bundle, strerror(errno));
        int r = vs_oci_config_parse(text, len, c, err);
        if (r < 0) {
                free(text);
                return r;
        }
        *ret_text = text;
        *ret_len = len;
        return 0;
}

static int save_limits(int dfd, const VsLimits *l, VsError *err)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return vs_error(err, ENOMEM, "limits");
        vs_limits_write(l, f);
        fclose(f);
        int r = vs_oci_write_atomic(dfd, "limits", text ? text : "", len, err);
        free(text);
        return r;
}

int vs_oci_load_limits(int dfd, VsLimits *l, VsError *err)
{
        vs_limits_init(l);
        _cleanup_free_ char *text = vs_oci_read(dfd, "limits", 1 << 20, NULL);
        if (!text)
                return errno == ENOENT ? 0 : vs_error(err, errno, "read the limits");
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *eq = strchr(line, '='), msg[256];
                if (!eq)
                        continue;
                char *k = line, *v = eq + 1, *e = eq;
                while (e > k && e[-1] == ' ')
                        e--;
                *e = '\0';
                v += strspn(v, " ");
                if (vs_limits_set_key(l, k, v, msg, sizeof msg) < 0)
                        return vs_error(err, EBADMSG, "limits: %s", msg);
        }
        return 0;
}

int vs_oci_create(const VsOciCreateOpts *o, pid_t *ret_pid, VsError *err)
{
        VsOciConfig *c = calloc(1, sizeof *c);
        Child ch = {.sock = -1, .fifo = -1};
        VsCgroup cg = VS_CGROUP_INIT;
        VsContext ctx = VS_CONTEXT_INIT;
        int sv[2] = {-EBADF, -EBADF}, rootfd = -EBADF, dfd = -EBADF, pidns_old = -EBADF;
        int gate = -EBADF;
        unsigned ctxid = 0;
        char owner[VS_OCI_ID_MAX + 8], bpf_dir[4200];
        VsNetSpec net;
        bool isolated = false;
        char *text = NULL, *state = NULL;
        size_t text_len = 0;
        bool made_dir = false;
        int r;
        const int stdio0[3] = {0, 1, 2}, no_stdio[3] = {-1, -1, -1};
        char bundle[4096], rootfs[4096];

        for (int t = 0; t < VS_OCI_NS_N; t++)
                ch.nsfd[t] = -1;
        for (int i = 0; i < VS_VIEW_N; i++)
                ch.views[i] = -1;
        if (!c)
                return vs_error(err, ENOMEM, "create");
        if (!vs_oci_id_valid(o->id)) {
                r = vs_error_input(err, "\"%s\" is not a container id (letters, digits, _ + - .)",
                                   o->id);
                goto out;
        }
        if (!realpath(o->bundle, bundle)) {
                r = vs_error_input(err, "bundle %s: %s", o->bundle, strerror(errno));
                goto out;
        }
        if ((r = read_config(bundle, c, &text, &text_len, err)) < 0 ||
            (r = check_config(c, err)) < 0)
                goto out;
        char want[8200];
        snprintf(want, sizeof want, "%s%s%s", c->root_path[0] == '/' ? "" : bundle,
                 c->root_path[0] == '/' ? "" : "/", c->root_path);
        struct stat st;
        if (!realpath(want, rootfs) || stat(rootfs, &st) < 0 || !S_ISDIR(st.st_mode)) {
                r = vs_error_input(err,
                                   "config.json: root.path %s is not a directory (unpack the "
                                   "image there)",
                                   want);
                goto out;
        }
        const VsOciProcess *p = &c->process;
        if (p->terminal && !o->console_socket && !o->ret_pty) {
                r = vs_error_input(err, "process.terminal needs --console-socket (where the "
                                        "engine takes the pty)");
                goto out;
        }
        if (o->preserve_fds < 0 || o->preserve_fds > VS_CONTEXT_MAX_PRESERVE) {
                r = vs_error_input(err, "--preserve-fds %d: from 0 to %d", o->preserve_fds,
                                   VS_CONTEXT_MAX_PRESERVE);
                goto out;
        }
        const int *stdio = o->stdio ? o->stdio : stdio0;
        int check[3] = {stdio[0], stdio[1], stdio[2]};
        if (p->terminal)
                check[0] = check[1] = check[2] = -1;
        if ((r = vs_ctx_check_caller(check, p->terminal, err)) < 0)
                goto out;
        r = vs_oci_seccomp_build(c->seccomp, &ch.filter, &ch.notify, err);
        if (r < 0)
                goto out;

        /* the state directory first: delete --force finds whatever we made from here on */
        if ((r = vs_mkdir_p(o->root, 0700)) < 0) {
                r = vs_error(err, r, "state root %s", o->root);
                goto out;
        }
        rootfd = open(o->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0) {
                r = vs_error(err, errno, "state root %s", o->root);
                goto out;
        }
        if (mkdirat(rootfd, o->id, 0700) < 0) {
                r = errno == EEXIST
                        ? vs_error(err, EEXIST, "container \"%s\" already exists", o->id)
                        : vs_error(err, errno, "state of %s", o->id);
                goto out;
        }
        made_dir = true;
        dfd = openat(rootfd, o->id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0 || flock(dfd, LOCK_EX) < 0) {
                r = vs_error(err, errno, "state of %s", o->id);
                goto out;
        }
        VsOciRecord rec;
        vs_oci_record_init(&rec, o->id);
        snprintf(rec.bundle, sizeof rec.bundle, "%s", bundle);
        snprintf(rec.rootfs, sizeof rec.rootfs, "%s", rootfs);
        r = cgroup_place(c, o->id, o->systemd_cgroup, rec.cgroup_parent, sizeof rec.cgroup_parent,
                         rec.cgroup_name, sizeof rec.cgroup_name, err);
        if (r < 0)
                goto out;
        if (mkfifoat(dfd, "exec.fifo", 0600) < 0) {
                r = vs_error(err, errno, "make the exec fifo");
                goto out;
        }
        if ((r = vs_oci_write_atomic(dfd, "config.json", text, text_len, err)) < 0 ||
            (r = vs_oci_state_save(dfd, &rec, err)) < 0 ||
            (r = save_limits(dfd, &c->limits, err)) < 0)
                goto out;
        /* O_RDWR: never blocks, and keeps the fifo open for start's writer */
        ch.fifo = openat(dfd, "exec.fifo", O_RDWR | O_CLOEXEC);
        if (ch.fifo < 0) {
                r = vs_error(err, errno, "open the exec fifo");
                goto out;
        }
        r = vs_cgroup_create(&cg, rec.cgroup_parent, rec.cgroup_name, own_cgroups(c), err);
        if (r < 0)
                goto out;
        if (c->has_resources) {
                r = vs_limits_apply(&cg, &c->limits, NULL, false, err);
                if (r < 0)
                        goto fail;
        }
        if ((r = apply_extra_resources(c, &cg, err)) < 0)
                goto fail;
        if ((r = open_namespaces(c, ch.nsfd, err)) < 0)
                goto fail;
        /* views and isolate: a context id of its own */
        snprintf(owner, sizeof owner, "oci:%s", o->id);
        if (c->views || c->isolate) {
                r = vs_ctxid_claim(VS_OCI_CTX_FIRST, VS_OCI_CTX_LAST, owner, o->root, &ctxid, err);
                if (r < 0)
                        goto fail;
                rec.context = ctxid;
                snprintf(rec.net_device, sizeof rec.net_device, "%s",
                         o->net_device && o->net_device[0] ? o->net_device : "lo");
                if ((r = vs_oci_state_save(dfd, &rec, err)) < 0)
                        goto fail;
        }
        /* org.linux-vserver.net = isolate: its addresses and the programs on its cgroup */
        if (c->isolate) {
                vs_oci_isolate_spec(c, o->root, ctxid, rec.net_device, o->unix_guard, bpf_dir,
                                    sizeof bpf_dir, &net);
                r = vs_net_isolate_start(&net, &cg, err);
                if (r < 0) {
                        vs_error_prefix(err, "org.linux-vserver.net = isolate");
                        goto fail;
                }
                isolated = true;
        }
        /* org.linux-vserver.views: the view server's files for it */
        if (c->views) {
                r = vs_views_ensure(&gate, err);
                if (r == 0)
                        r = vs_views_open(ctxid, false, ch.views, err);
                if (r == 0 && !ch.notify)
                        r = vs_seccomp_build_notify(VS_NOTIFY_SYSINFO, &ch.sysinfo, err);
                if (r < 0) {
                        vs_error_prefix(err, "org.linux-vserver.views");
                        goto fail;
                }
        }
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
                r = vs_error(err, errno, "socketpair");
                goto fail;
        }
        ch.c = c;
        ch.bundle = bundle;
        ch.rootfs = rootfs;
        ch.sock = sv[1];
        ch.stdio = p->terminal ? no_stdio : stdio; /* the pty is all it gets */
        ch.n_preserve = o->preserve_fds;
        ch.userns_new = c->ns[VS_OCI_NS_USER].set && !c->ns[VS_OCI_NS_USER].path;

        unsigned long long flags = CLONE_PIDFD;
        for (int t = 0; t < VS_OCI_NS_N; t++)
                if (c->ns[t].set && !c->ns[t].path && t != VS_OCI_NS_CGROUP && t != VS_OCI_NS_TIME)
                        flags |= (unsigned long long)vs_oci_ns_clone_flag(t);
        /* a pid namespace to join is entered here: it applies to our children only */
        if (ch.nsfd[VS_OCI_NS_PID] >= 0) {
                pidns_old = open("/proc/self/ns/pid_for_children", O_RDONLY | O_CLOEXEC);
                if (setns(ch.nsfd[VS_OCI_NS_PID], CLONE_NEWPID) < 0) {
                        r = vs_error(err, errno, "join the pid namespace %s",
                                     c->ns[VS_OCI_NS_PID].path);
                        goto fail;
                }
        }
        struct clone_args args = {
            .flags = flags, .pidfd = (unsigned long)&ctx.pidfd, .exit_signal = SIGCHLD};
        bool into;
        long pid = vs_ctx_clone_into(&args, vs_cgroup_clone_fd(&cg), &into);
        if (pid < 0) {
                r = vs_error(err, errno, "clone3");
                goto fail;
        }
        if (pid == 0) {
                VsError cerr = {0};
                close(sv[0]);
                vs_ctx_child_exit(sv[1], child(&ch, &cerr), &cerr);
        }
        if (pidns_old >= 0)
                (void)setns(pidns_old, CLONE_NEWPID);
        ctx.pid = (pid_t)pid;
        vs_closep(&sv[1]);
        r = into ? vs_cgroup_attach_v1(&cg, ctx.pid, err) : vs_cgroup_attach(&cg, ctx.pid, err);
        if (r < 0)
                goto fail;
        if (ch.userns_new &&
            ((r = write_maps(ctx.pid, "uid_map", c->uid_map, c->n_uid_map, err)) < 0 ||
             (r = write_maps(ctx.pid, "gid_map", c->gid_map, c->n_gid_map, err)) < 0))
                goto fail;
        if (p->has_oom_score_adj) {
                char path[64], val[16];
                snprintf(path, sizeof path, "/proc/%d/oom_score_adj", (int)ctx.pid);
                snprintf(val, sizeof val, "%d", p->oom_score_adj);
                r = vs_write_file_at(AT_FDCWD, path, val);
                if (r < 0) {
                        r = vs_error(err, r,
                                     "process.oomScoreAdj %d (lowering it needs "
                                     "CAP_SYS_RESOURCE)",
                                     p->oom_score_adj);
                        goto fail;
                }
        }
        r = vs_oci_send_trees(c, bundle, ctx.pid, sv[0], err);
        if (r < 0)
                goto fail;
        /* the state for the hooks the container runs itself (createContainer, startContainer) */
        if (c->n_hooks[VS_OCI_HOOK_CREATE_CONTAINER] || c->n_hooks[VS_OCI_HOOK_START_CONTAINER]) {
                _cleanup_free_ char *s =
                    vs_oci_hook_state(o->id, VS_OCI_CREATING, ctx.pid, bundle, c);
                if (!s || strlen(s) >= sizeof ch.state || write(sv[0], s, strlen(s)) < 0) {
                        r = vs_error(err, s ? errno ? errno : E2BIG : ENOMEM,
                                     "pass the state to the container");
                        goto fail;
                }
        }
        int stop = 0;
        state = vs_oci_hook_state(o->id, VS_OCI_CREATING, ctx.pid, bundle, c);
        if (!state) {
                r = vs_error(err, ENOMEM, "state");
                goto fail;
        }
        r = vs_ctx_wait(sv[0], &ctx, NULL, &stop, err);
        if (r == 0 && stop == MSG_HOOKS) {
                /* the container is made, before its pivot: prestart and createRuntime */
                if ((r = vs_oci_run_hooks(c, VS_OCI_HOOK_PRESTART, state, true, err)) < 0 ||
                    (r = vs_oci_run_hooks(c, VS_OCI_HOOK_CREATE_RUNTIME, state, true, err)) < 0)
                        goto fail;
                if (write(sv[0], "h", 1) != 1) {
                        r = vs_error(err, errno, "go on after the hooks");
                        goto fail;
                }
                r = vs_ctx_wait(sv[0], &ctx, NULL, &stop, err);
        }
        if (r == 0 && stop != MSG_READY)
                r = vs_error(err, EPROTO, "the container ended before it was ready");
        if (r < 0)
                goto fail;
        VsProcStat ps;
        if (vs_proc_stat(ctx.pid, &ps) < 0) {
                r = vs_error(err, ESRCH, "the container's process is gone");
                goto fail;
        }
        rec.pid = ctx.pid;
        rec.starttime = ps.starttime;
        if (ctx.pty_master >= 0) {
                if (p->console_rows || p->console_cols) {
                        struct winsize ws = {.ws_row = (unsigned short)p->console_rows,
                                             .ws_col = (unsigned short)p->console_cols};
                        ioctl(ctx.pty_master, TIOCSWINSZ, &ws);
                }
                if (o->console_socket) {
                        r = vs_oci_send_console(o->console_socket, ctx.pty_master, err);
                        if (r < 0)
                                goto fail;
                } else {
                        *o->ret_pty = TAKE_FD(ctx.pty_master);
                }
        }
        if (ctxid)
                vs_ctxid_note_pid(ctxid, owner, o->root, ctx.pid);
        if (c->views) {
                VsViewUname u = {"", "", ""};
                r = vs_views_register(ctxid, &cg, ctx.pid, &u, err);
                /* sysinfo(2) is the view server's to answer: it holds the listener now */
                if (r == 0 && ch.sysinfo && ctx.notify >= 0)
                        r = vs_views_give(ctxid, ctx.notify, err);
                if (r < 0)
                        goto fail;
        } else if (ctx.notify >= 0 && (r = send_listener(c, state, ctx.notify, err)) < 0) {
                goto fail;
        }
        if (o->pid_file && (r = vs_oci_write_pid_file(o->pid_file, ctx.pid, err)) < 0)
                goto fail;
        if ((r = vs_oci_state_save(dfd, &rec, err)) < 0)
                goto fail;
        if (ret_pid)
                *ret_pid = ctx.pid;
        made_dir = false;
        r = 0;
        goto out;
fail:
        vs_ctx_kill_and_reap(ctx.pidfd);
        vs_cgroup_kill(&cg, NULL);
        vs_cgroup_destroy(&cg, NULL);
        if (isolated)
                (void)vs_net_isolate_stop(&net, NULL);
        if (ctxid) {
                vs_views_unregister(ctxid);
                vs_ctxid_release(ctxid, owner, o->root);
        }
out:
        if (made_dir)
                vs_oci_remove_dir(rootfd, o->id);
        if (pidns_old >= 0)
                close(pidns_old);
        for (int t = 0; t < VS_OCI_NS_N; t++)
                if (ch.nsfd[t] >= 0)
                        close(ch.nsfd[t]);
        vs_closep(&ch.fifo);
        vs_closep(&sv[0]);
        vs_closep(&sv[1]);
        vs_closep(&dfd);
        vs_closep(&rootfd);
        vs_context_release(&ctx);
        vs_cgroup_release(&cg);
        vs_seccomp_free(ch.filter);
        vs_seccomp_free(ch.sysinfo);
        vs_closep(&gate);
        for (int i = 0; i < VS_VIEW_N; i++)
                if (ch.views[i] >= 0)
                        close(ch.views[i]);
        free(state);
        free(text);
        vs_oci_config_free(c);
        free(c);
        return r;
}
