/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "netlink.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "util.h"

struct VsNl {
        struct mnl_socket *sock;
        unsigned seq;
        unsigned portid;
};

VsNl *vs_nl_open(VsError *err)
{
        VsNl *nl = calloc(1, sizeof *nl);
        if (!nl) {
                vs_error(err, ENOMEM, "rtnetlink");
                return NULL;
        }
        nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
        if (!nl->sock || mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
                vs_error(err, errno, "open rtnetlink socket");
                vs_nl_close(nl);
                return NULL;
        }
        nl->seq = (unsigned)time(NULL);
        nl->portid = mnl_socket_get_portid(nl->sock);
        return nl;
}

void vs_nl_close(VsNl *nl)
{
        if (!nl)
                return;
        if (nl->sock)
                mnl_socket_close(nl->sock);
        free(nl);
}

static struct nlmsghdr *put(char *buf, int type, int flags, VsNl *nl)
{
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = (uint16_t)type;
        nlh->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
        nlh->nlmsg_seq = ++nl->seq;
        return nlh;
}

/* Send, run @cb over the answer until its end; -errno (the kernel's, for a NACK). */
static int talk(VsNl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
        char buf[8192];
        if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
                return -errno;
        unsigned seq = nlh->nlmsg_seq;
        for (;;) {
                ssize_t n = mnl_socket_recvfrom(nl->sock, buf, sizeof buf);
                if (n < 0)
                        return -errno;
                int r = mnl_cb_run(buf, (size_t)n, seq, nl->portid, cb, data);
                if (r < 0)
                        return -errno;
                if (r == MNL_CB_STOP)
                        return 0;
        }
}

int vs_nl_link_up(VsNl *nl, int ifindex, VsError *err)
{
        char buf[512];
        struct nlmsghdr *nlh = put(buf, RTM_NEWLINK, NLM_F_ACK, nl);
        struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
        ifm->ifi_family = AF_UNSPEC;
        ifm->ifi_index = ifindex;
        ifm->ifi_flags = IFF_UP;
        ifm->ifi_change = IFF_UP;
        int r = talk(nl, nlh, NULL, NULL);
        return r < 0 ? vs_error(err, -r, "rtnetlink: set link %d up", ifindex) : 0;
}

int vs_netlink_link_up(int ifindex, VsError *err)
{
        VsNl *nl = vs_nl_open(err);
        if (!nl)
                return err && err->code ? -err->code : -EIO;
        int r = vs_nl_link_up(nl, ifindex, err);
        vs_nl_close(nl);
        return r;
}

static int index_cb(const struct nlmsghdr *nlh, void *data)
{
        const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
        *(int *)data = ifm->ifi_index;
        return MNL_CB_OK;
}

int vs_nl_link_index(VsNl *nl, const char *name)
{
        char buf[512];
        if (strlen(name) >= IFNAMSIZ)
                return 0;
        struct nlmsghdr *nlh = put(buf, RTM_GETLINK, NLM_F_ACK, nl);
        struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
        ifm->ifi_family = AF_UNSPEC;
        mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
        int idx = 0;
        return talk(nl, nlh, index_cb, &idx) < 0 ? 0 : idx;
}

int vs_nl_bridge_ensure(VsNl *nl, const char *name, VsError *err)
{
        char buf[512];
        int idx = vs_nl_link_index(nl, name);
        if (idx == 0) {
                struct nlmsghdr *nlh = put(buf, RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE, nl);
                struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
                ifm->ifi_family = AF_UNSPEC;
                mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
                struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
                mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
                mnl_attr_nest_end(nlh, li);
                int r = talk(nl, nlh, NULL, NULL);
                if (r < 0 && r != -EEXIST)
                        return vs_error(err, -r, "rtnetlink: create bridge %s", name);
                idx = vs_nl_link_index(nl, name);
                if (idx == 0)
                        return vs_error(err, ENODEV, "bridge %s vanished", name);
        }
        return vs_nl_link_up(nl, idx, err);
}

int vs_nl_veth_create(VsNl *nl, const char *host, const char *master, const char *peer,
                      pid_t peer_pid, VsError *err)
{
        char buf[1024];
        int mi = 0;
        if (master) {
                mi = vs_nl_link_index(nl, master);
                if (mi == 0)
                        return vs_error(err, ENODEV, "no bridge %s", master);
        }
        struct nlmsghdr *nlh = put(buf, RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, nl);
        struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
        ifm->ifi_family = AF_UNSPEC; /* down until its IPv6 is set (below) */
        mnl_attr_put_strz(nlh, IFLA_IFNAME, host);
        if (mi)
                mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)mi);
        /*
         * One queue each way, as veth ends up with anyway: made with one per CPU, it cuts them
         * to one after registering, and each cut waits an expedited RCU grace period.
         */
        mnl_attr_put_u32(nlh, IFLA_NUM_TX_QUEUES, 1);
        mnl_attr_put_u32(nlh, IFLA_NUM_RX_QUEUES, 1);
        struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
        mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
        struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
        struct nlattr *p = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
        struct ifinfomsg *pm = mnl_nlmsg_put_extra_header(nlh, sizeof *pm);
        pm->ifi_family = AF_UNSPEC;
        mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
        mnl_attr_put_u32(nlh, IFLA_NET_NS_PID, (uint32_t)peer_pid);
        mnl_attr_put_u32(nlh, IFLA_NUM_TX_QUEUES, 1);
        mnl_attr_put_u32(nlh, IFLA_NUM_RX_QUEUES, 1);
        mnl_attr_nest_end(nlh, p);
        mnl_attr_nest_end(nlh, data);
        mnl_attr_nest_end(nlh, li);
        int r = talk(nl, nlh, NULL, NULL);
        if (r == -EXFULL) /* BR_MAX_PORTS */
                return vs_error(err, EXFULL,
                                "the bridge %s has no free port: a Linux bridge takes 1023 "
                                "(start more netns guests from an installation with another "
                                "bridge, host setting bridge, or use net mode isolate)",
                                master ? master : "");
        if (r < 0)
                return vs_error(err, -r, "rtnetlink: create veth %s", host);
        /*
         * The host end is a bridge port: no IPv6 address of its own.  With one it would
         * announce itself (duplicate address detection, router and listener reports), and the
         * bridge floods that to every guest: about six packets to each running guest a start.
         * Without IPv6 on the host (EAFNOSUPPORT) there is nothing to quiet.
         */
        nlh = put(buf, RTM_NEWLINK, NLM_F_ACK, nl);
        ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
        ifm->ifi_family = AF_UNSPEC;
        mnl_attr_put_strz(nlh, IFLA_IFNAME, host);
        struct nlattr *af = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
        struct nlattr *in6 = mnl_attr_nest_start(nlh, AF_INET6);
        mnl_attr_put_u8(nlh, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
        mnl_attr_nest_end(nlh, in6);
        mnl_attr_nest_end(nlh, af);
        r = talk(nl, nlh, NULL, NULL);
        if (r < 0 && r != -EAFNOSUPPORT)
                return vs_error(err, -r, "rtnetlink: no IPv6 address on %s", host);
        nlh = put(buf, RTM_NEWLINK, NLM_F_ACK, nl); /* up, by its name */
        ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
        ifm->ifi_family = AF_UNSPEC;
        ifm->ifi_flags = IFF_UP;
        ifm->ifi_change = IFF_UP;
        mnl_attr_put_strz(nlh, IFLA_IFNAME, host);
        r = talk(nl, nlh, NULL, NULL);
        return r < 0 ? vs_error(err, -r, "rtnetlink: set %s up", host) : 0;
}

int vs_nl_link_del(VsNl *nl, const char *name, VsError *err)
{
        char buf[512];
        int idx = vs_nl_link_index(nl, name);
        if (idx == 0)
                return 0;
        struct nlmsghdr *nlh = put(buf, RTM_DELLINK, NLM_F_ACK, nl);
        struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
        ifm->ifi_family = AF_UNSPEC;
        ifm->ifi_index = idx;
        int r = talk(nl, nlh, NULL, NULL);
        return r < 0 && r != -ENODEV ? vs_error(err, -r, "rtnetlink: delete %s", name) : 0;
}

static int addr_msg(VsNl *nl, int type, int flags, int ifindex, int family, const void *addr,
                    unsigned prefix, uint8_t proto)
{
        char buf[512];
        struct nlmsghdr *nlh = put(buf, type, NLM_F_ACK | flags, nl);
        struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
        size_t len = family == AF_INET ? 4 : 16;
        ifa->ifa_family = (uint8_t)family;
        ifa->ifa_prefixlen = (uint8_t)prefix;
        ifa->ifa_index = (unsigned)ifindex;
        ifa->ifa_scope = RT_SCOPE_UNIVERSE;
        mnl_attr_put(nlh, IFA_LOCAL, len, addr);
        mnl_attr_put(nlh, IFA_ADDRESS, len, addr);
        if (family == AF_INET6 && type == RTM_NEWADDR)
                mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD); /* usable at once */
        if (proto)
                mnl_attr_put_u8(nlh, IFA_PROTO, proto);
        return talk(nl, nlh, NULL, NULL);
}

int vs_nl_addr_add(VsNl *nl, int ifindex, int family, const void *addr, unsigned prefix,
                   uint8_t proto, VsError *err)
{
        int r = addr_msg(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, family, addr, prefix,
                         proto);
        return r < 0 ? vs_error(err, -r, "rtnetlink: add address") : 0;
}

int vs_nl_addr_del(VsNl *nl, int ifindex, int family, const void *addr, unsigned prefix,
                   VsError *err)
{
        int r = addr_msg(nl, RTM_DELADDR, 0, ifindex, family, addr, prefix, 0);
        return r < 0 && r != -EADDRNOTAVAIL ? vs_error(err, -r, "rtnetlink: delete address") : 0;
}

typedef struct Find {
        int family;
        const void *addr;
        int ifindex;
        uint8_t proto;
        bool found;
} Find;

static int find_attr(const struct nlattr *a, void *data)
{
        const struct nlattr **tb = data;
        int type = mnl_attr_get_type(a);
        if (type <= IFA_MAX && mnl_attr_type_valid(a, IFA_MAX) >= 0)
                tb[type] = a;
        return MNL_CB_OK;
}

static int find_cb(const struct nlmsghdr *nlh, void *data)
{
        Find *f = data;
        const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
        const struct nlattr *tb[IFA_MAX + 1] = {0};
        if (ifa->ifa_family != f->family || f->found)
                return MNL_CB_OK;
        mnl_attr_parse(nlh, sizeof *ifa, find_attr, tb);
        const struct nlattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
        size_t len = f->family == AF_INET ? 4 : 16;
        if (!a || mnl_attr_get_payload_len(a) != len ||
            memcmp(mnl_attr_get_payload(a), f->addr, len))
                return MNL_CB_OK;
        f->found = true;
        f->ifindex = (int)ifa->ifa_index;
        f->proto = tb[IFA_PROTO] ? mnl_attr_get_u8(tb[IFA_PROTO]) : 0;
        return MNL_CB_OK;
}

int vs_nl_addr_find(VsNl *nl, int family, const void *addr, int *ret_ifindex, uint8_t *ret_proto)
{
        char buf[512];
        struct nlmsghdr *nlh = put(buf, RTM_GETADDR, NLM_F_DUMP, nl);
        struct rtgenmsg *g = mnl_nlmsg_put_extra_header(nlh, sizeof *g);
        g->rtgen_family = (uint8_t)family;
        Find f = {.family = family, .addr = addr};
        int r = talk(nl, nlh, find_cb, &f);
        if (r < 0)
                return r;
        if (!f.found)
                return -ENOENT;
        *ret_ifindex = f.ifindex;
        *ret_proto = f.proto;
        return 0;
}

int vs_nl_route_add(VsNl *nl, int family, const void *dst, unsigned prefix, const void *gw,
                    VsError *err)
{
        char buf[512];
        struct nlmsghdr *nlh = put(buf, RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, nl);
        struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
        size_t len = family == AF_INET ? 4 : 16;
        rtm->rtm_family = (uint8_t)family;
        rtm->rtm_dst_len = (uint8_t)prefix;
        rtm->rtm_table = RT_TABLE_MAIN;
        rtm->rtm_protocol = RTPROT_STATIC;
        rtm->rtm_scope = RT_SCOPE_UNIVERSE;
        rtm->rtm_type = RTN_UNICAST;
        if (prefix)
                mnl_attr_put(nlh, RTA_DST, len, dst);
        mnl_attr_put(nlh, RTA_GATEWAY, len, gw);
        int r = talk(nl, nlh, NULL, NULL);
        return r < 0 ? vs_error(err, -r, "rtnetlink: add route") : 0;
}

typedef struct Best {
        int family;
        const unsigned char *dst;
        unsigned prefix;
        VsNlRoute *ret;
        bool found;
} Best;

static int best_cb(const struct nlmsghdr *nlh, void *data)
{
        Best *b = data;
        const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
        if (rtm->rtm_family != b->family || rtm->rtm_table != RT_TABLE_MAIN ||
            rtm->rtm_type != RTN_UNICAST || rtm->rtm_dst_len > b->prefix ||
            (b->found && rtm->rtm_dst_len <= b->ret->prefix))
                return MNL_CB_OK;
        VsNlRoute r = {.prefix = rtm->rtm_dst_len};
        size_t len = b->family == AF_INET ? 4 : 16;
        struct nlattr *a;
        mnl_attr_for_each(a, nlh, sizeof *rtm)
        {
                uint16_t t = mnl_attr_get_type(a);
                if ((t == RTA_DST || t == RTA_GATEWAY) && mnl_attr_get_payload_len(a) == len)
                        memcpy(t == RTA_DST ? r.dst : r.gw, mnl_attr_get_payload(a), len);
                else if (t == RTA_OIF && mnl_attr_get_payload_len(a) == 4)
                        r.ifindex = (int)mnl_attr_get_u32(a);
                if (t == RTA_GATEWAY)
                        r.has_gw = true;
        }
        if (!vs_prefix_contains(r.dst, r.prefix, b->dst))
                return MNL_CB_OK;
        *b->ret = r;
        b->found = true;
        return MNL_CB_OK;
}

int vs_nl_route_best(VsNl *nl, int family, const void *dst, unsigned prefix, VsNlRoute *ret)
{
        char buf[512];
        struct nlmsghdr *nlh = put(buf, RTM_GETROUTE, NLM_F_DUMP, nl);
        struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
        rtm->rtm_family = (uint8_t)family;
        Best b = {.family = family, .dst = dst, .prefix = prefix, .ret = ret};
        int r = talk(nl, nlh, best_cb, &b);
        if (r < 0)
                return r;
        return b.found ? 0 : -ENOENT;
}
