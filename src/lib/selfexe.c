/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "selfexe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "util.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U /* Linux 6.3 */
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020 /* Linux 6.3 */
#endif

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* Is the mount of id @id one of our mount namespace's (reachable by a path)? */
static bool mount_listed(uint64_t id)
{
        FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return true; /* cannot tell: not ours, then */
        char line[4096];
        bool found = false;
        while (!found && fgets(line, sizeof line, f))
                found = strtoull(line, NULL, 10) == id;
        fclose(f);
        return found;
}

/* On a read-only mount no path reaches (the one vs_selfexe_reexec_sealed makes)? */
static bool on_private_ro_mount(int fd)
{
        struct statvfs sv;
        struct statx stx;
        return fstatvfs(fd, &sv) == 0 && (sv.f_flag & ST_RDONLY) &&
               statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) == 0 &&
               (stx.stx_mask & STATX_MNT_ID) && !mount_listed(stx.stx_mnt_id);
}

bool vs_selfexe_sealed(void)
{
        /* what we run from does not change until we exec: asked three times a start */
        static _Atomic int known = -1;
        if (known >= 0)
                return known;
        _cleanup_close_ int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        int seals = fcntl(fd, F_GET_SEALS);
        known = (seals >= 0 && (seals & SEALS) == SEALS) || on_private_ro_mount(fd);
        return known;
}

/*
 * Run again from a read-only clone of our own mount, detached (no path
 * reaches it, nobody but us can make it writable): no copy, the page cache
 * the binary already has.  What runc 1.2 does with an overlay.  Returns only
 * on failure.
 */
static void reexec_ro_mount(char **argv, char **envp)
{
        _cleanup_close_ int tree =
            open_tree(AT_FDCWD, "/proc/self/exe", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (tree < 0)
                return;
        struct mount_attr a = {.attr_set =
                                   MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
        if (mount_setattr(tree, "", AT_EMPTY_PATH, &a, sizeof a) < 0)
                return;
        execveat(tree, "", argv, envp, AT_EMPTY_PATH);
}

int vs_selfexe_reexec_sealed(char **argv, char **envp, VsError *err)
{
        if (vs_selfexe_sealed())
                return 0;
        reexec_ro_mount(argv, envp); /* else the sealed copy */
        _cleanup_close_ int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        if (self < 0)
                return vs_error(err, errno, "open /proc/self/exe");
        struct stat st;
        if (fstat(self, &st) < 0)
                return vs_error(err, errno, "stat /proc/self/exe");
        /* MFD_EXEC: hosts with vm.memfd_noexec = 1 make memfds non-executable by default */
        _cleanup_close_ int mfd =
            memfd_create("vserver", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
        if (mfd < 0 && errno == EINVAL)
                mfd = memfd_create("vserver", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (mfd < 0)
                return vs_error(err, errno, "memfd_create");
        for (off_t done = 0; done < st.st_size;) {
                ssize_t n = sendfile(mfd, self, NULL, (size_t)(st.st_size - done));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return vs_error(err, n < 0 ? errno : EIO, "copy /proc/self/exe");
                done += n;
        }
        if (fcntl(mfd, F_ADD_SEALS, SEALS | F_SEAL_EXEC) < 0 &&
            (errno != EINVAL || fcntl(mfd, F_ADD_SEALS, SEALS) < 0))
                return vs_error(err, errno, "seal the copy of /proc/self/exe");
        fexecve(mfd, argv, envp);
        return vs_error(err, errno,
                        "run the sealed copy of /proc/self/exe (is vm.memfd_noexec 2?)");
}
