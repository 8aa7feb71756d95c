/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 4, 0))) static int fill(VsError *e, int code, int input,
                                                      const char *fmt, va_list ap)
{
        if (code < 0)
                code = -code;
        if (code == 0)
                code = EIO;
        if (e) {
                e->code = code;
                e->input = input;
                vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        }
        return -code;
}

int vs_error(VsError *e, int code, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = fill(e, code, 0, fmt, ap);
        va_end(ap);
        return r;
}

int vs_error_input(VsError *e, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = fill(e, EINVAL, 1, fmt, ap);
        va_end(ap);
        return r;
}

int vs_error_prefix(VsError *e, const char *fmt, ...)
{
        char head[VS_ERROR_MSG_MAX], old[VS_ERROR_MSG_MAX];
        va_list ap;

        if (!e)
                return -EIO;
        va_start(ap, fmt);
        vsnprintf(head, sizeof head, fmt, ap);
        va_end(ap);
        memcpy(old, e->msg, sizeof old);
        old[sizeof old - 1] = '\0';
        if (old[0])
                snprintf(e->msg, sizeof e->msg, "%s: %s", head, old);
        else
                snprintf(e->msg, sizeof e->msg, "%s", head);
        return -(e->code ? e->code : EIO);
}

/*
 * Input errors already explain themselves and name a fix; everything else
 * gets ": <strerror>" so the user sees what the kernel said.
 */
const char *vs_error_text(const VsError *e, char *buf, unsigned long size)
{
        if (e->code == 0 || e->input)
                snprintf(buf, size, "%s", e->msg);
        else
                snprintf(buf, size, "%s: %s", e->msg, strerror(e->code));
        return buf;
}
