#define _GNU_SOURCE
/* Tries one syscall the guest should not have and prints "ok" or the errno name.
 *   tiocsti        ioctl(0, TIOCSTI, "x"): push a byte into stdin's terminal
 *   tiocsti-high   the same with bits above 32 set in the command
 *   i386-getpid    getpid through the i386 ABI (int $0x80)
 *   i386-keyctl    keyctl through the i386 ABI: the filter must cover it too
 *   uname-null     uname(NULL): EFAULT, as from the kernel (also when answered for the guest)
 *   uname-ro       uname into read-only memory: EFAULT too
 *   sysinfo-ro     sysinfo into read-only memory: EFAULT
 *   nr N           system call number N with all arguments 0 (one newer than libseccomp)
 *   calls FILE     sysinfo and uname for ever, the count of both done written to FILE */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <fcntl.h>
#include <unistd.h>

static long int80(long nr, long a, long b, long c)
{
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
        return ret;
}

static int report(long r)
{
        if (r < 0 && r > -4096) {
                printf("%s\n", strerrorname_np((int)-r));
                return 1;
        }
        printf("ok\n");
        return 0;
}

int main(int argc, char **argv)
{
        char c = 'x';
        if (argc < 2)
                return 2;
        if (!strcmp(argv[1], "tiocsti"))
                return report(syscall(SYS_ioctl, 0, TIOCSTI, &c) < 0 ? -errno : 0);
        if (!strcmp(argv[1], "tiocsti-high"))
                return report(syscall(SYS_ioctl, 0, (1UL << 32) | TIOCSTI, &c) < 0 ? -errno : 0);
        if (!strcmp(argv[1], "i386-getpid"))
                return report(int80(20, 0, 0, 0));
        if (!strcmp(argv[1], "i386-keyctl"))
                /* KEYCTL_GET_KEYRING_ID of the session keyring, no create: read-only */
                return report(int80(288, 0, -3, 0));
        if (!strcmp(argv[1], "uname-null"))
                return report(syscall(SYS_uname, NULL) < 0 ? -errno : 0);
        if (!strcmp(argv[1], "uname-ro") || !strcmp(argv[1], "sysinfo-ro")) {
                void *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                long nr = argv[1][0] == 'u' ? SYS_uname : SYS_sysinfo;
                long r = syscall(nr, ro) < 0 ? -errno : 0;
                /* and nothing was written there */
                if (r == 0 || ((const char *)ro)[0] != 0)
                        printf("written ");
                return report(r);
        }
        if (!strcmp(argv[1], "calls") && argc > 2) {
                int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
                struct sysinfo si;
                struct utsname u;
                char text[32];
                for (unsigned long n = 1; fd >= 0; n++) {
                        if (sysinfo(&si) < 0 || uname(&u) < 0)
                                return report(-errno);
                        int len = snprintf(text, sizeof text, "%lu\n", n);
                        if (pwrite(fd, text, (size_t)len, 0) != len)
                                return report(-errno);
                }
                return report(-errno);
        }
        if (!strcmp(argv[1], "nr") && argc > 2)
                return report(syscall(atol(argv[2]), 0, 0, 0, 0, 0, 0) < 0 ? -errno : 0);
        return 2;
}
