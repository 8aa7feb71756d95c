/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vs-disk: what a guest does to its disk limit, from inside.  Each verb
 * prints one line saying what happened ("ok", or the errno's name) and
 * exits 0 if the kernel let it happen, 1 if it refused.
 *
 *   fill PATH MB         write MB MiB of zeros; "wrote N MiB: ERRNO"
 *   files DIR N          create N empty files; "made N: ERRNO"
 *   projid PATH ID       FS_IOC_FSSETXATTR: the file's project id to ID
 *   noinherit DIR        clear project inheritance, by FS_IOC_FSSETXATTR and FS_IOC_SETFLAGS
 *   setattr PATH ID      file_setattr(2) (Linux 6.17): the project id to ID
 *   link FROM TO         a hard link
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int said(int e)
{
        if (e == 0) {
                puts("ok");
                return 0;
        }
        printf("%s\n", strerror(e));
        return 1;
}

static int fill(const char *path, long mb)
{
        static char buf[1 << 20];
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
                return said(errno);
        long done = 0;
        int e = 0;
        for (; done < mb && !e; done++) {
                /* a short write is followed by the one that says why */
                for (size_t off = 0; off < sizeof buf;) {
                        ssize_t n = write(fd, buf + off, sizeof buf - off);
                        if (n < 0) {
                                e = errno;
                                break;
                        }
                        off += (size_t)n;
                }
        }
        if (e)
                done--;
        if (e == 0 && fsync(fd) < 0)
                e = errno;
        close(fd);
        printf("wrote %ld MiB: %s\n", done, e ? strerror(e) : "ok");
        return e ? 1 : 0;
}

static int files(const char *dir, long n)
{
        char path[4096];
        long made = 0;
        int e = 0;
        for (; made < n; made++) {
                snprintf(path, sizeof path, "%s/f%ld", dir, made);
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
                if (fd < 0) {
                        e = errno;
                        break;
                }
                close(fd);
        }
        printf("made %ld: %s\n", made, e ? strerror(e) : "ok");
        return e ? 1 : 0;
}

static int projid(const char *path, unsigned id)
{
        struct fsxattr fa;
        int fd = open(path, O_RDONLY);
        if (fd < 0 || ioctl(fd, FS_IOC_FSGETXATTR, &fa) < 0)
                return said(errno);
        fa.fsx_projid = id;
        return said(ioctl(fd, FS_IOC_FSSETXATTR, &fa) < 0 ? errno : 0);
}

static int noinherit(const char *dir)
{
        struct fsxattr fa;
        int flags, fd = open(dir, O_RDONLY | O_DIRECTORY);
        if (fd < 0 || ioctl(fd, FS_IOC_FSGETXATTR, &fa) < 0)
                return said(errno);
        fa.fsx_xflags &= ~(unsigned)FS_XFLAG_PROJINHERIT;
        int e1 = ioctl(fd, FS_IOC_FSSETXATTR, &fa) < 0 ? errno : 0;
        int e2 = ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0 ? errno : 0;
        if (!e2) {
                flags &= ~FS_PROJINHERIT_FL;
                e2 = ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0 ? errno : 0;
        }
        printf("fssetxattr %s, setflags %s\n", e1 ? strerror(e1) : "ok", e2 ? strerror(e2) : "ok");
        return e1 || e2 ? 1 : 0;
}

struct file_attr_v0 {
        uint64_t fa_xflags;
        uint32_t fa_extsize, fa_nextents, fa_projid, fa_cowextsize;
};

static int setattr(const char *path, unsigned id)
{
        struct file_attr_v0 fa = {0};
        if (syscall(468, AT_FDCWD, path, &fa, sizeof fa, 0) < 0) /* file_getattr */
                return said(errno);
        fa.fa_projid = id;
        return said(syscall(469, AT_FDCWD, path, &fa, sizeof fa, 0) < 0 ? errno : 0);
}

int main(int argc, char **argv)
{
        if (argc == 4 && strcmp(argv[1], "fill") == 0)
                return fill(argv[2], strtol(argv[3], NULL, 10));
        if (argc == 4 && strcmp(argv[1], "files") == 0)
                return files(argv[2], strtol(argv[3], NULL, 10));
        if (argc == 4 && strcmp(argv[1], "projid") == 0)
                return projid(argv[2], (unsigned)strtoul(argv[3], NULL, 10));
        if (argc == 3 && strcmp(argv[1], "noinherit") == 0)
                return noinherit(argv[2]);
        if (argc == 4 && strcmp(argv[1], "setattr") == 0)
                return setattr(argv[2], (unsigned)strtoul(argv[3], NULL, 10));
        if (argc == 4 && strcmp(argv[1], "link") == 0)
                return said(link(argv[2], argv[3]) < 0 ? errno : 0);
        fprintf(stderr, "usage: vs-disk fill|files|projid|noinherit|setattr|link ...\n");
        return 2;
}
