/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Shared between the OCI front's files (oci*.c); not for the command line. */

#include <stdbool.h>

#include "oci.h"
#include "seccomp.h"

struct json_object;
/*
 * linux.seccomp compiled; *ret NULL without one.  *ret_notify: it has
 * SCMP_ACT_NOTIFY rules, so it must be loaded with a listener.
 */
int vs_oci_seccomp_build(struct json_object *sc, VsSeccomp **ret, bool *ret_notify, VsError *err);

#include <sys/types.h>

#include "cgroup.h"
#include "limits.h"

struct VsOciConfig;
/* The go for the child, with the idmapped trees of its idmap mounts (in their order). */
int vs_oci_send_trees(const VsOciConfig *c, const char *bundle, pid_t pid, int sock, VsError *err);
/* linux.resources.devices, and the devices every container gets, into the device cgroup. */
int vs_oci_devices_apply(const VsOciConfig *c, const VsCgroup *cg, VsError *err);
/* The pid in @path, written whole or not at all. */
int vs_oci_write_pid_file(const char *path, pid_t pid, VsError *err);
/* The limits the container runs with now (its directory's "limits"). */
int vs_oci_load_limits(int dfd, VsLimits *l, VsError *err);
/* Run the hooks of kind @k with @state on their stdin; with @stop_on_error the first failure ends
 * it. */
int vs_oci_run_hooks(const VsOciConfig *c, VsOciHookKind k, const char *state, bool stop_on_error,
                     VsError *err);
/* The pty master to the engine's --console-socket. */
int vs_oci_send_console(const char *path, int master, VsError *err);
/* @sig to every process in the container's cgroup. */
int vs_oci_signal_all(const VsCgroup *cg, int sig, VsError *err);
