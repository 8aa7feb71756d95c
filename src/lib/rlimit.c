/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "rlimit.h"

#include <errno.h>
#include <stdio.h>
#include <strings.h>

#include "util.h"

static const struct {
        const char *name;
        int resource;
        bool size;
} table[] = {
    {"AS", RLIMIT_AS, true},
    {"CORE", RLIMIT_CORE, true},
    {"CPU", RLIMIT_CPU, false},
    {"DATA", RLIMIT_DATA, true},
    {"FSIZE", RLIMIT_FSIZE, true},
    {"LOCKS", RLIMIT_LOCKS, false},
    {"MEMLOCK", RLIMIT_MEMLOCK, true},
    {"MSGQUEUE", RLIMIT_MSGQUEUE, true},
    {"NICE", RLIMIT_NICE, false},
    {"NOFILE", RLIMIT_NOFILE, false},
    {"NPROC", RLIMIT_NPROC, false},
    {"RSS", RLIMIT_RSS, true},
    {"RTPRIO", RLIMIT_RTPRIO, false},
    {"RTTIME", RLIMIT_RTTIME, false},
    {"SIGPENDING", RLIMIT_SIGPENDING, false},
    {"STACK", RLIMIT_STACK, true},
};

static int lookup(const char *name)
{
        if (strncasecmp(name, "RLIMIT_", 7) == 0)
                name += 7;
        for (size_t i = 0; i < ARRAY_SIZE(table); i++)
                if (strcasecmp(name, table[i].name) == 0)
                        return (int)i;
        return -1;
}

int vs_rlimit_from_name(const char *name)
{
        int i = lookup(name);
        return i < 0 ? -EINVAL : table[i].resource;
}

const char *vs_rlimit_name(int resource)
{
        for (size_t i = 0; i < ARRAY_SIZE(table); i++)
                if (table[i].resource == resource)
                        return table[i].name;
        return NULL;
}

static int parse_value(const char *s, bool size, rlim_t *ret)
{
        unsigned long long v;
        if (strcasecmp(s, "unlimited") == 0 || strcasecmp(s, "inf") == 0) {
                *ret = RLIM_INFINITY;
                return 0;
        }
        int r = size ? vs_parse_size(s, &v) : vs_parse_u64(s, &v);
        if (r < 0)
                return r;
        if (v >= RLIM_INFINITY)
                return -ERANGE;
        *ret = (rlim_t)v;
        return 0;
}

int vs_rlimit_parse(const char *spec, VsRlimit *ret, VsError *err)
{
        char buf[128];
        if (snprintf(buf, sizeof buf, "%s", spec) >= (int)sizeof buf)
                return vs_error_input(err, "rlimit \"%.40s...\" is too long", spec);
        char *eq = strchr(buf, '=');
        if (!eq)
                return vs_error_input(err,
                                      "rlimit \"%s\": say NAME=SOFT[:HARD], e.g. "
                                      "nofile=1024:4096",
                                      spec);
        *eq = '\0';
        int i = lookup(buf);
        if (i < 0)
                return vs_error_input(err,
                                      "rlimit \"%s\": unknown resource (one of as, core, "
                                      "cpu, data, fsize, locks, memlock, msgqueue, nice, "
                                      "nofile, nproc, rss, rtprio, rttime, sigpending, stack)",
                                      buf);
        char *soft = eq + 1, *hard = strchr(soft, ':');
        if (hard)
                *hard++ = '\0';
        rlim_t s, h;
        if (parse_value(soft, table[i].size, &s) < 0 ||
            parse_value(hard ? hard : soft, table[i].size, &h) < 0)
                return vs_error_input(err, "rlimit %s: \"%s\" is not a %s or \"unlimited\"",
                                      table[i].name, eq + 1,
                                      table[i].size ? "size (say 4096, 64M or 2G)" : "number");
        if (s > h)
                return vs_error_input(err, "rlimit %s: the soft limit is above the hard limit",
                                      table[i].name);
        ret->resource = table[i].resource;
        ret->limit.rlim_cur = s;
        ret->limit.rlim_max = h;
        return 0;
}

const char *vs_rlimit_format(rlim_t v, char *buf, size_t size)
{
        if (v == RLIM_INFINITY)
                snprintf(buf, size, "unlimited");
        else
                snprintf(buf, size, "%llu", (unsigned long long)v);
        return buf;
}
