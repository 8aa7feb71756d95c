/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "tree.h"

#include <archive.h>
#include <dlfcn.h>
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
        int depth;
        char path[4096]; /* the entry being copied, relative, for errors */
} Copy;

/*
 * How deep a copy follows a tree (a guest's own tree may nest thousands of
 * levels to crash whoever walks it): each level holds three descriptors.
 */
#define COPY_MAX_DEPTH 128

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
        /* an overlay's metadata-only file (a unified guest's stub): its size, no bytes */
        if (fgetxattr(in, "trusted.overlay.metacopy", NULL, 0) >= 0)
                return ftruncate(out, size) < 0 ? vs_error(err, errno, "truncate %s", rel) : 0;
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
                if (c->depth >= COPY_MAX_DEPTH) {
                        r = vs_error(c->err, ELOOP, "%s: nested deeper than %d directories",
                                     c->path, COPY_MAX_DEPTH);
                        goto out;
                }
                c->depth++;
                r = copy_dir(c, s, d);
                c->depth--;
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

/* Empty but for ext4's lost+found (a fresh image's root). */
static bool dir_empty(const char *path)
{
        DIR *d = opendir(path);
        if (!d)
                return false;
        struct dirent *de;
        bool empty = true;
        while (empty && (de = readdir(d)))
                empty = streq(de->d_name, ".") || streq(de->d_name, "..") ||
                        streq(de->d_name, "lost+found");
        closedir(d);
        return empty;
}

int vs_tree_copy_fd(int src, int dst, VsError *err)
{
        struct stat st;
        if (fstat(src, &st) < 0)
                return vs_error(err, errno, "copy");
        Copy c = {.src_root = src, .dst_root = dst, .dev = st.st_dev, .err = err};
        int r = copy_dir(&c, src, dst);
        if (r == 0)
                r = copy_meta(dst, &st, "/", src, err);
        for (size_t i = 0; i < c.n_links; i++)
                free(c.links[i].path);
        free(c.links);
        return r;
}

int vs_tree_copy(const char *src, const char *dst, VsError *err)
{
        struct stat st;
        _cleanup_close_ int s = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s < 0 || fstat(s, &st) < 0)
                return vs_error(err, errno, "open %s", src);
        if (mkdir(dst, 0700) < 0 && (errno != EEXIST || !dir_empty(dst)))
                return vs_error(err, errno, "mkdir %s", dst);
        _cleanup_close_ int d = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d < 0)
                return vs_error(err, errno, "open %s", dst);
        /* an image's empty lost+found gives way to the source's (e2fsck makes one if needed) */
        (void)unlinkat(d, "lost+found", AT_REMOVEDIR);
        Copy c = {.src_root = s, .dst_root = d, .dev = st.st_dev, .err = err};
        int r = copy_dir(&c, s, d);
        if (r == 0)
                r = copy_meta(d, &st, "/", s, err);
        for (size_t i = 0; i < c.n_links; i++)
                free(c.links[i].path);
        free(c.links);
        return r;
}

/*
 * libarchive, loaded when a tarball is extracted.  Linked in, it brings
 * libxml2, ICU and libstdc++ into every vserver process, and their
 * relocations cost each exec (every start, exec and run, twice with the
 * sealed re-exec) several milliseconds.
 */
static struct {
        bool loaded;
        __typeof__(archive_read_new) *read_new;
        __typeof__(archive_read_support_filter_all) *read_support_filter_all;
        __typeof__(archive_read_support_format_all) *read_support_format_all;
        __typeof__(archive_read_open_filename) *read_open_filename;
        __typeof__(archive_read_next_header) *read_next_header;
        __typeof__(archive_read_data_block) *read_data_block;
        __typeof__(archive_read_free) *read_free;
        __typeof__(archive_write_disk_new) *write_disk_new;
        __typeof__(archive_write_disk_set_options) *write_disk_set_options;
        __typeof__(archive_write_disk_set_standard_lookup) *write_disk_set_standard_lookup;
        __typeof__(archive_write_header) *write_header;
        __typeof__(archive_write_data_block) *write_data_block;
        __typeof__(archive_write_finish_entry) *write_finish_entry;
        __typeof__(archive_write_close) *write_close;
        __typeof__(archive_write_free) *write_free;
        __typeof__(archive_error_string) *error_string;
        __typeof__(archive_errno) *errno_of;
        __typeof__(archive_entry_pathname) *entry_pathname;
        __typeof__(archive_entry_size) *entry_size;
} la;

static int load_archive(VsError *err)
{
        if (la.loaded)
                return 0;
        void *h = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
        if (!h)
                return vs_error(err, ENOENT,
                                "load libarchive.so.13 (apt-get install libarchive13): %s",
                                dlerror());
#define SYM(f)                                                                                     \
        if (!(la.f = (__typeof__(la.f))dlsym(h, "archive_" #f)))                                   \
                return vs_error(err, ENOENT, "libarchive.so.13 has no archive_" #f);
        SYM(read_new);
        if (!(la.errno_of = (__typeof__(la.errno_of))dlsym(h, "archive_errno")))
                return vs_error(err, ENOENT, "libarchive.so.13 has no archive_errno");
        SYM(read_support_filter_all);
        SYM(read_support_format_all);
        SYM(read_open_filename);
        SYM(read_next_header);
        SYM(read_data_block);
        SYM(read_free);
        SYM(write_disk_new);
        SYM(write_disk_set_options);
        SYM(write_disk_set_standard_lookup);
        SYM(write_header);
        SYM(write_data_block);
        SYM(write_finish_entry);
        SYM(write_close);
        SYM(write_free);
        SYM(error_string);
        SYM(entry_pathname);
        SYM(entry_size);
#undef SYM
        la.loaded = true;
        return 0;
}

int vs_tree_extract(const char *tarball, const char *dst, VsError *err)
{
        _cleanup_close_ int here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int d = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (here < 0 || d < 0)
                return vs_error(err, errno, "open %s", dst);
        int lr = load_archive(err);
        if (lr < 0)
                return lr;
        struct archive *a = la.read_new();
        struct archive *w = la.write_disk_new();
        int r = 0;
        if (!a || !w) {
                r = vs_error(err, ENOMEM, "libarchive");
                goto out;
        }
        la.read_support_filter_all(a);
        la.read_support_format_all(a);
        /* the archive may be hostile: no "..", no absolute paths, no writes through symlinks */
        la.write_disk_set_options(
            w, ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                   ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_FFLAGS |
                   ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                   ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_NO_OVERWRITE_NEWER);
        la.write_disk_set_standard_lookup(w);
        if (la.read_open_filename(a, tarball, 65536) != ARCHIVE_OK) {
                r = vs_error(err, EINVAL, "read %s: %s", tarball, la.error_string(a));
                goto out;
        }
        if (fchdir(d) < 0) {
                r = vs_error(err, errno, "chdir %s", dst);
                goto out;
        }
        unsigned long entries = 0;
        for (;;) {
                struct archive_entry *e;
                int rc = la.read_next_header(a, &e);
                if (rc == ARCHIVE_EOF)
                        break;
                entries++;
                if (vs_tree_interrupted) {
                        r = vs_error(err, EINTR, "interrupted");
                        break;
                }
                if (rc < ARCHIVE_WARN) {
                        r = vs_error(err, EINVAL, "read %s: %s", tarball, la.error_string(a));
                        break;
                }
                rc = la.write_header(w, e);
                int wr = rc;
                if (rc >= ARCHIVE_WARN && la.entry_size(e) > 0) {
                        const void *buf;
                        size_t size;
                        la_int64_t off;
                        while ((rc = la.read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK)
                                if ((wr = (int)la.write_data_block(w, buf, size, off)) <
                                    ARCHIVE_WARN)
                                        break;
                        if (rc == ARCHIVE_EOF)
                                rc = ARCHIVE_OK;
                }
                /* a write that failed (a full disk) says why, in its errno */
                if (wr < ARCHIVE_WARN || rc < ARCHIVE_WARN ||
                    (wr = la.write_finish_entry(w)) < ARCHIVE_WARN) {
                        int e2 = wr < ARCHIVE_WARN && la.errno_of(w) > 0 ? la.errno_of(w) : EINVAL;
                        r = vs_error(err, e2, "extract %s: %s", la.entry_pathname(e),
                                     la.error_string(w) ? la.error_string(w) : la.error_string(a));
                        break;
                }
        }
        if (r == 0 && entries == 0)
                r = vs_error_input(err, "%s holds no files: not an archive libarchive reads",
                                   tarball);
        if (fchdir(here) < 0 && r == 0)
                r = vs_error(err, errno, "chdir back");
out:
        if (w) {
                la.write_close(w);
                la.write_free(w);
        }
        if (a)
                la.read_free(a);
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

/*
 * How deep a removal holds directories open; deeper ones are moved up to
 * the top (renamed into it) and removed from there.  Iterative and bounded
 * in descriptors and stack whatever a guest nested in its tree.
 */
#define REMOVE_MAX_DEPTH 64

typedef struct Level {
        DIR *d;
        char *name; /* in the level above; NULL at the top */
} Level;

/* Remove everything in the directory @top (not @top itself). */
static int remove_in(int top, dev_t dev, const char *path, VsError *err)
{
        Level lv[REMOVE_MAX_DEPTH];
        int depth = 0, r = 0;
        unsigned long moved = 0, serial = 0;
        int fd = openat(top, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || !(lv[0].d = fdopendir(fd))) {
                if (fd >= 0)
                        close(fd);
                return vs_error(err, errno, "open %s", path);
        }
        lv[0].name = NULL;
        for (;;) {
                /* (not interruptible: removing is how an interrupted build cleans up) */
                int dfd = dirfd(lv[depth].d);
                struct dirent *de = readdir(lv[depth].d);
                if (!de) {
                        if (depth == 0) {
                                if (moved == 0)
                                        break;
                                moved = 0; /* what came up from below: another pass */
                                rewinddir(lv[0].d);
                                continue;
                        }
                        char *name = lv[depth].name;
                        closedir(lv[depth--].d);
                        int pfd = dirfd(lv[depth].d);
                        if (unlinkat(pfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                                r = vs_error(err, errno, "rmdir %s/.../%s", path, name);
                        free(name);
                        if (r < 0)
                                break;
                        continue;
                }
                const char *nm = de->d_name;
                if (streq(nm, ".") || streq(nm, ".."))
                        continue;
                struct stat st;
                if (fstatat(dfd, nm, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        r = vs_error(err, errno, "stat %s/.../%s", path, nm);
                        break;
                }
                if (!S_ISDIR(st.st_mode)) {
                        if (unlinkat(dfd, nm, 0) == 0 || errno == ENOENT)
                                continue;
                        if (errno == EPERM && S_ISREG(st.st_mode)) {
                                clear_flags(dfd, nm);
                                if (unlinkat(dfd, nm, 0) == 0)
                                        continue;
                        }
                        r = vs_error(err, errno, "remove %s/.../%s", path, nm);
                        break;
                }
                if (st.st_dev != dev) {
                        r = vs_error(err, EBUSY, "%s/.../%s is a mount point", path, nm);
                        break;
                }
                clear_flags(dfd, nm);
                if (unlinkat(dfd, nm, AT_REMOVEDIR) == 0)
                        continue;
                if (depth + 1 >= REMOVE_MAX_DEPTH) {
                        char up[64];
                        snprintf(up, sizeof up, ".vs-remove-%lu-%d", serial++, (int)getpid());
                        moved++;
                        if (renameat(dfd, nm, dirfd(lv[0].d), up) < 0) {
                                r = vs_error(err, errno, "move %s/.../%s up", path, nm);
                                break;
                        }
                        continue;
                }
                int sub = openat(dfd, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                DIR *d = sub >= 0 ? fdopendir(sub) : NULL;
                char *name = d ? strdup(nm) : NULL;
                if (!name) {
                        r = vs_error(err, errno ? errno : ENOMEM, "open %s/.../%s", path, nm);
                        if (d)
                                closedir(d);
                        else if (sub >= 0)
                                close(sub);
                        break;
                }
                lv[++depth] = (Level){d, name};
        }
        while (depth > 0) {
                free(lv[depth].name);
                closedir(lv[depth--].d);
        }
        closedir(lv[0].d);
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
