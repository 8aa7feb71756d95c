/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "netlink.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <time.h>

#include "util.h"

int vs_netlink_link_up(int ifindex, VsError *err)
{
        char buf[8192];
        struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
        if (!nl)
                return vs_error(err, errno, "open rtnetlink socket");

        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = RTM_NEWLINK;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
        nlh->nlmsg_seq = (unsigned)time(NULL);
        struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
        ifm->ifi_family = AF_UNSPEC;
        ifm->ifi_index = ifindex;
        ifm->ifi_flags = IFF_UP;
        ifm->ifi_change = IFF_UP;

        int r = 0;
        if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
            mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
                r = vs_error(err, errno, "rtnetlink: set link %d up", ifindex);
        } else {
                ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof buf);
                if (n < 0)
                        r = vs_error(err, errno, "rtnetlink: set link %d up", ifindex);
                else if (mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, mnl_socket_get_portid(nl), NULL,
                                    NULL) < 0)
                        r = vs_error(err, errno, "rtnetlink: set link %d up", ifindex);
        }
        mnl_socket_close(nl);
        return r;
}
