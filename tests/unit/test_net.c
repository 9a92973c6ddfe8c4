/* Unit tests for the pure half of controller/net: CIDR parsing, guest IP
 * allocation, MAC derivation, tap and interface names. */
#include "net/net.h"
#include "tap.h"
#include "util/log.h"
#include "util/util.h"

static void test_cidr_parse(void)
{
	NetCidr c = { 0 };

	CHECK_INTEQ(net_cidr_parse("172.16.0.1/24", &c), 0, "parse 172.16.0.1/24");
	CHECK_INTEQ(c.network, 0xac100000u, "network is 172.16.0.0");
	CHECK_INTEQ(c.broadcast, 0xac1000ffu, "broadcast is 172.16.0.255");
	CHECK_INTEQ(c.gateway, 0xac100001u, "gateway is the given address");
	CHECK_INTEQ(c.prefix, 24, "prefix 24");

	CHECK_INTEQ(net_cidr_parse("10.1.2.3/8", &c), 0, "parse 10.1.2.3/8");
	CHECK_INTEQ(c.network, 0x0a000000u, "network of /8");
	CHECK_INTEQ(c.gateway, 0x0a010203u, "gateway need not be .1");
	CHECK_INTEQ(net_cidr_parse("192.168.7.5/30", &c), 0, "parse /30");
	CHECK_INTEQ(c.network, 0xc0a80704u, "network of /30");
	CHECK_INTEQ(c.broadcast, 0xc0a80707u, "broadcast of /30");

	const char *bad[] = {
		"",
		"172.16.0.1",
		"172.16.0.1/",
		"/24",
		"172.16.0/24",
		"172.16.0.1/33",
		"172.16.0.1/31",
		"172.16.0.1/32",
		"172.16.0.1/0",
		"172.16.0.1/-1",
		"172.16.0.1/24x",
		"256.0.0.1/24",
		"1.2.3.4.5/24",
		"a.b.c.d/24",
		"172.16.0.0/24",
		"172.16.0.255/24",
		"172.016.0.1/24",
		" 172.16.0.1/24",
		"172.16.0.1 /24",
	};
	NetCidr keep = c;
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		CHECK_INTEQ(net_cidr_parse(bad[i], &c), -EINVAL, "reject cidr '%s'", bad[i]);
	CHECK(memcmp(&keep, &c, sizeof(c)) == 0, "rejected parses leave *ret untouched");
	CHECK_INTEQ(net_cidr_parse(NULL, &c), -EINVAL, "reject NULL cidr");

	CHECK(net_cidr_parse("172.16.0.1/24", &c) == 0 && net_cidr_contains(&c, "172.16.0.200"),
	      "contains an address of the subnet");
	CHECK(!net_cidr_contains(&c, "172.16.1.2"), "does not contain the next subnet");
	CHECK(!net_cidr_contains(&c, "junk"), "does not contain junk");
}

/* Run one allocation and compare; expect_ip NULL means expect failure r. */
static void alloc_case(const char *cidr, char **used, const char *pref, int expect_r,
		       const char *expect_ip, const char *what)
{
	NetCidr c;
	char *ip = (char *)"untouched";
	int r;

	if (net_cidr_parse(cidr, &c) < 0) {
		CHECK(false, "%s: parse %s", what, cidr);
		return;
	}
	r = net_ip_allocate(&c, used, pref, &ip);
	CHECK_INTEQ(r, expect_r, "%s: return code", what);
	if (expect_ip) {
		CHECK_STREQ(r == 0 ? ip : NULL, expect_ip, "%s: address", what);
		if (r == 0)
			free(ip);
	} else {
		CHECK_STREQ(ip, "untouched", "%s: ret_ip untouched on failure", what);
		if (r == 0)
			free(ip);
	}
}

static void test_allocate_preferred(void)
{
	char *used[] = { (char *)"172.16.0.2", (char *)"172.16.0.9", NULL };
	const char *n = "172.16.0.1/24";

	alloc_case(n, used, "172.16.0.10", 0, "172.16.0.10", "preferred free address");
	alloc_case(n, NULL, "172.16.0.254", 0, "172.16.0.254", "preferred last host address");
	alloc_case(n, used, "172.16.1.10", -EINVAL, NULL, "preferred outside subnet");
	alloc_case(n, used, "10.0.0.5", -EINVAL, NULL, "preferred in another network");
	alloc_case(n, used, "172.16.0.1", -EINVAL, NULL, "preferred is the gateway");
	alloc_case(n, used, "172.16.0.255", -EINVAL, NULL, "preferred is the broadcast");
	alloc_case(n, used, "172.16.0.0", -EINVAL, NULL, "preferred is the network");
	alloc_case(n, used, "172.16.0.9", -EADDRINUSE, NULL, "preferred in use");
	alloc_case(n, used, "172.16.0.300", -EINVAL, NULL, "preferred not an address");
	alloc_case(n, used, "", -EINVAL, NULL, "preferred empty");
}

static void test_allocate_lowest(void)
{
	char *none[] = { NULL };
	char *gap[] = { (char *)"172.16.0.4", (char *)"172.16.0.2", (char *)"172.16.0.3",
			(char *)"172.16.0.6", NULL };
	char *noise[] = { (char *)"garbage",    (char *)"10.0.0.2",   (char *)"172.16.0.2",
			  (char *)"172.16.0.2", (char *)"172.16.0.0", NULL };
	char *gw_mid[] = { (char *)"10.9.0.1", NULL };

	alloc_case("172.16.0.1/24", NULL, NULL, 0, "172.16.0.2", "NULL used list: .2");
	alloc_case("172.16.0.1/24", none, NULL, 0, "172.16.0.2", "empty used list: .2");
	alloc_case("172.16.0.1/24", gap, NULL, 0, "172.16.0.5", "unsorted used: first gap");
	alloc_case("172.16.0.1/24", noise, NULL, 0, "172.16.0.3",
		   "junk, duplicates and foreign addresses ignored");
	alloc_case("10.9.0.2/16", gw_mid, NULL, 0, "10.9.0.3", "gateway .2 is skipped");
	alloc_case("10.9.0.7/16", NULL, NULL, 0, "10.9.0.1", "gateway not .1: start at .1");

	/* /24 with every host address but one in use. */
	_cleanup_strv_free_ char **most = NULL;
	for (unsigned i = 2; i <= 254; i++)
		if (i != 200)
			strv_push(&most, xasprintf("172.16.0.%u", i));
	alloc_case("172.16.0.1/24", most, NULL, 0, "172.16.0.200", "only .200 left");
	strv_push(&most, xstrdup("172.16.0.200"));
	alloc_case("172.16.0.1/24", most, NULL, -ENOSPC, NULL, "full /24");
	/* The same list in a /23: .255 is an ordinary host address there. */
	alloc_case("172.16.0.1/23", most, NULL, 0, "172.16.0.255", "/23 continues past .254");
}

static void test_allocate_slash30(void)
{
	char *one[] = { (char *)"192.168.7.6", NULL };

	/* 192.168.7.4/30: network .4, gateway .5, guest .6, broadcast .7. */
	alloc_case("192.168.7.5/30", NULL, NULL, 0, "192.168.7.6", "/30 single guest slot");
	alloc_case("192.168.7.5/30", one, NULL, -ENOSPC, NULL, "/30 full");
	alloc_case("192.168.7.5/30", one, "192.168.7.7", -EINVAL, NULL,
		   "/30 broadcast not offered");
	alloc_case("255.255.255.253/30", NULL, NULL, 0, "255.255.255.254",
		   "top of the address space");
	char *top[] = { (char *)"255.255.255.254", NULL };
	alloc_case("255.255.255.253/30", top, NULL, -ENOSPC, NULL,
		   "top of the address space, full (no wrap-around)");
}

static void check_mac(const char *ip, const char *expect)
{
	char *m = net_mac_for_ip(ip);
	if (expect)
		CHECK_STREQ(m, expect, "mac for %s", ip);
	else
		CHECK(m == NULL, "no mac for '%s'", ip);
	free(m);
}

static void test_mac(void)
{
	check_mac("172.16.0.10", "06:00:ac:10:00:0a");
	check_mac("10.0.0.2", "06:00:0a:00:00:02");
	check_mac("255.255.255.254", "06:00:ff:ff:ff:fe");
	check_mac("1.2.3", NULL);
	check_mac("", NULL);
	check_mac(NULL, NULL);
	/* First octet 0x06: locally administered (bit 1) and unicast (bit 0
	 * clear) — the property the prefix was chosen for. */
	CHECK((0x06 & 0x02) && !(0x06 & 0x01), "06 is locally administered unicast");
}

static void check_tap(const char *uid, const char *expect)
{
	char *t = net_tap_name_for(uid);
	if (expect) {
		CHECK_STREQ(t, expect, "tap name for %s", uid);
		CHECK(t && strlen(t) <= NET_IFNAME_MAX && net_ifname_valid(t),
		      "tap name for %s fits IFNAMSIZ", uid);
	} else {
		CHECK(t == NULL, "no tap name for '%s'", uid ? uid : "(null)");
	}
	free(t);
}

static void test_names(void)
{
	check_tap("3f2a9c01deadbeef00112233", "bgr-3f2a9c01");
	check_tap("3F2A9C01", "bgr-3f2a9c01");
	check_tap("3f2a-9c01-4bcd-8000-000000000000", "bgr-3f2a9c01");
	check_tap("3f2a9c0", NULL);
	check_tap("zzzzzzzzzzzz", NULL);
	check_tap("", NULL);
	check_tap(NULL, NULL);

	CHECK(net_ifname_valid("br-banger"), "br-banger is a valid ifname");
	CHECK(net_ifname_valid("abcdefghijklmno"), "15 chars is valid");
	CHECK(!net_ifname_valid("abcdefghijklmnop"), "16 chars is not");
	CHECK(!net_ifname_valid(""), "empty is not");
	CHECK(!net_ifname_valid("a/b"), "slash is not");
	CHECK(!net_ifname_valid("a b"), "space is not");
	CHECK(!net_ifname_valid("a:1"), "colon (alias) is not");
	CHECK(!net_ifname_valid(".."), ".. is not");
	CHECK(!net_ifname_valid(NULL), "NULL is not");
}

int main(void)
{
	/* The rejects below log errors on purpose; they go to stderr, the TAP
	 * stream is stdout. */
	log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT, "test_net");
	test_cidr_parse();
	test_allocate_preferred();
	test_allocate_lowest();
	test_allocate_slash30();
	test_mac();
	test_names();
	return tap_done();
}
