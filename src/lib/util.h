/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parse.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void vs_closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
static inline void vs_freep(void *p)
{
        free(*(void **)p);
}

#define _cleanup_close_ __attribute__((cleanup(vs_closep)))
#define _cleanup_free_  __attribute__((cleanup(vs_freep)))

/* Hand an owned fd or pointer out of a cleanup scope. */
#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _fd = (fd);                                                                    \
                (fd) = -EBADF;                                                                     \
                _fd;                                                                               \
        })
#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) _p = (p);                                                            \
                (p) = NULL;                                                                        \
                _p;                                                                                \
        })

static inline bool streq(const char *a, const char *b)
{
        return strcmp(a, b) == 0;
}

#define VS_MAX_PASS_FDS 40
/* One message of @len bytes with @n descriptors (SCM_RIGHTS, 1 to VS_MAX_PASS_FDS); 0 or -errno. */
int vs_send_fds(int sock, const void *buf, size_t len, const int *fds, int n);
/*
 * Receive one message into @buf and up to @max descriptors (CLOEXEC; any
 * beyond @max closed) into @fds, *ret_n of them; the bytes read, or -errno.
 */
ssize_t vs_recv_fds(int sock, void *buf, size_t len, int *fds, int max, int *ret_n);

/* Whole-buffer I/O that retries on EINTR and short transfers; -errno on failure. */
int vs_write_all(int fd, const void *buf, size_t len);
ssize_t vs_read_all(int fd, void *buf, size_t len);
/* Copy all of @from (from its start) to @to's position, in the kernel where it can: bytes, or
 * -errno. */
long long vs_copy_all(int from, int to);
/* Write a string to dirfd/path (O_WRONLY, no create, O_CLOEXEC); -errno. */
int vs_write_file_at(int dirfd, const char *path, const char *s);
/* Read at most size-1 bytes of dirfd/path into buf, NUL-terminated; -errno. */
ssize_t vs_read_file_at(int dirfd, const char *path, char *buf, size_t size);
/*
 * The same in one read, for a file the kernel shows as one seq_file record
 * (a cgroup's value and stat files, /proc/PID/stat and status): the first
 * read returns all of it that fits.  Not for lists (cgroup.procs,
 * mountinfo), which come a page at a time.  vserver list reads some twenty
 * a guest.  Also for a small file of ours written in one write() (a page
 * cache page is filled before the file's size says it is there).
 */
ssize_t vs_read_kernel_at(int dirfd, const char *path, char *buf, size_t size);

/* Is address @a (network order) in the network @net/@bits? */
bool vs_prefix_contains(const unsigned char *net, unsigned bits, const unsigned char *a);
/* The pid a pidfd refers to, in our pid namespace (fdinfo; glibc 2.36 has no pidfd_getpid). */
pid_t vs_pidfd_pid(int pidfd);
/* @pid's NSpid line: its pid in each pid namespace from ours inward; the count, or -errno. */
int vs_proc_nspid(pid_t pid, long *ret, int max);
/* The same from the text of a status file. */
int vs_proc_nspid_parse(const char *status, long *ret, int max);
/* What vserver reads of /proc/PID/stat (proc(5)'s field numbers). */
typedef struct VsProcStat {
        char state;                      /* 3 */
        int ppid;                        /* 4 */
        unsigned long long utime, stime; /* 14, 15: clock ticks */
        long threads;                    /* 20 */
        unsigned long long starttime;    /* 22: clock ticks since boot */
        unsigned long long vsize;        /* 23: bytes */
        long long rss;                   /* 24: pages */
} VsProcStat;
/*
 * Parse /proc/@pid/stat; the command (field 2, any bytes the process chose,
 * parentheses too) is skipped up to its last ')'.  0, or -1 if it is gone.
 */
int vs_proc_stat(pid_t pid, VsProcStat *ret);
/* The same from the text of a stat file. */
int vs_proc_stat_parse(const char *stat, VsProcStat *ret);
/*
 * root's login shell in @passwd (a guest's /etc/passwd, NUL-terminated;
 * split in place): an absolute path without spaces or control bytes that
 * fits @size.  false if there is none such.
 */
bool vs_passwd_root_shell(char *passwd, char *buf, size_t size);
/* When @pid started (clock ticks since boot, /proc/PID/stat field 22); 0 if it is gone. */
unsigned long long vs_proc_starttime(pid_t pid);

/* The name of a filesystem by its statfs f_type ("ext4", "xfs", ...), or NULL. */
const char *vs_fs_name(long type);
