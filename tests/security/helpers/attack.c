/* What a hostile guest root tries from inside (tests/security); static, run in the guest. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static void note(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const char *path, const char *fmt, ...)
{
        va_list ap;
        FILE *f = fopen(path, "w");
        if (!f)
                return;
        va_start(ap, fmt);
        vfprintf(f, fmt, ap);
        va_end(ap);
        fclose(f);
}

/* Phase two of loader.c: reopen the kept descriptor of the binary for writing. */
static int overwrite(const char *fdstr)
{
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%s", fdstr);
        pid_t pid = fork();
        if (pid != 0) {
                if (getpid() == 1) /* as init: stay up, a guest's PID 1 ending ends it */
                        for (;;)
                                pause();
                return 0;
        }
        setsid();
        for (int i = 0; i < 30; i++) {
                int fd = open(path, O_WRONLY);
                if (fd < 0 && errno == ETXTBSY) {
                        usleep(100000);
                        continue;
                }
                if (fd < 0) {
                        note("/vs-out/overwrite", "REFUSED open %s", strerror(errno));
                        return 0;
                }
                if (pwrite(fd, "PWNED", 5, 0) == 5) {
                        note("/vs-out/overwrite", "WROTE");
                        return 0;
                }
                note("/vs-out/overwrite", "REFUSED write %s", strerror(errno));
                return 0;
        }
        note("/vs-out/overwrite", "BUSY");
        return 0;
}

/* Read the mountinfo of every new process for @secs seconds; print LEAK if @marker shows. */
static int scan_mountinfo(const char *marker, int secs)
{
        static char buf[1 << 16];
        time_t end = time(NULL) + secs;
        int leaks = 0, seen = 0;
        while (time(NULL) < end) {
                DIR *d = opendir("/proc");
                struct dirent *de;
                while (d && (de = readdir(d))) {
                        if (de->d_name[0] < '0' || de->d_name[0] > '9')
                                continue;
                        char p[300];
                        snprintf(p, sizeof p, "/proc/%s/mountinfo", de->d_name);
                        int fd = open(p, O_RDONLY);
                        if (fd < 0)
                                continue;
                        ssize_t n = read(fd, buf, sizeof buf - 1);
                        close(fd);
                        if (n <= 0)
                                continue;
                        buf[n] = 0;
                        seen++;
                        if (strstr(buf, marker))
                                leaks++;
                }
                if (d)
                        closedir(d);
        }
        printf("%s %d\n", leaks ? "LEAK" : "CLEAN", seen);
        return 0;
}

/*
 * Watch every file in @dir for attribute changes (until @enough events) (a shared inode losing its
 * immutable flag) and try to open it for writing at once; @secs seconds.
 */
static int race_write(const char *dir, int secs, int enough)
{
        static char names[4096][64];
        int n = 0, in = inotify_init1(IN_NONBLOCK), events = 0;
        DIR *d = opendir(dir);
        struct dirent *de;
        int wd0 = -1;
        while (d && (de = readdir(d)) && n < 4096) {
                if (de->d_type != DT_REG || strlen(de->d_name) >= 64)
                        continue;
                char p[4200];
                snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
                int wd = inotify_add_watch(in, p, IN_ATTRIB);
                if (wd < 0)
                        continue;
                if (wd0 < 0)
                        wd0 = wd;
                snprintf(names[wd - wd0], sizeof names[0], "%s", de->d_name);
                n++;
        }
        if (d)
                closedir(d);
        printf("WATCHING %d\n", n);
        fflush(stdout);
        time_t end = time(NULL) + secs;
        char buf[65536];
        while (time(NULL) < end && (enough <= 0 || events < enough)) {
                struct pollfd pfd = {.fd = in, .events = POLLIN};
                if (poll(&pfd, 1, 200) <= 0)
                        continue;
                ssize_t len = read(in, buf, sizeof buf);
                for (char *p = buf; len > 0 && p < buf + len;) {
                        struct inotify_event *ev = (struct inotify_event *)p;
                        p += sizeof *ev + ev->len;
                        int i = ev->wd - wd0;
                        if (i < 0 || i >= n)
                                continue;
                        events++;
                        char path[4200];
                        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
                        int fd = open(path, O_WRONLY);
                        if (fd >= 0) {
                                printf("WON %s\n", names[i]);
                                return 0;
                        }
                }
        }
        printf("LOST %d\n", events);
        return 0;
}

static int sockets(void)
{
        int fams[] = {AF_VSOCK, AF_PACKET, AF_NETLINK, AF_INET, AF_INET6, AF_UNIX};
        const char *names[] = {"vsock", "packet", "netlink", "inet", "inet6", "unix"};
        for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
                int type = fams[i] == AF_PACKET || fams[i] == AF_NETLINK ? SOCK_RAW : SOCK_STREAM;
                if (fams[i] == AF_VSOCK)
                        type = SOCK_STREAM;
                int s = socket(fams[i], type, 0);
                printf("%s %s\n", names[i], s >= 0 ? "ok" : strerror(errno));
                if (s >= 0)
                        close(s);
        }
        return 0;
}

int main(int argc, char **argv)
{
        if (argc >= 3 && strcmp(argv[1], "overwrite") == 0)
                return overwrite(argv[2]);
        if (argc >= 4 && strcmp(argv[1], "scan-mountinfo") == 0)
                return scan_mountinfo(argv[2], atoi(argv[3]));
        if (argc >= 4 && strcmp(argv[1], "race-write") == 0)
                return race_write(argv[2], atoi(argv[3]), argc > 4 ? atoi(argv[4]) : 0);
        if (argc >= 2 && strcmp(argv[1], "sockets") == 0)
                return sockets();
        fprintf(stderr, "usage: vs-attack overwrite FD | scan-mountinfo MARKER SECS | sockets\n");
        return 2;
}
