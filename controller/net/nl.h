/* nl.h — internal to controller/net: the libnl plumbing shared by link.c and
 * tap.c (socket lifetime, libnl error → errno, link lookups). Not part of the
 * module's contract; other modules include net/net.h only. */
#pragma once

#include "util/util.h"

#include <netlink/netlink.h>
#include <netlink/route/link.h>

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_sock *, nl_socket_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_link *, rtnl_link_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_cache *, nl_cache_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_addr *, nl_addr_put)
#define _cleanup_nl_sock_   _cleanup_(nl_socket_freep)
#define _cleanup_rtnl_link_ _cleanup_(rtnl_link_putp)

/* Map a libnl error (-NLE_*, or positive) to -errno. */
int net_nlerr_to_errno(int nlerr);

/* A connected NETLINK_ROUTE socket with FD_CLOEXEC guaranteed. */
int net_nl_open(struct nl_sock **ret);

/* Fetch link `name` from the kernel. -ENODEV when there is none (not
 * logged: callers decide whether that is an error). */
int net_link_get(struct nl_sock *sk, const char *name, struct rtnl_link **ret);

/* Set master (0 = leave), MTU (0 = leave), alias (NULL = leave) and IFF_UP
 * on an existing link in one RTM_NEWLINK. */
int net_link_configure(struct nl_sock *sk, struct rtnl_link *link, int master_ifindex, unsigned mtu,
		       const char *alias);

/* True for a tun/tap device (kind "tun") and, with want_tap, only a TAP
 * (Ethernet frames) one. */
bool net_link_is_tun(struct rtnl_link *link, bool want_tap);
