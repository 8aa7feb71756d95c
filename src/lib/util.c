/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdint.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>

int vs_send_fds(int sock, const void *buf, size_t len, const int *fds, int n)
{
        char cbuf[CMSG_SPACE(VS_MAX_PASS_FDS * sizeof(int))] = {0};
        if (n < 1 || n > VS_MAX_PASS_FDS)
                return -EINVAL;
        struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = cbuf,
                            .msg_controllen = CMSG_SPACE((size_t)n * sizeof(int))};
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)n * sizeof(int));
        return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

ssize_t vs_recv_fds(int sock, void *buf, size_t len, int *fds, int max, int *ret_n)
{
        char cbuf[CMSG_SPACE(VS_MAX_PASS_FDS * sizeof(int))];
        struct iovec iov = {.iov_base = buf, .iov_len = len};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        *ret_n = 0;
        ssize_t got;
        while ((got = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
                ;
        if (got < 0)
                return -errno;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                for (int i = 0; i < n; i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(c) + (size_t)i * sizeof(int), sizeof fd);
                        if (*ret_n < max)
                                fds[(*ret_n)++] = fd;
                        else
                                close(fd);
                }
        }
        if (mh.msg_flags & MSG_CTRUNC) {
                for (int i = 0; i < *ret_n; i++)
                        close(fds[i]);
                *ret_n = 0;
                return -EMSGSIZE;
        }
        return got;
}

int vs_write_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

ssize_t vs_read_all(int fd, void *buf, size_t len)
{
        char *p = buf;
        size_t got = 0;

        while (got < len) {
                ssize_t n = read(fd, p + got, len - got);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                got += (size_t)n;
        }
        return (ssize_t)got;
}

int vs_write_file_at(int dirfd, const char *path, const char *s)
{
        _cleanup_close_ int fd = openat(dirfd, path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        /* cgroup and proc files want the value in a single write */
        ssize_t n = write(fd, s, strlen(s));
        if (n < 0)
                return -errno;
        return (size_t)n == strlen(s) ? 0 : -EIO;
}

ssize_t vs_read_file_at(int dirfd, const char *path, char *buf, size_t size)
{
        if (size == 0)
                return -EINVAL;
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        ssize_t n = vs_read_all(fd, buf, size - 1);
        if (n < 0)
                return n;
        buf[n] = '\0';
        return n;
}

ssize_t vs_read_kernel_at(int dirfd, const char *path, char *buf, size_t size)
{
        if (size < 2)
                return -EINVAL;
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        ssize_t n;
        while ((n = read(fd, buf, size - 1)) < 0 && errno == EINTR)
                ;
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return n;
}

pid_t vs_pidfd_pid(int pidfd)
{
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
        if (vs_read_file_at(AT_FDCWD, path, buf, sizeof buf) < 0)
                return -1;
        const char *p = strstr(buf, "\nPid:");
        if (!p) {
                errno = EBADF;
                return -1;
        }
        long pid = strtol(p + 5, NULL, 10);
        if (pid <= 0) {
                errno = ESRCH; /* -1: the process is gone */
                return -1;
        }
        return (pid_t)pid;
}

int vs_proc_nspid_parse(const char *status, long *ret, int max)
{
        const char *p = strstr(status, "\nNSpid:");
        if (!p)
                return -ENOENT;
        int n = 0;
        for (p += 7; n < max;) {
                char *end;
                long v = strtol(p, &end, 10);
                if (end == p)
                        break;
                ret[n++] = v;
                p = end;
                if (*p == '\n')
                        break;
        }
        return n;
}

int vs_proc_nspid(pid_t pid, long *ret, int max)
{
        char path[64], buf[4096];
        snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
        ssize_t r = vs_read_kernel_at(AT_FDCWD, path, buf, sizeof buf);
        return r < 0 ? (int)r : vs_proc_nspid_parse(buf, ret, max);
}

int vs_proc_stat_parse(const char *stat, VsProcStat *ret)
{
        const char *p = strrchr(stat, ')');
        *ret = (VsProcStat){0};
        /* from field 3, the state, on */
        if (!p || sscanf(p + 1,
                         " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                         "%ld %*d %llu %llu %lld",
                         &ret->state, &ret->ppid, &ret->utime, &ret->stime, &ret->threads,
                         &ret->starttime, &ret->vsize, &ret->rss) != 8)
                return -1;
        return 0;
}

int vs_proc_stat(pid_t pid, VsProcStat *ret)
{
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        if (vs_read_kernel_at(AT_FDCWD, path, buf, sizeof buf) < 0)
                return -1;
        return vs_proc_stat_parse(buf, ret);
}

bool vs_passwd_root_shell(char *passwd, char *buf, size_t size)
{
        for (char *save = NULL, *l = strtok_r(passwd, "\n", &save); l;
             l = strtok_r(NULL, "\n", &save)) {
                if (strncmp(l, "root:", 5) != 0)
                        continue;
                char *shell = strrchr(l, ':');
                if (!shell || shell[1] != '/' || strlen(shell + 1) >= size)
                        return false;
                for (const char *c = shell + 1; *c; c++)
                        if (*c <= ' ' || *c == 0x7f)
                                return false;
                snprintf(buf, size, "%s", shell + 1);
                return true;
        }
        return false;
}

unsigned long long vs_proc_starttime(pid_t pid)
{
        VsProcStat st;
        return vs_proc_stat(pid, &st) < 0 ? 0 : st.starttime;
}

bool vs_prefix_contains(const unsigned char *net, unsigned bits, const unsigned char *a)
{
        for (unsigned i = 0; bits > 0; i++, bits = bits > 8 ? bits - 8 : 0) {
                unsigned char mask = (unsigned char)(0xff00u >> (bits >= 8 ? 8 : bits));
                if ((a[i] ^ net[i]) & mask)
                        return false;
        }
        return true;
}

const char *vs_fs_name(long type)
{
        switch (type) {
        case EXT4_SUPER_MAGIC:
                return "ext4";
        case XFS_SUPER_MAGIC:
                return "xfs";
        case BTRFS_SUPER_MAGIC:
                return "btrfs";
        case TMPFS_MAGIC:
                return "tmpfs";
        case RAMFS_MAGIC:
                return "ramfs";
        case OVERLAYFS_SUPER_MAGIC:
                return "overlayfs";
        case NFS_SUPER_MAGIC:
                return "nfs";
        case FUSE_SUPER_MAGIC:
                return "fuse";
        default:
                return NULL;
        }
}

long long vs_copy_all(int from, int to)
{
        loff_t in = 0;
        for (;;) {
                ssize_t n = copy_file_range(from, &in, to, NULL, 1 << 30, 0);
                if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP)) {
                        char buf[65536];
                        n = pread(from, buf, sizeof buf, in);
                        if (n > 0 && vs_write_all(to, buf, (size_t)n) < 0)
                                return -errno;
                        in += n > 0 ? n : 0;
                }
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return in;
        }
}
