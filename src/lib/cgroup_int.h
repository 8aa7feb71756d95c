/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cgroup.h"

/*
 * What differs between a cgroup v1 hierarchy and the cgroup2 tree, behind
 * one small interface (cgroup_v1.c, cgroup_v2.c); cgroup.c holds what is
 * the same and picks the backend per hierarchy, so a hybrid host uses both
 * at once.  Nothing outside these files knows the version.
 */
/*
 * A cgroup directory named from a directory already open (the parent
 * vs_cgroup_lookups_below opened, else AT_FDCWD): reading one of its files
 * opens just the file.  `vserver list` reads a file or two of each of six
 * hierarchies a guest; an fd of the directory itself was an open and a close
 * more each.
 */
typedef struct VsCgDir {
        int at;
        const char *rel; /* never "": the cgroup's own path below @at */
} VsCgDir;

VsCgDir vs_cg_dir(const char *path);
/* @file of @d, as a path from d.at, in @buf (PATH_MAX bytes) */
const char *vs_cg_file(VsCgDir d, const char *file, char *buf);

typedef struct VsCgBackend {
        const char *name; /* "v1", "v2" */
        int rank;         /* where a controller is in both, the lower rank's copy counts */
        /*
         * PARENT/NAME (@dir) was made; @base: where the caller's own cgroup ends in @dir;
         * @delegate: a guest may make cgroups below it (vs_cgroup_create)
         */
        void (*made)(const char *dir, int base, const char *ctrls, bool delegate);
        /* a directory made on the way to it, or its leaf */
        void (*made_below)(const char *dir, const char *ctrls);
        /* does this hierarchy's @dir hold controller @ctrl ("memory", "io", "freezer")? */
        bool (*has_controller)(const char *dir, const char *ctrls, const char *ctrl);
        /* anything left in @dir's whole subtree? */
        bool (*populated)(const char *dir);
        /* SIGKILL the whole subtree of @dfd in one write: 0, or -ENOENT if the kernel has none */
        int (*kill)(int dfd);
        /* freeze (or thaw) @dfd; has every task stopped; is it frozen (@exact: or from above) */
        int (*freeze)(int dfd, bool on);
        bool (*stopped)(int dfd);
        bool (*frozen)(VsCgDir d, bool exact);
        /* a guest may freeze its own root itself: thaw that too */
        bool guest_freezes;
        /* may a guest (root of its user namespace) write to this hierarchy? */
        bool (*delegable)(const char *ctrls);
        /* the files a delegated leaf hands over */
        const char *const *delegate_files;
        /* what controller @ctrl of the cgroup @d (@dir) has used, into @u (@buf: VS_CG_BIGFILE) */
        void (*usage)(VsCgDir d, const char *dir, const char *ctrl, bool brief, VsCgUsage *u,
                      char *buf);
        /* the limits that are one value in one file: guest-file key, file, what lifts it */
        const struct VsCgLimitFile {
                const char *key, *file, *lift;
        } * limit_files;
        /* the limits each version computes its own way (see cgroup.h) */
        int (*plan_swap)(VsCgPlan *p, uint64_t memory, uint64_t swap, bool all);
        int (*plan_cpu)(VsCgPlan *p, const VsCgCpu *cpu, bool all);
        int (*plan_io)(VsCgPlan *p, const VsCgIo *io);
        /* what controller @ctrl of the cgroup @dfd (@dir) shows a guest's /proc, into @v */
        void (*view)(int dfd, const char *dir, const char *ctrl, VsCgView *v, char *buf);
        /* write controller @ctrl's settings into the context's @dir */
        int (*write_limits)(const char *dir, const char *ctrl, const VsCgSetting *set, int n,
                            VsError *err);
} VsCgBackend;

#define VS_CG_BIGFILE 65536

extern const VsCgBackend vs_cg_v1, vs_cg_v2;

/* Does the comma list @opts hold every controller of the comma list @ctrls? */
bool vs_cg_has_all(const char *opts, const char *ctrls);
/* Is @word one of the space-separated words of @list? */
bool vs_cg_has_word(const char *list, const char *word);
/* open(@path, @flags), looked up from below PARENT where vs_cgroup_lookups_below opened it. */
int vs_cg_open(const char *path, int flags);
/* A file holding one number. */
bool vs_cg_read_u64(int dfd, const char *file, uint64_t *ret);
/* @key of a "key value" text, divided by @div, into @dst if it is there. */
void vs_cg_kv_into(const char *text, const char *key, uint64_t *dst, uint64_t div);
/*
 * Has the cgroup directory @rel of @at ("": @at itself, any fd of it, O_PATH
 * too) no sub-cgroups?  A kernfs directory's link count is two and its
 * subdirectories; a file system that does not count them says 1, and this
 * says no.
 */
bool vs_cg_childless(int at, const char *rel);
/* Any pid listed anywhere below @dir (the walk v1 needs where v2 has cgroup.events). */
bool vs_cg_any_listed(const char *dir);
/* Write settings into @dirfd (@where: its path, for errors), retrying the ones another refused. */
int vs_cg_write_all(int dirfd, const VsCgSetting *set, int n, const char *where, VsError *err);
int vs_cg_write_one(int dirfd, const VsCgSetting *s, const char *where, VsError *err);
/* The "MAJ:MIN ..." line's device in @v, added if new (NULL when the table is full). */
int vs_cg_view_dev(VsCgView *v, unsigned maj, unsigned min);
/* Read the first line of @file into @buf without its newline; false if missing. */
bool vs_cg_read_line(int dfd, const char *file, char *buf, size_t size);
/* A memory.stat key and where its value goes in a VsCgView. */
typedef struct VsCgStatKey {
        const char *key;
        size_t off;
} VsCgStatKey;
/* Each key of @keys found in the "key value" text @buf, into @v. */
void vs_cg_view_stat(const char *buf, const VsCgStatKey *keys, size_t n, VsCgView *v);
