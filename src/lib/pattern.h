/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * What unify leaves out: patterns "[+|-]/glob" over guest paths (fnmatch,
 * FNM_PATHNAME | FNM_PERIOD), in order, the first that matches decides
 * ("-" or none: out, "+": in); then the defaults (/etc, /var, /home, ...).
 */

/* Check one pattern; 0, or -EINVAL with @why. */
int vs_pattern_check(const char *pattern, char *why, size_t size);
/* +1 include, -1 exclude, 0: no pattern says. */
int vs_pattern_classify(const char *path, const char *const *pats, int n);
/* Does a "+" pattern reach below directory @dir (so the walk must go in)? */
bool vs_pattern_include_below(const char *dir, const char *const *pats, int n);
/* Does the guest path @path (absolute) stay out, by these patterns and the defaults? */
bool vs_pattern_excluded(const char *path, bool is_dir, const char *const *pats, int n);
