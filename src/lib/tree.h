/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "error.h"

/*
 * Whole directory trees: copy one with everything a guest's files carry
 * (owner, mode, times, xattrs such as file capabilities, hard links,
 * devices), extract a tarball, remove one.  Nothing follows a symlink, and
 * nothing crosses into another filesystem mounted below.
 */

/*
 * Copy @src to the new directory @dst (which must not exist, or be empty:
 * a disk image's root).  Reflinks where it can.
 */
int vs_tree_copy(const char *src, const char *dst, VsError *err);
/* The same between two open directories (O_RDONLY): what is in @src into @dst. */
int vs_tree_copy_fd(int src, int dst, VsError *err);
/* Extract a tarball (any compression libarchive knows) into the existing directory @dst. */
int vs_tree_extract(const char *tarball, const char *dst, VsError *err);
/* rm -rf that stays on @path's filesystem and clears immutable/append-only flags. */
int vs_tree_remove(const char *path, VsError *err);
/* Set by a signal handler: long walks stop and report EINTR. */
extern volatile int vs_tree_interrupted;
