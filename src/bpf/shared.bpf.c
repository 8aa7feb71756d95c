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
 *               __unix_set_addr_hash, which only a successful bind reaches;
 *               else the raw syscall-exit tracepoint, filtered to bind(2)
 *               (that one costs every system call a few instructions).
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "isolate.h"
#include "shared.bpf.h"

#define SK_PASS 1
#define AF_INET 2

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
        if (!s)
                return SK_PASS;
        bpf_sk_assign(ctx, s, 0);
        bpf_sk_release(s);
        return SK_PASS;
}

static __always_inline int record(const void *sun, int len)
{
        struct vs_unix_key key = {};

        if (len <= 0 || !unix_name(&key, sun, (__u32)len))
                return 0;
        __u32 owner = current_guest();
        bpf_map_update_elem(&vs_unix, &key, &owner, BPF_ANY);
        return 0;
}

SEC("fentry/__unix_set_addr_hash")
int BPF_PROG(vs_unix_fentry, void *net, void *sk, struct unix_address *addr)
{
        return record(&addr->name, BPF_CORE_READ(addr, len));
}

SEC("kprobe/__unix_set_addr_hash")
int BPF_KPROBE(vs_unix_kprobe, void *net, void *sk, struct unix_address *addr)
{
        return record(&addr->name, BPF_CORE_READ(addr, len));
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
        __u32 owner = current_guest();
        bpf_map_update_elem(&vs_unix, &key, &owner, BPF_ANY);
        return 0;
}
