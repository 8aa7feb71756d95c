/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

/*
 * A minimal cgroup helper: one cgroup per context in every mounted
 * hierarchy (the cgroup2 tree and, on v1 or hybrid hosts, each v1
 * hierarchy), so the kernel can tell us what belongs to a context, and kill
 * it all.  The full manager with limits builds on this.
 *
 * The parent is "/abs/path" (from each hierarchy's root) or "rel/path",
 * taken from the caller's own cgroup in each hierarchy: that is how tests
 * keep everything they start inside the runner's own accounting.
 */
#define VS_CGROUP_MAX_DIRS 16

typedef struct VsCgroup {
        int n;
        struct {
                char *path; /* absolute path of the context's directory */
                bool v2;
                bool created;
        } dirs[VS_CGROUP_MAX_DIRS];
        int v2fd; /* O_PATH|O_DIRECTORY fd of the cgroup2 directory, or -EBADF */
} VsCgroup;

#define VS_CGROUP_INIT                                                                             \
        {                                                                                          \
                .n = 0, .v2fd = -EBADF                                                             \
        }

/* "a/b-c.d": letters, digits, '.', '_', '-', '/' separators, no "." or ".." parts. */
bool vs_cgroup_path_valid(const char *path);
/* Create the context's cgroup @name under @parent in every hierarchy; fails if it exists. */
int vs_cgroup_create(VsCgroup *cg, const char *parent, const char *name, VsError *err);
/* Fill @cg with the existing directories of @parent/@name (no creation); -ENOENT if none. */
int vs_cgroup_open(VsCgroup *cg, const char *parent, const char *name, VsError *err);
/* Move @pid into the v1 hierarchies (v2 placement happens in clone3). */
int vs_cgroup_attach_v1(const VsCgroup *cg, pid_t pid, VsError *err);
/* Move @pid into every hierarchy, the cgroup2 one included. */
int vs_cgroup_attach(const VsCgroup *cg, pid_t pid, VsError *err);
/* Is any process left in the context's cgroup? */
bool vs_cgroup_populated(const VsCgroup *cg);
/* SIGKILL everything in the cgroup (cgroup.kill where the kernel has it). */
int vs_cgroup_kill(const VsCgroup *cg, VsError *err);
/* Kill what is left, wait for it to go, remove the directories. */
int vs_cgroup_destroy(VsCgroup *cg, VsError *err);
/* Free memory and fds without touching the kernel objects. */
void vs_cgroup_release(VsCgroup *cg);
