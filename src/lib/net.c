/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "context.h"
#include "mount.h"
#include "netlink.h"
#include "util.h"

static int why(char *buf, size_t size, const char *msg)
{
        snprintf(buf, size, "%s", msg);
        return -EINVAL;
}

static bool dev_valid(const char *d)
{
        size_t n = strlen(d);
        if (n == 0 || n >= IFNAMSIZ || streq(d, ".") || streq(d, ".."))
                return false;
        for (size_t i = 0; i < n; i++)
                if (d[i] <= ' ' || d[i] == '/' || d[i] == ':' || d[i] == '@' || d[i] == 0x7f)
                        return false;
        return true;
}

/* "IP[/PREFIX]" into family/addr/prefix; @host: no prefix means a host address. */
static int parse_prefixed(const char *s, int *family, unsigned char addr[16], unsigned *prefix,
                          bool need_prefix, char *w, size_t ws)
{
        char ip[64];
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        if (n == 0 || n >= sizeof ip)
                return why(w, ws, "not an IPv4 or IPv6 address");
        memcpy(ip, s, n);
        ip[n] = '\0';
        memset(addr, 0, 16);
        if (inet_pton(AF_INET, ip, addr) == 1)
                *family = AF_INET;
        else if (inet_pton(AF_INET6, ip, addr) == 1)
                *family = AF_INET6;
        else
                return why(w, ws, "not an IPv4 or IPv6 address");
        unsigned max = *family == AF_INET ? 32 : 128;
        if (!slash) {
                if (need_prefix)
                        return why(w, ws, "say PREFIX/LENGTH");
                *prefix = max;
                return 0;
        }
        unsigned long long p;
        if (vs_parse_u64(slash + 1, &p) < 0 || p > max)
                return why(w, ws,
                           *family == AF_INET ? "the prefix length is 0 to 32"
                                              : "the prefix length is 0 to 128");
        *prefix = (unsigned)p;
        return 0;
}

static bool zero(const unsigned char *a, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (a[i])
                        return false;
        return true;
}

int vs_net_addr_parse(const char *s, VsNetAddr *ret, char *w, size_t ws)
{
        VsNetAddr a = {0};
        char buf[128];
        if (strlen(s) >= sizeof buf)
                return why(w, ws, "too long");
        snprintf(buf, sizeof buf, "%s", s);
        char *at = strchr(buf, '@');
        if (at) {
                *at = '\0';
                if (!dev_valid(at + 1))
                        return why(w, ws, "not an interface name after @ (1-15 characters)");
                snprintf(a.dev, sizeof a.dev, "%s", at + 1);
        }
        int r = parse_prefixed(buf, &a.family, a.addr, &a.prefix, false, w, ws);
        if (r < 0)
                return r;
        size_t len = a.family == AF_INET ? 4 : 16;
        if (a.prefix == 0)
                return why(w, ws, "a prefix length of 0 makes every address local");
        if (zero(a.addr, len))
                return why(w, ws, "the unspecified address cannot be a guest's");
        if (a.family == AF_INET) {
                if (a.addr[0] == 127)
                        return why(w, ws, "127.0.0.0/8 is loopback: every guest has its own");
                if (a.addr[0] >= 224)
                        return why(w, ws, "a multicast or reserved address cannot be a guest's");
        } else {
                static const unsigned char lo[16] = {[15] = 1};
                if (!memcmp(a.addr, lo, 16))
                        return why(w, ws, "::1 is loopback");
                if (a.addr[0] == 0xff)
                        return why(w, ws, "a multicast address cannot be a guest's");
                if (a.addr[0] == 0 && a.addr[10] == 0xff && a.addr[11] == 0xff && zero(a.addr, 10))
                        return why(w, ws, "say an IPv4-mapped address as IPv4");
        }
        *ret = a;
        return 0;
}

const char *vs_net_addr_format(const VsNetAddr *a, char *buf, size_t size)
{
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(a->family, a->addr, ip, sizeof ip);
        snprintf(buf, size, "%s/%u%s%s", ip, a->prefix, a->dev[0] ? "@" : "", a->dev);
        return buf;
}

int vs_net_route_parse(const char *s, VsNetRoute *ret, char *w, size_t ws)
{
        VsNetRoute rt = {0};
        char buf[128];
        if (strlen(s) >= sizeof buf)
                return why(w, ws, "too long");
        snprintf(buf, sizeof buf, "%s", s);
        char *via = strstr(buf, " via ");
        const char *gw = buf;
        if (via) {
                *via = '\0';
                gw = via + 5;
                while (*gw == ' ')
                        gw++;
                int r = parse_prefixed(buf, &rt.family, rt.dst, &rt.prefix, true, w, ws);
                if (r < 0)
                        return r;
        }
        int fam;
        unsigned char g[16] = {0};
        if (inet_pton(AF_INET, gw, g) == 1)
                fam = AF_INET;
        else if (inet_pton(AF_INET6, gw, g) == 1)
                fam = AF_INET6;
        else
                return why(w, ws,
                           "the gateway is not an IPv4 or IPv6 address (say IP or "
                           "PREFIX/LEN via IP)");
        if (via && fam != rt.family)
                return why(w, ws, "the route and its gateway are of different families");
        rt.family = fam;
        memcpy(rt.gw, g, 16);
        *ret = rt;
        return 0;
}

const char *vs_net_route_format(const VsNetRoute *r, char *buf, size_t size)
{
        char dst[INET6_ADDRSTRLEN], gw[INET6_ADDRSTRLEN];
        inet_ntop(r->family, r->gw, gw, sizeof gw);
        if (r->prefix == 0) {
                snprintf(buf, size, "%s", gw);
        } else {
                inet_ntop(r->family, r->dst, dst, sizeof dst);
                snprintf(buf, size, "%s/%u via %s", dst, r->prefix, gw);
        }
        return buf;
}

bool vs_net_addr_same(const VsNetAddr *a, const VsNetAddr *b)
{
        return a->family == b->family && !memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16);
}

bool vs_net_addr_in(const VsNetAddr *a, const VsNetAddr *net)
{
        return a->family == net->family && vs_prefix_contains(net->addr, net->prefix, a->addr);
}

uint32_t vs_net_lback(unsigned ctx)
{
        return htonl((127u << 24) | (1u << 16) | (ctx & 0xffff));
}

/* The host end of a netns guest's veth: "vs" and the context id. */
static void host_end(unsigned ctx, char name[IFNAMSIZ])
{
        snprintf(name, IFNAMSIZ, "vs%u", ctx);
}

int vs_net_netns_stop(const VsNetSpec *s, VsError *err)
{
        char host[IFNAMSIZ];
        host_end(s->ctx, host);
        if (s->cfg->nat)
                (void)vs_nat_del(s->cfg, NULL);
        VsNl *nl = vs_nl_open(err);
        if (!nl)
                return -EIO;
        int r = vs_nl_link_del(nl, host, err);
        vs_nl_close(nl);
        return r;
}

/* The bridge, up, with the host settings' addresses (the guests' gateways). */
static int bridge_ensure(VsNl *nl, const VsNetSpec *s, VsError *err)
{
        int r = vs_nl_bridge_ensure(nl, s->bridge, err);
        int br = r < 0 ? 0 : vs_nl_link_index(nl, s->bridge);
        for (int i = 0; r >= 0 && i < s->n_bridge_addrs; i++) {
                const VsNetAddr *a = &s->bridge_addrs[i];
                int where;
                uint8_t proto;
                char buf[96];
                if (vs_nl_addr_find(nl, a->family, a->addr, &where, &proto) < 0)
                        r = vs_nl_addr_add(nl, br, a->family, a->addr, a->prefix, VS_IFA_PROTO,
                                           err);
                else if (where != br)
                        r = vs_error_input(err,
                                           "bridge-address %s is an address of another "
                                           "interface of this host (give the bridge one of "
                                           "its own in the host settings)",
                                           vs_net_addr_format(a, buf, sizeof buf));
        }
        return r;
}

/* Inside the guest's namespace: lo and eth0 up, the addresses, the routes. */
static int setup_inside(const VsNetSpec *s, VsError *err)
{
        VsNl *nl = vs_nl_open(err);
        if (!nl)
                return -EIO;
        int r = vs_nl_link_up(nl, 1, err);
        int eth = r < 0 ? 0 : vs_nl_link_index(nl, "eth0");
        if (r >= 0 && eth == 0)
                r = vs_error(err, ENODEV, "no eth0 in the guest");
        /*
         * eth0 asks for no router: its routes are the guest file's, and the bridge floods each
         * solicitation to every guest, retried for an hour (backoff from 4 s to 3600 s).
         * Advertisements a router sends unasked still count; the guest may set it back.
         * (/proc/sys/net is the namespace's of whoever opens it: the guest's, here; through a
         * proc of our own, as the host's walks every netns guest's entries: vs_mount_new_proc.)
         */
        /* best effort: without IPv6 (ENOENT), or under a read-only /proc/sys, the default stays */
        if (r >= 0) {
                static const char rs[] = "/proc/sys/net/ipv6/conf/eth0/router_solicitations";
                _cleanup_close_ int proc = vs_mount_new_proc();
                (void)vs_write_file_at(proc >= 0 ? proc : AT_FDCWD, rs + (proc >= 0 ? 6 : 0), "0");
        }
        for (int i = 0; r >= 0 && i < s->cfg->n_addrs; i++) {
                const VsNetAddr *a = &s->cfg->addrs[i];
                char buf[96];
                r = vs_nl_addr_add(nl, eth, a->family, a->addr, a->prefix, VS_IFA_PROTO, err);
                if (r < 0)
                        vs_error_prefix(err, "%s", vs_net_addr_format(a, buf, sizeof buf));
        }
        if (r >= 0)
                r = vs_nl_link_up(nl, eth, err);
        for (int i = 0; r >= 0 && i < s->cfg->n_routes; i++) {
                const VsNetRoute *rt = &s->cfg->routes[i];
                char buf[128];
                r = vs_nl_route_add(nl, rt->family, rt->dst, rt->prefix, rt->gw, err);
                if (r < 0)
                        vs_error_prefix(err, "route %s", vs_net_route_format(rt, buf, sizeof buf));
        }
        vs_nl_close(nl);
        return r;
}

int vs_net_netns_setup(const VsNetSpec *s, pid_t pid, int pidfd, VsError *err)
{
        char host[IFNAMSIZ];
        int r;

        host_end(s->ctx, host);
        VsNl *nl = vs_nl_open(err);
        if (!nl)
                return -EIO;
        r = bridge_ensure(nl, s, err);
        if (r >= 0) {
                /* a pair left by a guest that died with its namespace held elsewhere */
                (void)vs_nl_link_del(nl, host, NULL);
                r = vs_nl_veth_create(nl, host, s->bridge, "eth0", pid, err);
        }
        vs_nl_close(nl);
        if (r < 0)
                return r;

        /* into the guest's namespace for the rest, and back */
        _cleanup_close_ int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (self < 0)
                return vs_error(err, errno, "open our network namespace");
        if (setns(pidfd, CLONE_NEWNET) < 0)
                return vs_error(err, errno, "enter the guest's network namespace");
        r = setup_inside(s, err);
        if (setns(self, CLONE_NEWNET) < 0)
                return vs_error(err, errno, "return to the host's network namespace");
        if (r >= 0 && s->cfg->nat)
                r = vs_nat_add(s->cfg, s->bridge, err);
        return r;
}

bool vs_net_addr_private(const VsNetAddr *a)
{
        const unsigned char *b = a->addr;
        if (a->family == AF_INET6)
                return (b[0] & 0xfe) == 0xfc;
        return b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168) ||
               (b[0] == 100 && (b[1] & 0xc0) == 64) || (b[0] == 198 && (b[1] & 0xfe) == 18);
}

int vs_net_shadow_notes(const VsNetConfig *cfg, const char *default_dev, char *buf, size_t size)
{
        int n = 0;
        size_t used = 0;
        if (size)
                buf[0] = '\0';
        VsNl *nl = NULL; /* opened for the first address with a network: most guests have none */
        for (int i = 0; i < cfg->n_addrs; i++) {
                const VsNetAddr *a = &cfg->addrs[i];
                size_t len = a->family == AF_INET ? 4 : 16;
                if (a->prefix >= len * 8)
                        continue;
                if (!nl && !(nl = vs_nl_open(NULL)))
                        return n;
                const char *dev = a->dev[0] ? a->dev : default_dev;
                int idx = vs_nl_link_index(nl, dev);
                VsNetAddr net = *a;
                for (unsigned b = a->prefix; b < len * 8; b++)
                        net.addr[b / 8] &= (unsigned char)~(0x80u >> (b % 8));
                VsNlRoute rt;
                if (vs_nl_route_best(nl, a->family, net.addr, a->prefix, &rt) < 0 ||
                    (rt.ifindex == idx && !rt.has_gw && rt.prefix == a->prefix))
                        continue;
                char mine[64], dst[INET6_ADDRSTRLEN] = "default", gw[INET6_ADDRSTRLEN],
                               ifname[IF_NAMESIZE] = "?", pre[8] = "";
                inet_ntop(a->family, net.addr, mine, sizeof mine);
                if (rt.prefix) {
                        inet_ntop(a->family, rt.dst, dst, sizeof dst);
                        snprintf(pre, sizeof pre, "/%u", rt.prefix);
                }
                if (rt.has_gw)
                        inet_ntop(a->family, rt.gw, gw, sizeof gw);
                if_indextoname((unsigned)rt.ifindex, ifname);
                if (used < size)
                        used += (size_t)snprintf(
                            buf + used, size - used,
                            "takes %s/%u from the host's route %s%s%s%s dev %s: the host reaches "
                            "that network on %s only while the guest runs (give the address "
                            "as a single host, /%zu, if that is not meant)\n",
                            mine, a->prefix, dst, pre, rt.has_gw ? " via " : "",
                            rt.has_gw ? gw : "", ifname, dev, len * 8);
                n++;
        }
        vs_nl_close(nl);
        return n;
}
