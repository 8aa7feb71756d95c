/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "error.h"

/*
 * A guest's network (the [net] section).
 *
 *   isolate  the host's stack, shared; cgroup-BPF keeps the guest to its
 *            addresses (src/bpf/isolate.bpf.c), which start adds to host
 *            interfaces and stop removes
 *   netns    a network namespace of its own, a veth pair whose host end is
 *            in the host settings' bridge, addresses, routes and gateways
 *   none     a network namespace with loopback only
 *   host     the host's stack, unrestricted
 */

#define VS_NET_MAX_ADDRS  16
#define VS_NET_MAX_ROUTES 16

typedef struct VsNetAddr {
        int family; /* AF_INET or AF_INET6 */
        unsigned char addr[16];
        unsigned prefix;
        char dev[IFNAMSIZ]; /* "" = the host settings' net-device */
} VsNetAddr;

typedef struct VsNetRoute {
        int family;
        unsigned char dst[16];
        unsigned prefix; /* 0 with dst all zero: the default route */
        unsigned char gw[16];
} VsNetRoute;

typedef struct VsNetConfig {
        VsNetAddr addrs[VS_NET_MAX_ADDRS];
        int n_addrs;
        VsNetRoute routes[VS_NET_MAX_ROUTES]; /* gateways are default routes */
        int n_routes;
        /* outbound traffic leaves with the host's address (masquerade); netns: and is forwarded */
        bool nat;
        bool nat_set; /* the guest file says (else netns takes the host's bridge-nat) */
} VsNetConfig;

/* "192.0.2.10/24@eth0", "2001:db8::10/64", "10.0.0.2" (a host address: /32, /128). */
int vs_net_addr_parse(const char *s, VsNetAddr *ret, char *why, size_t why_size);
/*
 * A private address, not routed on the internet (10/8, 172.16/12,
 * 192.168/16, 100.64/10, 198.18/15, fc00::/7): what a guest sends from it
 * beyond this host gets no answer without NAT.
 */
bool vs_net_addr_private(const VsNetAddr *a);
/* "IP/PREFIX[@DEV]" */
const char *vs_net_addr_format(const VsNetAddr *a, char *buf, size_t size);
/* "IP" (a gateway: the default route of its family) or "PREFIX via IP". */
int vs_net_route_parse(const char *s, VsNetRoute *ret, char *why, size_t why_size);
const char *vs_net_route_format(const VsNetRoute *r, char *buf, size_t size);
/* Is @a's address in @net's network (its address and prefix)? */
bool vs_net_addr_in(const VsNetAddr *a, const VsNetAddr *net);
/* Same address, whatever the prefix and device. */
bool vs_net_addr_same(const VsNetAddr *a, const VsNetAddr *b);
/* The guest's own loopback address for context @ctx, 127.1.X.Y (network order). */
uint32_t vs_net_lback(unsigned ctx);

/* What a start needs for the guest's network. */
typedef struct VsNetSpec {
        int mode; /* VsNetMode */
        unsigned ctx;
        const VsNetConfig *cfg;
        const char *device;            /* host settings: where isolate addresses go */
        const char *bridge;            /* host settings: the netns mode's bridge */
        const VsNetAddr *bridge_addrs; /* host settings: the bridge's own addresses */
        int n_bridge_addrs;
        const char *bpf_dir;    /* RUN/bpf: the shared BPF objects of this installation */
        const char *unix_guard; /* host settings: cgroup2 dir ("/x") of the unix guard */
        /*
         * isolate, a guest in a user namespace of its own with NET_BIND_SERVICE
         * there: its own addresses' ports below 1024 too (the host's network
         * namespace would ask for the capability over the host).
         */
        bool low_ports;
} VsNetSpec;

/*
 * isolate: are the addresses fit for this host?  Each names an interface
 * that exists (@default_dev where it names none), and one on the loopback
 * device is a single host (/32, /128): a wider prefix there makes the host
 * answer the whole network itself, and cuts it off from that network.
 * One line naming the address and the fix.
 */
int vs_net_isolate_check(const VsNetConfig *cfg, const char *default_dev, VsError *err);
/*
 * isolate, before the addresses go on: which host routes an address with a
 * network (a prefix shorter than a host's) takes destinations from.  Its
 * network becomes reachable on its interface only, so a host that reached
 * part of it through a gateway or another interface no longer does.  One
 * line each in @buf; the number of lines.
 */
int vs_net_shadow_notes(const VsNetConfig *cfg, const char *default_dev, char *buf, size_t size);
/*
 * isolate: check the addresses (not the host's own, not another guest's),
 * add them to their interfaces, load and attach the programs to cgroup @cg.
 * On failure nothing is left.
 */
int vs_net_isolate_start(const VsNetSpec *s, const VsCgroup *cg, VsError *err);
/* Undo it at stop: the guest's map entries and its addresses (ours, unused by others). */
int vs_net_isolate_stop(const VsNetSpec *s, VsError *err);
/*
 * netns: the bridge (made with its addresses if missing), the veth pair into
 * the network namespace of @pid, its addresses and routes, and NAT if the
 * guest has it.
 */
int vs_net_netns_setup(const VsNetSpec *s, pid_t pid, int pidfd, VsError *err);

/* netns: delete the host end of the veth at once (the kernel frees a dead
 * namespace, and the pair with it, later and asynchronously), and the NAT. */
int vs_net_netns_stop(const VsNetSpec *s, VsError *err);

/*
 * Outbound NAT ([net] nat = yes), through libnftables: the tables "ip
 * vserver" and "ip6 vserver" (shared by every installation on the host),
 * each a set of guest addresses ("nat"), a set of interfaces whose traffic
 * stays on this host ("inside": lo and netns bridges), and one rule:
 * masquerade what such an address sends out of any other interface.
 *
 * @bridge (a netns guest, NULL for isolate): its traffic is forwarded too.
 * A forward chain lets the guests' traffic and its replies through; where
 * IPv4 forwarding was off, add turns it on for them and drops everything
 * else it would forward (the host forwards nothing more than before), and
 * the last guest's del turns it off again.  IPv6 forwarding is left as the
 * host has it (turning it on changes how the host takes router
 * advertisements): vs_net_forwarding() says whether it is on.
 *
 * Add puts @cfg's addresses in the sets (making the tables if needed);
 * del takes them out, and the tables go with the last address.
 */
int vs_nat_add(const VsNetConfig *cfg, const char *bridge, VsError *err);
int vs_nat_del(const VsNetConfig *cfg, VsError *err);
/* Does this network namespace forward @family (AF_INET, AF_INET6)? */
bool vs_net_forwarding(int family);

/*
 * Bytes and packets in and out of an isolate guest; -ENOENT if it has no
 * counters.  @cgdir, its cgroup2 directory, finds it in one lookup (NULL, or
 * a cgroup the table does not know: a pass over the table).
 */
typedef struct VsTraffic {
        uint64_t rx_bytes, rx_packets, tx_bytes, tx_packets;
} VsTraffic;
int vs_net_traffic(const char *bpf_dir, unsigned ctx, const char *cgdir, VsTraffic *ret);
/*
 * The unix bind recorder the isolate programs use on this host since it
 * booted ("fentry", "kprobe", "syscall tracepoint"), NULL before the
 * first isolate start; *@ret_per_syscall: the one that runs for every
 * system call of the host while they are attached.
 */
const char *vs_net_unix_recorder(bool *ret_per_syscall);
