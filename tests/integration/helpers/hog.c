/*
 * A resource hog for the limit tests, static so it runs in any guest:
 *   hog cpu SECONDS     spin (0: for ever)
 *   hog mem MIB         allocate and touch MIB MiB, print "touched", then sleep
 *   hog fork            fork until the kernel refuses; print "forked N errno E"; children sleep
 *   hog io FILE MIB     write MIB MiB with O_DIRECT; print "wrote N seconds S"
 *   hog sock N          open N unix sockets, print "open", then sleep
 *   hog threads N       start N more threads that sleep, print "threads", then sleep
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *sleeper(void *arg)
{
        (void)arg;
        for (;;)
                pause();
        return NULL;
}

int main(int argc, char **argv)
{
        if (argc >= 3 && strcmp(argv[1], "cpu") == 0) {
                double end = now() + atof(argv[2]);
                volatile unsigned long x = 0;
                while (atof(argv[2]) == 0 || now() < end)
                        for (int i = 0; i < 1000000; i++)
                                x++;
                return 0;
        }
        if (argc >= 3 && strcmp(argv[1], "mem") == 0) {
                size_t n = (size_t)atol(argv[2]) << 20;
                char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED) {
                        perror("mmap");
                        return 1;
                }
                for (size_t i = 0; i < n; i += 4096)
                        p[i] = (char)(i >> 12 | 1);
                printf("touched\n");
                fflush(stdout);
                for (;;)
                        pause();
        }
        if (argc >= 2 && strcmp(argv[1], "fork") == 0) {
                long n = 0;
                for (;;) {
                        pid_t pid = fork();
                        if (pid == 0) {
                                for (;;)
                                        pause();
                        }
                        if (pid < 0) {
                                printf("forked %ld errno %d\n", n, errno);
                                fflush(stdout);
                                for (;;)
                                        pause();
                        }
                        n++;
                }
        }
        if (argc >= 4 && strcmp(argv[1], "io") == 0) {
                long mib = atol(argv[3]);
                int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0644);
                if (fd < 0) {
                        perror(argv[2]);
                        return 1;
                }
                void *buf;
                if (posix_memalign(&buf, 4096, 1 << 20))
                        return 1;
                memset(buf, 'x', 1 << 20);
                double t0 = now();
                for (long i = 0; i < mib; i++)
                        if (write(fd, buf, 1 << 20) != 1 << 20) {
                                perror("write");
                                return 1;
                        }
                double t = now() - t0;
                close(fd);
                printf("wrote %ld seconds %.3f\n", mib, t);
                return 0;
        }
        if (argc >= 3 && strcmp(argv[1], "sock") == 0) {
                for (long i = 0; i < atol(argv[2]); i++)
                        if (socket(AF_UNIX, SOCK_DGRAM, 0) < 0) {
                                perror("socket");
                                return 1;
                        }
                printf("open\n");
                fflush(stdout);
                for (;;)
                        pause();
        }
        if (argc >= 3 && strcmp(argv[1], "threads") == 0) {
                for (long i = 0; i < atol(argv[2]); i++) {
                        pthread_t t;
                        if (pthread_create(&t, NULL, sleeper, NULL) != 0) {
                                fprintf(stderr, "pthread_create failed\n");
                                return 1;
                        }
                }
                printf("threads\n");
                fflush(stdout);
                for (;;)
                        pause();
        }
        fprintf(stderr, "usage: hog cpu S | mem MIB | fork | io FILE MIB | sock N | threads N\n");
        return 2;
}
