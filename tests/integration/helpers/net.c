/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vs-net: sockets as a guest's programs use them, for the network tests.
 *
 *   serve tcp|udp ADDR PORT     bind, print "listening ADDR" (getsockname),
 *                               answer each client "from PEER to LOCAL"
 *   ask tcp|udp ADDR PORT       connect/send, print the answer; exit 0,
 *                               or print "error ERRNO_NAME" and exit 1
 *   bind ADDR PORT              bind a TCP socket, print "ok LOCAL" or error
 *   send ADDR PORT BYTES        TCP: send BYTES, print "sent N"
 *   echo ADDR PORT              TCP echo server (for bench/net.sh)
 *   rr ADDR PORT N              N one-byte round trips; "rr N mean_us"
 *   raw                         open a raw ICMP socket
 *   ping ID                     as user and group ID: one echo to 127.0.0.1 over an
 *                               ICMP datagram socket (ping_group_range), "ok" or error
 *   userve NAME                 abstract unix stream server @NAME, answers "hi"
 *   uask NAME                   connect to @NAME, print the answer
 *   udgram NAME                 send one datagram to @NAME
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what)
{
        int e = errno;
        printf("error %s %s\n",
               e == EADDRNOTAVAIL  ? "EADDRNOTAVAIL"
               : e == ECONNREFUSED ? "ECONNREFUSED"
               : e == EPERM        ? "EPERM"
               : e == EACCES       ? "EACCES"
               : e == EADDRINUSE   ? "EADDRINUSE"
               : e == ETIMEDOUT    ? "ETIMEDOUT"
               : e == EAGAIN       ? "EAGAIN"
               : e == ENETUNREACH  ? "ENETUNREACH"
                                   : strerror(e),
               what);
        fflush(stdout);
        return 1;
}

static int sa_of(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
        memset(ss, 0, sizeof *ss);
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
                s4->sin_family = AF_INET;
                s4->sin_port = htons((uint16_t)port);
                *len = sizeof *s4;
                return AF_INET;
        }
        if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons((uint16_t)port);
                *len = sizeof *s6;
                return AF_INET6;
        }
        fprintf(stderr, "bad address %s\n", addr);
        exit(2);
}

static const char *fmt(const struct sockaddr_storage *ss, char *buf, size_t n)
{
        char ip[INET6_ADDRSTRLEN] = "?";
        if (ss->ss_family == AF_INET) {
                const struct sockaddr_in *s4 = (const void *)ss;
                inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        } else if (ss->ss_family == AF_INET6) {
                const struct sockaddr_in6 *s6 = (const void *)ss;
                inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        }
        snprintf(buf, n, "%s", ip);
        return buf;
}

static int serve(int type, const char *addr, int port)
{
        struct sockaddr_storage ss, peer, local;
        socklen_t len, pl, ll = sizeof local;
        char a[64], b[64], msg[200], in[64];
        int fam = sa_of(addr, port, &ss, &len);
        int fd = socket(fam, type, 0), one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (fam == AF_INET6)
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&ss, len) < 0)
                return fail("bind");
        if (type == SOCK_STREAM && listen(fd, 64) < 0)
                return fail("listen");
        getsockname(fd, (struct sockaddr *)&local, &ll);
        printf("listening %s\n", fmt(&local, a, sizeof a));
        fflush(stdout);
        for (;;) {
                pl = sizeof peer;
                if (type == SOCK_STREAM) {
                        int c = accept(fd, (struct sockaddr *)&peer, &pl);
                        if (c < 0)
                                continue;
                        ll = sizeof local;
                        getsockname(c, (struct sockaddr *)&local, &ll);
                        snprintf(msg, sizeof msg, "from %s to %s\n", fmt(&peer, a, sizeof a),
                                 fmt(&local, b, sizeof b));
                        char sink[65536];
                        (void)!write(c, msg, strlen(msg));
                        shutdown(c, SHUT_WR);
                        while (read(c, sink, sizeof sink) > 0)
                                ;
                        close(c);
                } else {
                        ssize_t n = recvfrom(fd, in, sizeof in, 0, (struct sockaddr *)&peer, &pl);
                        if (n < 0)
                                continue;
                        snprintf(msg, sizeof msg, "from %s\n", fmt(&peer, a, sizeof a));
                        sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&peer, pl);
                }
        }
}

static int ask(int type, const char *addr, int port)
{
        struct sockaddr_storage ss;
        socklen_t len;
        char buf[256];
        int fam = sa_of(addr, port, &ss, &len);
        int fd = socket(fam, type, 0);
        struct timeval tv = {.tv_sec = 2};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(fd, (struct sockaddr *)&ss, len) < 0)
                return fail("connect");
        if (type == SOCK_DGRAM && send(fd, "?", 1, 0) < 0)
                return fail("send");
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n <= 0) {
                if (n == 0)
                        errno = ECONNREFUSED;
                return fail("recv");
        }
        buf[n] = '\0';
        fputs(buf, stdout);
        return 0;
}

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int echo(const char *addr, int port)
{
        struct sockaddr_storage ss;
        socklen_t len;
        int fam = sa_of(addr, port, &ss, &len), one = 1;
        int fd = socket(fam, SOCK_STREAM, 0);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0)
                return fail("bind");
        signal(SIGCHLD, SIG_IGN);
        printf("listening\n");
        fflush(stdout);
        for (;;) {
                int c = accept(fd, NULL, NULL);
                if (c < 0)
                        continue;
                if (fork() == 0) {
                        char buf[65536];
                        ssize_t n;
                        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                        while ((n = read(c, buf, sizeof buf)) > 0)
                                if (n == 1 && write(c, buf, 1) != 1)
                                        break;
                        _exit(0);
                }
                close(c);
        }
}

static int rr(const char *addr, int port, long count)
{
        struct sockaddr_storage ss;
        socklen_t len;
        int one = 1;
        int fd = socket(sa_of(addr, port, &ss, &len), SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&ss, len) < 0)
                return fail("connect");
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char b = 'x';
        double t0 = now();
        for (long i = 0; i < count; i++)
                if (write(fd, &b, 1) != 1 || read(fd, &b, 1) != 1)
                        return fail("rr");
        printf("rr %ld %.2f\n", count, (now() - t0) / (double)count * 1e6);
        return 0;
}

static int unix_sa(const char *name, struct sockaddr_un *su)
{
        memset(su, 0, sizeof *su);
        su->sun_family = AF_UNIX;
        size_t n = strlen(name);
        memcpy(su->sun_path + 1, name, n);
        return (int)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

int main(int argc, char **argv)
{
        if (argc < 2)
                return 2;
        const char *v = argv[1];
        if ((!strcmp(v, "serve") || !strcmp(v, "ask")) && argc == 5) {
                int type = !strcmp(argv[2], "udp") ? SOCK_DGRAM : SOCK_STREAM;
                return !strcmp(v, "serve") ? serve(type, argv[3], atoi(argv[4]))
                                           : ask(type, argv[3], atoi(argv[4]));
        }
        if (!strcmp(v, "bind") && argc == 4) {
                struct sockaddr_storage ss, local;
                socklen_t len, ll = sizeof local;
                char a[64];
                int fd = socket(sa_of(argv[2], atoi(argv[3]), &ss, &len), SOCK_STREAM, 0);
                if (bind(fd, (struct sockaddr *)&ss, len) < 0)
                        return fail("bind");
                getsockname(fd, (struct sockaddr *)&local, &ll);
                printf("ok %s\n", fmt(&local, a, sizeof a));
                return 0;
        }
        if (!strcmp(v, "send") && argc == 5) {
                struct sockaddr_storage ss;
                socklen_t len;
                int fd = socket(sa_of(argv[2], atoi(argv[3]), &ss, &len), SOCK_STREAM, 0);
                if (connect(fd, (struct sockaddr *)&ss, len) < 0)
                        return fail("connect");
                long total = atol(argv[4]), sent = 0;
                char buf[65536] = {0};
                double t0 = now();
                while (sent < total) {
                        long k = total - sent < (long)sizeof buf ? total - sent : (long)sizeof buf;
                        ssize_t n = write(fd, buf, (size_t)k);
                        if (n <= 0)
                                return fail("write");
                        sent += n;
                }
                shutdown(fd, SHUT_WR);
                while (read(fd, buf, sizeof buf) > 0)
                        ;
                if (getenv("VS_NET_TIMING"))
                        printf("sent %ld in %.6f\n", sent, now() - t0);
                else
                        printf("sent %ld\n", sent);
                return 0;
        }
        if (!strcmp(v, "echo") && argc == 4)
                return echo(argv[2], atoi(argv[3]));
        if (!strcmp(v, "rr") && argc == 5)
                return rr(argv[2], atoi(argv[3]), atol(argv[4]));
        if (!strcmp(v, "raw")) {
                int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
                if (fd < 0)
                        return fail("socket");
                printf("ok\n");
                return 0;
        }
        if (!strcmp(v, "ping") && argc == 3) {
                gid_t id = (gid_t)atoi(argv[2]);
                if (setgroups(0, NULL) < 0 || setgid(id) < 0 || setuid(id) < 0)
                        return fail("setuid");
                int fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
                if (fd < 0)
                        return fail("socket");
                struct icmphdr echo = {.type = ICMP_ECHO, .un.echo.sequence = htons(1)};
                struct sockaddr_in to = {.sin_family = AF_INET,
                                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
                struct timeval tv = {5, 0};
                char reply[256];
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                if (sendto(fd, &echo, sizeof echo, 0, (struct sockaddr *)&to, sizeof to) < 0)
                        return fail("sendto");
                if (recv(fd, reply, sizeof reply, 0) < (ssize_t)sizeof echo ||
                    ((struct icmphdr *)reply)->type != ICMP_ECHOREPLY)
                        return fail("recv");
                printf("ok\n");
                return 0;
        }
        if (!strcmp(v, "userve") && argc == 3) {
                struct sockaddr_un su;
                int len = unix_sa(argv[2], &su);
                int fd = socket(AF_UNIX, SOCK_STREAM, 0);
                if (bind(fd, (struct sockaddr *)&su, (socklen_t)len) < 0 || listen(fd, 8) < 0)
                        return fail("bind");
                printf("listening\n");
                fflush(stdout);
                for (;;) {
                        int c = accept(fd, NULL, NULL);
                        if (c >= 0) {
                                (void)!write(c, "hi\n", 3);
                                close(c);
                        }
                }
        }
        if ((!strcmp(v, "uask") || !strcmp(v, "udgram")) && argc == 3) {
                struct sockaddr_un su;
                int len = unix_sa(argv[2], &su);
                char buf[64];
                if (!strcmp(v, "udgram")) {
                        int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
                        if (sendto(fd, "x", 1, 0, (struct sockaddr *)&su, (socklen_t)len) < 0)
                                return fail("sendto");
                        printf("sent\n");
                        return 0;
                }
                int fd = socket(AF_UNIX, SOCK_STREAM, 0);
                if (connect(fd, (struct sockaddr *)&su, (socklen_t)len) < 0)
                        return fail("connect");
                ssize_t n = read(fd, buf, sizeof buf - 1);
                buf[n > 0 ? n : 0] = '\0';
                fputs(buf, stdout);
                return 0;
        }
        fprintf(stderr, "usage: see the top of net.c\n");
        return 2;
}
