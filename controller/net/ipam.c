/* ipam.c — the pure half of net.h: CIDR parsing, guest IP allocation, MAC
 * and tap name derivation. No I/O; see tests/unit/test_net.c. */
#include "net/net.h"
#include "util/ip4.h"
#include "util/layout.h"
#include "util/log.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>

int net_cidr_parse(const char *cidr, NetCidr *ret)
{
	_cleanup_free_ char *addr = NULL;
	const char *slash;
	uint64_t prefix;
	uint32_t ip;

	if (!cidr || !(slash = strchr(cidr, '/')))
		return log_errno(EINVAL, "cidr '%s': expected A.B.C.D/N", cidr ? cidr : "(null)");
	addr = xstrndup(cidr, slash - cidr);
	if (ip4_parse(addr, &ip) < 0)
		return log_errno(EINVAL, "cidr '%s': '%s' is not an IPv4 address", cidr, addr);
	if (parse_u64(slash + 1, 1, 30, &prefix) < 0)
		return log_errno(EINVAL, "cidr '%s': prefix length must be 1..30", cidr);

	uint32_t mask = ip4_prefix_mask(prefix);
	NetCidr c = {
		.network = ip & mask,
		.broadcast = (ip & mask) | ~mask,
		.gateway = ip,
		.prefix = prefix,
	};
	if (ip == c.network || ip == c.broadcast)
		return log_errno(EINVAL,
				 "cidr '%s': the address is the host's gateway and must not be the "
				 "subnet's network or broadcast address (e.g. use .1)",
				 cidr);
	*ret = c;
	return 0;
}

static bool cidr_contains_ip(const NetCidr *c, uint32_t ip)
{
	return (ip & ip4_prefix_mask(c->prefix)) == c->network;
}

bool net_cidr_contains(const NetCidr *c, const char *ip)
{
	uint32_t a;

	return ip4_parse(ip, &a) == 0 && cidr_contains_ip(c, a);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The in-subnet addresses of used_strv plus the gateway, sorted. */
static size_t taken_sorted(const NetCidr *c, char *const *used_strv, uint32_t **ret)
{
	size_t n = 0, cap = strv_length(used_strv) + 1;
	uint32_t *v = xcalloc(cap, sizeof(uint32_t));

	v[n++] = c->gateway;
	for (size_t i = 0; used_strv && used_strv[i]; i++) {
		uint32_t a;
		if (ip4_parse(used_strv[i], &a) < 0) {
			log_debug("ip allocation: ignoring unparseable used address '%s'",
				  used_strv[i]);
			continue;
		}
		if (cidr_contains_ip(c, a))
			v[n++] = a;
	}
	qsort(v, n, sizeof(uint32_t), cmp_u32);
	*ret = v;
	return n;
}

static int check_preferred(const NetCidr *c, char *const *used_strv, const char *preferred)
{
	_cleanup_free_ char *net = ip4_format(c->network);
	uint32_t a;

	if (ip4_parse(preferred, &a) < 0)
		return log_errno(EINVAL, "guest IP '%s' is not an IPv4 address", preferred);
	if (!cidr_contains_ip(c, a))
		return log_errno(EINVAL, "guest IP %s is outside the bridge subnet %s/%u",
				 preferred, net, c->prefix);
	if (a == c->network || a == c->broadcast)
		return log_errno(EINVAL, "guest IP %s is the %s address of %s/%u", preferred,
				 a == c->network ? "network" : "broadcast", net, c->prefix);
	if (a == c->gateway)
		return log_errno(EINVAL, "guest IP %s is the bridge's gateway address", preferred);
	for (size_t i = 0; used_strv && used_strv[i]; i++) {
		uint32_t u;
		if (ip4_parse(used_strv[i], &u) == 0 && u == a)
			return log_errno(EADDRINUSE, "guest IP %s is already used by another VM",
					 preferred);
	}
	return 0;
}

int net_ip_allocate(const NetCidr *c, char *const *used_strv, const char *preferred, char **ret_ip)
{
	_cleanup_free_ uint32_t *taken = NULL;
	uint32_t cand;
	size_t n;
	int r;

	if (preferred) {
		r = check_preferred(c, used_strv, preferred);
		if (r < 0)
			return r;
		*ret_ip = xstrdup(preferred);
		return 0;
	}

	/* Walk the sorted taken list; the first gap from network+1 is the
	 * lowest free address. Duplicates in the list are harmless. */
	n = taken_sorted(c, used_strv, &taken);
	cand = c->network + 1;
	for (size_t i = 0; i < n && taken[i] <= cand; i++)
		if (taken[i] == cand)
			cand++;
	if (cand >= c->broadcast) {
		_cleanup_free_ char *net = ip4_format(c->network);
		return log_errno(ENOSPC, "no free guest IP left in %s/%u", net, c->prefix);
	}
	*ret_ip = ip4_format(cand);
	return 0;
}

char *net_mac_for_ip(const char *ip)
{
	uint32_t a;

	if (ip4_parse(ip, &a) < 0)
		return NULL;
	return xasprintf("06:00:%02x:%02x:%02x:%02x", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff,
			 a & 0xff);
}

char *net_tap_name_for(const char *vm_uid)
{
	char sid[LAYOUT_SHORT_ID_LEN + 1];
	if (layout_short_id(vm_uid, sid) < 0)
		return NULL;
	return xasprintf(NET_TAP_PREFIX "%s", sid);
}

bool net_ifname_valid(const char *name)
{
	size_t len;

	if (!name)
		return false;
	len = strlen(name);
	if (len == 0 || len > NET_IFNAME_MAX || streq(name, ".") || streq(name, ".."))
		return false;
	for (const char *p = name; *p; p++)
		if (*p == '/' || *p == ':' || isspace((unsigned char)*p))
			return false;
	return true;
}
