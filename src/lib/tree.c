/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "tree.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "util.h"

volatile int vs_tree_interrupted;

typedef struct Link {
        dev_t dev;
        ino_t ino;
        char *path; /* relative to the destination root */
} Link;

typedef struct Copy {
        int src_root, dst_root;
        dev_t dev;
        Link *links;
        size_t n_links, cap_links;
        VsError *err;
        char path[4096]; /* the entry being copied, relative, for errors */
} Copy;

static int copy_xattrs(int from, int to, const char *rel, VsError *err)
{
        char names[8192], value[65536];
        ssize_t n = flistxattr(from, names, sizeof names);
        if (n < 0)
                return errno == ENOTSUP ? 0 : vs_error(err, errno, "list xattrs of %s", rel);
        for (char *name = names; name < names + n; name += strlen(name) + 1) {
                ssize_t v = fgetxattr(from, name, value, sizeof value);
                if (v < 0)
                        return vs_error(err, errno, "read xattr %s of %s", name, rel);
                if (fsetxattr(to, name, value, (size_t)v, 0) < 0)
                        return vs_error(err, errno, "set xattr %s on %s", name, rel);
        }
        return 0;
}

static int copy_data(int in, int out, off_t size, const char *rel, VsError *err)
{
        if (size == 0)
                return 0;
        if (ioctl(out, FICLONE, in) == 0)
                return 0;
        off_t left = size;
        while (left > 0) {
                ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
                if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS)) {
                        char buf[65536];
                        n = read(in, buf, sizeof buf);
                        if (n > 0 && vs_write_all(out, buf, (size_t)n) < 0)
                                return vs_error(err, errno, "write %s", rel);
                }
                if (n < 0)
                        return vs_error(err, errno, "copy %s", rel);
                if (n == 0)
                        break;
                left -= n;
        }
        return 0;
}

/* Owner first (chown clears set-id bits), then mode, xattrs, times. */
static int copy_meta(int fd, const struct stat *st, const char *rel, int src_fd, VsError *err)
{
        if (fchown(fd, st->st_uid, st->st_gid) < 0)
                return vs_error(err, errno, "chown %s", rel);
        if (fchmod(fd, st->st_mode & 07777) < 0)
                return vs_error(err, errno, "chmod %s", rel);
        int r = copy_xattrs(src_fd, fd, rel, err);
        if (r < 0)
                return r;
        struct timespec t[2] = {st->st_atim, st->st_mtim};
        if (futimens(fd, t) < 0)
                return vs_error(err, errno, "set times of %s", rel);
        return 0;
}

static int copy_dir(Copy *c, int sfd, int dfd);

static int copy_entry(Copy *c, int sfd, int dfd, const char *name)
{
        struct stat st;
        size_t plen = strlen(c->path);
        int r = 0;

        if (vs_tree_interrupted)
                return vs_error(c->err, EINTR, "interrupted");
        snprintf(c->path + plen, sizeof c->path - plen, "/%s", name);
        if (fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                r = vs_error(c->err, errno, "stat %s", c->path);
                goto out;
        }
        if (S_ISDIR(st.st_mode)) {
                if (st.st_dev != c->dev)
                        goto out; /* a mount point below: leave it empty */
                if (mkdirat(dfd, name, 0700) < 0) {
                        r = vs_error(c->err, errno, "mkdir %s", c->path);
                        goto out;
                }
                _cleanup_close_ int s =
                    openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                _cleanup_close_ int d =
                    openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (s < 0 || d < 0) {
                        r = vs_error(c->err, errno, "open %s", c->path);
                        goto out;
                }
                r = copy_dir(c, s, d);
                if (r == 0)
                        r = copy_meta(d, &st, c->path, s, c->err);
                goto out;
        }
        if (st.st_nlink > 1 && !S_ISDIR(st.st_mode)) {
                for (size_t i = 0; i < c->n_links; i++)
                        if (c->links[i].dev == st.st_dev && c->links[i].ino == st.st_ino) {
                                if (linkat(c->dst_root, c->links[i].path, dfd, name, 0) < 0)
                                        r = vs_error(c->err, errno, "link %s", c->path);
                                goto out;
                        }
        }
        if (S_ISREG(st.st_mode)) {
                _cleanup_close_ int in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                _cleanup_close_ int out =
                    openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (in < 0 || out < 0) {
                        r = vs_error(c->err, errno, "open %s", c->path);
                        goto out;
                }
                r = copy_data(in, out, st.st_size, c->path, c->err);
                if (r == 0)
                        r = copy_meta(out, &st, c->path, in, c->err);
        } else if (S_ISLNK(st.st_mode)) {
                char target[4096];
                ssize_t n = readlinkat(sfd, name, target, sizeof target - 1);
                if (n < 0) {
                        r = vs_error(c->err, errno, "readlink %s", c->path);
                        goto out;
                }
                target[n] = '\0';
                struct timespec t[2] = {st.st_atim, st.st_mtim};
                if (symlinkat(target, dfd, name) < 0 ||
                    fchownat(dfd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
                    utimensat(dfd, name, t, AT_SYMLINK_NOFOLLOW) < 0)
                        r = vs_error(c->err, errno, "symlink %s", c->path);
        } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
                struct timespec t[2] = {st.st_atim, st.st_mtim};
                if (mknodat(dfd, name, st.st_mode & (S_IFMT | 0777), st.st_rdev) < 0 ||
                    fchownat(dfd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
                    fchmodat(dfd, name, st.st_mode & 07777, 0) < 0 ||
                    utimensat(dfd, name, t, AT_SYMLINK_NOFOLLOW) < 0)
                        r = vs_error(c->err, errno, "mknod %s", c->path);
        } else {
                goto out; /* sockets: meaningless in a copy */
        }
        if (r == 0 && st.st_nlink > 1) {
                if (c->n_links == c->cap_links) {
                        size_t cap = c->cap_links ? c->cap_links * 2 : 64;
                        Link *l = realloc(c->links, cap * sizeof *l);
                        if (!l) {
                                r = vs_error(c->err, ENOMEM, "copy %s", c->path);
                                goto out;
                        }
                        c->links = l;
                        c->cap_links = cap;
                }
                c->links[c->n_links] = (Link){st.st_dev, st.st_ino, strdup(c->path + 1)};
                if (c->links[c->n_links].path)
                        c->n_links++;
        }
out:
        c->path[plen] = '\0';
        return r;
}

static int copy_dir(Copy *c, int sfd, int dfd)
{
        int dup_fd = openat(sfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dup_fd < 0)
                return vs_error(c->err, errno, "open %s", c->path[0] ? c->path : "/");
        DIR *d = fdopendir(dup_fd);
        if (!d) {
                close(dup_fd);
                return vs_error(c->err, errno, "open %s", c->path);
        }
        struct dirent *de;
        int r = 0;
        while (r == 0 && (de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        r = copy_entry(c, sfd, dfd, de->d_name);
        closedir(d);
        return r;
}

int vs_tree_copy(const char *src, const char *dst, VsError *err)
{
        struct stat st;
        _cleanup_close_ int s = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s < 0 || fstat(s, &st) < 0)
                return vs_error(err, errno, "open %s", src);
        if (mkdir(dst, 0700) < 0)
                return vs_error(err, errno, "mkdir %s", dst);
        _cleanup_close_ int d = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d < 0)
                return vs_error(err, errno, "open %s", dst);
        Copy c = {.src_root = s, .dst_root = d, .dev = st.st_dev, .err = err};
        int r = copy_dir(&c, s, d);
        if (r == 0)
                r = copy_meta(d, &st, "/", s, err);
        for (size_t i = 0; i < c.n_links; i++)
                free(c.links[i].path);
        free(c.links);
        return r;
}

int vs_tree_extract(const char *tarball, const char *dst, VsError *err)
{
        _cleanup_close_ int here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int d = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (here < 0 || d < 0)
                return vs_error(err, errno, "open %s", dst);
        struct archive *a = archive_read_new();
        struct archive *w = archive_write_disk_new();
        int r = 0;
        if (!a || !w) {
                r = vs_error(err, ENOMEM, "libarchive");
                goto out;
        }
        archive_read_support_filter_all(a);
        archive_read_support_format_all(a);
        /* the archive may be hostile: no "..", no absolute paths, no writes through symlinks */
        archive_write_disk_set_options(
            w, ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                   ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_FFLAGS |
                   ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                   ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_NO_OVERWRITE_NEWER);
        archive_write_disk_set_standard_lookup(w);
        if (archive_read_open_filename(a, tarball, 65536) != ARCHIVE_OK) {
                r = vs_error(err, EINVAL, "read %s: %s", tarball, archive_error_string(a));
                goto out;
        }
        if (fchdir(d) < 0) {
                r = vs_error(err, errno, "chdir %s", dst);
                goto out;
        }
        for (;;) {
                struct archive_entry *e;
                int rc = archive_read_next_header(a, &e);
                if (rc == ARCHIVE_EOF)
                        break;
                if (vs_tree_interrupted) {
                        r = vs_error(err, EINTR, "interrupted");
                        break;
                }
                if (rc < ARCHIVE_WARN) {
                        r = vs_error(err, EINVAL, "read %s: %s", tarball, archive_error_string(a));
                        break;
                }
                rc = archive_write_header(w, e);
                if (rc >= ARCHIVE_WARN && archive_entry_size(e) > 0) {
                        const void *buf;
                        size_t size;
                        la_int64_t off;
                        while ((rc = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK)
                                if (archive_write_data_block(w, buf, size, off) < ARCHIVE_WARN)
                                        break;
                        if (rc == ARCHIVE_EOF)
                                rc = ARCHIVE_OK;
                }
                if (rc < ARCHIVE_WARN || archive_write_finish_entry(w) < ARCHIVE_WARN) {
                        r = vs_error(err, EINVAL, "extract %s: %s", archive_entry_pathname(e),
                                     archive_error_string(w) ? archive_error_string(w)
                                                             : archive_error_string(a));
                        break;
                }
        }
        if (fchdir(here) < 0 && r == 0)
                r = vs_error(err, errno, "chdir back");
out:
        if (w) {
                archive_write_close(w);
                archive_write_free(w);
        }
        if (a)
                archive_read_free(a);
        return r;
}

static void clear_flags(int dfd, const char *name)
{
        _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        int flags;
        if (fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 &&
            (flags & (FS_IMMUTABLE_FL | FS_APPEND_FL))) {
                flags &= ~(FS_IMMUTABLE_FL | FS_APPEND_FL);
                (void)ioctl(fd, FS_IOC_SETFLAGS, &flags);
        }
}

static int remove_in(int dfd, dev_t dev, const char *path, VsError *err)
{
        int dup_fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dup_fd < 0)
                return vs_error(err, errno, "open %s", path);
        DIR *d = fdopendir(dup_fd);
        if (!d) {
                close(dup_fd);
                return vs_error(err, errno, "open %s", path);
        }
        struct dirent *de;
        int r = 0;
        while (r == 0 && (de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                struct stat st;
                if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = vs_error(err, errno, "stat %s/%s", path, de->d_name);
                        break;
                }
                if (S_ISDIR(st.st_mode)) {
                        if (st.st_dev != dev) {
                                r = vs_error(err, EBUSY, "%s/%s is a mount point", path,
                                             de->d_name);
                                break;
                        }
                        _cleanup_close_ int sub = openat(
                            dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        char subpath[4096];
                        snprintf(subpath, sizeof subpath, "%s/%s", path, de->d_name);
                        if (sub < 0) {
                                r = vs_error(err, errno, "open %s", subpath);
                                break;
                        }
                        clear_flags(dfd, de->d_name);
                        r = remove_in(sub, dev, subpath, err);
                        if (r == 0 && unlinkat(dfd, de->d_name, AT_REMOVEDIR) < 0)
                                r = vs_error(err, errno, "rmdir %s", subpath);
                } else if (unlinkat(dfd, de->d_name, 0) < 0) {
                        if (errno == EPERM && S_ISREG(st.st_mode)) {
                                clear_flags(dfd, de->d_name);
                                if (unlinkat(dfd, de->d_name, 0) == 0)
                                        continue;
                        }
                        r = vs_error(err, errno, "remove %s/%s", path, de->d_name);
                }
        }
        closedir(d);
        return r;
}

int vs_tree_remove(const char *path, VsError *err)
{
        struct stat st;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : vs_error(err, errno, "open %s", path);
        if (fstat(fd, &st) < 0)
                return vs_error(err, errno, "stat %s", path);
        int r = remove_in(fd, st.st_dev, path, err);
        if (r == 0 && rmdir(path) < 0)
                return vs_error(err, errno, "rmdir %s", path);
        return r;
}
