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

char *nft_vm_chain_for(const char *vm_uid)
{
	if (!vm_uid || strspn(vm_uid, "0123456789abcdef") < 8)
		return NULL;
	return xasprintf(NFT_VM_CHAIN_PREFIX "%.8s", vm_uid);
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
	line(&sc, "add map bridge %s ports { type ifname : verdict; }", t);
	line(&sc,
	     "add chain bridge %s prerouting { type filter hook prerouting "
	     "priority " NFT_PRIO_PREROUTING "; policy accept; }",
	     t);
	line(&sc, "flush chain bridge %s prerouting", t);
	line(&sc, "add rule bridge %s prerouting iifname vmap @ports", t);
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

char *nft_script_vm_add(const char *instance, const char *chain, const char *tap, const char *mac,
			const char *ip)
{
	_cleanup_free_ char *t = nft_table_name(instance);
	if (!t || !ident_ok(chain) || !ident_ok(tap) || !mac_ok(mac) || !ipv4_ok(ip)) {
		log_error("nft: bad VM rule input (chain '%s', tap '%s', mac '%s', ip '%s')",
			  chain ?: "", tap ?: "", mac ?: "", ip ?: "");
		return NULL;
	}
	Script sc = { 0 };
	line(&sc, "add table bridge %s", t);
	line(&sc, "add map bridge %s ports { type ifname : verdict; }", t);
	line(&sc, "add chain bridge %s %s", t, chain);
	line(&sc, "flush chain bridge %s %s", t, chain);
	line(&sc, "add rule bridge %s %s ether saddr != %s drop", t, chain, mac);
	line(&sc, "add rule bridge %s %s arp saddr ether != %s drop", t, chain, mac);
	line(&sc, "add rule bridge %s %s arp saddr ip != %s drop", t, chain, ip);
	line(&sc, "add rule bridge %s %s ip saddr != %s drop", t, chain, ip);
	/* IPv6 (no address is assigned to guests), VLAN tags, anything else. */
	line(&sc, "add rule bridge %s %s ether type != { arp, ip } drop", t, chain);
	line(&sc, "add rule bridge %s %s accept", t, chain);
	line(&sc, "add element bridge %s ports { \"%s\" : jump %s }", t, tap, chain);
	return sc.s;
}

char *nft_script_vm_delete(const char *instance, const char *chain, const char *tap)
{
	_cleanup_free_ char *t = nft_table_name(instance);
	if (!t || !ident_ok(chain) || !ident_ok(tap)) {
		log_error("nft: bad VM rule name (chain '%s', tap '%s')", chain ?: "", tap ?: "");
		return NULL;
	}
	Script sc = { 0 };
	/* "add" first makes each delete succeed whether or not the element
	 * existed: the transaction is all or nothing, and nft 1.0.6 has no
	 * "destroy". The chain is known to exist (the caller listed it). */
	line(&sc, "add element bridge %s ports { \"%s\" : jump %s }", t, tap, chain);
	line(&sc, "delete element bridge %s ports { \"%s\" }", t, tap);
	line(&sc, "flush chain bridge %s %s", t, chain);
	line(&sc, "delete chain bridge %s %s", t, chain);
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
 * the JSON output. Called with nft_lock held. */
static int nft_run_locked(const char *what, const char *script, char **ret_output)
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
		/* libnftables reports text only; EPERM is worth telling apart. */
		r = strstr(err, "Operation not permitted") ? -EPERM : -EIO;
		err[strcspn(err, "\n")] = 0;
		return log_errno(r, "nft: %s failed: %s", what, err);
	}
	if (ret_output)
		*ret_output = TAKE_PTR(out);
	return 0;
}

static int nft_run(const char *what, const char *script, char **ret_output)
{
	pthread_mutex_lock(&nft_lock);
	int r = nft_run_locked(what, script, ret_output);
	pthread_mutex_unlock(&nft_lock);
	return r;
}

int nft_instance_ensure(const NftPolicy *p)
{
	_cleanup_free_ char *s = nft_script_instance(p);
	if (!s)
		return -EINVAL;
	return nft_run("instance tables", s, NULL);
}

char *nft_script_vm_start(const NftPolicy *p, const char *chain, const char *tap, const char *mac,
			  const char *ip)
{
	_cleanup_free_ char *inst = nft_script_instance(p);
	_cleanup_free_ char *vm = inst ? nft_script_vm_add(p->instance, chain, tap, mac, ip) : NULL;
	return vm ? xasprintf("%s%s", inst, vm) : NULL;
}

int nft_vm_add(const NftPolicy *p, const char *chain, const char *tap, const char *mac,
	       const char *ip)
{
	_cleanup_free_ char *s = nft_script_vm_start(p, chain, tap, mac, ip);
	if (!s)
		return -EINVAL;
	_cleanup_free_ char *what = xasprintf("add rules of tap %s", tap);
	int r = nft_run(what, s, NULL);
	if (r >= 0)
		log_info("nft: %s: only %s / %s may send from tap %s", chain, mac, ip, tap);
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int nft_vm_list(const char *instance, char ***ret_chains)
{
	_cleanup_free_ char *t = nft_table_name(instance), *out = NULL;
	if (!t)
		return -EINVAL;
	/* All bridge chains: works whether or not our table exists yet. */
	int r = nft_run("list bridge chains", "list chains bridge", &out);
	if (r < 0)
		return r;
	json_object *o = json_tokener_parse(out), *items, *it, *c, *v;
	_cleanup_strv_free_ char **names = xcalloc(1, sizeof(char *));
	if (!o || !json_object_object_get_ex(o, "nftables", &items) ||
	    !json_object_is_type(items, json_type_array)) {
		json_object_put(o);
		return log_errno(-EBADMSG, "nft: list bridge chains: unexpected JSON");
	}
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		it = json_object_array_get_idx(items, i);
		if (!json_object_object_get_ex(it, "chain", &c) ||
		    !json_object_object_get_ex(c, "table", &v) ||
		    !streq(json_object_get_string(v) ?: "", t) ||
		    !json_object_object_get_ex(c, "name", &v))
			continue;
		const char *n = json_object_get_string(v);
		if (n && startswith(n, NFT_VM_CHAIN_PREFIX))
			strv_push(&names, xstrdup(n));
	}
	json_object_put(o);
	qsort(names, strv_length(names), sizeof(char *), cmp_str);
	*ret_chains = TAKE_PTR(names);
	return 0;
}

int nft_vm_delete(const char *instance, const char *chain, const char *tap)
{
	_cleanup_strv_free_ char **chains = NULL;
	_cleanup_free_ char *s = nft_script_vm_delete(instance, chain, tap);
	if (!s)
		return -EINVAL;
	int r = nft_vm_list(instance, &chains);
	if (r < 0)
		return r;
	if (!strv_contains(chains, chain))
		return 0;
	_cleanup_free_ char *what = xasprintf("delete rules %s of tap %s", chain, tap);
	if ((r = nft_run(what, s, NULL)) >= 0)
		log_info("nft: %s (tap %s): deleted", chain, tap);
	return r;
}
