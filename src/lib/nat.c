/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Outbound NAT for guests, in nftables through its own library
 * (libnftables: the same commands as nft, without a subprocess).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>

#include "net.h"
#include "paths.h"
#include "util.h"

static const struct {
        int family;
        const char *nft, *key, *match, *match_dst;
} fams[] = {
    {AF_INET, "ip", "ipv4_addr", "ip saddr", "ip daddr"},
    {AF_INET6, "ip6", "ipv6_addr", "ip6 saddr", "ip6 daddr"},
};

/*
 * libnftables (and what it pulls in: libnftnl, libjansson, libxtables) is
 * loaded when a guest with nat = yes starts or stops, not by every command.
 */
static struct {
        bool loaded;
        __typeof__(nft_ctx_new) *ctx_new;
        __typeof__(nft_ctx_free) *ctx_free;
        __typeof__(nft_ctx_buffer_output) *buffer_output;
        __typeof__(nft_ctx_buffer_error) *buffer_error;
        __typeof__(nft_ctx_get_output_buffer) *get_output_buffer;
        __typeof__(nft_ctx_get_error_buffer) *get_error_buffer;
        __typeof__(nft_run_cmd_from_buffer) *run_cmd_from_buffer;
} lnft;

static int load_nft(VsError *err)
{
        if (lnft.loaded)
                return 0;
        void *h = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!h)
                return vs_error(err, ENOENT,
                                "load libnftables.so.1 for nat = yes (apt-get install "
                                "libnftables1): %s",
                                dlerror());
#define SYM(field, name)                                                                           \
        if (!(lnft.field = (__typeof__(lnft.field))dlsym(h, name)))                                \
                return vs_error(err, ENOENT, "libnftables.so.1 has no " name);
        SYM(ctx_new, "nft_ctx_new");
        SYM(ctx_free, "nft_ctx_free");
        SYM(buffer_output, "nft_ctx_buffer_output");
        SYM(buffer_error, "nft_ctx_buffer_error");
        SYM(get_output_buffer, "nft_ctx_get_output_buffer");
        SYM(get_error_buffer, "nft_ctx_get_error_buffer");
        SYM(run_cmd_from_buffer, "nft_run_cmd_from_buffer");
#undef SYM
        lnft.loaded = true;
        return 0;
}

/* Run @cmd; on failure the first line nft said, in @err. */
static int run(struct nft_ctx *nft, const char *cmd, VsError *err)
{
        if (lnft.run_cmd_from_buffer(nft, cmd) == 0)
                return 0;
        const char *e = lnft.get_error_buffer(nft);
        char first[200] = "";
        if (e)
                snprintf(first, sizeof first, "%.*s", (int)strcspn(e, "\n"), e);
        return err ? vs_error(err, EIO, "nftables: %s", first[0] ? first : cmd) : -EIO;
}

static struct nft_ctx *open_nft(VsError *err)
{
        if (load_nft(err) < 0)
                return NULL;
        struct nft_ctx *nft = lnft.ctx_new(NFT_CTX_DEFAULT);
        if (!nft) {
                vs_error(err, ENOMEM, "nftables");
                return NULL;
        }
        lnft.buffer_output(nft);
        lnft.buffer_error(nft);
        return nft;
}

static int lock_nat(VsError *err)
{
        return vs_lock_in(VS_HOST_RUN, VS_HOST_RUN "/nat.lock", err);
}

/* "{ A, B }" of @cfg's addresses of @family; false if it has none. */
static bool elements(const VsNetConfig *cfg, int family, char *buf, size_t size)
{
        size_t used = (size_t)snprintf(buf, size, "{ ");
        bool any = false;
        for (int i = 0; i < cfg->n_addrs && used < size; i++) {
                const VsNetAddr *a = &cfg->addrs[i];
                if (a->family != family)
                        continue;
                char ip[64];
                VsNetAddr h = *a;
                h.prefix = family == AF_INET ? 32 : 128;
                h.dev[0] = '\0';
                vs_net_addr_format(&h, ip, sizeof ip);
                ip[strcspn(ip, "/")] = '\0';
                used += (size_t)snprintf(buf + used, size - used, "%s%s", any ? ", " : "", ip);
                any = true;
        }
        if (used < size)
                snprintf(buf + used, size - used, " }");
        return any;
}

static const char *forwarding_path(int family)
{
        return family == AF_INET ? "/proc/sys/net/ipv4/ip_forward"
                                 : "/proc/sys/net/ipv6/conf/all/forwarding";
}

bool vs_net_forwarding(int family)
{
        char v[16];
        return vs_read_file_at(AT_FDCWD, forwarding_path(family), v, sizeof v) > 0 && v[0] != '0';
}

/* The comment on the forward chain's last rule: turn forwarding off with the table. */
#define TURNED_ON "vserver turned forwarding on"

/*
 * The forward chain of family @f, made once with the table's first netns
 * guest: the guests' traffic and the replies to it pass; where IPv4
 * forwarding was off, it is turned on and everything else dropped.
 */
static int forward_chain(struct nft_ctx *nft, size_t f, VsError *err)
{
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "list chain %s vserver forward", fams[f].nft);
        if (run(nft, cmd, NULL) == 0)
                return 0;
        bool turn_on = fams[f].family == AF_INET && !vs_net_forwarding(AF_INET);
        snprintf(cmd, sizeof cmd,
                 "add chain %1$s vserver forward { type filter hook forward priority filter; "
                 "policy accept; }\n"
                 "add rule %1$s vserver forward iifname @inside oifname @inside accept\n"
                 "add rule %1$s vserver forward %2$s @nat accept\n"
                 "add rule %1$s vserver forward %3$s @nat ct state established,related accept\n"
                 "%4$s",
                 fams[f].nft, fams[f].match, fams[f].match_dst,
                 turn_on ? "add rule ip vserver forward drop comment \"" TURNED_ON "\"\n" : "");
        int r = run(nft, cmd, err);
        if (r == 0 && turn_on) {
                int fd = open(forwarding_path(AF_INET), O_WRONLY | O_CLOEXEC);
                if (fd < 0 || vs_write_all(fd, "1", 1) < 0)
                        r = vs_error(err, errno, "turn on IPv4 forwarding (%s)",
                                     forwarding_path(AF_INET));
                if (fd >= 0)
                        close(fd);
        }
        return r;
}

/* One family's change: the guest's addresses in (the table made as it must be) or out. */
static int change(struct nft_ctx *nft, size_t f, const char *els, const char *bridge, bool add,
                  VsError *err)
{
        char cmd[4096];
        if (add) {
                /* one transaction: the table as it must be, then the guest's addresses */
                snprintf(cmd, sizeof cmd,
                         "add table %1$s vserver\n"
                         "add set %1$s vserver nat { type %2$s; comment \"guests with "
                         "nat = yes\"; }\n"
                         "add set %1$s vserver inside { type ifname; comment \"what stays on "
                         "this host\"; }\n"
                         "add element %1$s vserver inside { \"lo\" }\n"
                         "add chain %1$s vserver postrouting { type nat hook postrouting "
                         "priority srcnat; policy accept; }\n"
                         "flush chain %1$s vserver postrouting\n"
                         "add rule %1$s vserver postrouting %3$s @nat oifname != @inside "
                         "masquerade\n",
                         fams[f].nft, fams[f].key, fams[f].match);
                int r = run(nft, cmd, err);
                if (r == 0 && bridge) {
                        snprintf(cmd, sizeof cmd, "add element %s vserver inside { \"%s\" }",
                                 fams[f].nft, bridge);
                        r = run(nft, cmd, err);
                        if (r == 0)
                                r = forward_chain(nft, f, err);
                }
                if (r == 0) {
                        snprintf(cmd, sizeof cmd, "add element %s vserver nat %s", fams[f].nft,
                                 els);
                        r = run(nft, cmd, err);
                }
                return r;
        }
        snprintf(cmd, sizeof cmd, "delete element %s vserver nat %s", fams[f].nft, els);
        (void)run(nft, cmd, NULL); /* gone already: nothing to undo */
        /* the last guest's: the table goes too (the host as it was) */
        snprintf(cmd, sizeof cmd, "list set %s vserver nat", fams[f].nft);
        if (run(nft, cmd, NULL) < 0)
                return 0;
        const char *out = lnft.get_output_buffer(nft);
        if (!out || strstr(out, "elements ="))
                return 0;
        snprintf(cmd, sizeof cmd, "list chain %s vserver forward", fams[f].nft);
        bool turned_on = run(nft, cmd, NULL) == 0 && (out = lnft.get_output_buffer(nft)) &&
                         strstr(out, TURNED_ON);
        snprintf(cmd, sizeof cmd, "delete table %s vserver", fams[f].nft);
        if (run(nft, cmd, NULL) == 0 && turned_on) {
                int fd = open(forwarding_path(AF_INET), O_WRONLY | O_CLOEXEC);
                if (fd >= 0) {
                        (void)vs_write_all(fd, "0", 1);
                        close(fd);
                }
        }
        return 0;
}

static int nat(const VsNetConfig *cfg, const char *bridge, bool add, VsError *err)
{
        _cleanup_close_ int lock = lock_nat(err);
        if (lock < 0)
                return lock;
        struct nft_ctx *nft = open_nft(err);
        if (!nft)
                return err && err->code ? -err->code : -ENOMEM;
        int r = 0;
        for (size_t f = 0; f < ARRAY_SIZE(fams) && r == 0; f++) {
                char els[2048];
                if (elements(cfg, fams[f].family, els, sizeof els))
                        r = change(nft, f, els, bridge, add, err);
        }
        lnft.ctx_free(nft);
        return r;
}

int vs_nat_add(const VsNetConfig *cfg, const char *bridge, VsError *err)
{
        return nat(cfg, bridge, true, err);
}

int vs_nat_del(const VsNetConfig *cfg, VsError *err)
{
        return nat(cfg, NULL, false, err);
}
