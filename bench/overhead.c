/* The in-guest overhead probe: one static binary run on the host and inside
 * guests (bench/overhead.py), so the same code meets each kernel path.
 *
 *   vs-overhead TEST COUNT [PATH]
 *
 * Paths are relative to the working directory, which the caller sets to the
 * guest's root on the host and to / inside, so lookups walk the same number
 * of components on both sides.  Prints one line: TEST ns-per-operation.
 *
 *   getpid    COUNT getpid(2) calls (the raw syscall: no libc cache)
 *   ioctl     COUNT ioctl(TCGETS) of /dev/null (ENOTTY): a call whose seccomp
 *             rules look at its arguments, so the kernel's allow cache
 *             cannot answer it and every filter runs
 *   openclose COUNT open+close of PATH
 *   stat      COUNT stat(2) of PATH
 *   forkexec  COUNT fork + execve(PATH nop) + wait
 *   walk      COUNT walks of the tree at PATH (openat, getdents64, fstatat per
 *             entry); per entry
 *   tcprtt    COUNT one-byte round trips over a loopback TCP connection
 *   tcpbulk   COUNT MiB sent over a loopback TCP connection; per MiB
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
        fprintf(stderr, "vs-overhead: %s: %s\n", what, strerror(errno));
        exit(1);
}

static double now_ns(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static long walk(int dirfd)
{
        long n = 0;
        char buf[32768];
        for (;;) {
                long got = syscall(SYS_getdents64, dirfd, buf, sizeof buf);
                if (got < 0)
                        die("getdents64");
                if (got == 0)
                        break;
                for (long off = 0; off < got;) {
                        struct dirent64 *d = (struct dirent64 *)(buf + off);
                        off += d->d_reclen;
                        if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
                                continue;
                        struct stat st;
                        if (fstatat(dirfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                die("fstatat");
                        n++;
                        if (S_ISDIR(st.st_mode)) {
                                int sub = openat(dirfd, d->d_name,
                                                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                                if (sub < 0)
                                        die("openat");
                                n += walk(sub);
                                close(sub);
                        }
                }
        }
        return n;
}

static int tcp_pair(int *server_side)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        int one = 1;
        int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0 ||
            getsockname(l, (struct sockaddr *)&a, &len) < 0)
                die("listen on 127.0.0.1");
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) < 0)
                die("connect to 127.0.0.1");
        int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (s < 0)
                die("accept");
        close(l);
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        *server_side = s;
        return c;
}

struct peer {
        int fd;
        long count;
        int echo;
};

static void *serve(void *arg)
{
        struct peer *p = arg;
        static char buf[1 << 16];
        if (p->echo) {
                for (long i = 0; i < p->count; i++) {
                        if (read(p->fd, buf, 1) != 1 || write(p->fd, buf, 1) != 1)
                                die("echo");
                }
        } else {
                for (;;) {
                        ssize_t r = read(p->fd, buf, sizeof buf);
                        if (r < 0)
                                die("read");
                        if (r == 0)
                                break;
                }
        }
        return NULL;
}

int main(int argc, char **argv)
{
        if (argc == 2 && !strcmp(argv[1], "nop"))
                return 0;
        if (argc < 3) {
                fprintf(stderr, "usage: vs-overhead TEST COUNT [PATH]\n");
                return 2;
        }
        const char *test = argv[1], *path = argc > 3 ? argv[3] : NULL;
        long count = strtol(argv[2], NULL, 10);
        if (count <= 0) {
                fprintf(stderr, "vs-overhead: COUNT must be positive\n");
                return 2;
        }
        double ops = (double)count, t0 = now_ns();
        if (!strcmp(test, "getpid")) {
                for (long i = 0; i < count; i++)
                        syscall(SYS_getpid);
        } else if (!strcmp(test, "ioctl")) {
                struct termios tio;
                int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        die("/dev/null");
                for (long i = 0; i < count; i++)
                        ioctl(fd, TCGETS, &tio);
                close(fd);
        } else if (!strcmp(test, "readfile") && path) {
                static char buf[1 << 16];
                for (long i = 0; i < count; i++) {
                        int fd = open(path, O_RDONLY | O_CLOEXEC);
                        if (fd < 0)
                                die(path);
                        while (read(fd, buf, sizeof buf) > 0)
                                ;
                        close(fd);
                }
        } else if (!strcmp(test, "uname")) {
                struct utsname u;
                for (long i = 0; i < count; i++)
                        if (uname(&u) < 0)
                                die("uname");
        } else if (!strcmp(test, "sysinfo")) {
                struct sysinfo si;
                for (long i = 0; i < count; i++)
                        if (sysinfo(&si) < 0)
                                die("sysinfo");
        } else if (!strcmp(test, "openclose") && path) {
                for (long i = 0; i < count; i++) {
                        int fd = open(path, O_RDONLY | O_CLOEXEC);
                        if (fd < 0)
                                die(path);
                        close(fd);
                }
        } else if (!strcmp(test, "stat") && path) {
                struct stat st;
                for (long i = 0; i < count; i++)
                        if (stat(path, &st) < 0)
                                die(path);
        } else if (!strcmp(test, "forkexec") && path) {
                for (long i = 0; i < count; i++) {
                        pid_t pid = fork();
                        if (pid < 0)
                                die("fork");
                        if (pid == 0) {
                                execl(path, path, "nop", (char *)NULL);
                                _exit(127);
                        }
                        int st;
                        if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
                                die("forkexec child");
                }
        } else if (!strcmp(test, "walk") && path) {
                long entries = 0;
                for (long i = 0; i < count; i++) {
                        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (fd < 0)
                                die(path);
                        entries += walk(fd);
                        close(fd);
                }
                ops = (double)entries;
        } else if (!strcmp(test, "tcprtt") || !strcmp(test, "tcpbulk")) {
                int bulk = !strcmp(test, "tcpbulk"), s, c = tcp_pair(&s);
                struct peer p = {.fd = s, .count = count, .echo = !bulk};
                pthread_t th;
                t0 = now_ns();
                if (pthread_create(&th, NULL, serve, &p))
                        die("pthread_create");
                static char buf[1 << 20];
                for (long i = 0; i < count; i++) {
                        if (bulk) {
                                for (size_t off = 0; off < sizeof buf;) {
                                        ssize_t w = write(c, buf + off, sizeof buf - off);
                                        if (w < 0)
                                                die("write");
                                        off += (size_t)w;
                                }
                        } else if (write(c, "x", 1) != 1 || read(c, buf, 1) != 1) {
                                die("round trip");
                        }
                }
                shutdown(c, SHUT_WR);
                pthread_join(th, NULL);
                close(c);
                close(s);
        } else {
                fprintf(stderr, "vs-overhead: unknown test or missing PATH: %s\n", test);
                return 2;
        }
        printf("%s %.1f\n", test, (now_ns() - t0) / ops);
        return 0;
}
