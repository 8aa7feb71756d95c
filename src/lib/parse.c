/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Parsers of what users and guest files write (tests/unit/test_parse.c). */
#include "parse.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

int vs_parse_u64(const char *s, unsigned long long *ret)
{
        unsigned long long v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                unsigned d = (unsigned)(*p - '0');
                if (v > (ULLONG_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

int vs_parse_bool(const char *v, bool *ret)
{
        if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1") ||
            !strcasecmp(v, "on")) {
                *ret = true;
                return 0;
        }
        if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0") ||
            !strcasecmp(v, "off")) {
                *ret = false;
                return 0;
        }
        return -EINVAL;
}

/* A count's suffix: thousands, not KiB ("200k"); 0 if it is none of ours. */
static unsigned long long count_unit(const char *suf)
{
        return !*suf                                ? 1ULL
               : streq(suf, "k") || streq(suf, "K") ? 1000ULL
               : streq(suf, "M")                    ? 1000000ULL
               : streq(suf, "G")                    ? 1000000000ULL
                                                    : 0;
}

/* A size's suffix: K, M, G, T, P (powers of 1024), with an optional i and B. */
static unsigned long long size_unit(const char *suf)
{
        static const char units[] = "KMGTP";
        if (!*suf)
                return 1;
        const char *u = strchr(units, *suf & ~0x20);
        if (!u || !*u)
                return 0;
        unsigned long long mul = 1ULL << (10 * (u - units + 1));
        suf++;
        if ((*suf & ~0x20) == 'I')
                suf++;
        if ((*suf & ~0x20) == 'B')
                suf++;
        return *suf ? 0 : mul;
}

/* A decimal number times what its suffix says (@unit: 0 for a bad suffix). */
static int parse_scaled(const char *s, unsigned long long (*unit)(const char *),
                        unsigned long long *ret)
{
        char num[32];
        size_t n = strspn(s, "0123456789");
        if (n == 0 || n >= sizeof num)
                return -EINVAL;
        memcpy(num, s, n);
        num[n] = '\0';
        unsigned long long v, mul = unit(s + n);
        int r = vs_parse_u64(num, &v);
        if (r < 0)
                return r;
        if (!mul)
                return -EINVAL;
        if (v > ~0ULL / mul)
                return -ERANGE;
        *ret = v * mul;
        return 0;
}

int vs_parse_count(const char *s, unsigned long long *ret)
{
        return parse_scaled(s, count_unit, ret);
}

int vs_parse_size(const char *s, unsigned long long *ret)
{
        return parse_scaled(s, size_unit, ret);
}

/* "1.5" -> 1500 (thousandths); at most three decimals. */
int vs_parse_milli(const char *v, unsigned long long *ret)
{
        unsigned long long whole = 0, frac = 0;
        int digits = 0;
        const char *p = v;
        if (!(*p >= '0' && *p <= '9'))
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                whole = whole * 10 + (unsigned)(*p - '0');
                if (whole > 1000000)
                        return -ERANGE;
        }
        if (*p == '.') {
                p++;
                if (!(*p >= '0' && *p <= '9'))
                        return -EINVAL;
                for (; *p >= '0' && *p <= '9'; p++) {
                        if (++digits > 3)
                                return -EINVAL;
                        frac = frac * 10 + (unsigned)(*p - '0');
                }
        }
        if (*p)
                return -EINVAL;
        while (digits++ < 3)
                frac *= 10;
        *ret = whole * 1000 + frac;
        return 0;
}

/* "500ms", "1s", "250us", or a bare number of ticks (ms). */
int vs_parse_duration_us(const char *v, uint64_t *ret)
{
        char num[32];
        size_t n = strspn(v, "0123456789");
        unsigned long long x, mul;
        if (n == 0 || n >= sizeof num)
                return -EINVAL;
        memcpy(num, v, n);
        num[n] = '\0';
        if (vs_parse_u64(num, &x) < 0)
                return -EINVAL;
        const char *u = v + n;
        if (!*u || streq(u, "ms"))
                mul = 1000ULL;
        else if (streq(u, "s"))
                mul = 1000 * 1000ULL;
        else if (streq(u, "us"))
                mul = 1;
        else
                return -EINVAL;
        if (x > 3600ULL * 1000 * 1000ULL / mul)
                return -ERANGE;
        *ret = x * mul;
        return 0;
}

/* A cpuset list as the kernel takes it: "0-3,6,8-9". */
bool vs_cpulist_valid(const char *v)
{
        if (!*v || strlen(v) >= 200)
                return false;
        const char *p = v;
        while (*p) {
                unsigned long a, b;
                char *end;
                if (!(*p >= '0' && *p <= '9'))
                        return false;
                a = strtoul(p, &end, 10);
                p = end;
                if (*p == '-') {
                        p++;
                        if (!(*p >= '0' && *p <= '9'))
                                return false;
                        b = strtoul(p, &end, 10);
                        p = end;
                        if (b < a)
                                return false;
                }
                if (a > 8191)
                        return false;
                if (*p == ',')
                        p++;
                else if (*p)
                        return false;
        }
        return p[-1] != ',';
}

/*
 * Mark the members of the list @v in @set (up to @n); false if one is @n or
 * more, or @v is no list (what the kernel wrote is one, but a view server
 * reading for every guest takes no text on trust: a bad one once made this
 * loop for ever).
 */
bool vs_cpulist_fill(const char *v, bool *set, unsigned n)
{
        const char *p = v;
        while (*p) {
                char *end;
                if (!(*p >= '0' && *p <= '9'))
                        return false;
                unsigned long a = strtoul(p, &end, 10), b = a;
                p = end;
                if (*p == '-') {
                        if (!(p[1] >= '0' && p[1] <= '9'))
                                return false;
                        b = strtoul(p + 1, &end, 10);
                        p = end;
                }
                for (unsigned long c = a; c <= b; c++) {
                        if (c >= n)
                                return false;
                        set[c] = true;
                }
                if (*p == ',')
                        p++;
                else if (*p)
                        return false;
        }
        return true;
}

static const struct {
        const char *name;
        int sig;
} signals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"PWR", SIGPWR},
};

int vs_signal_from_name(const char *s)
{
        unsigned long long n;
        if (strncasecmp(s, "SIG", 3) == 0)
                s += 3;
        if (vs_parse_u64(s, &n) == 0)
                return n >= 1 && n < (unsigned long long)NSIG ? (int)n : -EINVAL;
        for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
                if (strcasecmp(s, signals[i].name) == 0)
                        return signals[i].sig;
        if (strncasecmp(s, "RTMIN", 5) == 0) {
                if (s[5] == '\0')
                        return SIGRTMIN;
                if (s[5] == '+' && vs_parse_u64(s + 6, &n) == 0 &&
                    n <= (unsigned long long)(SIGRTMAX - SIGRTMIN))
                        return SIGRTMIN + (int)n;
        }
        return -EINVAL;
}

const char *vs_signal_name(int sig, char *buf, size_t size)
{
        for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
                if (signals[i].sig == sig) {
                        snprintf(buf, size, "SIG%s", signals[i].name);
                        return buf;
                }
        if (sig >= SIGRTMIN && sig <= SIGRTMAX)
                snprintf(buf, size, "SIGRTMIN+%d", sig - SIGRTMIN);
        else
                snprintf(buf, size, "%d", sig);
        return buf;
}
