/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "relay.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "util.h"

#define MAX_STREAMS 8
/* after the process ends: how long an output may stay quiet before we stop */
#define DRAIN_MS 100

static void finish(VsRelayStream *s)
{
        if (s->done)
                return;
        s->done = true;
        if (s->eot_at_eof) {
                char eot = 4;
                (void)!write(s->to, &eot, 1);
        }
        if (s->close_at_eof)
                vs_closep(&s->to);
}

/* Read into an empty buffer; false once @from has ended. */
static bool fill(VsRelayStream *s)
{
        ssize_t n = read(s->from, s->buf, sizeof s->buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return true;
        if (n <= 0)
                return false;
        s->len = (size_t)n;
        s->off = 0;
        return true;
}

/* Write what the buffer holds; false when @to is gone. */
static bool flush(VsRelayStream *s)
{
        while (s->off < s->len) {
                ssize_t n = write(s->to, s->buf + s->off, s->len - s->off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return true;
                if (n < 0)
                        return false;
                s->off += (size_t)n;
        }
        s->len = s->off = 0;
        return true;
}

int vs_relay(VsRelayStream *s, int n, int pidfd, VsError *err)
{
        struct pollfd p[MAX_STREAMS + 1];
        bool ended = false;

        if (n > MAX_STREAMS)
                return vs_error(err, EINVAL, "too many streams to relay");
        for (;;) {
                int live_outputs = 0;
                for (int i = 0; i < n; i++) {
                        VsRelayStream *x = &s[i];
                        p[i] = (struct pollfd){.fd = -1};
                        if (x->done || (ended && !x->output))
                                continue;
                        if (x->output)
                                live_outputs++;
                        if (x->len > 0)
                                p[i] = (struct pollfd){.fd = x->to, .events = POLLOUT};
                        else
                                p[i] = (struct pollfd){.fd = x->from, .events = POLLIN};
                }
                if (ended && live_outputs == 0)
                        return 0;
                p[n] = (struct pollfd){.fd = ended ? -1 : pidfd, .events = POLLIN};
                int r = poll(p, (nfds_t)n + 1, ended ? DRAIN_MS : -1);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return vs_error(err, errno, "poll");
                if (r == 0)
                        return 0; /* ended, and every output quiet for DRAIN_MS */
                if (p[n].revents)
                        ended = true;
                for (int i = 0; i < n; i++) {
                        VsRelayStream *x = &s[i];
                        if (!p[i].revents)
                                continue;
                        if (x->len > 0 ? !flush(x) : !fill(x)) {
                                finish(x);
                                continue;
                        }
                        /* try at once: the common case needs no second poll */
                        if (x->len > 0 && !flush(x))
                                finish(x);
                }
        }
}
