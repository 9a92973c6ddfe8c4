/* link.c — netlink plumbing and the link-level operations of net.h that are
 * not tap specific: bridge ensure, list, exists. One short-lived socket per
 * public call (see net.h for why). */
#include "net/net.h"
#include "net/nl.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netlink/route/addr.h>
#include <netlink/route/link/bridge.h>

DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_addr *, rtnl_addr_put)

int net_nlerr_to_errno(int nlerr)
{
	static const int map[NLE_MAX + 1] = {
		[NLE_INTR] = EINTR,           [NLE_BAD_SOCK] = EBADF,
		[NLE_AGAIN] = EAGAIN,         [NLE_NOMEM] = ENOMEM,
		[NLE_EXIST] = EEXIST,         [NLE_INVAL] = EINVAL,
		[NLE_RANGE] = ERANGE,         [NLE_MSGSIZE] = EMSGSIZE,
		[NLE_OPNOTSUPP] = EOPNOTSUPP, [NLE_AF_NOSUPPORT] = EAFNOSUPPORT,
		[NLE_OBJ_NOTFOUND] = ENODEV,  [NLE_NOADDR] = EADDRNOTAVAIL,
		[NLE_BUSY] = EBUSY,           [NLE_NOACCESS] = EACCES,
		[NLE_PERM] = EPERM,           [NLE_NODEV] = ENODEV,
	};
	int e = abs(nlerr);

	if (e == 0)
		return 0;
	return -(e <= NLE_MAX && map[e] ? map[e] : EIO);
}

int net_nl_open(struct nl_sock **ret)
{
	_cleanup_nl_sock_ struct nl_sock *sk = nl_socket_alloc();
	int r, fd, fl;

	if (!sk)
		return log_errno(ENOMEM, "netlink: allocate socket: %m");
	r = nl_connect(sk, NETLINK_ROUTE);
	if (r < 0)
		return log_errno(net_nlerr_to_errno(r), "netlink: connect: %s", nl_geterror(r));
	/* libnl >= 3.2.28 creates the socket with SOCK_CLOEXEC; make sure, so a
	 * VMM we spawn never inherits a route socket. */
	fd = nl_socket_get_fd(sk);
	fl = fcntl(fd, F_GETFD);
	if (fl < 0 || (!(fl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0))
		return log_errno(errno, "netlink: set FD_CLOEXEC: %m");
	*ret = TAKE_PTR(sk);
	return 0;
}

int net_link_get(struct nl_sock *sk, const char *name, struct rtnl_link **ret)
{
	struct rtnl_link *link = NULL;
	int r;

	r = rtnl_link_get_kernel(sk, 0, name, &link);
	if (r < 0)
		return net_nlerr_to_errno(r);
	*ret = link;
	return 0;
}

int net_link_configure(struct nl_sock *sk, struct rtnl_link *link, int master_ifindex, unsigned mtu,
		       const char *alias)
{
	_cleanup_rtnl_link_ struct rtnl_link *ch = rtnl_link_alloc();
	int r;

	if (!ch)
		return -ENOMEM;
	if (master_ifindex > 0)
		rtnl_link_set_master(ch, master_ifindex);
	if (mtu > 0)
		rtnl_link_set_mtu(ch, mtu);
	if (alias)
		rtnl_link_set_ifalias(ch, alias);
	rtnl_link_set_flags(ch, IFF_UP);
	r = rtnl_link_change(sk, link, ch, 0);
	if (r < 0)
		return log_errno(net_nlerr_to_errno(r), "link %s: set master/mtu/up: %s",
				 rtnl_link_get_name(link), nl_geterror(r));
	return 0;
}

bool net_link_is_tun(struct rtnl_link *link, bool want_tap)
{
	const char *kind = rtnl_link_get_type(link);

	if (!kind || !streq(kind, "tun"))
		return false;
	/* A TUN device carries IP packets (ARPHRD_NONE), a TAP Ethernet frames. */
	return !want_tap || rtnl_link_get_arptype(link) == ARPHRD_ETHER;
}

/* The bridge link `name`, created if missing. -EEXIST if `name` is taken by a
 * link of another kind. */
static int bridge_get_or_create(struct nl_sock *sk, const char *name, struct rtnl_link **ret)
{
	_cleanup_rtnl_link_ struct rtnl_link *link = NULL;
	int r;

	r = net_link_get(sk, name, &link);
	if (r == -ENODEV) {
		_cleanup_rtnl_link_ struct rtnl_link *nb = rtnl_link_bridge_alloc();
		if (!nb)
			return -ENOMEM;
		rtnl_link_set_name(nb, name);
		/* EXCL: if someone else created `name` in between, look again
		 * below instead of silently changing their link. */
		r = rtnl_link_add(sk, nb, NLM_F_CREATE | NLM_F_EXCL);
		if (r < 0 && r != -NLE_EXIST)
			return log_errno(net_nlerr_to_errno(r), "bridge %s: create: %s", name,
					 nl_geterror(r));
		if (r == 0)
			log_info("bridge %s: created", name);
		r = net_link_get(sk, name, &link);
	}
	if (r < 0)
		return log_errno(r, "bridge %s: look up: %m", name);
	if (!rtnl_link_is_bridge(link))
		return log_errno(EEXIST,
				 "bridge %s: a link with that name exists but is a '%s', not a "
				 "bridge; rename it or pick another bridge name",
				 name, rtnl_link_get_type(link) ?: "plain device");
	*ret = TAKE_PTR(link);
	return 0;
}

/* Add c's gateway/prefix to the link unless the kernel already has it (it
 * answers EEXIST for the same address and prefix on the same link). */
static int bridge_add_gateway(struct nl_sock *sk, struct rtnl_link *link, const NetCidr *c,
			      const char *cidr)
{
	_cleanup_(rtnl_addr_putp) struct rtnl_addr *a = rtnl_addr_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *local = NULL;
	uint32_t be = htonl(c->gateway);
	int r;

	if (!a)
		return -ENOMEM;
	local = nl_addr_build(AF_INET, &be, sizeof(be));
	if (!local)
		return -ENOMEM;
	nl_addr_set_prefixlen(local, c->prefix);
	rtnl_addr_set_ifindex(a, rtnl_link_get_ifindex(link));
	r = rtnl_addr_set_local(a, local);
	if (r >= 0)
		r = rtnl_addr_add(sk, a, 0);
	if (r == -NLE_EXIST)
		return 0;
	if (r < 0)
		return log_errno(net_nlerr_to_errno(r), "bridge %s: add address %s: %s",
				 rtnl_link_get_name(link), cidr, nl_geterror(r));
	log_info("bridge %s: address %s added", rtnl_link_get_name(link), cidr);
	return 0;
}

int net_bridge_ensure(const char *name, const char *cidr)
{
	_cleanup_nl_sock_ struct nl_sock *sk = NULL;
	_cleanup_rtnl_link_ struct rtnl_link *link = NULL;
	NetCidr c;
	int r;

	if (!net_ifname_valid(name))
		return log_errno(EINVAL, "bridge '%s': not a valid interface name (1..15 chars)",
				 name ? name : "(null)");
	r = net_cidr_parse(cidr, &c);
	if (r < 0)
		return log_errno(r, "bridge %s: bad address '%s'", name, cidr ? cidr : "(null)");
	r = net_nl_open(&sk);
	if (r < 0)
		return r;
	r = bridge_get_or_create(sk, name, &link);
	if (r < 0)
		return r;
	r = bridge_add_gateway(sk, link, &c, cidr);
	if (r < 0)
		return r;
	if (rtnl_link_get_flags(link) & IFF_UP)
		return 0;
	return net_link_configure(sk, link, 0, 0, NULL);
}

int net_list_links(const char *prefix, char ***ret_strv)
{
	_cleanup_nl_sock_ struct nl_sock *sk = NULL;
	_cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
	_cleanup_strv_free_ char **v = xcalloc(1, sizeof(char *));
	int r;

	r = net_nl_open(&sk);
	if (r < 0)
		return r;
	r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);
	if (r < 0)
		return log_errno(net_nlerr_to_errno(r), "netlink: list links: %s", nl_geterror(r));
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		const char *n = rtnl_link_get_name((struct rtnl_link *)o);
		if (n && startswith(n, prefix ?: ""))
			strv_push(&v, xstrdup(n));
	}
	qsort(v, strv_length(v), sizeof(char *), strcmp_ptr);
	*ret_strv = TAKE_PTR(v);
	return 0;
}

bool net_link_exists(const char *name)
{
	_cleanup_nl_sock_ struct nl_sock *sk = NULL;
	_cleanup_rtnl_link_ struct rtnl_link *link = NULL;
	int r;

	if (!net_ifname_valid(name) || net_nl_open(&sk) < 0)
		return false;
	r = net_link_get(sk, name, &link);
	if (r < 0 && r != -ENODEV)
		log_debug_errno(r, "link %s: look up: %m", name);
	return r >= 0;
}

char *net_owner_tag(const char *instance)
{
	return xasprintf("banger:%s", instance);
}

int net_link_alias(const char *name, char **ret)
{
	_cleanup_nl_sock_ struct nl_sock *sk = NULL;
	_cleanup_rtnl_link_ struct rtnl_link *link = NULL;
	int r;

	if (!net_ifname_valid(name))
		return -EINVAL;
	if ((r = net_nl_open(&sk)) < 0)
		return r;
	if ((r = net_link_get(sk, name, &link)) < 0)
		return r;
	const char *a = rtnl_link_get_ifalias(link);
	*ret = a && *a ? xstrdup(a) : NULL;
	return 0;
}
