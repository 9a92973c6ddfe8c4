/* Unit tests for the pure half of controller/net/nft.c and of the instance
 * tag carriers: names, --host-allow parsing, and the scripts — above all
 * that nothing outside the strict character sets reaches a script (a spec's
 * MAC or a hostile name cannot add an nft statement). The scripts
 * themselves run against the kernel in tests/integration/t_firewall.sh. */
#include "net/net.h"
#include "net/nft.h"
#include "storage/dm.h"
#include "tap.h"
#include "util/log.h"
#include "util/util.h"

#define INST "0123456789abcdef"

static void test_names(void)
{
	_cleanup_free_ char *t = nft_table_name(INST);
	CHECK_STREQ(t, "banger_" INST, "table name carries the instance");
	CHECK(!nft_table_name("0123456789ABCDEF"), "upper-case instance refused");
	CHECK(!nft_table_name("0123"), "short instance refused");
	CHECK(!nft_table_name(NULL), "NULL instance refused");
	_cleanup_free_ char *tag = net_owner_tag(INST);
	CHECK_STREQ(tag, "banger:" INST, "tap alias tag");
}

static void test_host_allow(void)
{
	NftHostAllow a = { 0 };
	CHECK_INTEQ(nft_host_allow_parse("tcp/22", &a), 0, "tcp/22");
	CHECK(a.proto == NFT_PROTO_TCP && a.port == 22, "tcp/22 parsed");
	CHECK_INTEQ(nft_host_allow_parse("udp/65535", &a), 0, "udp/65535");
	CHECK(a.proto == NFT_PROTO_UDP && a.port == 65535, "udp/65535 parsed");
	const char *bad[] = { "",        "tcp",    "tcp/",   "tcp/0", "tcp/65536", "sctp/5",
			      "tcp/22x", "tcp/-1", "TCP/22", "tcp22", "tcp/ 22",   "udp//53" };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		CHECK_INTEQ(nft_host_allow_parse(bad[i], &a), -EINVAL, "reject '%s'", bad[i]);
}

static void test_scripts(void)
{
	NftHostAllow allow[] = { { NFT_PROTO_TCP, 22 },
				 { NFT_PROTO_UDP, 53 },
				 { NFT_PROTO_TCP, 8080 } };
	NftPolicy p = { .instance = INST, .bridge = "banger0", .allow = allow, .n_allow = 3 };
	_cleanup_free_ char *s = nft_script_instance(&p);
	CHECK(s && strstr(s,
			  "add rule inet banger_" INST " guests tcp dport { 22, 8080 } accept\n"),
	      "tcp ports in one set");
	CHECK(s && strstr(s, "add rule inet banger_" INST " guests udp dport { 53 } accept\n"),
	      "udp ports in one set");
	CHECK(s && strstr(s, "iifname \"banger0\" jump guests"),
	      "input from the bridge is filtered");
	CHECK(s && endswith(s, "guests drop\n"), "everything else is dropped, last");
	p.n_allow = 0;
	_cleanup_free_ char *none = nft_script_instance(&p);
	CHECK(none && !strstr(none, "dport"), "no --host-allow: no port rule");
	p.bridge = "br\"; flush ruleset";
	CHECK(!nft_script_instance(&p), "a bridge name with a quote is refused");
	p.bridge = "banger0";
	p.n_allow = NFT_HOST_ALLOW_MAX + 1;
	CHECK(!nft_script_instance(&p), "too many ports refused");

	/* The bridge table: per-VM state lives in two sets, the rules are the
	 * instance's. */
	p.n_allow = 0;
	_cleanup_free_ char *inst = nft_script_instance(&p);
	CHECK(inst && strstr(inst, "add set bridge banger_" INST " taps { type ifname; }\n"),
	      "set of the VMs' taps");
	CHECK(inst && strstr(inst, "add set bridge banger_" INST
				   " allowed { type ifname . ether_addr . ipv4_addr; }\n"),
	      "set of tap . MAC . IP");
	CHECK(inst && strstr(inst, "prerouting iifname @taps jump guest\n"),
	      "frames from a VM tap are checked");
	CHECK(inst && strstr(inst, "guest ether type != { arp, ip } drop\n"),
	      "IPv6 and the rest dropped");
	CHECK(inst && strstr(inst, "guest iifname . ether saddr . ip saddr != @allowed drop\n"),
	      "IPv4 from another MAC or IP dropped");
	CHECK(inst && strstr(inst, "guest iifname . ether saddr . arp saddr ip != @allowed drop\n"),
	      "ARP from another frame MAC or sender IP dropped");
	CHECK(inst && strstr(inst, "guest iifname . arp saddr ether . arp saddr ip != @allowed "
				   "drop\n"),
	      "ARP with another sender MAC dropped");
	CHECK(inst && strstr(inst, "flush chain bridge banger_" INST " guest\n") &&
		      strstr(inst, "flush chain bridge banger_" INST " prerouting\n"),
	      "the instance's chains are replaced, not appended to");

	_cleanup_free_ char *v =
		nft_script_vm_add(INST, "bgr-3f2a9c01", "06:00:ac:10:00:02", "172.16.0.2");
	CHECK_STREQ(v,
		    "add element bridge banger_" INST
		    " allowed { \"bgr-3f2a9c01\" . 06:00:ac:10:00:02 . 172.16.0.2 }\n"
		    "add element bridge banger_" INST " taps { \"bgr-3f2a9c01\" }\n",
		    "a VM is two elements: its key in @allowed, its tap in @taps");
	const char *badmac[] = { "06:00:ac:10:00", "06:00:ac:10:00:02 accept", "06-00-ac-10-00-02",
				 "06:00:ac:10:00:0g", "" };
	for (size_t i = 0; i < ELEMENTSOF(badmac); i++)
		CHECK(!nft_script_vm_add(INST, "bgr-3f2a9c01", badmac[i], "172.16.0.2"),
		      "MAC '%s' refused", badmac[i]);
	CHECK(!nft_script_vm_add(INST, "bgr-3f2a9c01", "06:00:ac:10:00:02",
				 "172.16.0.2 } ; flush ruleset"),
	      "an IP with a statement refused");
	CHECK(!nft_script_vm_add(INST, "bgr\"x", "06:00:ac:10:00:02", "172.16.0.2"),
	      "a tap with a quote refused");
	CHECK(!nft_script_vm_add("x", "bgr-3f2a9c01", "06:00:ac:10:00:02", "172.16.0.2"),
	      "a bad instance refused");
	/* A VM start is one transaction: the instance part, then the VM's. */
	_cleanup_free_ char *st =
		nft_script_vm_start(&p, "bgr-3f2a9c01", "06:00:ac:10:00:02", "172.16.0.2");
	CHECK(st && inst && startswith(st, inst) && streq(st + strlen(inst), v),
	      "start script = instance script + VM script");
	CHECK(!nft_script_vm_start(&p, "bgr-3f2a9c01", "06:00:ac:10:00:02",
				   "172.16.0.2; flush ruleset"),
	      "start script: a bad VM input refuses the whole script");
	p.bridge = "bad\"bridge";
	CHECK(!nft_script_vm_start(&p, "bgr-3f2a9c01", "06:00:ac:10:00:02", "172.16.0.2"),
	      "start script: a bad instance input refuses the whole script");

	/* Delete: add-then-delete of each element (idempotent in one
	 * transaction); the sets are made if absent. */
	char *macs[] = { "06:00:ac:10:00:02", "06:00:ac:10:00:09", NULL };
	char *ips[] = { "172.16.0.2", "172.16.0.9", NULL };
	_cleanup_free_ char *d = nft_script_vm_delete(INST, "bgr-3f2a9c01", macs, ips, 2);
	const char *taps_del =
		d ? strstr(d, "delete element bridge banger_" INST " taps { \"bgr-3f2a9c01\" }\n")
		  : NULL;
	const char *k1 = d ? strstr(d, "delete element bridge banger_" INST
				       " allowed { \"bgr-3f2a9c01\" . 06:00:ac:10:00:02 . "
				       "172.16.0.2 }\n")
			   : NULL;
	const char *k2 = d ? strstr(d, "delete element bridge banger_" INST
				       " allowed { \"bgr-3f2a9c01\" . 06:00:ac:10:00:09 . "
				       "172.16.0.9 }\n")
			   : NULL;
	CHECK(taps_del && k1 && k2, "delete: the tap and each of its keys");
	CHECK(d && startswith(d, "add table bridge banger_" INST "\n") &&
		      strstr(d, "add element bridge banger_" INST " taps { \"bgr-3f2a9c01\" }\n"),
	      "delete: table and sets ensured, each element added before it is deleted");
	_cleanup_free_ char *d0 = nft_script_vm_delete(INST, "bgr-3f2a9c01", NULL, NULL, 0);
	CHECK(d0 && !strstr(d0, "element bridge banger_" INST " allowed"),
	      "delete with no keys: the tap only");
	char *badips[] = { "172.16.0.2 } ; flush ruleset", NULL };
	CHECK(!nft_script_vm_delete(INST, "bgr-3f2a9c01", macs, badips, 1),
	      "delete: a listed key that fails its check refuses the script");

	/* An older bangerd's layout. */
	char *chains[] = { "vm_3f2a9c01", "vm_deadbeef", NULL };
	_cleanup_free_ char *l = nft_script_legacy_remove(INST, true, chains);
	const char *map = l ? strstr(l, "delete map bridge banger_" INST " ports\n") : NULL;
	const char *c1 = l ? strstr(l, "delete chain bridge banger_" INST " vm_3f2a9c01\n") : NULL;
	CHECK(map && c1 && map < c1, "legacy: the map (which jumps to the chains) goes first");
	CHECK(l && strstr(l, "delete chain bridge banger_" INST " vm_deadbeef\n"),
	      "legacy: every chain");
	CHECK(!nft_script_legacy_remove(INST, false, NULL), "legacy: nothing to remove");
	char *badchains[] = { "prerouting", NULL };
	CHECK(!nft_script_legacy_remove(INST, false, badchains),
	      "legacy: only vm_* chains are ever removed");
	char *evil[] = { "vm_x; flush", NULL };
	CHECK(!nft_script_legacy_remove(INST, false, evil), "legacy: a hostile name refused");
}

static void test_dm_uuid(void)
{
	_cleanup_free_ char *u = dm_uuid_for(INST, "banger-3f2a9c01");
	_cleanup_free_ char *pre = dm_uuid_owner_prefix(INST);
	CHECK_STREQ(u, "BANGER-" INST "-banger-3f2a9c01", "dm uuid carries instance and name");
	CHECK(u && startswith(u, pre), "and starts with the owner prefix");
	_cleanup_free_ char *other = dm_uuid_owner_prefix("fedcba9876543210");
	CHECK(u && !startswith(u, other), "another instance's prefix does not match");
	CHECK(!dm_uuid_for("XYZ", "banger-3f2a9c01"), "non-hex instance refused");
	CHECK(!dm_uuid_for(INST, "bad/name"), "bad dm name refused");
}

int main(void)
{
	/* The rejects log errors on purpose (stderr; TAP is stdout). */
	log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT, "test_nft");
	test_names();
	test_host_allow();
	test_scripts();
	test_dm_uuid();
	return tap_done();
}
