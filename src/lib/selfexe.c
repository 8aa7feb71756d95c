/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "selfexe.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U /* Linux 6.3 */
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020 /* Linux 6.3 */
#endif

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

bool vs_selfexe_sealed(void)
{
        _cleanup_close_ int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        int seals = fcntl(fd, F_GET_SEALS);
        return seals >= 0 && (seals & SEALS) == SEALS;
}

int vs_selfexe_reexec_sealed(char **argv, char **envp, VsError *err)
{
        if (vs_selfexe_sealed())
                return 0;
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
