/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Raw wrappers for what glibc 2.36 lacks.  The new mount API (fsopen,
 * fsmount, move_mount, open_tree, mount_setattr) and pidfd_* come from glibc.
 */
#include <linux/openat2.h>
#include <linux/sched.h>
#include <sys/syscall.h>
#include <unistd.h>

/* clone3: Linux 5.3; CLONE_INTO_CGROUP: 5.7. */
static inline long vs_clone3(struct clone_args *args)
{
        return syscall(SYS_clone3, args, sizeof(*args));
}

/* openat2: Linux 5.6. */
static inline int vs_openat2(int dirfd, const char *path, unsigned long long flags,
                             unsigned long long resolve)
{
        struct open_how how = {.flags = flags, .resolve = resolve};
        return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

static inline int vs_pivot_root(const char *new_root, const char *put_old)
{
        return (int)syscall(SYS_pivot_root, new_root, put_old);
}
