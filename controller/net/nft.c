/* nft.c — see nft.h. Scripts are built here from checked inputs and run by
 * libnftables as one transaction each. */
#include "net/nft.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <json.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>

#define NFT_PRIO_PREROUTING "-200" /* bridge "filter" priority */

static const char *const nft_proto_names[_NFT_PROTO_MAX] = {
	[NFT_PROTO_TCP] = "tcp",
	[NFT_PROTO_UDP] = "udp",
};

static bool all_of(const char *s, size_t min, size_t max, const char *set)
{
	size_t n = s ? strlen(s) : 0;
	return n >= min && n <= max && strspn(s, set) == n;
}

static bool instance_ok(const char *s)
{
	return all_of(s, 16, 16, "0123456789abcdef");
}

/* Names we write inside double quotes or as identifiers: our own tap and
 * chain names only ever use these characters. */
static bool ident_ok(const char *s)
{
	return all_of(s, 1, 15, "abcdefghijklmnopqrstuvwxyz0123456789_-");
}

static bool mac_ok(const char *s)
{
	unsigned b[6];
	char end;
	return s && strlen(s) == 17 &&
	       sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		      &end) == 6 &&
	       all_of(s, 17, 17, "0123456789abcdefABCDEF:");
}

static bool ipv4_ok(const char *s)
{
	struct in_addr a;
	return s && strlen(s) <= 15 && inet_pton(AF_INET, s, &a) == 1;
}

char *nft_table_name(const char *instance)
{
	return instance_ok(instance) ? xasprintf("banger_%s", instance) : NULL;
}

int nft_host_allow_parse(const char *s, NftHostAllow *ret)
{
	uint64_t port;
	for (int p = 0; p < _NFT_PROTO_MAX; p++) {
		size_t n = strlen(nft_proto_names[p]);
		if (strncmp(s, nft_proto_names[p], n) != 0 || s[n] != '/')
			continue;
		if (parse_u64(s + n + 1, 1, 65535, &port) < 0)
			return -EINVAL;
		*ret = (NftHostAllow){ .proto = (NftProto)p, .port = (uint16_t)port };
		return 0;
	}
	return -EINVAL;
}

/* A growing script: one statement per line. */
typedef struct {
	char *s;
} Script;

static void _printf_(2, 3) line(Script *sc, const char *fmt, ...)
{
	va_list ap;
	_cleanup_free_ char *l = NULL;
	va_start(ap, fmt);
	if (vasprintf(&l, fmt, ap) < 0)
		abort();
	va_end(ap);
	char *n = xasprintf("%s%s\n", sc->s ? sc->s : "", l);
	free(sc->s);
	sc->s = n;
}

/* "{ 22, 8080 }" of the ports of one protocol, NULL when none. */
static char *port_set(const NftPolicy *p, NftProto proto)
{
	char *set = NULL;
	for (size_t i = 0; i < p->n_allow; i++) {
		if (p->allow[i].proto != proto)
			continue;
		char *n = xasprintf("%s%s%u", set ? set : "{ ", set ? ", " : "",
				    (unsigned)p->allow[i].port);
		free(set);
		set = n;
	}
	if (!set)
		return NULL;
	char *n = xasprintf("%s }", set);
	free(set);
	return n;
}

char *nft_script_instance(const NftPolicy *p)
{
	_cleanup_free_ char *t = nft_table_name(p->instance);
	if (!t || !ident_ok(p->bridge) || p->n_allow > NFT_HOST_ALLOW_MAX) {
		log_error("nft: bad instance policy (instance '%s', bridge '%s', %zu ports)",
			  p->instance ?: "", p->bridge ?: "", p->n_allow);
		return NULL;
	}
	Script sc = { 0 };
	line(&sc, "add table bridge %s", t);
	line(&sc, "add set bridge %s taps { type ifname; }", t);
	line(&sc, "add set bridge %s allowed { type ifname . ether_addr . ipv4_addr; }", t);
	line(&sc,
	     "add chain bridge %s prerouting { type filter hook prerouting "
	     "priority " NFT_PRIO_PREROUTING "; policy accept; }",
	     t);
	line(&sc, "add chain bridge %s guest", t);
	line(&sc, "flush chain bridge %s prerouting", t);
	line(&sc, "flush chain bridge %s guest", t);
	line(&sc, "add rule bridge %s prerouting iifname @taps jump guest", t);
	/* IPv6 (no address is assigned to guests), VLAN tags, anything else. */
	line(&sc, "add rule bridge %s guest ether type != { arp, ip } drop", t);
	/* Each lookup carries an implicit ethertype match: the IPv4 rule sees
	 * only IPv4 frames, the ARP rules only ARP. */
	line(&sc, "add rule bridge %s guest iifname . ether saddr . ip saddr != @allowed drop", t);
	line(&sc, "add rule bridge %s guest iifname . ether saddr . arp saddr ip != @allowed drop",
	     t);
	line(&sc,
	     "add rule bridge %s guest iifname . arp saddr ether . arp saddr ip != @allowed drop",
	     t);
	line(&sc, "add table inet %s", t);
	line(&sc, "add chain inet %s input { type filter hook input priority 0; policy accept; }",
	     t);
	line(&sc, "add chain inet %s guests", t);
	line(&sc, "flush chain inet %s input", t);
	line(&sc, "flush chain inet %s guests", t);
	line(&sc, "add rule inet %s input iifname \"%s\" jump guests", t, p->bridge);
	/* Replies to what the host opened (readiness probes, ssh to the guest). */
	line(&sc, "add rule inet %s guests ct state established,related accept", t);
	line(&sc, "add rule inet %s guests icmp type echo-request accept", t);
	for (int proto = 0; proto < _NFT_PROTO_MAX; proto++) {
		_cleanup_free_ char *set = port_set(p, (NftProto)proto);
		if (set)
			line(&sc, "add rule inet %s guests %s dport %s accept", t,
			     nft_proto_names[proto], set);
	}
	line(&sc, "add rule inet %s guests drop", t);
	return sc.s;
}

/* The tap's key in @allowed: tap . MAC . IP, checked. */
static char *allowed_key(const char *tap, const char *mac, const char *ip)
{
	if (!ident_ok(tap) || !mac_ok(mac) || !ipv4_ok(ip)) {
		log_error("nft: bad VM rule input (tap '%s', mac '%s', ip '%s')", tap ?: "",
			  mac ?: "", ip ?: "");
		return NULL;
	}
	return xasprintf("\"%s\" . %s . %s", tap, mac, ip);
}

char *nft_script_vm_add(const char *instance, const char *tap, const char *mac, const char *ip)
{
	_cleanup_free_ char *t = nft_table_name(instance), *key = allowed_key(tap, mac, ip);
	if (!t || !key)
		return NULL;
	Script sc = { 0 };
	/* One transaction: packets see both elements or neither. */
	line(&sc, "add element bridge %s allowed { %s }", t, key);
	line(&sc, "add element bridge %s taps { \"%s\" }", t, tap);
	return sc.s;
}

/* The sets a delete names, so it succeeds without the instance tables. */
static void sets_ensure(Script *sc, const char *t)
{
	line(sc, "add table bridge %s", t);
	line(sc, "add set bridge %s taps { type ifname; }", t);
	line(sc, "add set bridge %s allowed { type ifname . ether_addr . ipv4_addr; }", t);
}

char *nft_script_vm_delete(const char *instance, const char *tap, char *const *macs,
			   char *const *ips, size_t n_keys)
{
	_cleanup_free_ char *t = nft_table_name(instance);
	if (!t || !ident_ok(tap)) {
		log_error("nft: bad VM rule name (tap '%s')", tap ?: "");
		return NULL;
	}
	Script sc = { 0 };
	sets_ensure(&sc, t);
	/* "add" first makes each delete succeed whether or not the element
	 * existed: the transaction is all or nothing (packets see all of it or
	 * none), and nft 1.0.6 has no "destroy". */
	line(&sc, "add element bridge %s taps { \"%s\" }", t, tap);
	line(&sc, "delete element bridge %s taps { \"%s\" }", t, tap);
	for (size_t i = 0; i < n_keys; i++) {
		_cleanup_free_ char *key = allowed_key(tap, macs[i], ips[i]);
		if (!key) {
			free(sc.s);
			return NULL;
		}
		line(&sc, "add element bridge %s allowed { %s }", t, key);
		line(&sc, "delete element bridge %s allowed { %s }", t, key);
	}
	return sc.s;
}

char *nft_script_legacy_remove(const char *instance, bool has_map, char *const *chains)
{
	_cleanup_free_ char *t = nft_table_name(instance);
	if (!t || (!has_map && (!chains || !chains[0])))
		return NULL;
	Script sc = { 0 };
	/* The map's elements jump to the chains: it goes first. Its only user,
	 * the old prerouting rule, must be gone first (nft_legacy_remove puts
	 * the instance script, which flushes that chain, in front). */
	if (has_map)
		line(&sc, "delete map bridge %s ports", t);
	for (size_t i = 0; chains && chains[i]; i++) {
		if (!ident_ok(chains[i]) || !startswith(chains[i], NFT_LEGACY_CHAIN_PREFIX)) {
			log_error("nft: bad legacy chain name '%s'", chains[i]);
			free(sc.s);
			return NULL;
		}
		line(&sc, "flush chain bridge %s %s", t, chains[i]);
		line(&sc, "delete chain bridge %s %s", t, chains[i]);
	}
	return sc.s;
}

/* ---- running scripts ------------------------------------------------------ */

/* One libnftables context for the life of the process, made on first use.
 * A context per call cost its creation (include paths, the iproute2 name
 * tables read from /etc, a netlink socket) on every VM start. The library
 * refetches its ruleset cache whenever the kernel's generation moved, so a
 * kept context never acts on rules someone else changed meanwhile. The
 * mutex keeps it safe from any thread (today only the event loop calls in;
 * the exit-time save threads do not). Its netlink socket is
 * not CLOEXEC (libnftables opens it), which is fine because every child we
 * exec goes through proc_spawn, which marks every fd above stderr CLOEXEC. */
static struct nft_ctx *nft_kept;
static pthread_mutex_t nft_lock = PTHREAD_MUTEX_INITIALIZER;

/* libnftables exit()s the whole process when it cannot open its netlink
 * socket (mnl.c: netlink_init_error), at context creation and when it
 * reopens it after ENOBUFS. A daemon must never be ended by a library:
 * make sure the fds it needs are there first, before every call (the
 * socket plus the fds the context opens; measured: it needs a few). */
static int nft_fds_available(const char *what)
{
	int fds[4];
	size_t n = 0;
	int r = 0;
	for (; n < ELEMENTSOF(fds); n++) {
		fds[n] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
		if (fds[n] < 0) {
			r = -errno;
			break;
		}
	}
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
	if (r < 0)
		return log_errno(r, "nft: %s: cannot open a netlink socket: %m", what);
	return 0;
}

static int nft_ctx_get(const char *what, struct nft_ctx **ret)
{
	if (!nft_kept) {
		struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
		if (!ctx)
			return log_errno(-ENOMEM, "nft: %s: cannot create a libnftables context",
					 what);
		if (nft_ctx_buffer_output(ctx) < 0 || nft_ctx_buffer_error(ctx) < 0) {
			nft_ctx_free(ctx);
			return log_errno(-ENOMEM, "nft: %s: cannot buffer output", what);
		}
		nft_kept = ctx;
	}
	*ret = nft_kept;
	return 0;
}

/* Run one script (one transaction) on the kept context. With ret_output,
 * the JSON output. With enoent_quiet, "No such file or directory" (a table
 * or set not there) is -ENOENT and not logged. Called with nft_lock held. */
static int nft_run_locked(const char *what, const char *script, bool enoent_quiet,
			  char **ret_output)
{
	struct nft_ctx *ctx = NULL;
	int r = nft_fds_available(what);
	if (r < 0 || (r = nft_ctx_get(what, &ctx)) < 0)
		return r;
	nft_ctx_output_set_flags(ctx, ret_output ? NFT_CTX_OUTPUT_JSON : 0);
	int rc = nft_run_cmd_from_buffer(ctx, script);
	/* Reading a buffer also empties it for the next call. */
	_cleanup_free_ char *out = xstrdup(nft_ctx_get_output_buffer(ctx) ?: "");
	_cleanup_free_ char *err = xstrdup(nft_ctx_get_error_buffer(ctx) ?: "");
	if (rc != 0) {
		if (enoent_quiet && strstr(err, "No such file or directory"))
			return -ENOENT;
		/* libnftables reports text only; EPERM is worth telling apart. */
		r = strstr(err, "Operation not permitted") ? -EPERM : -EIO;
		err[strcspn(err, "\n")] = 0;
		return log_errno(r, "nft: %s failed: %s", what, err);
	}
	if (ret_output)
		*ret_output = TAKE_PTR(out);
	return 0;
}

static int nft_run_as(const char *what, const char *script, bool enoent_quiet, char **ret_output)
{
	pthread_mutex_lock(&nft_lock);
	int r = nft_run_locked(what, script, enoent_quiet, ret_output);
	pthread_mutex_unlock(&nft_lock);
	return r;
}

static int nft_run(const char *what, const char *script, char **ret_output)
{
	return nft_run_as(what, script, false, ret_output);
}

/* A listing of something that may not exist (yet). */
static int nft_run_quiet_enoent(const char *what, const char *script, char **ret_output)
{
	return nft_run_as(what, script, true, ret_output);
}

/* The "nftables" array of a JSON listing; NULL (logged) when malformed. */
static json_object *listing_items(json_object *o, const char *what)
{
	json_object *items;
	if (!o || !json_object_object_get_ex(o, "nftables", &items) ||
	    !json_object_is_type(items, json_type_array)) {
		log_errno(-EBADMSG, "nft: %s: unexpected JSON", what);
		return NULL;
	}
	return items;
}

/* The elements of one of our bridge sets as JSON (the "elem" array, or
 * NULL when the set has none); -ENOENT when the table or set is absent. */
static int set_elements(const char *t, const char *set, json_object **ret_root,
			json_object **ret_elems)
{
	_cleanup_free_ char *out = NULL, *what = xasprintf("list set %s", set);
	_cleanup_free_ char *cmd = xasprintf("list set bridge %s %s", t, set);
	int r = nft_run_quiet_enoent(what, cmd, &out);
	if (r < 0)
		return r;
	json_object *o = json_tokener_parse(out), *items = listing_items(o, what), *it, *st;
	*ret_elems = NULL;
	for (size_t i = 0; items && i < json_object_array_length(items); i++) {
		it = json_object_array_get_idx(items, i);
		if (json_object_object_get_ex(it, "set", &st))
			json_object_object_get_ex(st, "elem", ret_elems);
	}
	if (!items) {
		json_object_put(o);
		return -EBADMSG;
	}
	*ret_root = o;
	return 0;
}

static int legacy_remove(const NftPolicy *p)
{
	_cleanup_free_ char *t = nft_table_name(p->instance), *out = NULL, *cmd = NULL;
	if (!t)
		return -EINVAL;
	cmd = xasprintf("list table bridge %s", t);
	int r = nft_run_quiet_enoent("list our bridge table", cmd, &out);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	json_object *o = json_tokener_parse(out), *items = listing_items(o, "list table"), *it, *c,
		    *v;
	_cleanup_strv_free_ char **chains = xcalloc(1, sizeof(char *));
	bool has_map = false;
	for (size_t i = 0; items && i < json_object_array_length(items); i++) {
		it = json_object_array_get_idx(items, i);
		if (json_object_object_get_ex(it, "map", &c) &&
		    json_object_object_get_ex(c, "name", &v) &&
		    streq(json_object_get_string(v) ?: "", "ports"))
			has_map = true;
		if (json_object_object_get_ex(it, "chain", &c) &&
		    json_object_object_get_ex(c, "name", &v) &&
		    startswith(json_object_get_string(v) ?: "", NFT_LEGACY_CHAIN_PREFIX))
			strv_push(&chains, xstrdup(json_object_get_string(v)));
	}
	json_object_put(o);
	if (!items)
		return -EBADMSG;
	if (!has_map && !chains[0])
		return 0;
	/* The instance part first, in the same transaction: it replaces the
	 * old prerouting rule, the map's only user, and the VMs are never
	 * without a filter in between. */
	_cleanup_free_ char *inst = nft_script_instance(p);
	_cleanup_free_ char *rm = nft_script_legacy_remove(p->instance, has_map, chains);
	if (!inst || !rm)
		return -EINVAL;
	_cleanup_free_ char *s = xasprintf("%s%s", inst, rm);
	if ((r = nft_run("remove an older bangerd's per-VM chains", s, NULL)) >= 0)
		log_info("nft: removed an older bangerd's per-VM layout (%zu chain(s)%s); running "
			 "VMs get their elements back as they are adopted",
			 strv_length(chains), has_map ? ", the ports map" : "");
	return r;
}

/* Per-process facts about our tables, under nft_lock:
 * - instance_made: this process made the instance part (with its own
 *   policy), so a VM's start adds its elements alone;
 * - legacy_checked: an older bangerd's layout was looked for (and removed):
 *   none can appear while this one holds the state dir, so once is enough
 *   (start-up calls this from the sweep and from adoption, and every
 *   periodic resync re-makes the instance part). */
static bool instance_made, legacy_checked;

static void flag_set(bool *f, bool v)
{
	pthread_mutex_lock(&nft_lock);
	*f = v;
	pthread_mutex_unlock(&nft_lock);
}

static bool flag_get(const bool *f)
{
	pthread_mutex_lock(&nft_lock);
	bool v = *f;
	pthread_mutex_unlock(&nft_lock);
	return v;
}

int nft_legacy_remove(const NftPolicy *p)
{
	if (flag_get(&legacy_checked))
		return 0;
	int r = legacy_remove(p);
	flag_set(&legacy_checked, r >= 0);
	return r;
}

int nft_instance_ensure(const NftPolicy *p)
{
	_cleanup_free_ char *s = nft_script_instance(p);
	if (!s)
		return -EINVAL;
	int r = nft_run("instance tables", s, NULL);
	flag_set(&instance_made, r >= 0);
	return r < 0 ? r : nft_legacy_remove(p);
}

char *nft_script_vm_start(const NftPolicy *p, const char *tap, const char *mac, const char *ip)
{
	_cleanup_free_ char *inst = nft_script_instance(p);
	_cleanup_free_ char *vm = inst ? nft_script_vm_add(p->instance, tap, mac, ip) : NULL;
	return vm ? xasprintf("%s%s", inst, vm) : NULL;
}

int nft_vm_add(const NftPolicy *p, const char *tap, const char *mac, const char *ip)
{
	_cleanup_free_ char *what = xasprintf("add rules of tap %s", tap);
	int r = -ENOENT;
	/* The elements alone when this process made the instance part: the
	 * instance script re-made every start cost more than the elements.
	 * Tables or sets deleted by hand since: ENOENT, and the whole start
	 * script runs, as it does the first time. */
	if (flag_get(&instance_made)) {
		_cleanup_free_ char *vm = nft_script_vm_add(p->instance, tap, mac, ip);
		if (!vm)
			return -EINVAL;
		r = nft_run_quiet_enoent(what, vm, NULL);
	}
	if (r == -ENOENT) {
		_cleanup_free_ char *s = nft_script_vm_start(p, tap, mac, ip);
		if (!s)
			return -EINVAL;
		r = nft_run(what, s, NULL);
		flag_set(&instance_made, r >= 0);
	}
	if (r >= 0)
		log_info("nft: only %s / %s may send from tap %s", mac, ip, tap);
	return r;
}

int nft_vm_list(const char *instance, char ***ret_taps)
{
	_cleanup_free_ char *t = nft_table_name(instance);
	json_object *o = NULL, *elems = NULL;
	if (!t)
		return -EINVAL;
	_cleanup_strv_free_ char **taps = xcalloc(1, sizeof(char *));
	int r = set_elements(t, "taps", &o, &elems);
	if (r < 0 && r != -ENOENT)
		return r;
	for (size_t i = 0; elems && i < json_object_array_length(elems); i++) {
		const char *n = json_object_get_string(json_object_array_get_idx(elems, i));
		if (n)
			strv_push(&taps, xstrdup(n));
	}
	json_object_put(o);
	strv_sort(taps);
	*ret_taps = TAKE_PTR(taps);
	return 0;
}

/* The MAC, IP pairs @allowed holds for tap (a teardown without handles). */
static int allowed_of(const char *t, const char *tap, char ***ret_macs, char ***ret_ips)
{
	json_object *o = NULL, *elems = NULL, *c, *parts;
	_cleanup_strv_free_ char **macs = xcalloc(1, sizeof(char *)),
				 **ips = xcalloc(1, sizeof(char *));
	int r = set_elements(t, "allowed", &o, &elems);
	if (r < 0 && r != -ENOENT)
		return r;
	for (size_t i = 0; elems && i < json_object_array_length(elems); i++) {
		c = json_object_array_get_idx(elems, i);
		if (!json_object_object_get_ex(c, "concat", &parts) ||
		    !json_object_is_type(parts, json_type_array) ||
		    json_object_array_length(parts) != 3 ||
		    !streq(json_object_get_string(json_object_array_get_idx(parts, 0)) ?: "", tap))
			continue;
		strv_push(&macs, xstrdup(json_object_get_string(json_object_array_get_idx(parts, 1))
						 ?: ""));
		strv_push(&ips, xstrdup(json_object_get_string(json_object_array_get_idx(parts, 2))
						?: ""));
	}
	json_object_put(o);
	*ret_macs = TAKE_PTR(macs);
	*ret_ips = TAKE_PTR(ips);
	return 0;
}

int nft_vm_delete(const char *instance, const char *tap, const char *mac, const char *ip)
{
	_cleanup_free_ char *t = nft_table_name(instance);
	_cleanup_strv_free_ char **macs = NULL, **ips = NULL;
	if (!t)
		return -EINVAL;
	int r;
	if (mac && ip) {
		strv_push(&macs, xstrdup(mac));
		strv_push(&ips, xstrdup(ip));
	} else if ((r = allowed_of(t, tap, &macs, &ips)) < 0)
		return r;
	_cleanup_free_ char *s = nft_script_vm_delete(instance, tap, macs, ips, strv_length(macs));
	if (!s)
		return -EINVAL;
	_cleanup_free_ char *what = xasprintf("delete rules of tap %s", tap);
	if ((r = nft_run(what, s, NULL)) >= 0)
		log_info("nft: tap %s: rules deleted", tap);
	return r;
}
