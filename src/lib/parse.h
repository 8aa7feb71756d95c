/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parsers of what users and guest files write: strict, whole-string,
 * -EINVAL (or -ERANGE) and nothing set on bad input.
 */

/* Decimal digits only, no sign, no overflow. */
int vs_parse_u64(const char *s, unsigned long long *ret);
/* A count with an optional k, M or G (thousands, not KiB): "200k". */
int vs_parse_count(const char *s, unsigned long long *ret);
/* yes/true/on/1 or no/false/off/0 (case-insensitive). */
int vs_parse_bool(const char *v, bool *ret);
/* "512M", "2G", "4096", "1KiB" -> bytes (binary units, K to P). */
int vs_parse_size(const char *s, unsigned long long *ret);
/* "1.5" -> 1500: thousandths, at most three decimals. */
int vs_parse_milli(const char *v, unsigned long long *ret);
/* "500ms", "1s", "250us", or a bare number of milliseconds -> microseconds (up to an hour). */
int vs_parse_duration_us(const char *v, uint64_t *ret);
/* A CPU or memory node list as the kernel takes it: "0-3,6,8-9" (members below 8192). */
bool vs_cpulist_valid(const char *v);
/* Mark the members of the list @v in @set (of @n); false if one is @n or more, or no list. */
bool vs_cpulist_fill(const char *v, bool *set, unsigned n);
/* "SIGTERM", "TERM", "15", "SIGRTMIN+3" -> the number; -EINVAL if none. */
int vs_signal_from_name(const char *s);
/* "SIGTERM", "SIGRTMIN+3", or the number. */
const char *vs_signal_name(int sig, char *buf, size_t size);
