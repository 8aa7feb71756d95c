/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Network isolation for a guest that shares the host's network stack
 * (mode = isolate), the way Linux-VServer's nx did it: programs on the
 * guest's cgroup that see each bind, connect, sendmsg and recvmsg, and none
 * that runs per packet, but for the traffic counters.
 *
 * Loaded once per installation (pinned under RUN/bpf), attached to each
 * guest's cgroup at its start; what differs between guests (its context,
 * addresses, loopback) is in the cgroup storage of the cgroup a program runs
 * for (vs_conf), written by the start right after it attaches them:
 *   bind4/6      only the guest's addresses; 0.0.0.0 becomes its first IPv4
 *                address, :: (dual-stack) the same v4-mapped (its first IPv6
 *                address if it has no IPv4), 127.0.0.0/8 its own loopback (lback),
 *                ::1 the same, v4-mapped
 *   connect4/6   127.0.0.0/8, ::1 and 0.0.0.0 mean the guest's loopback (or its
 *                first address, where a wildcard server lives); unbound
 *                sockets leave from a guest address
 *   sendmsg4/6   the same for datagrams; recvmsg4/getpeername4/getsockname4
 *                show lback as 127.0.0.1 again
 *   sock_create  no raw sockets, no ICMP datagram sockets
 *   sockops      a wildcard listener goes into vs_socks, for sk_lookup
 *   connect_unix, sendmsg_unix  abstract names only if this guest bound them
 *   cgroup_skb   bytes and packets in and out
 *
 * The maps all guests of an installation share are in shared.bpf.h; the
 * programs they share in shared.bpf.c.
 */
#include "vmlinux.h"

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "isolate.h"
#include "shared.bpf.h"

#define AF_UNIX        1
#define AF_INET        2
#define AF_INET6       10
#define SOCK_STREAM    1
#define SOCK_DGRAM     2
#define IPPROTO_TCP    6
#define IPPROTO_UDP    17
#define ENETUNREACH    101
#define EADDRNOTAVAIL  99
#define ECONNREFUSED   111
#define EPERM          1
#define SK_PASS        1
#define TCP_LISTEN_CB  11 /* BPF_SOCK_OPS_TCP_LISTEN_CB */

char LICENSE[] SEC("license") = "GPL";

/*
 * Each guest's settings (struct vs_conf), in its cgroup's storage: shared by
 * every program attached to that cgroup (the key is the cgroup alone).  Until
 * the start writes them, ctx is 0 and the programs refuse: no guest process
 * is in the cgroup before that, but fail closed all the same.
 *
 * bind_ok is 3, not 1, from bind: the kernel skips its CAP_NET_BIND_SERVICE
 * check (Linux 5.11).  For a guest in a user namespace of its own, which
 * holds that capability there but not over the host's network namespace: its
 * servers still bind ports below 1024, on its own addresses only.
 */
struct {
        __uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
        __type(key, __u64);
        __type(value, struct vs_conf);
} vs_conf SEC(".maps");

/* a guest's traffic, per CPU */
struct {
        __uint(type, BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE);
        __type(key, __u64);
        __type(value, struct vs_traffic);
} vs_traffic SEC(".maps");

/* a socket bound by a wildcard */
struct {
        __uint(type, BPF_MAP_TYPE_SK_STORAGE);
        __uint(map_flags, BPF_F_NO_PREALLOC);
        __type(key, int);
        __type(value, __u32);
} vs_wild SEC(".maps");

static __always_inline const struct vs_conf *conf(void)
{
        return bpf_get_local_storage(&vs_conf, 0);
}

/* what bind returns when it allows: 1 or 3, as the verifier must see */
static __always_inline int allow_bind(const struct vs_conf *c)
{
        return c->bind_ok == 3 ? 3 : 1;
}

static __always_inline bool is_lo4(__u32 ip)
{
        return (bpf_ntohl(ip) >> 24) == 127;
}

static __always_inline bool own4(const struct vs_conf *c, __u32 ip)
{
        if (ip == c->lback)
                return true;
        for (__u32 i = 0; i < VS_NET_MAX_ADDRS; i++)
                if (i < c->n4 && c->addr4[i] == ip)
                        return true;
        return false;
}

static __always_inline bool own6(const struct vs_conf *c, const __u32 ip[4])
{
        for (__u32 i = 0; i < VS_NET_MAX_ADDRS; i++)
                if (i < c->n6 && c->addr6[i][0] == ip[0] && c->addr6[i][1] == ip[1] &&
                    c->addr6[i][2] == ip[2] && c->addr6[i][3] == ip[3])
                        return true;
        return false;
}

/* IPV6_V6ONLY set on the socket (TCP or UDP: what sock_create lets a guest have) */
static __always_inline bool v6only_sock(struct bpf_sock *bsk)
{
        struct sock *sk = NULL;
        if (!bsk)
                return false;
        struct tcp6_sock *t = bpf_skc_to_tcp6_sock(bsk);
        if (t) {
                sk = (struct sock *)t;
        } else {
                struct udp6_sock *u = bpf_skc_to_udp6_sock(bsk);
                if (u)
                        sk = (struct sock *)u;
        }
        return sk && BPF_CORE_READ_BITFIELD(&sk->__sk_common, skc_ipv6only);
}

static __always_inline void mark_wild(struct bpf_sock_addr *ctx)
{
        struct bpf_sock *sk = ctx->sk;
        if (!sk)
                return;
        __u32 *w = bpf_sk_storage_get(&vs_wild, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
        if (w)
                *w = 1;
}

static __always_inline int refuse(int err)
{
        bpf_set_retval(-err);
        return 0;
}

/*
 * The v4 address a guest-local destination (127/8, 0.0.0.0) stands for: its
 * lback if a socket there would take the packet (the lookup sees a
 * connected peer only with our own address and port in the tuple), else its
 * first address, where a 0.0.0.0 server of the guest lives.
 */
static __always_inline __u32 local4(const struct vs_conf *c, struct bpf_sock_addr *ctx, bool udp)
{
        struct bpf_sock_tuple t = {};
        struct bpf_sock *s, *sk = ctx->sk;

        if (c->n4 == 0)
                return c->lback;
        t.ipv4.daddr = c->lback;
        t.ipv4.dport = (__u16)ctx->user_port;
        if (sk) {
                /* a scalar, not a pointer the compiler picks: no arithmetic on sock */
                __u32 src = sk->src_ip4;
                barrier_var(src);
                t.ipv4.saddr = src ? src : c->lback;
                t.ipv4.sport = bpf_htons((__u16)sk->src_port);
        }
        if (udp)
                s = bpf_sk_lookup_udp(ctx, &t, sizeof t.ipv4, -1, 0);
        else
                s = bpf_sk_lookup_tcp(ctx, &t, sizeof t.ipv4, -1, 0);
        if (s) {
                bpf_sk_release(s);
                return c->lback;
        }
        return c->addr4[0];
}

SEC("cgroup/bind4")
int vs_bind4(struct bpf_sock_addr *ctx)
{
        const struct vs_conf *c = conf();
        if (!c->ctx)
                return refuse(EPERM);
        __u32 ip = ctx->user_ip4;

        if (ip == 0) {
                ctx->user_ip4 = c->n4 ? c->addr4[0] : c->lback;
                mark_wild(ctx);
                return allow_bind(c);
        }
        if (is_lo4(ip)) {
                ctx->user_ip4 = c->lback;
                return allow_bind(c);
        }
        return own4(c, ip) ? allow_bind(c) : refuse(EADDRNOTAVAIL);
}

static __always_inline bool is_mapped(const __u32 ip[4])
{
        return ip[0] == 0 && ip[1] == 0 && ip[2] == bpf_htonl(0xffff);
}

static __always_inline bool is_any6(const __u32 ip[4])
{
        return (ip[0] | ip[1] | ip[2] | ip[3]) == 0;
}

static __always_inline bool is_lo6(const __u32 ip[4])
{
        return ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] == bpf_htonl(1);
}

static __always_inline void read6(struct bpf_sock_addr *ctx, __u32 ip[4])
{
        ip[0] = ctx->user_ip6[0];
        ip[1] = ctx->user_ip6[1];
        ip[2] = ctx->user_ip6[2];
        ip[3] = ctx->user_ip6[3];
}

static __always_inline void write6(struct bpf_sock_addr *ctx, __u32 a, __u32 b, __u32 c, __u32 d)
{
        ctx->user_ip6[0] = a;
        ctx->user_ip6[1] = b;
        ctx->user_ip6[2] = c;
        ctx->user_ip6[3] = d;
}

SEC("cgroup/bind6")
int vs_bind6(struct bpf_sock_addr *ctx)
{
        const struct vs_conf *c = conf();
        if (!c->ctx)
                return refuse(EPERM);
        __u32 ip[4];

        read6(ctx, ip);
        if (is_any6(ip)) {
                /*
                 * A dual-stack wildcard, as most daemons bind: its first IPv4
                 * address v4-mapped (the kernel makes a socket bound to a plain
                 * IPv6 address v6-only), and sk_lookup hands it the rest of the
                 * guest's addresses of both families.  A v6-only socket, or a
                 * guest with IPv6 only: its first IPv6 address; a guest with
                 * neither: its lback.
                 */
                bool v6only = v6only_sock(ctx->sk);
                if (v6only && c->n6 == 0)
                        return refuse(EADDRNOTAVAIL);
                if (v6only || (c->n4 == 0 && c->n6 > 0))
                        write6(ctx, c->addr6[0][0], c->addr6[0][1], c->addr6[0][2],
                               c->addr6[0][3]);
                else
                        write6(ctx, 0, 0, bpf_htonl(0xffff), c->n4 ? c->addr4[0] : c->lback);
                mark_wild(ctx);
                return allow_bind(c);
        }
        if (is_mapped(ip)) {
                if (ip[3] == 0) {
                        ctx->user_ip6[3] = c->n4 ? c->addr4[0] : c->lback;
                        mark_wild(ctx);
                        return allow_bind(c);
                }
                if (is_lo4(ip[3])) {
                        ctx->user_ip6[3] = c->lback;
                        return allow_bind(c);
                }
                return own4(c, ip[3]) ? allow_bind(c) : refuse(EADDRNOTAVAIL);
        }
        /* ::1 is the guest's loopback, as 127.0.0.1: its lback, v4-mapped (not the host's) */
        if (is_lo6(ip)) {
                if (v6only_sock(ctx->sk))
                        return refuse(EADDRNOTAVAIL);
                write6(ctx, 0, 0, bpf_htonl(0xffff), c->lback);
                return allow_bind(c);
        }
        return own6(c, ip) ? allow_bind(c) : refuse(EADDRNOTAVAIL);
}

/* An unbound IPv6 socket going to a v4-mapped address leaves from ::ffff:@src. */
static __always_inline void source_mapped(struct bpf_sock_addr *ctx, struct bpf_sock *sk,
                                          __u32 src)
{
        if (!sk || (sk->src_ip6[0] | sk->src_ip6[1] | sk->src_ip6[2] | sk->src_ip6[3]) != 0)
                return;
        struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
        sa.sin6_addr.in6_u.u6_addr32[2] = bpf_htonl(0xffff);
        sa.sin6_addr.in6_u.u6_addr32[3] = src;
        if (src)
                bpf_bind(ctx, (struct sockaddr *)&sa, sizeof sa);
}

/* An unbound socket leaves from @src (port chosen at connect). */
static __always_inline void source4(struct bpf_sock_addr *ctx, __u32 src)
{
        struct bpf_sock *sk = ctx->sk;
        if (!sk || sk->src_ip4 != 0 || src == 0)
                return;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = src};
        bpf_bind(ctx, (struct sockaddr *)&sa, sizeof sa);
}

SEC("cgroup/connect4")
int vs_connect4(struct bpf_sock_addr *ctx)
{
        const struct vs_conf *c = conf();
        if (!c->ctx)
                return refuse(EPERM);
        __u32 dst = ctx->user_ip4;
        bool udp = ctx->type == 2; /* SOCK_DGRAM */

        if (dst == 0 || is_lo4(dst)) {
                ctx->user_ip4 = local4(c, ctx, udp);
                source4(ctx, c->lback); /* seen as 127.0.0.1 by the guest's server */
                return 1;
        }
        source4(ctx, c->n4 ? c->addr4[0] : 0);
        return 1;
}

SEC("cgroup/connect6")
int vs_connect6(struct bpf_sock_addr *ctx)
{
        const struct vs_conf *c = conf();
        if (!c->ctx)
                return refuse(EPERM);
        __u32 ip[4];
        struct bpf_sock *sk = ctx->sk;

        read6(ctx, ip);
        if (is_any6(ip))
                return refuse(ECONNREFUSED);
        if (is_lo6(ip)) {
                /* ::1: the guest's loopback, as 127.0.0.1 (v4-mapped: v6-only sockets cannot) */
                if (v6only_sock(sk))
                        return refuse(ECONNREFUSED);
                write6(ctx, 0, 0, bpf_htonl(0xffff), local4(c, ctx, ctx->type == SOCK_DGRAM));
                source_mapped(ctx, sk, c->lback);
                return 1;
        }
        if (is_mapped(ip)) {
                /* the kernel goes on in its IPv4 code, past the connect4 hook */
                bool local = ip[3] == 0 || is_lo4(ip[3]);
                if (local)
                        ctx->user_ip6[3] = local4(c, ctx, ctx->type == SOCK_DGRAM);
                source_mapped(ctx, sk, local ? c->lback : c->n4 ? c->addr4[0] : 0);
                return 1;
        }
        if (c->n6 == 0)
                return refuse(ENETUNREACH); /* it would leave with a host address */
        if (sk &&
            (sk->src_ip6[0] | sk->src_ip6[1] | sk->src_ip6[2] | sk->src_ip6[3]) == 0) {
                struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
                sa.sin6_addr.in6_u.u6_addr32[0] = c->addr6[0][0];
                sa.sin6_addr.in6_u.u6_addr32[1] = c->addr6[0][1];
                sa.sin6_addr.in6_u.u6_addr32[2] = c->addr6[0][2];
                sa.sin6_addr.in6_u.u6_addr32[3] = c->addr6[0][3];
                bpf_bind(ctx, (struct sockaddr *)&sa, sizeof sa);
        }
        return 1;
}

SEC("cgroup/sendmsg4")
int vs_sendmsg4(struct bpf_sock_addr *ctx)
{
        const struct vs_conf *c = conf();
        if (!c->ctx)
                return refuse(EPERM);
        __u32 dst = ctx->user_ip4;
        struct bpf_sock *sk = ctx->sk;
        bool unbound = sk && sk->src_ip4 == 0;

        /* a source of its own choosing (IP_PKTINFO, IP_SENDSRCADDR): its own or lback */
        __u32 src = ctx->msg_src_ip4;
        if (src && is_lo4(src))
                ctx->msg_src_ip4 = c->lback;
        else if (src && !own4(c, src))
                return refuse(EPERM);
        if (dst == 0 || is_lo4(dst)) {
                ctx->user_ip4 = local4(c, ctx, true);
                if (unbound && ctx->msg_src_ip4 == 0)
                        ctx->msg_src_ip4 = c->lback;
                return 1;
        }
        if (unbound && ctx->msg_src_ip4 == 0 && c->n4)
                ctx->msg_src_ip4 = c->addr4[0];
        return 1;
}

SEC("cgroup/sendmsg6")
int vs_sendmsg6(struct bpf_sock_addr *ctx)
{
        const struct vs_conf *c = conf();
        if (!c->ctx)
                return refuse(EPERM);
        __u32 ip[4];
        struct bpf_sock *sk = ctx->sk;

        read6(ctx, ip);
        if (is_any6(ip))
                return refuse(ECONNREFUSED);
        if (is_lo6(ip)) {
                if (v6only_sock(sk))
                        return refuse(ECONNREFUSED);
                write6(ctx, 0, 0, bpf_htonl(0xffff), local4(c, ctx, true));
                return 1;
        }
        if (is_mapped(ip)) {
                /* udp_sendmsg's own sendmsg4 hook checks the source from here on */
                if (ip[3] == 0 || is_lo4(ip[3]))
                        ctx->user_ip6[3] = local4(c, ctx, true);
                return 1;
        }
        if (c->n6 == 0)
                return refuse(ENETUNREACH);
        __u32 src[4] = {ctx->msg_src_ip6[0], ctx->msg_src_ip6[1], ctx->msg_src_ip6[2],
                        ctx->msg_src_ip6[3]};
        if (!is_any6(src) && !own6(c, src))
                return refuse(EPERM); /* IPV6_PKTINFO with an address not its own */
        if (sk &&
            (sk->src_ip6[0] | sk->src_ip6[1] | sk->src_ip6[2] | sk->src_ip6[3]) == 0 &&
            (ctx->msg_src_ip6[0] | ctx->msg_src_ip6[1] | ctx->msg_src_ip6[2] |
             ctx->msg_src_ip6[3]) == 0) {
                ctx->msg_src_ip6[0] = c->addr6[0][0];
                ctx->msg_src_ip6[1] = c->addr6[0][1];
                ctx->msg_src_ip6[2] = c->addr6[0][2];
                ctx->msg_src_ip6[3] = c->addr6[0][3];
        }
        return 1;
}

/* The guest sees its loopback as 127.0.0.1, as it asked for it. */
static __always_inline int unmap4(const struct vs_conf *c, struct bpf_sock_addr *ctx)
{
        if (c->ctx && ctx->user_ip4 == c->lback)
                ctx->user_ip4 = bpf_htonl(0x7f000001);
        return 1;
}

SEC("cgroup/recvmsg4")
int vs_recvmsg4(struct bpf_sock_addr *ctx)
{
        return unmap4(conf(), ctx);
}

SEC("cgroup/getpeername4")
int vs_getpeername4(struct bpf_sock_addr *ctx)
{
        return unmap4(conf(), ctx);
}

SEC("cgroup/getsockname4")
int vs_getsockname4(struct bpf_sock_addr *ctx)
{
        return unmap4(conf(), ctx);
}

SEC("cgroup/sock_create")
int vs_sock_create(struct bpf_sock *sk)
{
        if (sk->family != AF_INET && sk->family != AF_INET6)
                return 1; /* unix, netlink: no address of the host's to pick */
        /*
         * TCP and UDP only: the hooks above see every way they pick or reach
         * an address.  Raw and ICMP sockets, UDP-Lite, SCTP, DCCP and MPTCP
         * have paths they do not (UDP-Lite has no connect hook at all).
         */
        if (sk->type == SOCK_STREAM && sk->protocol == IPPROTO_TCP)
                return 1;
        if (sk->type == SOCK_DGRAM && sk->protocol == IPPROTO_UDP)
                return 1;
        return 0;
}

SEC("sockops")
int vs_sockops(struct bpf_sock_ops *skops)
{
        if (skops->op != TCP_LISTEN_CB)
                return 1;
        struct bpf_sock *sk = skops->sk;
        if (!sk)
                return 1;
        __u32 *w = bpf_sk_storage_get(&vs_wild, sk, 0, 0);
        if (!w || !*w)
                return 1;
        const struct vs_conf *c = conf();
        if (!c->ctx)
                return 1;
        struct vs_sock_key key = {
            .ctx = c->ctx,
            .family = (__u16)skops->family,
            .protocol = 6, /* IPPROTO_TCP */
            .port = skops->local_port,
        };
        bpf_sock_hash_update(skops, &vs_socks, &key, BPF_ANY);
        return 1;
}

/* Only abstract names this guest bound; a path: its own filesystem decides. */
static __always_inline int unix_check(struct bpf_sock_addr *ctx)
{
        const struct vs_conf *c = conf();
        struct vs_unix_owner *owner = NULL;
        if (!unix_dest(ctx, &owner))
                return 1;
        if (c->ctx && owner && owner->ctx == c->ctx)
                return 1;
        return refuse(ECONNREFUSED);
}

/* Loaded as connect4/sendmsg4; vs_net retargets them to the unix hooks. */
SEC("cgroup/connect4")
int vs_connect_unix(struct bpf_sock_addr *ctx)
{
        return unix_check(ctx);
}

SEC("cgroup/sendmsg4")
int vs_sendmsg_unix(struct bpf_sock_addr *ctx)
{
        return unix_check(ctx);
}

SEC("cgroup_skb/ingress")
int vs_ingress(struct __sk_buff *skb)
{
        struct vs_traffic *t = bpf_get_local_storage(&vs_traffic, 0);
        t->rx_bytes += skb->len;
        t->rx_packets++;
        return 1;
}

SEC("cgroup_skb/egress")
int vs_egress(struct __sk_buff *skb)
{
        struct vs_traffic *t = bpf_get_local_storage(&vs_traffic, 0);
        t->tx_bytes += skb->len;
        t->tx_packets++;
        return 1;
}
