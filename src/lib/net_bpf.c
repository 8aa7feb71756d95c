/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mode = isolate: the programs of src/bpf/isolate.bpf.c, loaded once per
 * installation from the generated skeleton and pinned in
 * RUN/bpf/isolate-HASH/ (HASH: of the object, so a newer build never attaches
 * an older build's programs), attached to each guest's cgroup2 directory at
 * its start, which then writes the guest's settings into that cgroup's
 * storage (struct vs_conf).  The maps and the host-wide programs
 * (sk_lookup, the unix bind recorders, the unix guard) that all guests of an
 * installation share are pinned in RUN/bpf too, a bpffs of our own; all of
 * it goes when the last isolate guest stops.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "context.h"
#include "ctxid.h"
#include "net.h"
#include "netlink.h"
#include "paths.h"
#include "util.h"

/* the BPF side's types */
#include <linux/types.h>
#include "../bpf/isolate.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#include "isolate.skel.h"
#include "shared.skel.h"
#pragma GCC diagnostic pop

_Static_assert(VS_NET_MAX_ADDRS == 16, "isolate.h and net.h agree on the address count");

#define ATTACH_UNIX_CONNECT 49 /* BPF_CGROUP_UNIX_CONNECT, kernel 6.7 */
#define ATTACH_UNIX_SENDMSG 50 /* BPF_CGROUP_UNIX_SENDMSG */

__attribute__((format(printf, 2, 0))) static int quiet_print(enum libbpf_print_level level,
                                                             const char *fmt, va_list ap)
{
        if (level != LIBBPF_WARN || !getenv("VSERVER_DEBUG_BPF"))
                return 0;
        return vfprintf(stderr, fmt, ap);
}

/* RUN/bpf as a bpffs of ours; RUN/net.lock held (exclusively) in *lock. */
static int bpf_dir_open(const char *dir, int *lock, VsError *err)
{
        char path[PATH_MAX];
        struct statfs sf;

        libbpf_set_print(quiet_print);
        int r = vs_mkdir_p(dir, 0700);
        if (r < 0)
                return vs_error(err, -r, "create %s", dir);
        snprintf(path, sizeof path, "%s.lock", dir);
        *lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (*lock < 0)
                return vs_error(err, errno, "open %s", path);
        if (flock(*lock, LOCK_EX) < 0)
                return vs_error(err, errno, "lock %s", path);
        if (statfs(dir, &sf) < 0)
                return vs_error(err, errno, "statfs %s", dir);
        if ((unsigned long)sf.f_type != BPF_FS_MAGIC &&
            mount("bpf", dir, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") < 0)
                return vs_error(err, errno, "mount a bpffs on %s", dir);
        return 0;
}

static int pin_path(char *buf, size_t size, const char *dir, const char *name)
{
        int n = snprintf(buf, size, "%s/%s", dir, name);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/*
 * RUN/bpf/isolate-HASH: this build's programs, the XXH3 hash of their
 * object (FNV-1a, a byte at a time over its 720 KiB, was 2% of an isolate
 * start's samples)
 */
static int progs_dir(char *buf, size_t size, const char *dir)
{
        size_t n;
        const unsigned char *b = vs_isolate__elf_bytes(&n);
        uint64_t h = XXH3_64bits(b, n);
        int k = snprintf(buf, size, "%s/isolate-%016llx", dir, (unsigned long long)h);
        return k < 0 || (size_t)k >= size ? -ENAMETOOLONG : 0;
}

/* Empty our bpffs directory @path (one level of subdirectories: ours), then remove it. */
static void bpffs_remove(const char *path, int depth)
{
        DIR *d = opendir(path);
        struct dirent *e;
        char sub[PATH_MAX];
        while (d && (e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                        continue;
                if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub)
                        continue;
                if (e->d_type == DT_DIR && depth > 0)
                        bpffs_remove(sub, depth - 1);
                else
                        (void)unlink(sub);
        }
        if (d)
                closedir(d);
        (void)rmdir(path);
}

static void addr_key(struct vs_addr_key *k, const VsNetAddr *a)
{
        memset(k, 0, sizeof *k);
        k->family = (__u32)a->family;
        memcpy(k->addr, a->addr, a->family == AF_INET ? 4 : 16);
}

static uint64_t cgroup_id(const char *path)
{
        struct {
                struct file_handle fh;
                uint64_t id;
        } h = {.fh.handle_bytes = sizeof(uint64_t)};
        int mount_id;
        if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0) < 0)
                return 0;
        return h.id;
}

/* The address's device: its own, else the host settings'. */
static const char *dev_of(const VsNetSpec *s, const VsNetAddr *a)
{
        return a->dev[0] ? a->dev : s->device;
}

/*
 * Add the guest's addresses where they are missing.  An address the host has
 * and did not get from vserver is the host's own; one that vserver added
 * and vs_addrs gives to a running guest is that guest's.
 */
static int addrs_add(const VsNetSpec *s, VsNl *nl, int addrs_fd, bool *added, VsError *err)
{
        char buf[96];
        for (int i = 0; i < s->cfg->n_addrs; i++) {
                const VsNetAddr *a = &s->cfg->addrs[i];
                struct vs_addr_key k;
                __u32 owner;
                int ifindex;
                uint8_t proto;

                vs_net_addr_format(a, buf, sizeof buf);
                addr_key(&k, a);
                /* a context that ended without a stop holds nothing */
                if (bpf_map_lookup_elem(addrs_fd, &k, &owner) == 0 && owner != s->ctx &&
                    vs_ctxid_live(owner))
                        return vs_error_input(err, "address %s is in use by context %u", buf,
                                              owner);
                int r = vs_nl_addr_find(nl, a->family, a->addr, &ifindex, &proto);
                if (r == 0 && proto != VS_IFA_PROTO) {
                        char name[IFNAMSIZ] = "?";
                        if_indextoname((unsigned)ifindex, name);
                        return vs_error_input(err,
                                              "address %s is the host's own (on %s), not one "
                                              "vserver may give a guest",
                                              buf, name);
                }
                if (r == 0)
                        continue; /* ours, left by a guest that did not stop cleanly */
                if (r != -ENOENT)
                        return vs_error(err, -r, "rtnetlink: list addresses");
                int dev = vs_nl_link_index(nl, dev_of(s, a));
                if (dev == 0)
                        return vs_error_input(err, "address %s: no interface %s on this host", buf,
                                              dev_of(s, a));
                r = vs_nl_addr_add(nl, dev, a->family, a->addr, a->prefix, VS_IFA_PROTO, err);
                if (r < 0)
                        return vs_error_prefix(err, "add %s", buf);
                added[i] = true;
        }
        return 0;
}

/* Remove the guest's addresses from the host: ours, and claimed by no other guest. */
static void addrs_del(const VsNetSpec *s, VsNl *nl, int addrs_fd, const bool *only)
{
        for (int i = 0; i < s->cfg->n_addrs; i++) {
                const VsNetAddr *a = &s->cfg->addrs[i];
                struct vs_addr_key k;
                __u32 owner;
                int ifindex;
                uint8_t proto;
                if (only && !only[i])
                        continue;
                addr_key(&k, a);
                if (addrs_fd >= 0 && bpf_map_lookup_elem(addrs_fd, &k, &owner) == 0 &&
                    owner != s->ctx)
                        continue;
                if (vs_nl_addr_find(nl, a->family, a->addr, &ifindex, &proto) == 0 &&
                    proto == VS_IFA_PROTO)
                        (void)vs_nl_addr_del(nl, ifindex, a->family, a->addr, a->prefix, NULL);
        }
}

static const struct {
        size_t off; /* of the program in the skeleton's progs */
        int type;
        const char *what;
} cgroup_progs[] = {
#define P(name, type, what)                                                                        \
        {                                                                                          \
                offsetof(struct vs_isolate, progs.name), type, what                                \
        }
    P(vs_bind4, BPF_CGROUP_INET4_BIND, "bind4"),
    P(vs_bind6, BPF_CGROUP_INET6_BIND, "bind6"),
    P(vs_connect4, BPF_CGROUP_INET4_CONNECT, "connect4"),
    P(vs_connect6, BPF_CGROUP_INET6_CONNECT, "connect6"),
    P(vs_sendmsg4, BPF_CGROUP_UDP4_SENDMSG, "sendmsg4"),
    P(vs_sendmsg6, BPF_CGROUP_UDP6_SENDMSG, "sendmsg6"),
    P(vs_recvmsg4, BPF_CGROUP_UDP4_RECVMSG, "recvmsg4"),
    P(vs_getpeername4, BPF_CGROUP_INET4_GETPEERNAME, "getpeername4"),
    P(vs_getsockname4, BPF_CGROUP_INET4_GETSOCKNAME, "getsockname4"),
    P(vs_sock_create, BPF_CGROUP_INET_SOCK_CREATE, "sock_create"),
    P(vs_sockops, BPF_CGROUP_SOCK_OPS, "sockops"),
    P(vs_connect_unix, ATTACH_UNIX_CONNECT, "connect_unix"),
    P(vs_sendmsg_unix, ATTACH_UNIX_SENDMSG, "sendmsg_unix"),
    P(vs_ingress, BPF_CGROUP_INET_INGRESS, "ingress"),
    P(vs_egress, BPF_CGROUP_INET_EGRESS, "egress"),
#undef P
};

static struct bpf_program *prog_at(struct vs_isolate *skel, size_t off)
{
        return *(struct bpf_program **)((char *)skel + off);
}

/*
 * This build's isolate programs in @pdir, loaded and pinned if they are not
 * there yet: into new-isolate-HASH, renamed whole (a start killed half way leaves no
 * half set where the next start looks).  The shared maps by name in @dir.
 */
static int progs_ensure(const char *dir, const char *pdir, VsError *err)
{
        char tmp[PATH_MAX], path[PATH_MAX];
        int r = 0;

        if (access(pdir, F_OK) == 0)
                return 0;
        /* bpffs takes no '.' in a name */
        const char *base = strrchr(pdir, '/') + 1;
        if (snprintf(tmp, sizeof tmp, "%.*snew-%s", (int)(base - pdir), pdir, base) >=
            (int)sizeof tmp)
                return vs_error(err, ENAMETOOLONG, "%s", pdir);
        bpffs_remove(tmp, 0);
        if (mkdir(tmp, 0700) < 0)
                return vs_error(err, errno, "create %s", tmp);
        LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = dir);
        struct vs_isolate *skel = vs_isolate__open_opts(&opts);
        if (!skel)
                return vs_error(err, errno, "open the isolation programs");
        bpf_program__set_expected_attach_type(skel->progs.vs_connect_unix, ATTACH_UNIX_CONNECT);
        bpf_program__set_expected_attach_type(skel->progs.vs_sendmsg_unix, ATTACH_UNIX_SENDMSG);
        if (vs_isolate__load(skel) < 0) {
                r = vs_error(err, errno,
                             "load the isolation programs (cgroup unix socket hooks need "
                             "Linux 6.7; VSERVER_DEBUG_BPF=1 shows the verifier)");
                goto out;
        }
        for (size_t i = 0; i < ARRAY_SIZE(cgroup_progs) && r == 0; i++) {
                pin_path(path, sizeof path, tmp, cgroup_progs[i].what);
                if (bpf_program__pin(prog_at(skel, cgroup_progs[i].off), path) < 0)
                        r = vs_error(err, errno, "pin %s", path);
        }
        struct bpf_map *maps[] = {skel->maps.vs_conf, skel->maps.vs_traffic};
        for (size_t i = 0; i < ARRAY_SIZE(maps) && r == 0; i++) {
                pin_path(path, sizeof path, tmp, bpf_map__name(maps[i]));
                if (bpf_map__pin(maps[i], path) < 0)
                        r = vs_error(err, errno, "pin %s", path);
        }
        if (r == 0 && rename(tmp, pdir) < 0)
                r = vs_error(err, errno, "rename %s", tmp);
out:
        vs_isolate__destroy(skel);
        return r;
}

/* Attach the programs of @pdir to the cgroup @cgfd, then give it @conf. */
static int progs_attach(const char *pdir, int cgfd, uint64_t cgid, const struct vs_conf *conf,
                        VsError *err)
{
        char path[PATH_MAX];
        for (size_t i = 0; i < ARRAY_SIZE(cgroup_progs); i++) {
                pin_path(path, sizeof path, pdir, cgroup_progs[i].what);
                _cleanup_close_ int fd = bpf_obj_get(path);
                if (fd < 0)
                        return vs_error(err, errno, "open %s", path);
                if (bpf_prog_attach(fd, cgfd, (enum bpf_attach_type)cgroup_progs[i].type,
                                    BPF_F_ALLOW_MULTI) < 0)
                        return vs_error(err, errno, "attach %s", cgroup_progs[i].what);
        }
        pin_path(path, sizeof path, pdir, "vs_conf");
        _cleanup_close_ int fd = bpf_obj_get(path);
        if (fd < 0)
                return vs_error(err, errno, "open %s", path);
        if (bpf_map_update_elem(fd, &cgid, conf, BPF_EXIST) < 0)
                return vs_error(err, errno, "write the guest's settings");
        return 0;
}

static int pin_link(struct bpf_link *l, const char *dir, const char *name, const char *what,
                    VsError *err)
{
        char path[PATH_MAX];
        if (!l)
                return vs_error(err, errno, "attach %s", what);
        pin_path(path, sizeof path, dir, name);
        int r = bpf_link__pin(l, path) < 0 ? vs_error(err, errno, "pin %s", path) : 0;
        bpf_link__destroy(l); /* the pin holds it */
        return r;
}

/*
 * The host-side unix guard, on the cgroup2 directory @guard (the root by
 * default): host processes may not reach abstract names guests bound.
 */
static int attach_guard(struct vs_shared *sk, const char *dir, const char *guard, VsError *err)
{
        char abs[PATH_MAX];
        int r = vs_cgroup_v2_dir(guard, abs, sizeof abs, err);
        if (r < 0)
                return vs_error_prefix(err, "unix-guard-cgroup");
        _cleanup_close_ int cg = open(abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cg < 0)
                return vs_error(err, errno, "open %s (unix-guard-cgroup)", abs);
        r = pin_link(bpf_program__attach_cgroup(sk->progs.vs_guard_connect, cg), dir,
                     "link-unix-guard-connect", "the unix guard (connect)", err);
        if (r == 0)
                r = pin_link(bpf_program__attach_cgroup(sk->progs.vs_guard_sendmsg, cg), dir,
                             "link-unix-guard-sendmsg", "the unix guard (sendmsg)", err);
        return r;
}

/*
 * The recorder tier that worked on this host since it booted (VS_HOST_RUN is
 * a tmpfs): a load of the shared programs parses the kernel's BTF, about
 * 30 ms, and a kernel without fentry or kprobes for the recorder made every
 * first isolate start load them three times.  Only a hint: tried first.
 * vserver host check reports it.
 */
#define TIER_HINT VS_HOST_RUN "/bpf-unix-recorder"

static const char *const tiers[] = {"fentry", "kprobe", "syscall tracepoint"};
enum { TIER_SYSCALL = 2 };

/* The hint, or -1 if there is none (no isolate start since the host booted). */
static int tier_known(void)
{
        char buf[8];
        unsigned long long t;
        if (vs_read_file_at(AT_FDCWD, TIER_HINT, buf, sizeof buf) <= 0)
                return -1;
        buf[strcspn(buf, "\n")] = '\0';
        return vs_parse_u64(buf, &t) == 0 && t < ARRAY_SIZE(tiers) ? (int)t : -1;
}

const char *vs_net_unix_recorder(bool *ret_per_syscall)
{
        int t = tier_known();
        *ret_per_syscall = t == TIER_SYSCALL;
        return t < 0 ? NULL : tiers[t];
}

static void tier_note(size_t t)
{
        char buf[8];
        snprintf(buf, sizeof buf, "%zu\n", t);
        if (vs_mkdir_p(VS_HOST_RUN, 0755) == 0) {
                _cleanup_close_ int fd =
                    open(TIER_HINT, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
                if (fd >= 0)
                        (void)vs_write_all(fd, buf, strlen(buf));
        }
}

/*
 * Load and attach the shared programs, trying the unix bind recorders in
 * turn: fentry, else kprobes (both also see a bound socket close), else the
 * syscall-exit tracepoint (closes unseen: names stay until rebound).  The
 * one that worked last on this host goes first.
 */
static int attach_shared(const char *dir, const char *guard, VsError *err)
{
        int r = -ENOTSUP;

        _cleanup_close_ int ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (ns < 0)
                return vs_error(err, errno, "open our network namespace");
        int known = tier_known();
        size_t hint = known < 0 ? 0 : (size_t)known;
        for (size_t k = 0; k < ARRAY_SIZE(tiers); k++) {
                /* the hint, then the others in order */
                size_t t = k == 0 ? hint : k <= hint ? k - 1 : k;
                LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = dir);
                struct vs_shared *sk = vs_shared__open_opts(&opts);
                if (!sk)
                        return vs_error(err, errno, "open the shared programs");
                struct bpf_program *rec[] = {sk->progs.vs_unix_fentry, sk->progs.vs_unix_kprobe,
                                             sk->progs.vs_unix_sysexit};
                struct bpf_program *rel[] = {sk->progs.vs_unix_release_fentry,
                                             sk->progs.vs_unix_release_kprobe, NULL};
                for (size_t i = 0; i < ARRAY_SIZE(rec); i++) {
                        bpf_program__set_autoload(rec[i], i == t);
                        if (rel[i])
                                bpf_program__set_autoload(rel[i], i == t);
                }
                bpf_program__set_expected_attach_type(sk->progs.vs_guard_connect,
                                                      ATTACH_UNIX_CONNECT);
                bpf_program__set_expected_attach_type(sk->progs.vs_guard_sendmsg,
                                                      ATTACH_UNIX_SENDMSG);
                struct bpf_link *l = NULL, *lr = NULL;
                if (vs_shared__load(sk) == 0) {
                        l = bpf_program__attach(rec[t]);
                        lr = rel[t] && l ? bpf_program__attach(rel[t]) : NULL;
                }
                if (!l || (rel[t] && !lr)) {
                        r = vs_error(err, errno, "record unix binds (%s)", tiers[t]);
                        bpf_link__destroy(l);
                        bpf_link__destroy(lr);
                        vs_shared__destroy(sk);
                        continue;
                }
                r = pin_link(l, dir, "link-unix-bind", "the unix bind recorder", err);
                if (r == 0 && lr)
                        r = pin_link(lr, dir, "link-unix-release", "the unix close recorder", err);
                else
                        bpf_link__destroy(lr);
                if (r == 0)
                        r = attach_guard(sk, dir, guard, err);
                /* last: its pin says the shared part is whole */
                if (r == 0)
                        r = pin_link(bpf_program__attach_netns(sk->progs.vs_sk_lookup, ns), dir,
                                     "link-sk-lookup", "sk_lookup to the host's network namespace",
                                     err);
                vs_shared__destroy(sk);
                if (r == 0 && (known < 0 || t != hint))
                        tier_note(t);
                return r;
        }
        return r;
}

/*
 * Is the abstract name @k free?  Bind it ourselves for a moment: the only
 * proof that does not trust how a guest's bytes print in /proc/net/unix.
 * (A stream socket that never listens: nobody can connect to it meanwhile.)
 */
static bool unix_free(const struct vs_unix_key *k)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (k->len == 0 || k->len > sizeof sa.sun_path)
                return false;
        memcpy(sa.sun_path, k->path, k->len);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        return fd >= 0 && bind(fd, (struct sockaddr *)&sa,
                               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + k->len)) == 0;
}

/* How often names no socket holds any more are looked for (key 0 of vs_unix_n: no guest's). */
#define UNIX_SWEEP_S 10

/* Is it time for a sweep?  Then the time of this one is noted. */
static bool sweep_due(int counts)
{
        struct timespec now;
        clock_gettime(CLOCK_BOOTTIME, &now);
        __u32 zero = 0, last = 0, t = (__u32)now.tv_sec;
        if (bpf_map_lookup_elem(counts, &zero, &last) == 0 && last <= t && t - last < UNIX_SWEEP_S)
                return false;
        return bpf_map_update_elem(counts, &zero, &t, BPF_ANY) == 0;
}

/*
 * Tidy the table of abstract unix names: drop the names of guest @ctx (it
 * stopped, or an earlier run with its id did not), and with @sweep every
 * name no socket holds any more (where the kernel lets us see binds only,
 * closes go unseen), at most every UNIX_SWEEP_S seconds.  One pass over a
 * table of 262144 buckets (0.27 ms empty), and none when there is nothing
 * to do: this ran four passes and a recount at every isolate start.
 */
static void unix_tidy(const char *dir, unsigned ctx, bool sweep)
{
        char path[PATH_MAX];
        pin_path(path, sizeof path, dir, "vs_unix");
        _cleanup_close_ int names = bpf_obj_get(path);
        pin_path(path, sizeof path, dir, "vs_unix_n");
        _cleanup_close_ int counts = bpf_obj_get(path);
        if (names < 0 || counts < 0)
                return;
        __u32 held = 0;
        bool own = ctx && bpf_map_lookup_elem(counts, &ctx, &held) == 0 && held > 0;
        sweep = sweep && sweep_due(counts);
        if (own || sweep) {
                struct vs_unix_key key, next;
                struct vs_unix_owner o;
                bool more = bpf_map_get_next_key(names, NULL, &next) == 0;
                while (more) {
                        key = next;
                        more = bpf_map_get_next_key(names, &key, &next) == 0;
                        if (bpf_map_lookup_elem(names, &key, &o) < 0)
                                continue;
                        bool drop = own && o.ctx == ctx;
                        if (!drop && sweep && unix_free(&key)) {
                                /* our own bind may have dropped it (its count back) already */
                                struct vs_unix_owner now;
                                drop =
                                    bpf_map_lookup_elem(names, &key, &now) == 0 && now.ctx == o.ctx;
                        }
                        if (!drop || bpf_map_delete_elem(names, &key) < 0)
                                continue;
                        /* its count back, as the programs give it when they see a close */
                        __u32 n;
                        if (o.ctx && o.ctx != ctx && bpf_map_lookup_elem(counts, &o.ctx, &n) == 0 &&
                            n > 0) {
                                n--;
                                (void)bpf_map_update_elem(counts, &o.ctx, &n, BPF_EXIST);
                        }
                }
        }
        if (ctx)
                (void)bpf_map_delete_elem(counts, &ctx);
}

/* With the last isolate guest gone: the pins, then our bpffs. */
static void teardown_if_unused(const char *dir, int guests_fd)
{
        __u64 key;
        if (guests_fd >= 0 && bpf_map_get_next_key(guests_fd, NULL, &key) == 0)
                return;
        bpffs_remove(dir, 1); /* the pins: what holds the programs and maps */
        (void)umount2(dir, MNT_DETACH);
        (void)rmdir(dir);
}

int vs_net_isolate_check(const VsNetConfig *cfg, const char *default_dev, VsError *err)
{
        for (int i = 0; i < cfg->n_addrs; i++) {
                const VsNetAddr *a = &cfg->addrs[i];
                const char *dev = a->dev[0] ? a->dev : default_dev;
                char buf[96];
                vs_net_addr_format(a, buf, sizeof buf);
                unsigned ifindex = if_nametoindex(dev);
                if (!ifindex)
                        return vs_error_input(err,
                                              "address %s: this host has no interface %s (see ip "
                                              "link; name one with @DEVICE)",
                                              buf, dev);
                unsigned host = a->family == AF_INET ? 32 : 128;
                if (a->prefix < host && ifindex == 1) { /* the loopback device */
                        char one[96], bare[96];
                        VsNetAddr h = *a;
                        h.dev[0] = '\0';
                        vs_net_addr_format(&h, bare, sizeof bare);
                        h.prefix = host;
                        vs_net_addr_format(&h, one, sizeof one);
                        return vs_error_input(err,
                                              "address %s on %s would make this host answer all "
                                              "of its /%u itself, cutting it off from that "
                                              "network: say %s, or put it on the interface of "
                                              "that network (%s@eth0)",
                                              buf, dev, a->prefix, one, bare);
                }
        }
        return 0;
}

/* The guest's settings, as its programs read them from its cgroup's storage. */
static void conf_fill(const VsNetSpec *s, struct vs_conf *c)
{
        memset(c, 0, sizeof *c);
        c->ctx = s->ctx;
        c->lback = vs_net_lback(s->ctx);
        c->bind_ok = s->low_ports ? 3 : 1;
        for (int i = 0; i < s->cfg->n_addrs; i++) {
                const VsNetAddr *a = &s->cfg->addrs[i];
                if (a->family == AF_INET)
                        memcpy(&c->addr4[c->n4++], a->addr, 4);
                else
                        memcpy(c->addr6[c->n6++], a->addr, 16);
        }
}

static int map_get(const char *dir, const char *name, VsError *err)
{
        char path[PATH_MAX];
        pin_path(path, sizeof path, dir, name);
        int fd = bpf_obj_get(path);
        return fd < 0 ? vs_error(err, errno, "open %s", path) : fd;
}

int vs_net_isolate_start(const VsNetSpec *s, const VsCgroup *cg, VsError *err)
{
        char path[PATH_MAX], pdir[PATH_MAX];
        _cleanup_close_ int lock = -EBADF;
        _cleanup_close_ int cgfd = -EBADF;
        _cleanup_close_ int addrs_fd = -EBADF;
        _cleanup_close_ int guests_fd = -EBADF;
        VsNl *nl = NULL;
        bool added[VS_NET_MAX_ADDRS] = {false};
        struct vs_conf conf;
        int r;

        const char *cgdir = vs_cgroup_v2_path(cg);
        if (!cgdir)
                return vs_error_input(err, "net mode isolate needs cgroup2 (cgroup-BPF); this "
                                           "host has only cgroup v1 (say mode = netns or none)");
        r = vs_net_isolate_check(s->cfg, s->device, err);
        if (r < 0)
                return r;
        r = bpf_dir_open(s->bpf_dir, &lock, err);
        if (r < 0)
                return r;
        r = progs_dir(pdir, sizeof pdir, s->bpf_dir);
        if (r < 0)
                return vs_error(err, -r, "%s", s->bpf_dir);
        r = progs_ensure(s->bpf_dir, pdir, err);
        if (r < 0)
                return r;
        pin_path(path, sizeof path, s->bpf_dir, "link-sk-lookup");
        bool shared = access(path, F_OK) == 0;
        addrs_fd = map_get(s->bpf_dir, "vs_addrs", err);
        if (addrs_fd < 0)
                return addrs_fd;
        guests_fd = map_get(s->bpf_dir, "vs_guests", err);
        if (guests_fd < 0)
                return guests_fd;

        nl = vs_nl_open(err);
        if (!nl)
                return -EIO;
        r = addrs_add(s, nl, addrs_fd, added, err);
        if (r < 0)
                goto fail;

        cgfd = open(cgdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        __u64 id = cgroup_id(cgdir);
        if (cgfd < 0 || !id) {
                r = vs_error(err, errno ? errno : EIO, "open %s", cgdir);
                goto fail;
        }
        conf_fill(s, &conf);
        r = progs_attach(pdir, cgfd, id, &conf, err);
        if (r < 0) {
                vs_error_prefix(err, "%s", cgdir);
                goto fail;
        }
        if (!shared) {
                r = attach_shared(s->bpf_dir, s->unix_guard ? s->unix_guard : "/", err);
                if (r < 0)
                        goto fail;
        }

        unix_tidy(s->bpf_dir, s->ctx, true); /* what an earlier run of the same id left */
        /* what the shared programs must know of this guest */
        __u32 ctx = s->ctx;
        if (bpf_map_update_elem(guests_fd, &id, &ctx, BPF_ANY) < 0) {
                r = vs_error(err, errno, "register the guest's cgroup");
                goto fail;
        }
        for (int i = 0; i <= s->cfg->n_addrs; i++) {
                struct vs_addr_key k = {.family = AF_INET, .addr = {vs_net_lback(s->ctx)}};
                if (i < s->cfg->n_addrs)
                        addr_key(&k, &s->cfg->addrs[i]);
                if (bpf_map_update_elem(addrs_fd, &k, &ctx, BPF_ANY) < 0) {
                        r = vs_error(err, errno, "register the guest's addresses");
                        goto fail;
                }
        }
        if (s->cfg->nat) {
                r = vs_nat_add(s->cfg, NULL, err);
                if (r < 0)
                        goto fail;
        }
        vs_nl_close(nl);
        return 0;

fail:
        /* the programs go with the cgroup the caller removes; the addresses here */
        addrs_del(s, nl, -EBADF, added);
        vs_nl_close(nl);
        return r;
}

/*
 * The cgroup ids isolate guest @ctx runs in (its own, and those of earlier
 * runs that did not stop), up to @max.  Read in batches of the whole table:
 * a lookup a guest was 1.7 ms a stop with 1000 isolate guests running.
 */
static int guest_cgroups(int guests_fd, unsigned ctx, __u64 *ids, int max)
{
        enum { BATCH = 256 };
        __u64 keys[BATCH], in = 0, out = 0;
        __u32 vals[BATCH];
        int n = 0;
        for (bool first = true;; first = false) {
                __u32 count = BATCH;
                int r = bpf_map_lookup_batch(guests_fd, first ? NULL : &in, &out, keys, vals,
                                             &count, NULL);
                if (r < 0 && r != -ENOENT)
                        break; /* no batches here (or a bucket too full): one key at a time */
                for (__u32 i = 0; i < count && n < max; i++)
                        if (vals[i] == ctx)
                                ids[n++] = keys[i];
                if (r == -ENOENT)
                        return n;
                in = out;
        }
        n = 0;
        __u64 key, next;
        __u32 v;
        bool more = bpf_map_get_next_key(guests_fd, NULL, &next) == 0;
        while (more && n < max) {
                key = next;
                more = bpf_map_get_next_key(guests_fd, &key, &next) == 0;
                if (bpf_map_lookup_elem(guests_fd, &key, &v) == 0 && v == ctx)
                        ids[n++] = key;
        }
        return n;
}

int vs_net_isolate_stop(const VsNetSpec *s, VsError *err)
{
        char path[PATH_MAX];
        _cleanup_close_ int lock = -EBADF;
        (void)err;

        if (access(s->bpf_dir, F_OK) < 0)
                return 0; /* no isolate guest ever ran here */
        int r = bpf_dir_open(s->bpf_dir, &lock, err);
        if (r < 0)
                return r;
        pin_path(path, sizeof path, s->bpf_dir, "vs_addrs");
        _cleanup_close_ int addrs = bpf_obj_get(path);
        pin_path(path, sizeof path, s->bpf_dir, "vs_guests");
        _cleanup_close_ int guests = bpf_obj_get(path);

        if (addrs >= 0) {
                for (int i = 0; i <= s->cfg->n_addrs; i++) {
                        struct vs_addr_key k = {.family = AF_INET, .addr = {vs_net_lback(s->ctx)}};
                        __u32 owner;
                        if (i < s->cfg->n_addrs)
                                addr_key(&k, &s->cfg->addrs[i]);
                        if (bpf_map_lookup_elem(addrs, &k, &owner) == 0 && owner == s->ctx)
                                (void)bpf_map_delete_elem(addrs, &k);
                }
        }
        /* its cgroup (or cgroups, of earlier runs that did not stop) */
        __u64 ids[16];
        int n;
        do {
                n = guests >= 0 ? guest_cgroups(guests, s->ctx, ids, (int)ARRAY_SIZE(ids)) : 0;
                for (int i = 0; i < n; i++)
                        if (bpf_map_delete_elem(guests, &ids[i]) < 0)
                                n = 0; /* not ours to delete: no second pass */
        } while (n == (int)ARRAY_SIZE(ids));
        VsNl *nl = vs_nl_open(NULL);
        if (nl) {
                addrs_del(s, nl, addrs, NULL);
                vs_nl_close(nl);
        }
        if (s->cfg->nat)
                (void)vs_nat_del(s->cfg, NULL);
        unix_tidy(s->bpf_dir, s->ctx, false);
        teardown_if_unused(s->bpf_dir, guests);
        return 0;
}

int vs_net_traffic(const char *bpf_dir, unsigned ctx, const char *cgdir, VsTraffic *ret)
{
        char path[PATH_MAX];
        _cleanup_close_ int guests = map_get(bpf_dir, "vs_guests", NULL);
        if (guests < 0)
                return -ENOENT;
        /* its cgroup's id, if the table says so; else a pass over the table */
        __u64 id = cgdir ? cgroup_id(cgdir) : 0;
        __u32 owner;
        if ((!id || bpf_map_lookup_elem(guests, &id, &owner) < 0 || owner != ctx) &&
            guest_cgroups(guests, ctx, &id, 1) != 1)
                return -ENOENT;
        int ncpu = libbpf_num_possible_cpus();
        if (ncpu <= 0)
                return -EIO;
        _cleanup_free_ struct vs_traffic *v = calloc((size_t)ncpu, sizeof *v);
        if (!v)
                return -ENOMEM;
        /* in the storage of the programs it was started with: this build's or an older one's */
        DIR *d = opendir(bpf_dir);
        struct dirent *e;
        int r = -ENOENT;
        while (d && r < 0 && (e = readdir(d))) {
                if (strncmp(e->d_name, "isolate-", 8) != 0)
                        continue;
                if (snprintf(path, sizeof path, "%s/%s/vs_traffic", bpf_dir, e->d_name) >=
                    (int)sizeof path)
                        continue;
                _cleanup_close_ int fd = bpf_obj_get(path);
                if (fd >= 0 && bpf_map_lookup_elem(fd, &id, v) == 0)
                        r = 0;
        }
        if (d)
                closedir(d);
        if (r < 0)
                return r;
        memset(ret, 0, sizeof *ret);
        for (int c = 0; c < ncpu; c++) {
                ret->rx_bytes += v[c].rx_bytes;
                ret->rx_packets += v[c].rx_packets;
                ret->tx_bytes += v[c].tx_bytes;
                ret->tx_packets += v[c].tx_packets;
        }
        return 0;
}
