/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdarg.h>

/*
 * An error carried up the stack: an errno plus a human message that each
 * level prefixes with its own context ("start web1: mount /proc").  Fixed
 * size so a child after clone can send it over a socket without malloc.
 */
#define VS_ERROR_MSG_MAX 1024

typedef struct VsError {
        int code;  /* positive errno, 0 when no error */
        int input; /* 1: bad input; msg explains itself, no strerror appended */
        char msg[VS_ERROR_MSG_MAX];
} VsError;

/* Fill @e (may be NULL) and return -code, so callers can `return vs_error(...)`. */
int vs_error(VsError *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A bad-input error: code EINVAL, message shown as is (it names the fix). */
int vs_error_input(VsError *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepend "context: " to the message already in @e; returns -e->code. */
int vs_error_prefix(VsError *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "message: strerror", or the message alone for input errors. */
const char *vs_error_text(const VsError *e, char *buf, unsigned long size);
