/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>
#include <sys/resource.h>

#include "error.h"
#include "parse.h"

typedef struct VsRlimit {
        int resource; /* RLIMIT_* */
        struct rlimit limit;
} VsRlimit;

/* "nofile" / "NOFILE" / "RLIMIT_NOFILE" -> RLIMIT_NOFILE; -EINVAL if unknown. */
int vs_rlimit_from_name(const char *name);
const char *vs_rlimit_name(int resource);
/* A limit's value as the guest file writes it: a number or "unlimited". */
const char *vs_rlimit_format(rlim_t v, char *buf, size_t size);
/*
 * "NAME=SOFT[:HARD]", values a number or "unlimited"; a lone value sets both.
 * Sizes (AS, DATA, STACK, CORE, FSIZE, MEMLOCK, RSS, MSGQUEUE) take K/M/G/T suffixes.
 */
int vs_rlimit_parse(const char *spec, VsRlimit *ret, VsError *err);
