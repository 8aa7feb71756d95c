/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The terminal side of -t: our terminal in raw mode, bytes both ways, size kept in step. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "../lib/util.h"
#include "cli.h"

static volatile int relay_master = -1;

static void copy_size(void)
{
        struct winsize ws;
        if (relay_master >= 0 && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
                ioctl(relay_master, TIOCSWINSZ, &ws);
}

static void on_winch(int sig)
{
        (void)sig;
        int saved = errno;
        copy_size();
        errno = saved;
}

/* Copy what is readable on @from to @to; false at EOF or error. */
static bool pump(int from, int to)
{
        char buf[8192];
        ssize_t n = read(from, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return true;
        if (n <= 0)
                return false;
        return vs_write_all(to, buf, (size_t)n) == 0;
}

int tty_relay(int master, int pidfd)
{
        struct termios saved, raw;
        bool restore = false;

        relay_master = master;
        if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
                raw = saved;
                cfmakeraw(&raw);
                if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
                        restore = true;
                struct sigaction sa = {.sa_handler = on_winch, .sa_flags = SA_RESTART};
                sigemptyset(&sa.sa_mask);
                sigaction(SIGWINCH, &sa, NULL);
                copy_size();
        }

        struct pollfd p[3] = {
            {.fd = master, .events = POLLIN},
            {.fd = STDIN_FILENO, .events = POLLIN},
            {.fd = pidfd, .events = POLLIN},
        };
        for (;;) {
                if (poll(p, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        if (!pump(master, STDOUT_FILENO))
                                break;
                }
                if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                        if (!pump(STDIN_FILENO, master)) {
                                /* our input ended: say so the way a terminal does */
                                char eot = 4;
                                (void)!write(master, &eot, 1);
                                p[1].fd = -1;
                        }
                }
                if (p[2].revents & POLLIN) {
                        /* PID 1 is gone: drain what it left, then stop */
                        struct pollfd d = {.fd = master, .events = POLLIN};
                        while (poll(&d, 1, 50) > 0 && pump(master, STDOUT_FILENO))
                                ;
                        break;
                }
        }
        if (restore)
                tcsetattr(STDIN_FILENO, TCSADRAIN, &saved);
        relay_master = -1;
        return 0;
}

static int forward_pidfd = -1;

static void forward_signal(int sig)
{
        if (forward_pidfd >= 0)
                pidfd_send_signal(forward_pidfd, sig, NULL, 0);
}

int attend(VsContext *ctx, bool tty, const char *verb)
{
        static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
        struct sigaction sa = {.sa_handler = forward_signal, .sa_flags = SA_RESTART};
        VsError err = {0};
        int code = 1;

        forward_pidfd = ctx->pidfd;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
                sigaction(sigs[i], &sa, NULL);
        if (tty)
                tty_relay(ctx->pty_master, ctx->pidfd);
        if (vs_context_wait(ctx, &code, &err) < 0)
                fail_error(0, verb, &err);
        forward_pidfd = -1;
        return code;
}
