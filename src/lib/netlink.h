/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "error.h"

/* Bring an interface up by index in the caller's network namespace (rtnetlink). */
int vs_netlink_link_up(int ifindex, VsError *err);
