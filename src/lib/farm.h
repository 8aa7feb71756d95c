/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

#include "error.h"
#include "guest.h"
#include "unify.h"

/*
 * The guests of an installation worked on together: what unify, deunify
 * and delete hold while shared files change hands.  Opening the farm takes
 * the installation's unify lock (one such command at a time), loads and
 * locks every guest and learns its state; the unify options it fills in
 * freeze every running guest around a batch (the names it froze noted in
 * run/vserver/unify.frozen) and mark work that may be half done
 * (unify.pending), so the next farm repairs what a killed one left.
 */

typedef struct VsFarmMember {
        VsGuest g;
        VsGuestState st;
        bool have_state;
        bool froze; /* frozen by us */
        int lock;
        const char *pats[VS_CONFIG_MAX_EXCLUDES + 64];
        char host_pats[1024];
} VsFarmMember;

typedef struct VsFarm {
        const VsHostConfig *host;
        VsFarmMember *m;
        int n;
        char pending[PATH_MAX], frozen_list[PATH_MAX], lockpath[PATH_MAX];
        char store[PATH_MAX]; /* copy-on-write unification's (cow.h) */
        int unify_lock;
        const char *cgroup_parent;
        bool whole; /* freezes the guests' common cgroup parent; no guest loaded */
} VsFarm;

/*
 * Lock and load every guest but @skip (whose lock the caller holds).  A
 * broken guest file fails it unless @tolerant (delete): that guest is still
 * frozen if it runs.  Close it whatever this returns.
 */
int vs_farm_open(VsFarm *f, const VsPaths *paths, const VsHostConfig *host,
                 const char *cgroup_parent, const char *skip, bool tolerant, VsError *err);
/*
 * For a delete, whatever the number of guests: the unify lock, no guest
 * loaded or locked; its freezing freezes the installation's cgroup parent
 * whole (every guest at once, and one that starts meanwhile is born frozen
 * until the thaw), noted as "*" in unify.frozen.  If an earlier unify ended
 * half way, the same as vs_farm_open (@tolerant), for vs_farm_recover.
 */
int vs_farm_open_whole(VsFarm *f, const VsPaths *paths, const VsHostConfig *host,
                       const char *cgroup_parent, const char *skip, VsError *err);
void vs_farm_close(VsFarm *f);
VsFarmMember *vs_farm_find(VsFarm *f, const char *name);
bool vs_farm_any_running(const VsFarm *f);
/* @m as unify sees it: its tree, its patterns and the host's, whether it may be linked. */
void vs_farm_tree(VsFarm *f, VsFarmMember *m, VsUnifyTree *t);
/* The freezing and the pending note, into @o. */
void vs_farm_options(VsFarm *f, VsUnifyOptions *o);
/*
 * The unify lock shared, in @ret_fd: held by a clone while it copies a guest
 * (no unify, gc, deunify or delete may change its tree or the store files
 * its stubs name meanwhile).  EBUSY at once if one is at work.
 */
int vs_farm_share_lock(const VsPaths *paths, int *ret_fd, VsError *err);
/* Did an earlier unify end half way (so vs_farm_recover must run first)? */
bool vs_farm_interrupted(const VsFarm *f);
/* Repair what it left: every shared inode protected again, its guests thawed. */
int vs_farm_recover(VsFarm *f, VsError *err);
