/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once
/* Shared by isolate.bpf.c and src/lib/net.c: map keys and limits. */

#define VS_NET_MAX_ADDRS 16

/*
 * One guest's settings, in the cgroup storage of its cgroup (written at its
 * start, after the programs are attached): the programs are loaded once per
 * installation and learn whose socket they see from the cgroup they run for.
 */
struct vs_conf {
        __u32 ctx; /* 0: not written yet; the programs refuse */
        __u32 lback; /* network order */
        __u32 bind_ok; /* what bind returns when it allows (see isolate.bpf.c) */
        __u32 n4, n6;
        __u32 addr4[VS_NET_MAX_ADDRS];
        __u32 addr6[VS_NET_MAX_ADDRS][4];
};

/* A guest's traffic, per CPU, in the per-CPU cgroup storage of its cgroup. */
struct vs_traffic {
        __u64 rx_bytes, rx_packets, tx_bytes, tx_packets;
};

struct vs_addr_key {
        __u32 family;
        __u32 addr[4]; /* network order; IPv4 in addr[0] */
};

struct vs_sock_key {
        __u32 ctx;
        __u16 family;
        __u16 protocol;
        __u32 port; /* host order, as sk_lookup and sock_ops see it */
};

struct vs_unix_key {
        __u32 len;
        char path[108]; /* the abstract name, its leading NUL included */
};

/* Who bound an abstract name: the guest (0: the host) and the very socket. */
struct vs_unix_owner {
        __u32 ctx;
        __u32 pad;
        __u64 sk; /* the kernel's struct sock *, to forget the name when it closes */
};

/* Abstract names one guest may hold at once in the ownership table. */
#define VS_UNIX_PER_GUEST 1024
