/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <sys/types.h>

#include "error.h"
#include "guest.h"
#include "idmap.h"

/*
 * Context ids.  A build reserves one (vs_guest_reserve_context, guest.h)
 * until its guest file is written; a start notes who runs with it in
 * VS_HOST_RUN/context.ID, host-wide, since a context's loopback address
 * and veth name are the host's: another installation's guest neither
 * builds with nor starts on it while that note's PID 1 lives.
 */

/*
 * Before a start: an input error if another guest (of any installation)
 * runs with @g's id, one of its addresses (VS_HOST_RUN/address.IP) or the
 * host ids of @ids (VS_HOST_RUN/ids.START: two guests whose ranges are alike
 * would own each other's files and processes); else they are noted as @g's,
 * held by the calling process until vs_ctxid_note_running (or given back
 * by vs_ctxid_forget_running).  Checks and notes under one host-wide lock.
 */
int vs_ctxid_claim_start(const VsGuest *g, const VsIdRange *ids, VsError *err);
/*
 * After a start: @g's PID 1 is @pid (as the host sees it), which now holds
 * what vs_ctxid_claim_start noted.
 */
void vs_ctxid_note_running(const VsGuest *g, pid_t pid);
/* After a stop: the notes go, if they are still @g's. */
void vs_ctxid_forget_running(const VsGuest *g);
/* Does a context run with @ctx now (its note's PID 1 alive, not a zombie)? */
bool vs_ctxid_live(unsigned ctx);
/*
 * @g's PID 1 as its start noted it (its start time in ticks into
 * *@ret_start); 0 if there is no such note.  Not checked against the
 * process: the caller does (vserver list: it is in the guest's cgroup,
 * which no other process of that number can be while the guest runs; a
 * look at /proc/PID/stat was a tenth of list's time).
 */
pid_t vs_ctxid_init(const VsGuest *g, unsigned long long *ret_start);

/*
 * Contexts without a guest file (OCI containers, named "oci:ID" of their
 * state root): claim a free id from @lo to @hi host-wide (its note written
 * with our pid, exclusively), note the container's PID 1 once it exists,
 * release it at delete.
 */
int vs_ctxid_claim(unsigned lo, unsigned hi, const char *name, const char *root, unsigned *ret,
                   VsError *err);
void vs_ctxid_note_pid(unsigned ctx, const char *name, const char *root, pid_t pid);
void vs_ctxid_release(unsigned ctx, const char *name, const char *root);
