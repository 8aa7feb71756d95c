/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/*
 * A guest only ever gets pipes or a pty that we relay, never the caller's
 * files or terminal (it could reopen those through /proc/PID/fd, chmod them,
 * write to the caller's terminal after we are gone).  A relay copies bytes
 * between the caller's descriptors and the guest's ends.
 */
typedef struct VsRelayStream {
        int from;          /* read here ... */
        int to;            /* ... write there */
        bool output;       /* guest to caller: drained after the process ends */
        bool close_at_eof; /* close @to when @from ends (the write end of a pipe) */
        bool eot_at_eof;   /* write ^D to @to when @from ends (a pty's input) */
        /* the relay's own state */
        size_t len, off;
        bool done;
        char buf[65536];
} VsRelayStream;

/*
 * Copy along @n streams until the process behind @pidfd has ended and every
 * output stream is drained (or is quiet for a moment after the end: a
 * background process may keep a pipe open forever).  Descriptors we own (the
 * guest's ends) should be O_NONBLOCK; the caller's may block.  Returns 0, or
 * -errno when polling itself failed.
 */
int vs_relay(VsRelayStream *s, int n, int pidfd, VsError *err);
