/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Copy-on-write unification: the guest's root as an overlay (cow.h). */
#include "cow.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/fsuid.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <sys/stat.h>
#include <unistd.h>

#include "syscalls.h"
#include "util.h"

bool vs_cow_enabled(const char *dir)
{
        char p[PATH_MAX];
        struct stat st;
        snprintf(p, sizeof p, "%s/base", dir);
        return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* @key: a directory by fd (kernel 6.13+), else by a /proc/self/fd path. */
static int set_dir(int fs, const char *key, int fd)
{
        if (fsconfig(fs, FSCONFIG_SET_FD, key, NULL, fd) == 0)
                return 0;
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        return fsconfig(fs, FSCONFIG_SET_STRING, key, p, 0) < 0 ? -errno : 0;
}

static int open_dir(int at, const char *path)
{
        return openat(at, path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/*
 * Create the superblock.  overlayfs keeps its creator's credentials and
 * works on the layers with them; through layers idmapped into a guest's
 * user namespace, a file it makes must belong to someone the idmapping
 * maps: so it is created with the guest root's host ids as fsuid and fsgid,
 * every capability still in effect (@owner NULL: as we are).
 */
static int create_as(int fs, const VsCowLayers *owner)
{
        if (!owner)
                return fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
        struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct caps[2];
        if (syscall(SYS_capget, &hdr, caps) < 0)
                return -1;
        int ouid = setfsuid(owner->uid), ogid = setfsgid(owner->gid);
        int r = syscall(SYS_capset, &hdr, caps); /* the fs capabilities back in effect */
        if (r == 0)
                r = fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
        int e = errno;
        setfsuid((uid_t)ouid);
        setfsgid((gid_t)ogid);
        (void)syscall(SYS_capset, &hdr, caps);
        errno = e;
        return r;
}

/*
 * An overlay of @lower (top first; -1 ends), the data-only @data, and
 * optionally @upper/@work: a detached mount.  metacopy needs redirect_dir=on:
 * a rename of a merged directory leaves a redirect in the guest's rootfs
 * (unify leaves files below one alone).
 */
static int overlay(const int *lower, int data, int upper, int work, bool readonly,
                   const VsCowLayers *owner, VsError *err)
{
        _cleanup_close_ int fs = fsopen("overlay", FSOPEN_CLOEXEC);
        if (fs < 0)
                return vs_error(err, errno, "overlayfs");
        int r = 0;
        for (int i = 0; r == 0 && lower[i] >= 0; i++)
                r = set_dir(fs, "lowerdir+", lower[i]);
        if (r == 0)
                r = set_dir(fs, "datadir+", data);
        if (r == 0 && upper >= 0)
                r = set_dir(fs, "upperdir", upper);
        if (r == 0 && work >= 0)
                r = set_dir(fs, "workdir", work);
        if (r < 0)
                return vs_error(
                    err, -r,
                    "overlayfs: this kernel takes no data-only layers (Linux 6.7 or newer "
                    "needed for copy-on-write unification)");
        static const char *const opts[][2] = {
            {"metacopy", "on"}, {"redirect_dir", "on"}, {"index", "off"}, {"xino", "auto"}};
        for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
                if (fsconfig(fs, FSCONFIG_SET_STRING, opts[i][0], opts[i][1], 0) < 0)
                        return vs_error(err, errno, "overlayfs: %s=%s", opts[i][0], opts[i][1]);
        if (create_as(fs, owner) < 0)
                return vs_error(err, errno, "mount the guest's overlay");
        int m = fsmount(fs, FSMOUNT_CLOEXEC, readonly ? MOUNT_ATTR_RDONLY : 0);
        return m < 0 ? vs_error(err, errno, "mount the guest's overlay") : m;
}

/* The guest's directory (the parent of its rootfs), cloned and idmapped into @userns_fd. */
static int idmapped_dir(const char *upper, int userns_fd, VsError *err)
{
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", upper);
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return vs_error(err, EINVAL, "%s: no guest directory", upper);
        *slash = '\0';
        int t = open_tree(AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (t < 0)
                return vs_error(err, errno, "bind %s", dir);
        struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (unsigned)userns_fd};
        if (mount_setattr(t, "", AT_EMPTY_PATH, &a, sizeof a) < 0) {
                int e = errno;
                close(t);
                return vs_error(err, e, "idmap %s", dir);
        }
        return t;
}

static const char *base_name(const char *p)
{
        const char *s = strrchr(p, '/');
        return s ? s + 1 : p;
}

int vs_cow_mount(const VsCowLayers *l, int userns_fd, bool readonly, VsError *err)
{
        _cleanup_close_ int dir = -1;
        if (userns_fd >= 0 && (dir = idmapped_dir(l->upper, userns_fd, err)) < 0)
                return dir;
        /* upper, work and base: one mount (idmapped once); the store is read as it is */
        _cleanup_close_ int upper =
            dir >= 0 ? open_dir(dir, base_name(l->upper)) : open_dir(AT_FDCWD, l->upper);
        _cleanup_close_ int work =
            dir >= 0 ? open_dir(dir, base_name(l->work)) : open_dir(AT_FDCWD, l->work);
        _cleanup_close_ int base =
            dir >= 0 ? open_dir(dir, base_name(l->base)) : open_dir(AT_FDCWD, l->base);
        _cleanup_close_ int store = open_dir(AT_FDCWD, l->store);
        if (upper < 0 || work < 0 || base < 0 || store < 0)
                return vs_error(err, errno,
                                "the layers of %s (rootfs, base, work and the store %s)", l->upper,
                                l->store);
        int lower[] = {base, -1};
        return overlay(lower, store, upper, work, readonly, dir >= 0 ? l : NULL, err);
}

int vs_cow_view(const VsCowLayers *l, VsError *err)
{
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", l->upper);
        char *slash = strrchr(dir, '/');
        if (slash)
                *slash = '\0';
        if (!vs_cow_enabled(dir)) {
                int fd = open(l->upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
                return fd < 0 ? vs_error(err, errno, "open %s", l->upper) : fd;
        }
        _cleanup_close_ int upper = open_dir(AT_FDCWD, l->upper);
        _cleanup_close_ int base = open_dir(AT_FDCWD, l->base);
        _cleanup_close_ int store = open_dir(AT_FDCWD, l->store);
        if (upper < 0 || base < 0 || store < 0)
                return vs_error(err, errno, "the layers of %s", l->upper);
        int lower[] = {upper, base, -1};
        return overlay(lower, store, -1, -1, true, NULL, err);
}

bool vs_cow_supported(void)
{
        /* data-only layers came in 6.5, the keys that add one layer at a time in 6.7 */
        _cleanup_close_ int fs = fsopen("overlay", FSOPEN_CLOEXEC);
        _cleanup_close_ int s = open_dir(AT_FDCWD, "/");
        return fs >= 0 && s >= 0 && fsconfig(fs, FSCONFIG_SET_FD, "datadir+", NULL, s) == 0;
}

int vs_cow_copy_meta(int from, int to, const struct stat *st)
{
        char names[8192], val[65536];
        if (fchown(to, st->st_uid, st->st_gid) < 0)
                return -errno;
        ssize_t n = flistxattr(from, names, sizeof names);
        if (n < 0 && errno != ENOTSUP)
                return -errno;
        for (char *s = names; n > 0 && s < names + n; s += strlen(s) + 1) {
                if (strncmp(s, VS_COW_PREFIX, strlen(VS_COW_PREFIX)) == 0 ||
                    streq(s, "trusted.vserver.unified"))
                        continue;
                ssize_t v = fgetxattr(from, s, val, sizeof val);
                if (v < 0 || fsetxattr(to, s, val, (size_t)v, 0) < 0)
                        return -errno;
        }
        /* the flags a guest sets, over what the filesystem gave @to (extents...) */
        const int user = FS_SECRM_FL | FS_UNRM_FL | FS_COMPR_FL | FS_SYNC_FL | FS_NODUMP_FL |
                         FS_NOATIME_FL | FS_JOURNAL_DATA_FL | FS_NOTAIL_FL | FS_NOCOW_FL;
        int f = 0, t = 0;
        if (ioctl(from, FS_IOC_GETFLAGS, &f) == 0 && (f & user) &&
            ioctl(to, FS_IOC_GETFLAGS, &t) == 0 &&
            (t |= f & user, ioctl(to, FS_IOC_SETFLAGS, &t) < 0))
                return -errno;
        struct timespec times[2] = {st->st_atim, st->st_mtim};
        return fchmod(to, st->st_mode & 07777) < 0 || futimens(to, times) < 0 ? -errno : 0;
}
