/* tap.c — per-VM persistent tap devices. Creation goes through /dev/net/tun
 * because the kernel rejects tun/tap creation over rtnetlink; everything else
 * (master, MTU, up, delete) is netlink. */
#include "net/net.h"
#include "net/nl.h"
#include "util/log.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netlink/route/link/bridge.h>
#include <sys/ioctl.h>

/* Create persistent TAP `name` (no packet-info header, no vnet header: the
 * VMM opens the device itself later with the flags it needs). The fd only
 * exists to issue the ioctls; the device outlives it thanks to
 * TUNSETPERSIST. */
static int tun_create_persistent(const char *name)
{
	_cleanup_close_ int fd = -1;
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };

	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return log_errno(errno, "tap %s: open /dev/net/tun: %m", name);
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		return log_errno(errno, "tap %s: TUNSETIFF: %m", name);
	if (ioctl(fd, TUNSETPERSIST, 1) < 0)
		return log_errno(errno, "tap %s: TUNSETPERSIST: %m", name);
	log_info("tap %s: created", name);
	return 0;
}

static int bridge_lookup(struct nl_sock *sk, const char *tap, const char *bridge,
			 struct rtnl_link **ret)
{
	_cleanup_rtnl_link_ struct rtnl_link *br = NULL;
	int r;

	r = net_link_get(sk, bridge, &br);
	if (r == -ENODEV)
		return log_errno(r, "tap %s: bridge %s does not exist (ensure the bridge first)",
				 tap, bridge);
	if (r < 0)
		return log_errno(r, "tap %s: look up bridge %s: %m", tap, bridge);
	if (!rtnl_link_is_bridge(br))
		return log_errno(EINVAL, "tap %s: %s is not a bridge", tap, bridge);
	*ret = TAKE_PTR(br);
	return 0;
}

/* The TAP link `tap`, created if missing; -EEXIST when the name belongs to
 * something that is not a TAP, or (owner set) to a tap that existed before
 * this call with another alias or none. */
static int tap_get_or_create(struct nl_sock *sk, const char *tap, const char *owner,
			     struct rtnl_link **ret)
{
	_cleanup_rtnl_link_ struct rtnl_link *link = NULL;
	bool created = false;
	int r;

	r = net_link_get(sk, tap, &link);
	if (r == -ENODEV) {
		r = tun_create_persistent(tap);
		if (r < 0)
			return r;
		created = true;
		r = net_link_get(sk, tap, &link);
	}
	if (r < 0)
		return log_errno(r, "tap %s: look up: %m", tap);
	if (!net_link_is_tun(link, true))
		return log_errno(EEXIST,
				 "tap %s: a link with that name exists but is a '%s', not a tap "
				 "device; remove it so banger can create its tap",
				 tap, rtnl_link_get_type(link) ?: "plain device");
	const char *alias = rtnl_link_get_ifalias(link);
	if (owner && !created && !streq(alias ?: "", owner))
		return log_errno(EEXIST,
				 "tap %s: exists but is not ours (alias '%s', ours is '%s'): "
				 "another banger instance or an operator made it; leaving it alone",
				 tap, alias ?: "", owner);
	*ret = TAKE_PTR(link);
	return 0;
}

int net_tap_ensure(const char *tap, const char *bridge, unsigned mtu, const char *owner)
{
	_cleanup_nl_sock_ struct nl_sock *sk = NULL;
	_cleanup_rtnl_link_ struct rtnl_link *br = NULL, *link = NULL;
	int r;

	if (!net_ifname_valid(tap) || !net_ifname_valid(bridge))
		return log_errno(EINVAL, "tap '%s' on bridge '%s': not a valid interface name",
				 tap ? tap : "(null)", bridge ? bridge : "(null)");
	r = net_nl_open(&sk);
	if (r < 0)
		return r;
	r = bridge_lookup(sk, tap, bridge, &br);
	if (r < 0)
		return r;
	r = tap_get_or_create(sk, tap, owner, &link);
	if (r < 0)
		return r;
	if (mtu == 0)
		mtu = rtnl_link_get_mtu(br);
	r = net_link_configure(sk, link, rtnl_link_get_ifindex(br), mtu, owner);
	if (r < 0)
		return log_errno(r, "tap %s: attach to bridge %s (mtu %u): %m", tap, bridge, mtu);
	return 0;
}

#define TAP_BUSY_TRIES   100
#define TAP_BUSY_WAIT_US 1000

int net_tap_set_owner(const char *tap, uid_t uid, gid_t gid)
{
	_cleanup_close_ int fd = -1;
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };

	if (!net_ifname_valid(tap))
		return log_errno(-EINVAL, "tap '%s': not a valid interface name",
				 tap ? tap : "(null)");
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return log_errno(-errno, "tap %s: open /dev/net/tun: %m", tap);
	strncpy(ifr.ifr_name, tap, IFNAMSIZ - 1);
	/* Attaches to the existing persistent device (root may, whoever owns
	 * it). EBUSY: another fd is attached — a VMM spawned by another thread
	 * at the moment this tap was created holds a copy of the creation fd
	 * until its first step drops it (util/proc.c). Brief: wait for it. */
	int r;
	for (int i = 0;
	     (r = ioctl(fd, TUNSETIFF, &ifr)) < 0 && errno == EBUSY && i < TAP_BUSY_TRIES; i++)
		usleep(TAP_BUSY_WAIT_US);
	if (r < 0)
		return log_errno(-errno, "tap %s: TUNSETIFF: %m", tap);
	if (ioctl(fd, TUNSETOWNER, (unsigned long)uid) < 0 ||
	    ioctl(fd, TUNSETGROUP, (unsigned long)gid) < 0)
		return log_errno(-errno, "tap %s: set owner %u:%u: %m", tap, (unsigned)uid,
				 (unsigned)gid);
	log_debug("tap %s: owner %u:%u", tap, (unsigned)uid, (unsigned)gid);
	return 0;
}

int net_tap_delete(const char *tap, const char *owner, bool untagged_ok)
{
	_cleanup_nl_sock_ struct nl_sock *sk = NULL;
	_cleanup_rtnl_link_ struct rtnl_link *link = NULL;
	int r;

	if (!net_ifname_valid(tap))
		return log_errno(EINVAL, "tap '%s': not a valid interface name",
				 tap ? tap : "(null)");
	r = net_nl_open(&sk);
	if (r < 0)
		return r;
	r = net_link_get(sk, tap, &link);
	if (r == -ENODEV)
		return 0;
	if (r < 0)
		return log_errno(r, "tap %s: look up: %m", tap);
	if (!net_link_is_tun(link, false))
		return log_errno(EINVAL, "tap %s: refusing to delete a '%s' link, not a tun/tap",
				 tap, rtnl_link_get_type(link) ?: "plain device");
	const char *alias = rtnl_link_get_ifalias(link);
	if (owner && !streq(alias ?: "", owner) && !(untagged_ok && !(alias && *alias))) {
		log_warn("tap %s: alias '%s' is not ours ('%s'): not deleting it", tap, alias ?: "",
			 owner);
		return 0;
	}
	r = rtnl_link_delete(sk, link);
	if (r == -NLE_OBJ_NOTFOUND || r == -NLE_NODEV)
		return 0; /* went away in between: that is what we wanted */
	if (r < 0)
		return log_errno(net_nlerr_to_errno(r), "tap %s: delete: %s", tap, nl_geterror(r));
	log_info("tap %s: deleted", tap);
	return 0;
}
