/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

/*
 * Host id ranges for guests with a user namespace of their own: guest ids
 * 0 .. count-1 are host ids start .. start+count-1, for uids and gids alike.
 *
 * One record per installation, etc/vserver/subid, in /etc/subuid's format
 * ("NAME:START:COUNT", one guest a line), written atomically under a lock.
 * A range is allocated from the host's pool (host setting userns-ids) the
 * first time a guest needs one, kept across restarts, and never overlaps
 * another guest's (of this installation or any other the host knows: see
 * vs_idmap_register) or any range in /etc/subuid or /etc/subgid.  A deleted
 * guest's range is freed, unless files it owns may remain (the guest wrote
 * through a bind mount of a host directory): then it stays in the record as
 * "NAME~deleted" and is not handed out again.
 */
#define VS_IDMAP_COUNT 65536U

typedef struct VsIdRange {
        unsigned start;
        unsigned count; /* 0: none (the host's user namespace) */
} VsIdRange;

/* The default pool: 0x40000000 up to 0x6fffffff, clear of the ids people and packages use. */
#define VS_IDMAP_POOL_FIRST 0x40000000U
#define VS_IDMAP_POOL_LAST  0x6fffffffU

/* "FIRST-LAST" -> a pool; -EINVAL if not two numbers with room for one range. */
int vs_idmap_parse_pool(const char *s, unsigned *ret_first, unsigned *ret_last);
/*
 * The record's name for a range `vserver run --userns` holds while it runs:
 * "@run-PID" ('@' is in no guest's name).  A run that was killed leaves it
 * (its context's processes may live on with those ids): delete the line by
 * hand once they are gone.
 */
#define VS_IDMAP_RUN_PREFIX "@run-"

/* @name's range in the record at @path: 1 found, 0 not, -errno. */
int vs_idmap_lookup(const char *path, const char *name, VsIdRange *ret, VsError *err);
/*
 * @name's range, allocated (the lowest free aligned block of the pool) if it
 * has none.  Fails with one line naming the pool and the fix when full.
 */
int vs_idmap_allocate(const char *path, const char *name, unsigned first, unsigned last,
                      VsIdRange *ret, VsError *err);
/* Note the record @path among the host's (VS_HOST_RUN/subid.d): others' allocations avoid it. */
void vs_idmap_register(const char *path);
/* Give @name's range back; with @retire, keep it out of use as "NAME~deleted". */
int vs_idmap_release(const char *path, const char *name, bool retire, VsError *err);
/* Is [start, start+count) clear of every entry of the subuid-style file @path? */
bool vs_idmap_clear_of(const char *path, unsigned start, unsigned count);
/* Write @pid's uid_map and gid_map: "0 START COUNT". */
int vs_idmap_write(pid_t pid, VsIdRange range, VsError *err);
