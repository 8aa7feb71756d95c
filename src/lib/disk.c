/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/dqblk_xfs.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <linux/mount.h>
#include <linux/quota.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "syscalls.h"
#include "util.h"

extern char **environ;

/* ext4's online resize: the new size in blocks. */
#ifndef EXT4_IOC_RESIZE_FS
#define EXT4_IOC_RESIZE_FS _IOW('f', 16, __u64)
#endif
#define IMAGE_BLOCK 4096ULL
#define IMAGE_MIN   (16ULL << 20)
#define QUOTA_BLOCK 1024ULL /* quotactl's unit of space limits (QIF_DQBLKSIZE) */
#define MKFS        "mkfs.ext4"
#define LOOP_MAJOR  7

const char *vs_disk_kind_name(VsDiskKind k)
{
        return k == VS_DISK_PROJECT ? "project" : k == VS_DISK_IMAGE ? "image" : "none";
}

int vs_disk_kind_parse(const char *s, VsDiskKind *ret)
{
        if (streq(s, "auto"))
                *ret = VS_DISK_NONE;
        else if (streq(s, "project"))
                *ret = VS_DISK_PROJECT;
        else if (streq(s, "image"))
                *ret = VS_DISK_IMAGE;
        else
                return -EINVAL;
        return 0;
}

/* quotactl_fd: Linux 5.14; any file of the filesystem names it. */
static int quotactl_fd(int fd, int cmd, unsigned id, void *addr)
{
        return (int)syscall(SYS_quotactl_fd, fd, QCMD(cmd, PRJQUOTA), id, addr);
}

static bool project_enforced(int fd, char *why, size_t size, const char *fs)
{
        struct fs_quota_statv sv = {.qs_version = FS_QSTATV_VERSION1};
        if (quotactl_fd(fd, Q_XGETQSTATV, 0, &sv) == 0 && (sv.qs_flags & FS_QUOTA_PDQ_ENFD))
                return true;
        bool ext4 = streq(fs, "ext4"), xfs = streq(fs, "xfs");
        snprintf(why, size, "%s has no project quotas enforced%s", fs,
                 ext4  ? " (ext4: tune2fs -O project,quota, mount with prjquota; the kernel needs "
                         "CONFIG_QFMT_V2)"
                 : xfs ? " (xfs: mount with pquota; the kernel needs CONFIG_XFS_QUOTA)"
                       : " (project quotas are for ext4 and xfs)");
        return false;
}

/* mkfs.ext4 on PATH, loop devices to attach images to, and a file system that holds images. */
static bool image_possible(const char *fs, char *why, size_t size)
{
        if (streq(fs, "ramfs")) {
                snprintf(why, size, "a disk image on ramfs would be memory that is never freed");
                return false;
        }
        if (access("/dev/loop-control", R_OK | W_OK) < 0) {
                snprintf(why, size, "no loop devices (/dev/loop-control: %s; modprobe loop)",
                         strerror(errno));
                return false;
        }
        const char *path = getenv("PATH");
        char copy[1024], *save = NULL;
        snprintf(copy, sizeof copy, "%s:/usr/sbin:/sbin", path ? path : "");
        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                char exe[PATH_MAX];
                snprintf(exe, sizeof exe, "%s/" MKFS, d);
                if (access(exe, X_OK) == 0)
                        return true;
        }
        snprintf(why, size, "no " MKFS " (apt-get install e2fsprogs)");
        return false;
}

void vs_disk_probe(const char *dir, VsDiskKind want, VsDiskSupport *s)
{
        *s = (VsDiskSupport){0};
        snprintf(s->dir, sizeof s->dir, "%s", dir);
        /* a directory not made yet will be on the filesystem of the nearest one above it */
        char near[PATH_MAX];
        snprintf(near, sizeof near, "%s", dir);
        while (access(near, F_OK) < 0 && strrchr(near, '/') > near)
                *strrchr(near, '/') = '\0';
        struct statfs sf;
        _cleanup_close_ int fd = open(near, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fstatfs(fd, &sf) < 0) {
                snprintf(s->fs, sizeof s->fs, "?");
                snprintf(s->why_project, sizeof s->why_project, "%s: %s", dir, strerror(errno));
                snprintf(s->why_image, sizeof s->why_image, "%s", s->why_project);
                return;
        }
        const char *name = vs_fs_name(sf.f_type);
        if (name)
                snprintf(s->fs, sizeof s->fs, "%s", name);
        else
                snprintf(s->fs, sizeof s->fs, "0x%lx", (unsigned long)sf.f_type);
        s->project = project_enforced(fd, s->why_project, sizeof s->why_project, s->fs);
        s->image = image_possible(s->fs, s->why_image, sizeof s->why_image);
        if (want == VS_DISK_PROJECT)
                s->pick = s->project ? VS_DISK_PROJECT : VS_DISK_NONE;
        else if (want == VS_DISK_IMAGE)
                s->pick = s->image ? VS_DISK_IMAGE : VS_DISK_NONE;
        else
                s->pick = s->project ? VS_DISK_PROJECT : s->image ? VS_DISK_IMAGE : VS_DISK_NONE;
}

int vs_disk_unsupported(const VsDiskSupport *s, VsDiskKind want, VsError *err)
{
        if (want == VS_DISK_PROJECT)
                return vs_error(err, ENOTSUP,
                                "limits.disk: %s is on %s, and %s (or set disk-limits = auto in "
                                "the host settings)",
                                s->dir, s->fs, s->why_project);
        if (want == VS_DISK_IMAGE)
                return vs_error(err, ENOTSUP,
                                "limits.disk: %s is on %s: %s (or set disk-limits = auto in the "
                                "host settings)",
                                s->dir, s->fs, s->why_image);
        return vs_error(err, ENOTSUP,
                        "limits.disk: %s is on %s, where no disk limit works: %s; and %s (or "
                        "leave limits.disk out)",
                        s->dir, s->fs, s->why_project, s->why_image);
}

/* ---- the project mechanism ---------------------------------------------- */

static int project_tag(int fd, unsigned id, bool dir)
{
        struct fsxattr fa;
        if (ioctl(fd, FS_IOC_FSGETXATTR, &fa) < 0)
                return -errno;
        fa.fsx_projid = id;
        if (dir)
                fa.fsx_xflags |= FS_XFLAG_PROJINHERIT;
        return ioctl(fd, FS_IOC_FSSETXATTR, &fa) < 0 ? -errno : 0;
}

static bool project_tagged(int fd, unsigned id)
{
        struct fsxattr fa;
        return id && ioctl(fd, FS_IOC_FSGETXATTR, &fa) == 0 && fa.fsx_projid == id &&
               (fa.fsx_xflags & FS_XFLAG_PROJINHERIT);
}

static int project_get(int fd, unsigned id, struct if_dqblk *q)
{
        *q = (struct if_dqblk){0};
        return quotactl_fd(fd, Q_GETQUOTA, id, q) < 0 ? -errno : 0;
}

static int project_limit(int fd, unsigned id, const VsLimits *l)
{
        struct if_dqblk q = {.dqb_valid = QIF_LIMITS};
        if (l->disk != VS_UNLIMITED)
                q.dqb_bhardlimit = (l->disk + QUOTA_BLOCK - 1) / QUOTA_BLOCK;
        if (l->disk_inodes != VS_UNLIMITED)
                q.dqb_ihardlimit = l->disk_inodes;
        return quotactl_fd(fd, Q_SETQUOTA, id, &q) < 0 ? -errno : 0;
}

/* Limits off and usage zero (ext4 lets quotactl set usage; xfs counts its files itself). */
static int project_clear(int fd, unsigned id)
{
        struct if_dqblk q = {.dqb_valid = QIF_LIMITS | QIF_USAGE};
        if (quotactl_fd(fd, Q_SETQUOTA, id, &q) == 0)
                return 0;
        q.dqb_valid = QIF_LIMITS;
        return errno == EINVAL && quotactl_fd(fd, Q_SETQUOTA, id, &q) == 0 ? 0 : -errno;
}

/*
 * Project @id is the guest's own on this filesystem: nothing is tagged with
 * it and no limit is set.  Else another guest has it (another
 * installation's, whose context ids are only kept apart from ours while
 * both run; or one deleted without clearing it), and tagging and limiting
 * it would share that guest's quota or clear it.
 */
static int project_unused(int fd, unsigned id, const char *dir, VsError *err)
{
        /* named by the guests' directory: a build's tree is still a temporary one */
        const char *slash = strrchr(dir, '/');
        int len = slash && slash != dir ? (int)(slash - dir) : (int)strlen(dir);
        struct if_dqblk q;
        if (project_get(fd, id, &q) < 0)
                return 0; /* no quota of this id yet */
        if (!q.dqb_curinodes && !q.dqb_curspace && !q.dqb_bhardlimit && !q.dqb_ihardlimit &&
            !q.dqb_bsoftlimit && !q.dqb_isoftlimit)
                return 0;
        return vs_error_input(err,
                              "project quota %u on the filesystem of %.*s is in use (%llu "
                              "files; a guest of another installation with context %u?): build "
                              "with another --context",
                              id, len, dir, (unsigned long long)q.dqb_curinodes, id);
}

/*
 * Tag a tree that exists: every directory (inheriting) and regular file
 * under the root, breadth first, one directory open at a time, each found
 * again from the root without following a symlink or leaving the
 * filesystem.  Symlinks and device nodes keep project 0: they take an inode
 * and no blocks.  What the guest creates meanwhile in a tagged directory
 * inherits the tag.
 */
#define MAX_TAG_DIRS (4 << 20) /* a bound on what a guest's tree costs us in memory */
static int project_tag_tree(const VsDiskTree *t, VsError *err)
{
        _cleanup_close_ int root = open(t->rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (root < 0)
                return vs_error(err, errno, "open %s", t->rootfs);
        size_t head = 0, n = 1, cap = 64;
        char **queue = calloc(cap, sizeof *queue);
        int r = queue && (queue[0] = strdup(".")) ? 0 : vs_error(err, ENOMEM, "tag");
        while (r == 0 && head < n) {
                char *rel = queue[head++];
                int dfd = vs_openat2(root, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                                     RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV);
                DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
                if (!d) {
                        if (dfd >= 0)
                                close(dfd);
                        else if (errno != ENOENT) /* gone meanwhile: nothing to tag */
                                r = vs_error(err, errno, "open %s/%s", t->rootfs, rel);
                        free(rel);
                        continue;
                }
                r = project_tag(dirfd(d), t->context, true);
                if (r < 0)
                        r = vs_error(err, -r, "tag %s/%s with project %u", t->rootfs, rel,
                                     t->context);
                struct dirent *de;
                while (r == 0 && (de = readdir(d))) {
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        struct stat st;
                        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                continue;
                        if (S_ISDIR(st.st_mode)) {
                                if (n == MAX_TAG_DIRS) {
                                        r = vs_error(err, E2BIG,
                                                     "%s holds more than %d directories: not "
                                                     "tagged (clone it with --disk)",
                                                     t->rootfs, MAX_TAG_DIRS);
                                        break;
                                }
                                if (n == cap) {
                                        char **m = realloc(queue, 2 * cap * sizeof *queue);
                                        if (!m) {
                                                r = vs_error(err, ENOMEM, "tag");
                                                break;
                                        }
                                        queue = m;
                                        cap *= 2;
                                }
                                if (asprintf(&queue[n], "%s/%s", rel, de->d_name) < 0) {
                                        r = vs_error(err, ENOMEM, "tag");
                                        break;
                                }
                                n++;
                        } else if (S_ISREG(st.st_mode)) {
                                int fd = openat(dirfd(d), de->d_name,
                                                O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
                                                    O_CLOEXEC);
                                struct stat fst;
                                if (fd >= 0 && fstat(fd, &fst) == 0 && S_ISREG(fst.st_mode) &&
                                    project_tag(fd, t->context, false) < 0)
                                        r = vs_error(err, errno, "tag %s/%s/%s", t->rootfs, rel,
                                                     de->d_name);
                                if (fd >= 0)
                                        close(fd);
                        }
                }
                closedir(d);
                free(rel);
        }
        while (head < n)
                free(queue[head++]);
        free(queue);
        return r;
}

/* ---- the image mechanism ------------------------------------------------ */

static void image_path(const VsDiskTree *t, char *buf, size_t size)
{
        snprintf(buf, size, "%s/" VS_DISK_IMAGE_NAME, t->dir);
}

/* Run @argv; an exit code above @ok_max fails, with its stderr's first line. */
static int run(char *const argv[], int ok_max, VsError *err)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return vs_error(err, errno, "pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, p[1], STDERR_FILENO);
        pid_t pid;
        int e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        if (e) {
                close(p[0]);
                return vs_error(err, e, "run %s", argv[0]);
        }
        char buf[512];
        ssize_t n = vs_read_all(p[0], buf, sizeof buf - 1);
        close(p[0]);
        buf[n > 0 ? n : 0] = '\0';
        /* the last line says what went wrong (the first is often a banner) */
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                buf[--n] = '\0';
        const char *msg = strrchr(buf, '\n') ? strrchr(buf, '\n') + 1 : buf;
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) > ok_max)
                return vs_error(err, EIO, "%s failed: %s", argv[0], msg[0] ? msg : "no message");
        return 0;
}

/* The loop device under the filesystem at @fd, if it is one: its name, its backing file. */
static int loop_of(int fd, char *dev, size_t dsize, struct stat *backing)
{
        struct stat st;
        char path[128], buf[PATH_MAX];
        if (fstat(fd, &st) < 0)
                return -errno;
        if (major(st.st_dev) != LOOP_MAJOR)
                return -ENODEV;
        snprintf(path, sizeof path, "/sys/dev/block/%u:%u/loop/backing_file", major(st.st_dev),
                 minor(st.st_dev));
        if (vs_read_file_at(AT_FDCWD, path, buf, sizeof buf) <= 0)
                return -ENODEV;
        buf[strcspn(buf, "\n")] = '\0';
        if (stat(buf, backing) < 0)
                return -ENODEV;
        snprintf(dev, dsize, "/dev/loop%u", minor(st.st_dev));
        return 0;
}

/* Is @rootfs the root of the image @img, mounted? */
static bool image_mounted(const VsDiskTree *t, int img, char *dev, size_t dsize)
{
        struct stat st, backing;
        char tmp[32] = "";
        _cleanup_close_ int fd = open(t->rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fstat(img, &st) < 0 ||
            loop_of(fd, dev ? dev : tmp, dev ? dsize : sizeof tmp, &backing) < 0)
                return false;
        return backing.st_dev == st.st_dev && backing.st_ino == st.st_ino;
}

static int loop_attach(int img, const char *name, char *dev, size_t dsize, VsError *err)
{
        _cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        if (ctl < 0)
                return vs_error(err, errno, "open /dev/loop-control");
        for (int tries = 0; tries < 64; tries++) {
                int n = ioctl(ctl, LOOP_CTL_GET_FREE);
                if (n < 0)
                        return vs_error(err, errno, "a free loop device");
                snprintf(dev, dsize, "/dev/loop%d", n);
                int fd = open(dev, O_RDWR | O_CLOEXEC);
                if (fd < 0)
                        return vs_error(err, errno, "open %s", dev);
                /* autoclear: the device goes when its last mount does */
                struct loop_config c = {
                    .fd = (unsigned)img,
                    .block_size = IMAGE_BLOCK,
                    .info = {.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO},
                };
                snprintf((char *)c.info.lo_file_name, sizeof c.info.lo_file_name, "vserver:%s",
                         name);
                if (ioctl(fd, LOOP_CONFIGURE, &c) == 0)
                        return fd;
                int e = errno;
                close(fd);
                if (e != EBUSY) /* another process took it between the two calls */
                        return vs_error(err, e, "attach %s", dev);
        }
        return vs_error(err, EBUSY, "no loop device stayed free");
}

static int image_mount(const VsDiskTree *t, int img, VsError *err)
{
        char dev[32], self[64];
        const char *base = strrchr(t->dir, '/');
        /*
         * The loop device holds the file it is given for as long as it
         * lives: give it a file of its own, not the one our flock is on.
         */
        snprintf(self, sizeof self, "/proc/self/fd/%d", img);
        _cleanup_close_ int file = open(self, O_RDWR | O_CLOEXEC);
        if (file < 0)
                return vs_error(err, errno, "reopen %s/" VS_DISK_IMAGE_NAME, t->dir);
        _cleanup_close_ int lfd = loop_attach(file, base ? base + 1 : t->dir, dev, sizeof dev, err);
        if (lfd < 0)
                return lfd;
        _cleanup_close_ int fs = fsopen("ext4", FSOPEN_CLOEXEC);
        if (fs < 0)
                return vs_error(err, errno, "fsopen ext4");
        /* discard: what the guest frees goes back to the host (holes in the sparse image) */
        if (fsconfig(fs, FSCONFIG_SET_STRING, "source", dev, 0) < 0 ||
            fsconfig(fs, FSCONFIG_SET_FLAG, "noinit_itable", NULL, 0) < 0 ||
            fsconfig(fs, FSCONFIG_SET_FLAG, "discard", NULL, 0) < 0 ||
            fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return vs_error(err, errno, "mount %s (ext4 on %s)", t->rootfs, dev);
        _cleanup_close_ int m = fsmount(fs, FSMOUNT_CLOEXEC, 0);
        if (m < 0 || move_mount(m, "", AT_FDCWD, t->rootfs, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return vs_error(err, errno, "mount %s on %s", dev, t->rootfs);
        return 0;
}

/* Open the image, locked against another command attaching it at the same time. */
static int image_open(const VsDiskTree *t, VsError *err)
{
        char img[PATH_MAX];
        image_path(t, img, sizeof img);
        int fd = open(img, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return vs_error(err, errno, "open %s", img);
        if (flock(fd, LOCK_EX) < 0) {
                int e = errno;
                close(fd);
                return vs_error(err, e, "lock %s", img);
        }
        return fd;
}

/* ext4's superblock, read from the image: as mkfs or the last sync left it. */
typedef struct Super {
        uint64_t blocks, free, reserved;
        unsigned block_size;
} Super;

static uint32_t le32(const unsigned char *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int super_read(int fd, Super *sb)
{
        unsigned char b[1024];
        if (pread(fd, b, sizeof b, 1024) != (ssize_t)sizeof b)
                return -EIO;
        if (b[0x38] != 0x53 || b[0x39] != 0xEF || le32(b + 0x18) > 6)
                return -EINVAL;
        bool wide = le32(b + 0x60) & 0x80; /* 64bit: the high halves count */
        sb->block_size = 1024u << le32(b + 0x18);
        sb->blocks = le32(b + 0x4) | (wide ? (uint64_t)le32(b + 0x150) << 32 : 0);
        sb->reserved = le32(b + 0x8) | (wide ? (uint64_t)le32(b + 0x154) << 32 : 0);
        sb->free = le32(b + 0xC) | (wide ? (uint64_t)le32(b + 0x158) << 32 : 0);
        return sb->free <= sb->blocks ? 0 : -EINVAL;
}

static uint64_t round_block(uint64_t v)
{
        return (v + IMAGE_BLOCK - 1) / IMAGE_BLOCK * IMAGE_BLOCK;
}

/* A new ext4 in @fd of @size bytes (what was in the file is gone: zeros until written). */
static int image_mkfs(int fd, const char *path, uint64_t size, const VsLimits *l, VsError *err)
{
        char num[32], inodes[32], reserved[16], nflag[] = "-N", file[PATH_MAX];
        if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)round_block(size)) < 0)
                return vs_error(err, errno, "size %s", path);
        snprintf(num, sizeof num, "%llu", (unsigned long long)(round_block(size) / IMAGE_BLOCK));
        snprintf(reserved, sizeof reserved, "%u", l->disk_reserved_pct);
        snprintf(file, sizeof file, "%s", path);
        /* lazy tables: a sparse image stays sparse (holes read as zeros) */
        char opts[] = MKFS " -q -F -b 4096 -I 256 -E "
                           "lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0 -m";
        char *argv[20], *save = NULL;
        int n = 0;
        for (char *w = strtok_r(opts, " ", &save); w; w = strtok_r(NULL, " ", &save))
                argv[n++] = w;
        argv[n++] = reserved;
        if (l->disk_inodes != VS_UNLIMITED) {
                snprintf(inodes, sizeof inodes, "%llu", (unsigned long long)l->disk_inodes);
                argv[n++] = nflag;
                argv[n++] = inodes;
        }
        argv[n++] = file;
        argv[n++] = num;
        argv[n] = NULL;
        return run(argv, 0, err);
}

static int image_create(const VsDiskTree *t, const VsLimits *l, VsError *err)
{
        char img[PATH_MAX];
        image_path(t, img, sizeof img);
        if (l->disk == VS_UNLIMITED)
                return vs_error_input(err, "limits.disk: a guest on a disk image needs a size "
                                           "(say disk = 10G)");
        _cleanup_close_ int fd =
            open(img, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return vs_error(err, errno, "create %s", img);
        /*
         * df shows the filesystem less ext4's own (journal, inode tables,
         * bitmaps): make the image that much larger, so df inside shows the
         * limit.  mkfs tells what it took; twice, as the tables grow with it.
         */
        uint64_t size = l->disk;
        for (int pass = 0; pass < 3; pass++) {
                Super sb;
                int r = image_mkfs(fd, img, size, l, err);
                if (r < 0)
                        return r;
                if (pass == 2)
                        break;
                if (super_read(fd, &sb) < 0)
                        return vs_error(err, EIO, "%s: mkfs left no ext4 superblock", img);
                size = l->disk + (sb.blocks - sb.free) * sb.block_size;
        }
        if (mkdir(t->rootfs, 0755) < 0 && errno != EEXIST)
                return vs_error(err, errno, "mkdir %s", t->rootfs);
        return image_mount(t, fd, err);
}

/* Online: ext4 grows while mounted (the kernel wants CAP_SYS_RESOURCE for it). */
static int image_grow_online(const VsDiskTree *t, int img, int root, uint64_t size, uint64_t now,
                             VsError *err)
{
        char dev[32];
        struct stat backing;
        if (loop_of(root, dev, sizeof dev, &backing) < 0)
                return vs_error(err, ENODEV, "%s is not its image's mount", t->rootfs);
        _cleanup_close_ int lfd = open(dev, O_RDONLY | O_CLOEXEC);
        if (lfd < 0)
                return vs_error(err, errno, "open %s", dev);
        if (ftruncate(img, (off_t)size) < 0 || ioctl(lfd, LOOP_SET_CAPACITY, 0) < 0)
                return vs_error(err, errno, "grow %s/" VS_DISK_IMAGE_NAME, t->dir);
        __u64 blocks = size / IMAGE_BLOCK;
        if (ioctl(root, EXT4_IOC_RESIZE_FS, &blocks) == 0)
                return 0;
        int e = errno;
        /* the file and the device back to the filesystem's size */
        if (ftruncate(img, (off_t)now) == 0)
                (void)ioctl(lfd, LOOP_SET_CAPACITY, 0);
        return vs_error(err, e, "resize ext4 on %s", t->rootfs);
}

/* Offline: unmounted, checked, resized either way, its reserve set, mounted again. */
static int image_resize_offline(const VsDiskTree *t, int img, uint64_t size, const VsLimits *l,
                                bool grow, VsError *err)
{
        char path[PATH_MAX], dev[32], sysfile[96], blocks[32], pct[16], busy[PATH_MAX];
        image_path(t, path, sizeof path);
        if (!image_mounted(t, img, dev, sizeof dev))
                return vs_error(err, ENODEV, "%s: its disk image is not mounted", t->rootfs);
        if (umount2(t->rootfs, UMOUNT_NOFOLLOW) < 0)
                return vs_error(err, errno,
                                "unmount %s to resize its image (does a host process use it?)",
                                t->rootfs);
        /* a mount namespace elsewhere that still holds it keeps the loop device: not ours to cut */
        snprintf(sysfile, sizeof sysfile, "/sys/block/%s/loop/backing_file", dev + 5);
        if (vs_read_file_at(AT_FDCWD, sysfile, busy, sizeof busy) > 0) {
                int r = vs_error(err, EBUSY, "%s's image is still mounted elsewhere (%s)",
                                 t->rootfs, dev);
                (void)image_mount(t, img, NULL);
                return r;
        }
        snprintf(blocks, sizeof blocks, "%llu", (unsigned long long)(size / IMAGE_BLOCK));
        snprintf(pct, sizeof pct, "%u", l->disk_reserved_pct);
        char e2fsck[] = "e2fsck", resize2fs[] = "resize2fs", tune2fs[] = "tune2fs", fp[] = "-fp",
             m[] = "-m";
        char *check[] = {e2fsck, fp, path, NULL};
        char *resize[] = {resize2fs, path, blocks, NULL};
        char *reserve[] = {tune2fs, m, pct, path, NULL};
        int r = run(check, 1, err); /* 1: errors it corrected */
        if (r == 0 && grow && ftruncate(img, (off_t)size) < 0)
                r = vs_error(err, errno, "grow %s", path);
        if (r == 0)
                r = run(resize, 0, err);
        if (r == 0 && !grow && ftruncate(img, (off_t)size) < 0)
                r = vs_error(err, errno, "shrink %s", path);
        if (r == 0)
                r = run(reserve, 0, err);
        int m2 = image_mount(t, img, r < 0 ? NULL : err);
        return r < 0 ? r : m2;
}

static int image_usage(const VsDiskTree *t, VsDiskUsage *u)
{
        _cleanup_close_ int img = -EBADF;
        char path[PATH_MAX];
        image_path(t, path, sizeof path);
        img = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (img < 0 || !image_mounted(t, img, NULL, 0))
                return 0; /* not mounted (after a reboot, until it starts): not known */
        struct statfs sf;
        if (statfs(t->rootfs, &sf) < 0)
                return 0;
        uint64_t bs = (uint64_t)sf.f_bsize;
        u->known = true;
        u->bytes_limit = (uint64_t)sf.f_blocks * bs;
        u->bytes = (uint64_t)(sf.f_blocks - sf.f_bfree) * bs;
        Super sb;
        if (super_read(img, &sb) == 0)
                u->reserved = sb.reserved * sb.block_size;
        u->inodes_limit = (uint64_t)sf.f_files;
        u->inodes = (uint64_t)(sf.f_files - sf.f_ffree);
        return 0;
}

/* ---- the interface ------------------------------------------------------- */

VsDiskKind vs_disk_kind(const VsDiskTree *t)
{
        char img[PATH_MAX];
        struct stat st;
        image_path(t, img, sizeof img);
        if (lstat(img, &st) == 0 && S_ISREG(st.st_mode))
                return VS_DISK_IMAGE;
        _cleanup_close_ int fd = open(t->rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return fd >= 0 && project_tagged(fd, t->context) ? VS_DISK_PROJECT : VS_DISK_NONE;
}

int vs_disk_usage(const VsDiskTree *t, VsDiskUsage *u, VsError *err)
{
        *u = (VsDiskUsage){
            .kind = vs_disk_kind(t), .bytes_limit = VS_UNLIMITED, .inodes_limit = VS_UNLIMITED};
        if (u->kind == VS_DISK_IMAGE)
                return image_usage(t, u);
        if (u->kind != VS_DISK_PROJECT)
                return 0;
        struct if_dqblk q;
        _cleanup_close_ int fd = open(t->rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int r = fd < 0 ? -errno : project_get(fd, t->context, &q);
        if (r < 0)
                return vs_error(err, -r, "project quota %u of %s", t->context, t->rootfs);
        u->known = true;
        u->bytes = q.dqb_curspace;
        u->inodes = q.dqb_curinodes;
        if (q.dqb_bhardlimit)
                u->bytes_limit = q.dqb_bhardlimit * QUOTA_BLOCK;
        if (q.dqb_ihardlimit)
                u->inodes_limit = q.dqb_ihardlimit;
        return 0;
}

int vs_disk_create(const VsDiskTree *t, VsDiskKind kind, const VsLimits *l, VsError *err)
{
        if (kind == VS_DISK_IMAGE)
                return image_create(t, l, err);
        if (mkdir(t->rootfs, 0755) < 0)
                return vs_error(err, errno, "mkdir %s", t->rootfs);
        if (kind != VS_DISK_PROJECT)
                return 0;
        _cleanup_close_ int fd = open(t->rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return vs_error(err, errno, "open %s", t->rootfs);
        int r = project_unused(fd, t->context, t->dir, err);
        if (r < 0)
                return r;
        r = project_clear(fd, t->context);
        if (r == 0)
                r = project_tag(fd, t->context, true);
        if (r < 0)
                return vs_error(err, -r, "tag %s with project %u", t->rootfs, t->context);
        r = project_limit(fd, t->context, l);
        return r < 0 ? vs_error(err, -r, "project quota %u on %s", t->context, t->rootfs) : 0;
}

int vs_disk_attach(const VsDiskTree *t, VsError *err)
{
        if (vs_disk_kind(t) != VS_DISK_IMAGE)
                return 0;
        _cleanup_close_ int img = image_open(t, err);
        if (img < 0)
                return img;
        if (image_mounted(t, img, NULL, 0))
                return 0;
        struct stat st, parent;
        if (mkdir(t->rootfs, 0755) < 0 && errno != EEXIST)
                return vs_error(err, errno, "mkdir %s", t->rootfs);
        /* something else mounted there is not ours to cover */
        if (stat(t->rootfs, &st) < 0 || stat(t->dir, &parent) < 0)
                return vs_error(err, errno, "stat %s", t->rootfs);
        if (st.st_dev != parent.st_dev)
                return vs_error(err, EBUSY,
                                "%s has another file system mounted on it, not its disk image",
                                t->rootfs);
        return image_mount(t, img, err);
}

static void fmt_bytes(uint64_t v, char *buf, size_t size)
{
        if (v >= (10ULL << 30))
                snprintf(buf, size, "%lluG", (unsigned long long)(v >> 30));
        else if (v >= (10ULL << 20))
                snprintf(buf, size, "%lluM", (unsigned long long)(v >> 20));
        else
                snprintf(buf, size, "%lluK", (unsigned long long)(v >> 10));
}

int vs_disk_set(const VsDiskTree *t, const VsLimits *l, bool stopped, char *note, size_t nsz,
                VsError *err)
{
        VsDiskUsage u;
        char a[32], b[32];
        if (nsz)
                note[0] = '\0';
        int r = vs_disk_usage(t, &u, err);
        if (r < 0)
                return r;
        if (u.kind == VS_DISK_NONE) {
                if (l->disk == VS_UNLIMITED && l->disk_inodes == VS_UNLIMITED)
                        return 0;
                /*
                 * Built without a limit, or moved here from another filesystem:
                 * where this one has project quotas its tree is tagged now.  An
                 * image takes a copy of the tree: a clone does that.
                 */
                VsDiskSupport sup;
                vs_disk_probe(t->dir, t->want, &sup);
                if (sup.pick != VS_DISK_PROJECT)
                        return vs_error(err, ENOTSUP,
                                        "limits.disk: %s has no disk limit in place (built "
                                        "without one, or moved from another filesystem), and "
                                        "%s (clone it: vserver build NEW --template clone:NAME "
                                        "--disk SIZE)",
                                        t->rootfs,
                                        sup.project ? "the host settings ask for an image"
                                                    : sup.why_project);
                _cleanup_close_ int fd =
                    open(t->rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                r = fd < 0 ? vs_error(err, errno, "open %s", t->rootfs)
                           : project_unused(fd, t->context, t->dir, err);
                if (r == 0)
                        r = project_tag_tree(t, err);
                if (r < 0)
                        return r;
                u.kind = VS_DISK_PROJECT;
        }
        if (u.kind == VS_DISK_PROJECT) {
                if (l->disk_reserved_pct)
                        return vs_error_input(err, "limits.disk.reserved: project quotas keep "
                                                   "no reserve for root (leave it out)");
                _cleanup_close_ int fd =
                    open(t->rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                r = fd < 0 ? -errno : project_limit(fd, t->context, l);
                if (r < 0)
                        return vs_error(err, -r, "project quota %u on %s", t->context, t->rootfs);
                if (l->disk != VS_UNLIMITED && u.bytes > l->disk) {
                        fmt_bytes(u.bytes, a, sizeof a);
                        fmt_bytes(u.bytes - l->disk, b, sizeof b);
                        snprintf(note, nsz,
                                 "uses %s, %s over the new limit: writes fail until "
                                 "it frees that much",
                                 a, b);
                } else if (l->disk_inodes != VS_UNLIMITED && u.inodes > l->disk_inodes)
                        snprintf(note, nsz,
                                 "has %llu files, %llu over the new limit: new files fail until "
                                 "it removes that many",
                                 (unsigned long long)u.inodes,
                                 (unsigned long long)(u.inodes - l->disk_inodes));
                return 0;
        }
        /* an image: its size; its inodes come with it (mkfs fixed them per group) */
        if (l->disk == VS_UNLIMITED)
                return vs_error_input(err,
                                      "limits.disk: %s lives on its own disk image, which "
                                      "has a size (give a larger one to grow it)",
                                      t->rootfs);
        _cleanup_close_ int img = image_open(t, err);
        if (img < 0)
                return img;
        struct statfs sf;
        _cleanup_close_ int root = open(t->rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (!image_mounted(t, img, NULL, 0) || root < 0 || fstatfs(root, &sf) < 0)
                return vs_error(err, ENODEV, "%s: its disk image is not mounted", t->rootfs);
        uint64_t files = (uint64_t)sf.f_files;
        if (l->disk_inodes != VS_UNLIMITED && (files > l->disk_inodes + l->disk_inodes / 10 ||
                                               files + l->disk_inodes / 10 < l->disk_inodes))
                snprintf(note, nsz,
                         "limits.disk.inodes: an image's files are counted when it is made (it "
                         "has room for %llu; they grow with its size)",
                         (unsigned long long)files);
        Super sb;
        if (super_read(img, &sb) < 0)
                return vs_error(err, EIO, "%s/" VS_DISK_IMAGE_NAME ": no ext4 superblock", t->dir);
        /* df shows the filesystem less ext4's own (journal, tables): the image is that much more */
        uint64_t now = sb.blocks * sb.block_size, shown = (uint64_t)sf.f_blocks * sf.f_bsize;
        uint64_t size = round_block(l->disk + (now > shown ? now - shown : 0));
        bool resize = size > now + (1 << 20) || size + (1 << 20) < now;
        bool grow = size > now;
        /* the root reserve as mkfs -m counts it (ext4's own reserve for itself aside) */
        uint64_t want_reserve = sb.blocks * l->disk_reserved_pct / 100;
        bool rereserve = sb.reserved > want_reserve + sb.blocks / 100 ||
                         sb.reserved + sb.blocks / 100 < want_reserve;
        if (!resize && !rereserve)
                return 0;
        if (stopped) {
                if (!grow && u.bytes > l->disk) {
                        fmt_bytes(u.bytes, a, sizeof a);
                        return vs_error_input(err,
                                              "limits.disk: %s holds %s, more than the new limit "
                                              "(free space in it first)",
                                              t->rootfs, a);
                }
                /* our own hold on it would keep it mounted */
                close(root);
                root = -EBADF;
                r = image_resize_offline(t, img, resize ? size : now, l, grow, err);
                /* new groups brought inode tables of their own: once more, measured again */
                if (r < 0 || !resize || statfs(t->rootfs, &sf) < 0 || super_read(img, &sb) < 0)
                        return r;
                now = sb.blocks * sb.block_size;
                shown = (uint64_t)sf.f_blocks * sf.f_bsize;
                size = round_block(l->disk + (now > shown ? now - shown : 0));
                if (size > now + (1 << 20) || size + (1 << 20) < now)
                        r = image_resize_offline(t, img, size, l, size > now, err);
                return r;
        }
        if (!grow || rereserve) {
                fmt_bytes((uint64_t)sf.f_blocks * sf.f_bsize, a, sizeof a);
                return vs_error(err, EBUSY,
                                "limits.disk: %s's image (%s) %s only while the guest is stopped",
                                t->rootfs, a, grow ? "changes its reserve" : "shrinks");
        }
        r = image_grow_online(t, img, root, size, now, err);
        if (r == -EPERM)
                return vs_error(err, EPERM,
                                "limits.disk: ext4 grows a mounted image only for a process with "
                                "CAP_SYS_RESOURCE, which this host's root lacks");
        return r;
}

int vs_disk_unmount(const VsDiskTree *t, VsError *err)
{
        if (vs_disk_kind(t) != VS_DISK_IMAGE)
                return 0;
        _cleanup_close_ int img = image_open(t, err);
        if (img < 0)
                return img;
        if (!image_mounted(t, img, NULL, 0))
                return 0;
        /* lazily where a process still holds it: the loop device goes with the last user */
        if (umount2(t->rootfs, UMOUNT_NOFOLLOW) < 0 &&
            (errno != EBUSY || umount2(t->rootfs, UMOUNT_NOFOLLOW | MNT_DETACH) < 0))
                return vs_error(err, errno, "unmount %s", t->rootfs);
        return 0;
}

int vs_disk_forget(const char *dir, unsigned context, VsError *err)
{
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return vs_error(err, errno, "open %s", dir);
        struct if_dqblk q;
        if (project_get(fd, context, &q) < 0)
                return 0; /* no project quotas here */
        int r = project_clear(fd, context);
        return r < 0 ? vs_error(err, -r, "clear project quota %u", context) : 0;
}
