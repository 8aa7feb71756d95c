/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "cgroup.h"
#include "error.h"
#include "paths.h"
#include "views.h"

/*
 * The view server: ONE host process that serves every guest's /proc views
 * (views.h) from a FUSE mount, VS_VIEWS_MNT/CTXID/NAME; a guest's files are
 * bound from its directory over its own.  It knows the guests from the
 * records `vserver start` leaves in VS_VIEWS_REG/CTXID.  It
 * is started on demand, exits when no guest has needed it for a minute, and
 * a new one puts the views back into the running guests (views_host.c).
 */
#define VS_VIEWS_MNT  VS_HOST_RUN "/views"
#define VS_VIEWS_REG  VS_HOST_RUN "/views.d"
#define VS_VIEWS_LOCK VS_HOST_RUN "/views.lock" /* held by the server while it serves */
#define VS_VIEWS_GATE VS_HOST_RUN "/views.gate" /* shared by starts; the server's exit takes it */
#define VS_VIEWS_LOG  VS_HOST_RUN "/views.log"
#define VS_VIEWS_SOCK VS_HOST_RUN "/views.sock" /* where listeners are handed over */
/* there while the running guests have their views: gone from a worker's start to its reattach */
#define VS_VIEWS_READY  VS_HOST_RUN "/views.ready"
#define VS_VIEWS_IDLE_S 60
/* the command line's hidden verb that runs vs_viewd_run() */
#define VS_VIEWD_VERB "views-serve"

/* Serve until idle or told to stop (SIGTERM); 0, or -errno (another one serves: -EBUSY). */
int vs_viewd_run(VsError *err);

/* ---- the host side (views_host.c) ----------------------------------------------------- */

/* What a guest's record says. */
typedef struct VsViewRecord {
        pid_t init;
        unsigned long long init_start; /* starttime of init, against pid reuse */
        unsigned long long started_ns; /* CLOCK_BOOTTIME at its start */
        unsigned rotate;
        char release[65], version[65], machine[65];
        VsCgroup cg;
} VsViewRecord;

int vs_view_record_parse(const char *text, VsViewRecord *ret, VsError *err);
void vs_view_record_release(VsViewRecord *r);

/*
 * Make sure a server runs (starting one if none does; a new one's views go
 * back into every running guest first).  @gate: the caller's hold on
 * VS_VIEWS_GATE (shared), kept until its guest is recorded; close it then.
 */
int vs_views_ensure(int *gate, VsError *err);
/*
 * Detached clones of the view files the guest of context @ctxid binds
 * (-EBADF for the uname ones without @uname): VS_VIEWS_MNT/CTXID/NAME.
 */
int vs_views_open(unsigned ctxid, bool uname, int fds[VS_VIEW_N], VsError *err);
/* Record a started guest (context id @ctxid) for the server. */
typedef struct VsViewUname {
        const char *release, *version, *machine; /* "": the host's */
} VsViewUname;
int vs_views_register(unsigned ctxid, const VsCgroup *cg, pid_t init, const VsViewUname *uname,
                      VsError *err);
/* Hand the server a guest process's uname/sysinfo listener (VsContext.notify). */
int vs_views_give(unsigned ctxid, int listener, VsError *err);
/* Its record goes (stop, delete); a missing one is fine. */
void vs_views_unregister(unsigned ctxid);
/* Does a server hold the lock, with its file system on the mount point? */
bool vs_views_serving(void);
/* A new server's views over the dead ones in every running guest; records of the gone go. */
void vs_views_reattach_all(void);
/* Bind a fresh server's views over the dead ones in the running guest @ctxid of @r. */
int vs_views_reattach(unsigned ctxid, const VsViewRecord *r, VsError *err);
