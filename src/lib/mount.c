/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include "cow.h"
#include "syscalls.h"
#include "util.h"

/* Like the OCI runtime spec's defaults, plus what a shared kernel leaks. */
const char *const vs_masked_paths[] = {
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/key-users",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/kmsg",
    "/proc/config.gz",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/sys/kernel/debug",
    "/sys/kernel/security",
    NULL,
};
const char *const vs_readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

#define RESOLVE_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
#define RESOLVE_USER (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)

static const char *skip_slashes(const char *p)
{
        while (*p == '/')
                p++;
        return *p ? p : ".";
}

/* Open @path below @rootfd as O_PATH, creating it (a dir, or an empty file) if missing. */
int vs_mount_open_target(int rootfd, const char *path, bool dir, unsigned long long resolve)
{
        const char *rel = skip_slashes(path);
        int fd = vs_openat2(rootfd, rel, O_PATH | O_CLOEXEC, resolve);
        if (fd >= 0 || errno != ENOENT)
                return fd < 0 ? -errno : fd;

        /* create the last component in its (resolved, possibly created) parent */
        char parent[4096];
        snprintf(parent, sizeof parent, "%s", rel);
        char *slash = strrchr(parent, '/');
        const char *base = slash ? slash + 1 : parent;
        if (slash)
                *slash = '\0';
        if (streq(base, "..") || streq(base, "."))
                return -EINVAL;
        _cleanup_close_ int pfd = slash ? vs_mount_open_target(rootfd, parent, true, resolve)
                                        : vs_openat2(rootfd, ".", O_PATH | O_CLOEXEC, resolve);
        if (pfd < 0)
                return pfd < -1 ? pfd : -errno;
        /* mkdirat/openat need a real directory fd, not O_PATH, for the base name */
        _cleanup_close_ int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        if (dir) {
                if (mkdirat(dfd, base, 0755) < 0 && errno != EEXIST)
                        return -errno;
        } else {
                int f =
                    openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (f < 0 && errno != EEXIST)
                        return -errno;
                if (f >= 0)
                        close(f);
        }
        fd = openat(dfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

int vs_mount_attach(int mntfd, int targetfd)
{
        if (move_mount(mntfd, "", targetfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) <
            0)
                return -errno;
        return 0;
}

/* A new superblock of @fstype, configured with "key=value" pairs, as a detached mount. */
static int make_fs(const char *fstype, const char *const *opts, unsigned attrs)
{
        _cleanup_close_ int fs = fsopen(fstype, FSOPEN_CLOEXEC);
        if (fs < 0)
                return -errno;
        for (const char *const *o = opts; o && *o; o += 2) {
                int r = o[1] ? fsconfig(fs, FSCONFIG_SET_STRING, o[0], o[1], 0)
                             : fsconfig(fs, FSCONFIG_SET_FLAG, o[0], NULL, 0);
                if (r < 0)
                        return -errno;
        }
        if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return -errno;
        int m = fsmount(fs, FSMOUNT_CLOEXEC, attrs);
        return m < 0 ? -errno : m;
}

static int mount_fs(int rootfd, const char *target, const char *fstype, const char *const *opts,
                    unsigned attrs, VsError *err)
{
        _cleanup_close_ int t = vs_mount_open_target(rootfd, target, true, RESOLVE_ROOT);
        if (t < 0)
                return vs_error(err, t, "mount %s: open the mount point", target);
        _cleanup_close_ int m = make_fs(fstype, opts, attrs);
        if (m < 0)
                return vs_error(err, m, "mount %s on %s", fstype, target);
        int r = vs_mount_attach(m, t);
        if (r < 0)
                return vs_error(err, r, "mount %s on %s", fstype, target);
        return 0;
}

static int set_attrs(int mntfd, unsigned attrs)
{
        struct mount_attr a = {.attr_set = attrs};
        if (mount_setattr(mntfd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0)
                return -errno;
        return 0;
}

/* The detached mount @m, flags @attrs added, on @target below @rootfd. */
static int attach_at(int rootfd, int m, const char *target, unsigned attrs, VsError *err)
{
        _cleanup_close_ int t = vs_mount_open_target(rootfd, target, true, RESOLVE_ROOT);
        if (t < 0)
                return vs_error(err, t, "mount %s: open the mount point", target);
        int r = attrs ? set_attrs(m, attrs) : 0;
        if (r == 0)
                r = vs_mount_attach(m, t);
        if (r < 0)
                return vs_error(err, r, "mount %s", target);
        return 0;
}

/*
 * One tmpfs holds what a guest keeps in memory: /dev, /dev/shm, /run,
 * /run/lock, /tmp and the empty directory that masks are directories of
 * it, each bound with flags of its own.  Every superblock on the host
 * takes a slot in the shrinker map of every memory cgroup (1 KiB per 64
 * superblocks, each cgroup): the six tmpfs a guest made grew as the square
 * of the guests (1000 guests: 190 KiB each guest's cgroup).  They all count
 * against the guest's memory limit, as before; one size covers them all.
 * A guest that remounts one of them (the superblock) remounts them all:
 * /sys/fs/cgroup, which systemd remounts read-only, keeps a tmpfs of its own.
 */
typedef struct Scratch {
        int root;            /* the tmpfs, on /run while its directories are cloned */
        int run, lock, mask; /* detached clones, put in place after */
} Scratch;

#define SCRATCH_INIT                                                                               \
        {                                                                                          \
                -EBADF, -EBADF, -EBADF, -EBADF                                                     \
        }

static void scratch_release(Scratch *s)
{
        vs_closep(&s->root);
        vs_closep(&s->run);
        vs_closep(&s->lock);
        vs_closep(&s->mask);
}

/* A detached clone of the directory @dir of the scratch tmpfs (attached: Linux < 6.15). */
static int scratch_clone(const Scratch *s, const char *dir)
{
        int m = open_tree(s->root, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW);
        return m < 0 ? -errno : m;
}

static int scratch_bind(int rootfd, const Scratch *s, const char *dir, const char *target,
                        unsigned attrs, VsError *err)
{
        _cleanup_close_ int m = scratch_clone(s, dir);
        if (m < 0)
                return vs_error(err, m, "mount %s: bind the guest's tmpfs", target);
        return attach_at(rootfd, m, target, attrs, err);
}

/* The tmpfs, with a directory for each of its places, attached on /run for now. */
static int scratch_make(int rootfd, const VsRootSpec *spec, Scratch *s, VsError *err)
{
        static const char *const opts[] = {"mode", "755", NULL};
        const struct {
                const char *dir;
                mode_t mode;
                bool want;
        } dirs[] = {
            {"dev", 0755, true},         {"shm", 01777, true},
            {"run", 0755, true},         {"run/lock", 0755, spec->boot},
            {"lock", 01777, spec->boot}, {"tmp", 01777, spec->tmp_tmpfs},
            {"mask", 0555, true},
        };
        /* nosuid only: /dev holds device nodes; each bind adds its own flags */
        s->root = make_fs("tmpfs", opts, MOUNT_ATTR_NOSUID);
        if (s->root < 0)
                return vs_error(err, s->root, "make the guest's tmpfs");
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
                if (dirs[i].want && (mkdirat(s->root, dirs[i].dir, 0700) < 0 ||
                                     fchmodat(s->root, dirs[i].dir, dirs[i].mode, 0) < 0))
                        return vs_error(err, errno, "make the guest's tmpfs: %s", dirs[i].dir);
        return attach_at(rootfd, s->root, "/run", 0, err);
}

/*
 * What still needs the tmpfs attached: clones for /run, /run/lock and the
 * masks; then its root goes, and /run gets its own directory.
 */
static int scratch_finish(int rootfd, const VsRootSpec *spec, Scratch *s, VsError *err)
{
        s->run = scratch_clone(s, "run");
        s->lock = spec->boot ? scratch_clone(s, "lock") : -EBADF;
        s->mask = scratch_clone(s, "mask");
        if (s->run < 0 || s->mask < 0 || (spec->boot && s->lock < 0))
                return vs_error(err,
                                s->run < 0    ? s->run
                                : s->mask < 0 ? s->mask
                                              : s->lock,
                                "bind the guest's tmpfs");
        /* umount2 takes a path: the root's own, as the working directory */
        _cleanup_close_ int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cwd < 0 || fchdir(s->root) < 0)
                return vs_error(err, errno, "take the guest's tmpfs off /run");
        int r = umount2(".", MNT_DETACH) < 0 ? -errno : 0;
        if (fchdir(cwd) < 0 && r == 0)
                r = -errno;
        if (r < 0)
                return vs_error(err, r, "take the guest's tmpfs off /run");
        r = attach_at(rootfd, s->run, "/run", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, err);
        vs_closep(&s->run);
        if (r == 0 && spec->boot)
                /* systemd mounts /run/lock itself unless it is there, and cannot without
                 * CAP_SYS_ADMIN */
                r = attach_at(rootfd, s->lock, "/run/lock",
                              MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, err);
        return r;
}

/* A host device node bound over an empty file @name in @dev: what mknod gives outside a userns. */
static int bind_host_node(int dev, const char *name, const char *host, VsError *err)
{
        int f = openat(dev, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (f < 0)
                return vs_error(err, errno, "create /dev/%s", name);
        close(f);
        _cleanup_close_ int t = openat(dev, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int m = open_tree(AT_FDCWD, host, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        struct stat st;
        if (m < 0 || fstat(m, &st) < 0 || !S_ISCHR(st.st_mode))
                return vs_error(err, m < 0 ? errno : ENODEV, "bind the host's %s", host);
        int r = t < 0 ? -errno : vs_mount_attach(m, t);
        if (r < 0)
                return vs_error(err, r, "bind the host's %s on /dev/%s", host, name);
        return 0;
}

static int setup_dev(int rootfd, const Scratch *s, bool userns, VsError *err)
{
        static const struct {
                const char *name;
                unsigned maj, min;
        } nodes[] = {
            {"null", 1, 3},
            {"zero", 1, 5},
            {"full", 1, 7},
            {"random", 1, 8},
            {"urandom", 1, 9},
            {"tty", 5, 0},
            /* without a pty the console is a sink; vs_mount_bind_fd puts a pty over it */
            {"console", 1, 3},
        };
        static const struct {
                const char *name, *target;
        } links[] = {
            {"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"},
            {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"},
            {"ptmx", "pts/ptmx"},
        };
        int r = scratch_bind(rootfd, s, "dev", "/dev", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, err);
        if (r < 0)
                return r;
        _cleanup_close_ int dev = vs_openat2(rootfd, "dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                                             RESOLVE_ROOT | RESOLVE_NO_SYMLINKS);
        if (dev < 0)
                return vs_error(err, errno, "open /dev");
        mode_t old = umask(0);
        for (size_t i = 0; i < ARRAY_SIZE(nodes) && !userns; i++)
                if (mknodat(dev, nodes[i].name, S_IFCHR | 0666,
                            makedev(nodes[i].maj, nodes[i].min)) < 0) {
                        umask(old);
                        return vs_error(err, errno, "mknod /dev/%s", nodes[i].name);
                }
        umask(old);
        for (size_t i = 0; i < ARRAY_SIZE(nodes) && userns; i++) {
                char host[32];
                /* the console stays a sink until a pty is bound over it */
                snprintf(host, sizeof host, "/dev/%s",
                         i == ARRAY_SIZE(nodes) - 1 ? "null" : nodes[i].name);
                r = bind_host_node(dev, nodes[i].name, host, err);
                if (r < 0)
                        return r;
        }
        if (!userns && fchmodat(dev, "console", 0600, 0) < 0)
                return vs_error(err, errno, "chmod /dev/console");
        for (size_t i = 0; i < ARRAY_SIZE(links); i++)
                if (symlinkat(links[i].target, dev, links[i].name) < 0)
                        return vs_error(err, errno, "symlink /dev/%s", links[i].name);
        for (const char *d = "pts\0shm\0mqueue\0"; *d; d += strlen(d) + 1)
                if (mkdirat(dev, d, 0755) < 0)
                        return vs_error(err, errno, "mkdir /dev/%s", d);

        static const char *const ptsopts[] = {"newinstance", NULL,  "ptmxmode", "0666", "mode",
                                              "0620",        "gid", "5",        NULL};
        r = mount_fs(rootfd, "/dev/pts", "devpts", ptsopts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
                     err);
        if (r == 0)
                r = scratch_bind(rootfd, s, "shm", "/dev/shm", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                                 err);
        if (r == 0)
                r = mount_fs(rootfd, "/dev/mqueue", "mqueue", NULL,
                             MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, err);
        return r;
}

/*
 * Hide each of @masked: the host's /dev/null over files (the guest's own
 * could be any node), an empty read-only tmpfs over directories; make each
 * of @readonly read-only.  NULL-terminated lists; paths not there are fine.
 */
int vs_mount_host_null(void)
{
        /*
         * A path fd of the attached node, not a detached clone: before Linux
         * 6.15 a detached mount cannot be cloned again (EINVAL), this can.
         */
        int fd = open("/dev/null", O_PATH | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 &&
            (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))) {
                close(fd);
                errno = ENODEV;
                return -1;
        }
        return fd;
}

int vs_mount_mask(int rootfd, const char *const *masked, const char *const *readonly, int nullfd,
                  int emptyfd, VsError *err)
{
        _cleanup_close_ int null =
            nullfd >= 0 ? fcntl(nullfd, F_DUPFD_CLOEXEC, 3) : vs_mount_host_null();
        if (null < 0)
                return vs_error(err, errno, "open the host's /dev/null");
        static const char *const opts[] = {"size", "0", "nr_inodes", "1", "mode", "555", NULL};
        static const unsigned attrs =
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        _cleanup_close_ int empty =
            emptyfd >= 0 ? fcntl(emptyfd, F_DUPFD_CLOEXEC, 3) : make_fs("tmpfs", opts, attrs);
        if (empty < 0)
                return vs_error(err, emptyfd >= 0 ? errno : -empty,
                                "make an empty directory for masking");
        if (emptyfd >= 0 && set_attrs(empty, attrs) < 0)
                return vs_error(err, errno, "make the masking directory read-only");
        bool empty_attached = false;

        for (const char *const *p = masked; *p; p++) {
                _cleanup_close_ int t =
                    vs_openat2(rootfd, skip_slashes(*p), O_PATH | O_NOFOLLOW | O_CLOEXEC,
                               RESOLVE_ROOT | RESOLVE_NO_SYMLINKS);
                if (t < 0) {
                        if (errno == ENOENT)
                                continue;
                        return vs_error(err, errno, "mask %s", *p);
                }
                struct stat st;
                if (fstat(t, &st) < 0)
                        return vs_error(err, errno, "mask %s", *p);
                /*
                 * The empty tmpfs goes on the first directory itself: before
                 * Linux 6.15 a mount not yet attached cannot be cloned
                 * (open_tree says EINVAL), one attached can.
                 */
                bool dir = S_ISDIR(st.st_mode);
                if (dir && !empty_attached) {
                        int r = vs_mount_attach(empty, t);
                        if (r < 0)
                                return vs_error(err, r, "mask %s", *p);
                        empty_attached = true;
                        continue;
                }
                _cleanup_close_ int m = open_tree(
                    dir ? empty : null, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
                if (m < 0)
                        return vs_error(err, errno, "mask %s", *p);
                int r = vs_mount_attach(m, t);
                if (r < 0)
                        return vs_error(err, r, "mask %s", *p);
        }
        for (const char *const *p = readonly; *p; p++) {
                _cleanup_close_ int t =
                    vs_openat2(rootfd, skip_slashes(*p), O_PATH | O_NOFOLLOW | O_CLOEXEC,
                               RESOLVE_ROOT | RESOLVE_NO_SYMLINKS);
                if (t < 0) {
                        if (errno == ENOENT)
                                continue;
                        return vs_error(err, errno, "make %s read-only", *p);
                }
                _cleanup_close_ int m = open_tree(
                    t, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
                int r = m < 0 ? -errno
                              : set_attrs(m, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                                 MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
                if (r == 0)
                        r = vs_mount_attach(m, t);
                if (r < 0)
                        return vs_error(err, r, "make %s read-only", *p);
        }
        return 0;
}

/* @fd: a clone of the source the host side made, or -1 to make it here. */
static int apply_bind(int rootfd, const VsBind *b, int fd, VsError *err)
{
        _cleanup_close_ int src =
            fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3)
                    : open_tree(AT_FDCWD, b->source,
                                OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (src < 0)
                return vs_error(err, errno, "bind %s: open the source", b->source);
        struct stat st;
        if (fstat(src, &st) < 0)
                return vs_error(err, errno, "bind %s", b->source);
        _cleanup_close_ int t =
            vs_mount_open_target(rootfd, b->target, S_ISDIR(st.st_mode), RESOLVE_USER);
        if (t < 0) {
                if (t == -EXDEV || t == -ELOOP)
                        return vs_error_input(err,
                                              "bind %s: target %s leads out of the guest root "
                                              "through a symlink (name a path without one)",
                                              b->source, b->target);
                return vs_error(err, t, "bind %s: target %s", b->source, b->target);
        }
        struct stat tst;
        if (fstat(t, &tst) < 0)
                return vs_error(err, errno, "bind %s: target %s", b->source, b->target);
        if (S_ISLNK(tst.st_mode))
                return vs_error_input(err,
                                      "bind %s: target %s is a symlink (name a path "
                                      "without one)",
                                      b->source, b->target);
        if (S_ISDIR(tst.st_mode) != S_ISDIR(st.st_mode))
                return vs_error_input(err, "bind %s: a %s cannot be bound over the %s %s",
                                      b->source, S_ISDIR(st.st_mode) ? "directory" : "file",
                                      S_ISDIR(tst.st_mode) ? "directory" : "file", b->target);
        int r = 0;
        if (b->readonly)
                r = set_attrs(src, MOUNT_ATTR_RDONLY);
        if (r == 0)
                r = vs_mount_attach(src, t);
        if (r < 0)
                return vs_error(err, r, "bind %s on %s", b->source, b->target);
        return 0;
}

/*
 * The cgroup tree the way systemd expects it: in our own cgroup namespace
 * each hierarchy shows the context's cgroup as its root, so the guest may
 * write below it (systemd must) but never reaches the limits set above it.
 * v1 controller hierarchies are read-only (as systemd-nspawn mounts them):
 * a v1 blkio child cgroup escapes its parent's throttle (v1 throttling is
 * not hierarchical), and a v1 freezer at the guest's root would let it
 * freeze itself under our feet.  Only name=systemd and cgroup2 are writable.
 * Hybrid and v1 hosts get a tmpfs with one mount per hierarchy, the cgroup2
 * tree on "unified"; pure v2 hosts get cgroup2 on /sys/fs/cgroup itself.
 */
/* Each of our own cgroups, bound below @at (the tmpfs there already mounted). */
static int bind_cgroups(int rootfd, const char *at, bool readonly, const VsCgroupTree *trees, int n,
                        VsError *err)
{
        static const unsigned attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        for (int i = 0; i < n; i++) {
                char target[4096 + 130];
                snprintf(target, sizeof target, "%s%s%s", at, trees[i].dir[0] ? "/" : "",
                         trees[i].dir);
                _cleanup_close_ int t = vs_mount_open_target(rootfd, target, true, RESOLVE_ROOT);
                if (t < 0)
                        return vs_error(err, t, "mount %s: open the mount point", target);
                struct mount_attr a = {
                    .attr_set = attrs | (trees[i].readonly || readonly ? MOUNT_ATTR_RDONLY : 0)};
                if (mount_setattr(trees[i].fd, "", AT_EMPTY_PATH, &a, sizeof a) < 0)
                        return vs_error(err, errno, "mount %s", target);
                int r = vs_mount_attach(trees[i].fd, t);
                if (r < 0)
                        return vs_error(err, r, "mount %s", target);
        }
        return 0;
}

int vs_mount_cgroups(int rootfd, const char *at, bool readonly, const VsCgroupTree *trees,
                     int n_trees, VsError *err)
{
        char buf[4096];
        ssize_t n = vs_read_file_at(AT_FDCWD, "/proc/self/cgroup", buf, sizeof buf);
        if (n < 0)
                return vs_error(err, (int)n, "read /proc/self/cgroup");
        bool v1 = false;
        for (char *l = buf; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l))
                if (strncmp(l, "0::", 3) != 0)
                        v1 = true;
        static const unsigned attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        if (!v1 && trees && n_trees == 1) { /* cgroup2 alone: our own, right on @at */
                VsCgroupTree one = trees[0];
                one.dir[0] = '\0';
                return bind_cgroups(rootfd, at, readonly, &one, 1, err);
        }
        if (!v1)
                return mount_fs(rootfd, at, "cgroup2", NULL,
                                attrs | (readonly ? MOUNT_ATTR_RDONLY : 0), err);

        static const char *const tmpopts[] = {"mode", "755", "size", "0", NULL};
        int r = mount_fs(rootfd, at, "tmpfs", tmpopts, attrs, err);
        if (r < 0)
                return r;
        if (trees) {
                r = bind_cgroups(rootfd, at, readonly, trees, n_trees, err);
                if (r < 0)
                        return r;
                buf[0] = '\0'; /* nothing to mount afresh */
        }
        char *save = NULL;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c2 = '\0';
                const char *ctrls = c1 + 1;
                char dir[128], target[4096 + 130];
                const char *opts[32];
                char optbuf[256];
                int k = 0;
                const char *fstype = "cgroup";
                if (ctrls[0] == '\0') {
                        fstype = "cgroup2";
                        snprintf(dir, sizeof dir, "unified");
                } else {
                        snprintf(dir, sizeof dir, "%s",
                                 strncmp(ctrls, "name=", 5) == 0 ? ctrls + 5 : ctrls);
                        snprintf(optbuf, sizeof optbuf, "%s", ctrls);
                        char *s2 = NULL;
                        for (char *c = strtok_r(optbuf, ",", &s2); c && k < 28;
                             c = strtok_r(NULL, ",", &s2)) {
                                if (strncmp(c, "name=", 5) == 0) {
                                        opts[k++] = "name";
                                        opts[k++] = c + 5;
                                } else {
                                        opts[k++] = c;
                                        opts[k++] = NULL;
                                }
                        }
                }
                opts[k] = NULL;
                if (strchr(dir, '/') || dir[0] == '.')
                        continue;
                snprintf(target, sizeof target, "%s/%s", at, dir);
                /* flags are (key, NULL) pairs: walk them ourselves */
                _cleanup_close_ int t = vs_mount_open_target(rootfd, target, true, RESOLVE_ROOT);
                if (t < 0)
                        return vs_error(err, t, "mount %s: open the mount point", target);
                _cleanup_close_ int fs = fsopen(fstype, FSOPEN_CLOEXEC);
                if (fs < 0)
                        return vs_error(err, errno, "mount %s", target);
                for (int i = 0; i < k; i += 2) {
                        int rc = opts[i + 1]
                                     ? fsconfig(fs, FSCONFIG_SET_STRING, opts[i], opts[i + 1], 0)
                                     : fsconfig(fs, FSCONFIG_SET_FLAG, opts[i], NULL, 0);
                        if (rc < 0)
                                return vs_error(err, errno, "mount %s: option %s", target, opts[i]);
                }
                if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                        return vs_error(err, errno, "mount %s", target);
                bool controller = streq(fstype, "cgroup") && strncmp(ctrls, "name=", 5) != 0;
                _cleanup_close_ int m = fsmount(
                    fs, FSMOUNT_CLOEXEC, attrs | (controller || readonly ? MOUNT_ATTR_RDONLY : 0));
                if (m < 0)
                        return vs_error(err, errno, "mount %s", target);
                r = vs_mount_attach(m, t);
                if (r < 0)
                        return vs_error(err, r, "mount %s", target);
        }
        /* the tmpfs itself read-only: nothing but the hierarchies lives there */
        _cleanup_close_ int tm = vs_openat2(rootfd, skip_slashes(at), O_PATH | O_CLOEXEC,
                                            RESOLVE_ROOT | RESOLVE_NO_SYMLINKS);
        struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};
        if (tm < 0 || mount_setattr(tm, "", AT_EMPTY_PATH, &a, sizeof a) < 0)
                return vs_error(err, errno, "make /sys/fs/cgroup read-only");
        return 0;
}

int vs_mount_place_root(const VsRootSpec *spec, VsError *err)
{
        /* Nothing we mount may propagate back to the host. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return vs_error(err, errno, "make the mount tree private");
        if (spec->cow && spec->rootfs_fd < 0) {
                _cleanup_close_ int ovl = vs_cow_mount(spec->cow, -1, spec->readonly_root, err);
                if (ovl < 0)
                        return ovl;
                if (move_mount(ovl, "", AT_FDCWD, spec->rootfs, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                        return vs_error(err, errno, "mount the overlay on %s", spec->rootfs);
                int rootfd = open(spec->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
                return rootfd < 0 ? vs_error(err, errno, "open the root %s", spec->rootfs) : rootfd;
        }
        _cleanup_close_ int tree =
            spec->rootfs_fd >= 0 ? spec->rootfs_fd
                                 : open_tree(AT_FDCWD, spec->rootfs,
                                             OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (tree < 0)
                return vs_error(err, errno, "bind the root %s", spec->rootfs);
        if (spec->rootfs_fd < 0 && spec->readonly_root && set_attrs(tree, MOUNT_ATTR_RDONLY) < 0)
                return vs_error(err, errno, "make the root read-only");
        /* pivot_root needs the new root to be a mount point: put the clone on itself */
        if (move_mount(tree, "", AT_FDCWD, spec->rootfs, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return vs_error(err, errno, "bind the root %s", spec->rootfs);
        int rootfd = open(spec->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return vs_error(err, errno, "open the root %s", spec->rootfs);
        return rootfd;
}

int vs_mount_new_proc(void)
{
        return make_fs("proc", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
}

/* The guest's own /proc (a superblock of its own), its sysctls written before it is there. */
static int mount_proc(int rootfd, const VsRootSpec *spec, VsError *err)
{
        _cleanup_close_ int t = vs_mount_open_target(rootfd, "/proc", true, RESOLVE_ROOT);
        if (t < 0)
                return vs_error(err, t, "mount /proc: open the mount point");
        _cleanup_close_ int m = vs_mount_new_proc();
        if (m < 0)
                return vs_error(err, m, "mount proc on /proc");
        for (const char *const *s = spec->sysctls; s && *s; s += 2) {
                char path[128];
                snprintf(path, sizeof path, "sys/%s", s[0]);
                (void)vs_write_file_at(m, path, s[1]);
        }
        int r = vs_mount_attach(m, t);
        return r < 0 ? vs_error(err, r, "mount proc on /proc") : 0;
}

/*
 * sysfs shows the network namespace of whoever mounts it, and only that
 * namespace's owner may: a guest in a user namespace of its own on the
 * host's network gets a sysfs the host side mounted (@spec->sysfs_fd).
 */
static int mount_sys(int rootfd, const VsRootSpec *spec, VsError *err)
{
        static const unsigned attrs =
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        _cleanup_close_ int t = vs_mount_open_target(rootfd, "/sys", true, RESOLVE_ROOT);
        if (t < 0)
                return vs_error(err, t, "mount /sys: open the mount point");
        _cleanup_close_ int m = spec->sysfs_fd >= 0 ? fcntl(spec->sysfs_fd, F_DUPFD_CLOEXEC, 3)
                                                    : make_fs("sysfs", NULL, attrs);
        if (m < 0)
                return vs_error(err, spec->sysfs_fd >= 0 ? -errno : m, "mount sysfs on /sys");
        int r = vs_mount_attach(m, t);
        if (r < 0)
                return vs_error(err, r, "mount sysfs on /sys");
        return 0;
}

static int apply_binds(int rootfd, const VsRootSpec *spec, VsError *err)
{
        for (int i = 0; i < spec->n_binds; i++) {
                int r = apply_bind(rootfd, &spec->binds[i], spec->bind_fds ? spec->bind_fds[i] : -1,
                                   err);
                if (r < 0)
                        return r;
        }
        return 0;
}

int vs_mount_fill_root(const VsRootSpec *spec, int rootfd, VsError *err)
{
        __attribute__((cleanup(scratch_release))) Scratch s = SCRATCH_INIT;
        int r = mount_proc(rootfd, spec, err);
        if (r == 0)
                r = mount_sys(rootfd, spec, err);
        if (r == 0)
                r = scratch_make(rootfd, spec, &s, err);
        if (r == 0)
                r = setup_dev(rootfd, &s, spec->userns, err);
        if (r == 0 && spec->tmp_tmpfs)
                r = scratch_bind(rootfd, &s, "tmp", "/tmp", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                                 err);
        /* a tmpfs of its own: systemd remounts it read-only, superblock and all */
        if (r == 0 && spec->boot)
                r = vs_mount_cgroups(rootfd, "/sys/fs/cgroup", spec->cgroup_ro, spec->cgroup_trees,
                                     spec->n_cgroup_trees, err);
        if (r == 0)
                r = scratch_finish(rootfd, spec, &s, err);
        if (r == 0)
                r = apply_binds(rootfd, spec, err);
        if (r == 0)
                r = vs_mount_mask(rootfd, vs_masked_paths, vs_readonly_paths, -1, s.mask, err);
        for (int i = 0; r == 0 && i < spec->n_overlays; i++) {
                const struct VsOverlay *o = &spec->overlays[i];
                _cleanup_close_ int t =
                    vs_openat2(rootfd, skip_slashes(o->target), O_PATH | O_NOFOLLOW | O_CLOEXEC,
                               RESOLVE_ROOT | RESOLVE_NO_SYMLINKS);
                if (t < 0)
                        continue; /* nothing there to cover */
                r = vs_mount_attach(o->fd, t);
                if (r < 0)
                        r = vs_error(err, r, "bind the view over %s", o->target);
        }
        return r;
}

int vs_mount_make_trees(const VsRootSpec *spec, int userns_fd, int *fds, VsError *err)
{
        int n = 0;
        int r = 0;
        struct mount_attr idmap = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (unsigned)userns_fd};
        if (spec->cow) {
                fds[n] = vs_cow_mount(spec->cow, userns_fd, spec->readonly_root, err);
                if (fds[n] < 0)
                        return fds[n];
                n++;
                goto trees;
        }
        fds[n] =
            open_tree(AT_FDCWD, spec->rootfs, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (fds[n] < 0) {
                r = vs_error(err, errno, "bind the root %s", spec->rootfs);
                goto fail;
        }
        n++;
        struct mount_attr a = idmap;
        a.attr_set |= spec->readonly_root ? MOUNT_ATTR_RDONLY : 0;
        if (mount_setattr(fds[0], "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0) {
                int e = errno;
                struct statfs sf;
                char type[32] = "this filesystem";
                if (fstatfs(fds[0], &sf) == 0)
                        snprintf(type, sizeof type, "%s",
                                 vs_fs_name(sf.f_type) ? vs_fs_name(sf.f_type) : "this filesystem");
                if (e == EINVAL || e == EOPNOTSUPP)
                        r = vs_error(err, e,
                                     "the guest's tree %s is on %s, which has no idmapped mounts "
                                     "(put it on ext4, xfs, btrfs or tmpfs, or set userns = no)",
                                     spec->rootfs, type);
                else
                        r = vs_error(err, e, "idmap the guest's tree %s", spec->rootfs);
                goto fail;
        }
trees:
        if (spec->host_sysfs) {
                fds[n] = make_fs("sysfs", NULL,
                                 MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                     MOUNT_ATTR_NOEXEC);
                if (fds[n] < 0) {
                        r = vs_error(err, fds[n], "mount sysfs for the guest");
                        goto fail;
                }
                n++;
        }
        for (int i = 0; i < spec->n_binds; i++) {
                const VsBind *b = &spec->binds[i];
                fds[n] = open_tree(AT_FDCWD, b->source,
                                   OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
                if (fds[n] < 0) {
                        r = vs_error(err, errno, "bind %s: open the source", b->source);
                        goto fail;
                }
                n++;
                if (b->idmap && mount_setattr(fds[n - 1], "", AT_EMPTY_PATH | AT_RECURSIVE, &idmap,
                                              sizeof idmap) < 0) {
                        r = vs_error(err, errno,
                                     "bind %s: idmap it (its filesystem may have no idmapped "
                                     "mounts: drop idmap, or move it to ext4, xfs, btrfs or tmpfs)",
                                     b->source);
                        goto fail;
                }
        }
        return n;
fail:
        for (int i = 0; i < n; i++)
                close(fds[i]);
        return r;
}

int vs_mount_bind_fd(int rootfd, int source_fd, const char *target, VsError *err)
{
        _cleanup_close_ int t = vs_openat2(rootfd, skip_slashes(target), O_PATH | O_CLOEXEC,
                                           RESOLVE_ROOT | RESOLVE_NO_SYMLINKS);
        if (t < 0)
                return vs_error(err, errno, "open %s", target);
        _cleanup_close_ int m =
            open_tree(source_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (m < 0)
                return vs_error(err, errno, "bind over %s", target);
        int r = vs_mount_attach(m, t);
        if (r < 0)
                return vs_error(err, r, "bind over %s", target);
        return 0;
}

int vs_mount_pivot(int rootfd, VsError *err)
{
        if (fchdir(rootfd) < 0)
                return vs_error(err, errno, "chdir to the new root");
        /* pivot_root(".", "."): the old root ends up stacked on the new one ... */
        if (vs_pivot_root(".", ".") < 0)
                return vs_error(err, errno, "pivot_root");
        /* ... and is detached here, so no path leads back to the host */
        if (umount2(".", MNT_DETACH) < 0)
                return vs_error(err, errno, "detach the old root");
        if (chdir("/") < 0)
                return vs_error(err, errno, "chdir /");
        return 0;
}

int vs_bind_parse(char *spec, VsBind *ret, VsError *err)
{
        char *src = spec, *dst = strchr(spec, ':');
        if (!dst || dst == src)
                return vs_error_input(err, "bind \"%s\": say SRC:DST or SRC:DST:ro", spec);
        *dst++ = '\0';
        char *mode = strchr(dst, ':');
        bool ro = false, idmap = false;
        if (mode) {
                *mode++ = '\0';
                char *save = NULL;
                for (char *o = strtok_r(mode, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
                        if (streq(o, "ro") || streq(o, "rw"))
                                ro = streq(o, "ro");
                        else if (streq(o, "idmap"))
                                idmap = true;
                        else
                                return vs_error_input(err,
                                                      "bind %s:%s: option \"%s\" is not ro, rw or "
                                                      "idmap",
                                                      src, dst, o);
                }
        }
        if (src[0] != '/' || dst[0] != '/')
                return vs_error_input(err, "bind %s:%s: both paths must be absolute", src, dst);
        for (const char *p = dst; *p;) {
                size_t n = strcspn(p, "/");
                if (n == 2 && p[0] == '.' && p[1] == '.')
                        return vs_error_input(err, "bind %s:%s: the target may not contain ..", src,
                                              dst);
                p += n;
                p += strspn(p, "/");
        }
        ret->source = src;
        ret->target = dst;
        ret->readonly = ro;
        ret->idmap = idmap;
        return 0;
}
