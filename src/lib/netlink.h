/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/*
 * rtnetlink over libmnl, in the caller's network namespace (or the one the
 * socket was opened in): links, addresses, routes.
 */

/* Addresses vserver added carry this IFA_PROTO, so a start can tell ours from the host's. */
#define VS_IFA_PROTO 0x56

typedef struct VsNl VsNl;

/* A socket in the caller's current network namespace. */
VsNl *vs_nl_open(VsError *err);
void vs_nl_close(VsNl *nl);

/* Bring an interface up by index in the caller's network namespace (rtnetlink). */
int vs_netlink_link_up(int ifindex, VsError *err);

int vs_nl_link_up(VsNl *nl, int ifindex, VsError *err);
/* The index of @name, 0 if there is none. */
int vs_nl_link_index(VsNl *nl, const char *name);
/* A bridge named @name (up), created if missing. */
int vs_nl_bridge_ensure(VsNl *nl, const char *name, VsError *err);
/*
 * A veth pair: @host (here, in @master if not NULL, up) and @peer, created
 * directly in the network namespace of process @peer_pid.
 */
int vs_nl_veth_create(VsNl *nl, const char *host, const char *master, const char *peer,
                      pid_t peer_pid, VsError *err);
int vs_nl_link_del(VsNl *nl, const char *name, VsError *err);

/* @addr: 4 or 16 bytes, network order. */
int vs_nl_addr_add(VsNl *nl, int ifindex, int family, const void *addr, unsigned prefix,
                   uint8_t proto, VsError *err);
int vs_nl_addr_del(VsNl *nl, int ifindex, int family, const void *addr, unsigned prefix,
                   VsError *err);
/*
 * Where @addr is configured on this host: its interface index and IFA_PROTO
 * (0 if the kernel did not say).  0 if found, -ENOENT if not.
 */
int vs_nl_addr_find(VsNl *nl, int family, const void *addr, int *ret_ifindex, uint8_t *ret_proto);
typedef struct VsNlRoute {
        unsigned char dst[16];
        unsigned prefix;
        unsigned char gw[16];
        bool has_gw;
        int ifindex;
} VsNlRoute;
/*
 * The main table's route the host uses for the network @dst/@prefix: the
 * most specific unicast route no more specific than it that contains it.
 * 0, or -ENOENT if there is none.
 */
int vs_nl_route_best(VsNl *nl, int family, const void *dst, unsigned prefix, VsNlRoute *ret);
/* A route to @dst/@prefix (prefix 0: the default route) via @gw. */
int vs_nl_route_add(VsNl *nl, int family, const void *dst, unsigned prefix, const void *gw,
                    VsError *err);
