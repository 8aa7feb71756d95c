/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

typedef enum VsSeccompMode {
        VS_SECCOMP_DEFAULT = 0, /* the built-in deny list */
        VS_SECCOMP_NONE,        /* no filter at all */
        VS_SECCOMP_FILE,        /* a deny list read from a file */
} VsSeccompMode;

typedef struct VsSeccompSpec {
        VsSeccompMode mode;
        const char *file;  /* VS_SECCOMP_FILE */
        bool allow_userns; /* let the guest create user namespaces */
        /*
         * The guest has a user namespace of its own: what that namespace
         * confines is allowed (mounts, reboot of its own pid namespace,
         * nested user namespaces); the rest of the list stays.
         */
        bool userns;
} VsSeccompSpec;

/* An opaque compiled filter, built in the parent and loaded by the child. */
typedef struct VsSeccomp VsSeccomp;

/*
 * Build the filter.  *ret is NULL for VS_SECCOMP_NONE.  A deny-list file has
 * one syscall name per line ('#' comments) and extends the built-in list;
 * the line "!@default" leaves the built-in list out.  Unknown names are
 * errors naming file and line.
 */
int vs_seccomp_build(const VsSeccompSpec *spec, VsSeccomp **ret, VsError *err);
/* Load into the calling thread; safe to call in the child after clone. */
int vs_seccomp_load(const VsSeccomp *f, VsError *err);
void vs_seccomp_free(VsSeccomp *f);
/*
 * System calls newer than libseccomp: the number of @name where we know it
 * (x86_64), else -1; and rules for them put in front of a compiled filter
 * (@rets: SECCOMP_RET_* values, as libseccomp's actions are).
 */
int vs_seccomp_newer_nr(const char *name);
int vs_seccomp_prepend(VsSeccomp *f, const int *nrs, const uint32_t *rets, int n, VsError *err);
/* A libseccomp filter (scmp_filter_ctx) compiled into *ret; the context is released either way. */
int vs_seccomp_compile(void *ctx, VsSeccomp **ret, VsError *err);

/*
 * The system calls a host process answers for the guest (seccomp user
 * notification): uname(2) (the uname keys) and sysinfo(2) (the views).
 * Native ones only: another architecture's (i386 binaries) run as they are.
 */
enum { VS_NOTIFY_UNAME = 1 << 0, VS_NOTIFY_SYSINFO = 1 << 1 };
int vs_seccomp_build_notify(unsigned what, VsSeccomp **ret, VsError *err);
/*
 * A context's filters: the deny list of @spec (*ret_deny) and the
 * notification filter for @notify (*ret_notify, loaded with the listener).
 * With the built-in list, which allows uname and sysinfo, they are one
 * filter: the notification rules in front of the deny list, in *ret_notify
 * (*ret_deny NULL).  The kernel runs every filter of a task on each system
 * call its allow cache cannot answer (ioctl, socket, clone...): one filter
 * less is ~30-50 ns less there, and a BPF program less a guest.  A file's
 * list stays a filter of its own: it may deny them, and across filters a
 * deny wins over a notification.
 */
int vs_seccomp_build_filters(const VsSeccompSpec *spec, unsigned notify, VsSeccomp **ret_deny,
                             VsSeccomp **ret_notify, VsError *err);
/* Load it into the calling thread: its listener's fd (close-on-exec), or -errno. */
int vs_seccomp_load_listener(const VsSeccomp *f, VsError *err);
/* The compiled classic-BPF program (for the build-time generator and tests). */
struct sock_filter;
void vs_seccomp_program(const VsSeccomp *f, const struct sock_filter **ret_insns,
                        unsigned short *ret_len);
/* The built-in deny list, NULL-terminated (for docs and tests). */
const char *const *vs_seccomp_default_list(void);
/* What of it a guest with its own user namespace may call (NULL-terminated). */
const char *const *vs_seccomp_userns_allowed(void);
