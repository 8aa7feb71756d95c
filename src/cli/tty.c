/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The caller's side of a guest command's stdio: the guest gets pipes (or,
 * with -t, a pty from its own devpts) and we copy between them and our own
 * stdio, our terminal in raw mode with its size kept in step.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "../lib/relay.h"
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

int stdio_pipes(GuestStdio *io, bool tty, const char *verb)
{
        *io = (GuestStdio){.guest = {-1, -1, -1}, .ours = {-EBADF, -EBADF, -EBADF}};
        if (tty)
                return 0;
        for (int i = 0; i < 3; i++) {
                int p[2];
                if (pipe2(p, O_CLOEXEC) < 0) {
                        stdio_close(io);
                        return fail(-1, verb, "pipe: %s", strerror(errno));
                }
                /* stdin: the guest reads p[0]; stdout, stderr: it writes p[1] */
                io->guest[i] = i == 0 ? p[0] : p[1];
                io->ours[i] = i == 0 ? p[1] : p[0];
                fcntl(io->ours[i], F_SETFL, O_NONBLOCK);
        }
        return 0;
}

void stdio_close_guest_ends(GuestStdio *io)
{
        for (int i = 0; i < 3; i++)
                if (io->guest[i] >= 0) {
                        close(io->guest[i]);
                        io->guest[i] = -1;
                }
}

void stdio_close(GuestStdio *io)
{
        stdio_close_guest_ends(io);
        for (int i = 0; i < 3; i++)
                vs_closep(&io->ours[i]);
}

static int relay(VsContext *ctx, GuestStdio *io, bool tty)
{
        VsError err = {0};
        static VsRelayStream s[3];
        int n = 0;
        if (tty) {
                s[n++] = (VsRelayStream){
                    .from = STDIN_FILENO, .to = ctx->pty_master, .eot_at_eof = true};
                s[n++] =
                    (VsRelayStream){.from = ctx->pty_master, .to = STDOUT_FILENO, .output = true};
        } else {
                s[n++] =
                    (VsRelayStream){.from = STDIN_FILENO, .to = io->ours[0], .close_at_eof = true};
                io->ours[0] = -EBADF; /* the relay closes it at our input's end */
                s[n++] = (VsRelayStream){.from = io->ours[1], .to = STDOUT_FILENO, .output = true};
                s[n++] = (VsRelayStream){.from = io->ours[2], .to = STDERR_FILENO, .output = true};
        }
        int r = vs_relay(s, n, ctx->pidfd, &err);
        if (!tty && !s[0].done)
                vs_closep(&s[0].to);
        return r;
}

static int tty_relay(VsContext *ctx, GuestStdio *io)
{
        struct termios saved, raw;
        bool restore = false;

        relay_master = ctx->pty_master;
        fcntl(ctx->pty_master, F_SETFL, O_NONBLOCK);
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
        int r = relay(ctx, io, true);
        if (restore)
                tcsetattr(STDIN_FILENO, TCSADRAIN, &saved);
        relay_master = -1;
        return r;
}

static int forward_pidfd = -1;

static void forward_signal(int sig)
{
        if (forward_pidfd >= 0)
                pidfd_send_signal(forward_pidfd, sig, NULL, 0);
}

int attend(VsContext *ctx, GuestStdio *io, bool tty, const char *verb)
{
        static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
        struct sigaction sa = {.sa_handler = forward_signal, .sa_flags = SA_RESTART};
        VsError err = {0};
        int code = 1;

        forward_pidfd = ctx->pidfd;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
                sigaction(sigs[i], &sa, NULL);
        signal(SIGPIPE, SIG_IGN); /* a reader gone is an EPIPE to handle, not our death */
        stdio_close_guest_ends(io);
        if (tty)
                tty_relay(ctx, io);
        else
                relay(ctx, io, false);
        if (vs_context_wait(ctx, &code, &err) < 0)
                fail_error(0, verb, &err);
        forward_pidfd = -1;
        stdio_close(io);
        return code;
}
