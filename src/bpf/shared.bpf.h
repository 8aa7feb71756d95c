/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once
/*
 * What isolate.bpf.c (per guest) and shared.bpf.c (one per installation)
 * share: the maps, pinned by name under the installation's bpffs so both
 * objects use the same ones, and the helpers both need.
 *
 * The hash maps allocate their entries as they fill (BPF_F_NO_PREALLOC):
 * preallocated, the three of 65536 entries held 15.7 MiB of kernel memory
 * from the first isolate guest on, and making them was a tenth of its
 * start.  Userspace fills vs_addrs and vs_guests and sees a failure; an
 * entry of vs_unix_n the kernel cannot make leaves that name to nobody
 * (note() fails closed).
 */

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(map_flags, BPF_F_NO_PREALLOC);
        __uint(max_entries, 65536);
        __type(key, struct vs_addr_key);
        __type(value, __u32);
        __uint(pinning, LIBBPF_PIN_BY_NAME);
} vs_addrs SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_SOCKHASH);
        __uint(max_entries, 65536);
        __type(key, struct vs_sock_key);
        __type(value, __u64);
        __uint(pinning, LIBBPF_PIN_BY_NAME);
} vs_socks SEC(".maps");

/*
 * Who bound each abstract unix name.  A plain hash, not an LRU: one guest's
 * names must never push out another's.  Entries go when their socket
 * closes; a guest holds at most VS_UNIX_PER_GUEST (counted in vs_unix_n).
 */
struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(map_flags, BPF_F_NO_PREALLOC);
        __uint(max_entries, 262144);
        __type(key, struct vs_unix_key);
        __type(value, struct vs_unix_owner);
        __uint(pinning, LIBBPF_PIN_BY_NAME);
} vs_unix SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(map_flags, BPF_F_NO_PREALLOC);
        __uint(max_entries, 65536);
        __type(key, __u32);
        __type(value, __u32);
        __uint(pinning, LIBBPF_PIN_BY_NAME);
} vs_unix_n SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(map_flags, BPF_F_NO_PREALLOC);
        __uint(max_entries, 65536);
        __type(key, __u64);
        __type(value, __u32);
        __uint(pinning, LIBBPF_PIN_BY_NAME);
} vs_guests SEC(".maps");

/* The guest a task belongs to: its cgroup or one above it is a guest's. */
static __always_inline __u32 current_guest(void)
{
        for (int level = 1; level < 16; level++) {
                __u64 id = bpf_get_current_ancestor_cgroup_id(level);
                if (!id)
                        break;
                __u32 *c = bpf_map_lookup_elem(&vs_guests, &id);
                if (c)
                        return *c;
        }
        return 0;
}

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

/* An abstract name (sun_path[0] == 0) into @key; false for others. */
static __always_inline bool unix_name(struct vs_unix_key *key, const void *sun, __u32 addrlen)
{
        __u64 n = addrlen;
        if (n <= 2 || n > 2 + sizeof key->path)
                return false;
        n = (n - 2) & 0x7f; /* bounds the verifier can see */
        if (n == 0 || n > sizeof key->path)
                return false;
        if (bpf_probe_read_kernel(key->path, (__u32)n, (const char *)sun + 2) < 0)
                return false;
        if (key->path[0] != 0)
                return false;
        key->len = (__u32)n;
        return true;
}

/*
 * The abstract name a unix connect or sendmsg goes to: false for a path (the
 * filesystem decides); else true, with its owner or NULL if nobody we know.
 */
static __always_inline bool unix_dest(struct bpf_sock_addr *ctx, struct vs_unix_owner **ret)
{
        struct bpf_sock_addr_kern *k = bpf_cast_to_kern_ctx(ctx);
        struct vs_unix_key key = {};

        if (!unix_name(&key, k->uaddr, k->uaddrlen))
                return false;
        *ret = bpf_map_lookup_elem(&vs_unix, &key);
        return true;
}
