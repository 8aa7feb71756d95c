/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "pattern.h"

#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static const char *const default_excludes[] = {"/etc", "/var",  "/home",      "/root",
                                               "/tmp", "/run",  "/dev",       "/proc",
                                               "/sys", "/boot", "/lost+found"};

/* ---- exclude patterns ---------------------------------------------------------------- */

int vs_pattern_check(const char *p, char *why, size_t size)
{
        if (*p == '+' || *p == '-')
                p++;
        if (*p != '/') {
                snprintf(why, size,
                         "\"%s\" is not a guest path (say /usr/share/doc or +/var/lib/x)", p);
                return -EINVAL;
        }
        for (const char *s = p; *s; s++) {
                if ((unsigned char)*s < 0x20 || *s == 0x7f) {
                        snprintf(why, size, "a pattern has no control characters");
                        return -EINVAL;
                }
                if (s[0] == '/' && s[1] == '.' && s[2] == '.' && (s[3] == '/' || !s[3])) {
                        snprintf(why, size, "\"%s\": no .. in a pattern", p);
                        return -EINVAL;
                }
        }
        return 0;
}

/* +1 include, -1 exclude, 0 no pattern says */
int vs_pattern_classify(const char *path, const char *const *pats, int n)
{
        for (int i = 0; i < n; i++) {
                const char *p = pats[i];
                int verdict = -1;
                if (*p == '+' || *p == '-')
                        verdict = *p++ == '+' ? 1 : -1;
                if (fnmatch(p, path, FNM_PATHNAME | FNM_PERIOD) == 0)
                        return verdict;
        }
        for (size_t i = 0; i < ARRAY_SIZE(default_excludes); i++)
                if (streq(default_excludes[i], path))
                        return -1;
        return 0;
}

/* could an include pattern match below the directory @dir? */
bool vs_pattern_include_below(const char *dir, const char *const *pats, int n)
{
        size_t len = strlen(dir);
        for (int i = 0; i < n; i++) {
                const char *p = pats[i];
                if (*p != '+')
                        continue;
                p++;
                size_t lit = strcspn(p, "*?[");
                if (lit > len ? strncmp(p, dir, len) == 0 && p[len] == '/'
                              : strncmp(p, dir, lit) == 0)
                        return true;
        }
        return false;
}

bool vs_pattern_excluded(const char *path, bool is_dir, const char *const *pats, int n)
{
        char buf[PATH_MAX];
        int state = 0;
        (void)is_dir;
        snprintf(buf, sizeof buf, "%s", path);
        for (char *s = buf + 1;; s++) {
                if (*s == '/' || !*s) {
                        char c = *s;
                        *s = '\0';
                        int v = vs_pattern_classify(buf, pats, n);
                        if (v)
                                state = v;
                        *s = c;
                        if (!c)
                                break;
                }
        }
        return state < 0;
}
