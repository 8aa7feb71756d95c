/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The programs all isolate guests of an installation share, attached once
 * (by the first start) and pinned under RUN/bpf:
 *
 *   sk_lookup   a connection to any guest address or its lback finds the
 *               guest's wildcard listener (one socket, several addresses)
 *   unix binds  who bound each abstract unix name, for the guests'
 *               connect_unix/sendmsg_unix checks.  Where the kernel lets us,
 *               a BPF trampoline (fentry) or a kprobe on
 *               __unix_set_addr_hash, which only a successful bind reaches,
 *               and on unix_release_sock, to forget the name at its close;
 *               else the raw syscall-exit tracepoint, filtered to bind(2)
 *               (that one puts every system call of the host on the traced
 *               path, ~100 ns a call here, and sees no close: vs_net tidies
 *               the table at start and stop).
 *   unix guard  on the host's side (the cgroup2 root): no host process
 *               reaches a name a guest bound.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "isolate.h"
#include "shared.bpf.h"

#define SK_PASS      1
#define AF_INET      2
#define AF_INET6     10
#define ECONNREFUSED 111

char LICENSE[] SEC("license") = "GPL";

SEC("sk_lookup")
int vs_sk_lookup(struct bpf_sk_lookup *ctx)
{
        struct vs_addr_key ak = {.family = ctx->family};

        if (ctx->family == AF_INET) {
                ak.addr[0] = ctx->local_ip4;
        } else {
                ak.addr[0] = ctx->local_ip6[0];
                ak.addr[1] = ctx->local_ip6[1];
                ak.addr[2] = ctx->local_ip6[2];
                ak.addr[3] = ctx->local_ip6[3];
        }
        __u32 *owner = bpf_map_lookup_elem(&vs_addrs, &ak);
        if (!owner)
                return SK_PASS;
        struct vs_sock_key key = {
            .ctx = *owner,
            .family = (__u16)ctx->family,
            .protocol = (__u16)ctx->protocol,
            .port = ctx->local_port,
        };
        struct bpf_sock *s = bpf_map_lookup_elem(&vs_socks, &key);
        if (!s && ctx->family == AF_INET) {
                /* a dual-stack [::] listener takes the guest's IPv4 too (not v6only: the
                 * kernel refuses those for an IPv4 lookup) */
                key.family = AF_INET6;
                s = bpf_map_lookup_elem(&vs_socks, &key);
        }
        if (!s)
                return SK_PASS;
        bpf_sk_assign(ctx, s, 0);
        bpf_sk_release(s);
        return SK_PASS;
}

static __always_inline void count(__u32 ctx, int delta)
{
        if (ctx == 0)
                return;
        __u32 *n = bpf_map_lookup_elem(&vs_unix_n, &ctx);
        if (n)
                __sync_fetch_and_add(n, delta);
}

/*
 * @sk bound the abstract name @key: note its owner, within the guest's quota.
 * A name the host binds (or a guest of another installation: not ours) gets
 * no entry, which both guards read as the host's: noted, the host's names
 * filled the table without a quota (a churn in another installation's guest
 * did, and then no guest here could note a name), and a sweep had to try
 * every one of them.  A stale entry (its close went unseen) gives its count
 * back.
 */
static __always_inline int note(struct vs_unix_key *key, __u64 sk)
{
        __u32 ctx = current_guest();
        struct vs_unix_owner *old = bpf_map_lookup_elem(&vs_unix, key);
        __u32 was = old ? old->ctx : 0;
        if (!ctx) {
                if (old && bpf_map_delete_elem(&vs_unix, key) == 0)
                        count(was, -1);
                return 0;
        }
        __u32 zero = 0;
        __u32 *n = bpf_map_lookup_elem(&vs_unix_n, &ctx);
        if (!n) {
                bpf_map_update_elem(&vs_unix_n, &ctx, &zero, BPF_NOEXIST);
                n = bpf_map_lookup_elem(&vs_unix_n, &ctx);
        }
        if (!n || *n >= VS_UNIX_PER_GUEST)
                return 0; /* over its quota: nobody may connect to it, itself included */
        struct vs_unix_owner owner = {.ctx = ctx, .sk = sk};
        if (bpf_map_update_elem(&vs_unix, key, &owner, BPF_ANY) == 0) {
                count(was, -1);
                count(ctx, 1);
        }
        return 0;
}

static __always_inline int record(const void *sun, int len, __u64 sk)
{
        struct vs_unix_key key = {};

        if (len <= 0 || !unix_name(&key, sun, (__u32)len))
                return 0;
        return note(&key, sk);
}

SEC("fentry/__unix_set_addr_hash")
int BPF_PROG(vs_unix_fentry, void *net, struct sock *sk, struct unix_address *addr)
{
        return record(&addr->name, BPF_CORE_READ(addr, len), (__u64)sk);
}

SEC("kprobe/__unix_set_addr_hash")
int BPF_KPROBE(vs_unix_kprobe, void *net, struct sock *sk, struct unix_address *addr)
{
        return record(&addr->name, BPF_CORE_READ(addr, len), (__u64)sk);
}

/* A socket closes: the name it bound (not one it only shares, as accepted ones do) is free. */
static __always_inline int forget(struct sock *sk)
{
        struct unix_sock *u = (struct unix_sock *)sk;
        struct unix_address *a = BPF_CORE_READ(u, addr);
        struct vs_unix_key key = {};
        if (!a || !unix_name(&key, &a->name, BPF_CORE_READ(a, len)))
                return 0;
        struct vs_unix_owner *o = bpf_map_lookup_elem(&vs_unix, &key);
        if (!o || o->sk != (__u64)sk)
                return 0;
        __u32 ctx = o->ctx;
        if (bpf_map_delete_elem(&vs_unix, &key) == 0)
                count(ctx, -1);
        return 0;
}

SEC("fentry/unix_release_sock")
int BPF_PROG(vs_unix_release_fentry, struct sock *sk)
{
        return forget(sk);
}

SEC("kprobe/unix_release_sock")
int BPF_KPROBE(vs_unix_release_kprobe, struct sock *sk)
{
        return forget(sk);
}

/*
 * On the host's side (the cgroup2 root, or the host setting
 * unix-guard-cgroup): a process that is not a guest's may not reach an
 * abstract name a guest bound.  Else a guest squats a name the host uses
 * later, and the host's client talks to the guest's server.
 */
static __always_inline int guard(struct bpf_sock_addr *ctx)
{
        struct vs_unix_owner *o = NULL;
        if (!unix_dest(ctx, &o) || !o || o->ctx == 0 || o->ctx == current_guest())
                return 1;
        bpf_set_retval(-ECONNREFUSED);
        return 0;
}

/* Loaded as connect4/sendmsg4; vs_net retargets them to the unix hooks (Linux 6.7). */
SEC("cgroup/connect4")
int vs_guard_connect(struct bpf_sock_addr *ctx)
{
        return guard(ctx);
}

SEC("cgroup/sendmsg4")
int vs_guard_sendmsg(struct bpf_sock_addr *ctx)
{
        return guard(ctx);
}

/* bind(2) on x86-64 and arm64 */
#if defined(__TARGET_ARCH_x86)
#define NR_BIND 49
#elif defined(__TARGET_ARCH_arm64)
#define NR_BIND 200
#endif

SEC("tp_btf/sys_exit")
int BPF_PROG(vs_unix_sysexit, struct pt_regs *regs, long ret)
{
        if (ret != 0 || BPF_CORE_READ(regs, orig_ax) != NR_BIND)
                return 0;
        unsigned long uaddr = PT_REGS_PARM2_CORE_SYSCALL(regs);
        int len = (int)PT_REGS_PARM3_CORE_SYSCALL(regs);
        struct {
                __u16 family;
                char path[108];
        } sa = {};
        if (len <= 2 || len > (int)sizeof sa)
                return 0;
        if (bpf_probe_read_user(&sa, sizeof sa.family, (const void *)uaddr) < 0 || sa.family != 1)
                return 0;
        /* the name from the user's buffer, as the kernel took it */
        struct vs_unix_key key = {};
        __u64 n = ((__u64)len - 2) & 0x7f;
        if (n == 0 || n > sizeof key.path)
                return 0;
        if (bpf_probe_read_user(key.path, (__u32)n, (const char *)uaddr + 2) < 0 || key.path[0])
                return 0;
        key.len = (__u32)n;
        return note(&key, 0); /* no socket to know it by: its close goes unseen */
}
