/* net.h — the network primitives one VM needs: a host bridge with the
 * gateway address, a persistent tap per VM enslaved to it, and IPv4/MAC
 * allocation for the guest.
 *
 * Two halves:
 *  - Pure logic (net_cidr_*, net_ip_allocate, net_mac_for_ip,
 *    net_tap_name_for): no I/O, no globals, unit-tested.
 *  - Link operations (net_bridge_*, net_tap_*, net_list_links,
 *    net_link_exists): talk to the kernel with libnl-route-3 only — no `ip`
 *    commands, no shell. The one exception is tap *creation*, which the
 *    kernel refuses over rtnetlink, so it goes through /dev/net/tun
 *    (TUNSETIFF + TUNSETPERSIST) and everything after that (master, MTU, up,
 *    delete) is netlink again.
 *
 * Sockets: every link operation opens its own short-lived NETLINK_ROUTE
 * socket and closes it before returning. Calls happen a few times per VM
 * lifecycle, so the cost (one socket + bind) is noise, and there is no shared
 * handle whose state (sequence numbers, a half-read dump after an error)
 * could leak between callers or break across a fork. The socket fd is
 * CLOEXEC: libnl >= 3.2.28 passes SOCK_CLOEXEC itself, and we check
 * FD_CLOEXEC after connecting and set it if an older libnl did not.
 * The /dev/net/tun fd is opened O_CLOEXEC and closed before returning.
 *
 * All operations act on the caller's network namespace. Idempotency: every
 * *_ensure is safe to repeat and converges; every delete treats "already
 * gone" as success. Errors are -errno with a logged message naming the link.
 *
 * Owned-name convention: every tap banger creates is named
 * NET_TAP_PREFIX + the first 8 hex chars of the VM uid, so an orphan sweep can
 * list NET_TAP_PREFIX links and map each back to a VM. A name is not proof of
 * ownership (another bangerd instance, an operator's own bgr-deadbeef): each
 * tap also carries its instance's owner tag (net_owner_tag()) in IFLA_IFALIAS,
 * set in the same netlink change that enslaves it, and nothing deletes a tap
 * whose alias is another tag or empty (the one exception: a tap whose
 * creation this instance recorded write-ahead, see net_tap_delete). */
#pragma once

#include <sys/types.h>

#include <stdbool.h>
#include <stdint.h>

#define NET_TAP_PREFIX "bgr-"
#define NET_IFNAME_MAX 15 /* IFNAMSIZ - 1 */

/* ---- pure logic ---------------------------------------------------------- */

/* An IPv4 subnet with the host's (gateway) address in it. All addresses are
 * host byte order. */
typedef struct {
	uint32_t network;   /* address & mask */
	uint32_t broadcast; /* network | ~mask */
	uint32_t gateway;   /* the address given in the CIDR string */
	unsigned prefix;    /* 1..30 */
} NetCidr;

/* Parse "A.B.C.D/N" (e.g. "172.16.0.1/24"). The address is the gateway and
 * must be a usable host address of the subnet (not its network or broadcast
 * address); N must leave room for at least one guest besides the gateway, so
 * 1 <= N <= 30. -EINVAL on any malformed or unusable input; *ret untouched. */
int net_cidr_parse(const char *cidr, NetCidr *ret);

/* True when ip (dotted quad) is inside c's subnet (any address, including
 * network/broadcast). False for unparseable input. */
bool net_cidr_contains(const NetCidr *c, const char *ip);

/* Choose a guest IPv4 address in c.
 *  - preferred != NULL (spec.network.guestIP): it is returned if it is a
 *    valid dotted quad inside the subnet, not the network, broadcast or
 *    gateway address (-EINVAL otherwise) and not in used_strv (-EADDRINUSE).
 *  - preferred == NULL: the lowest free host address of the subnet, skipping
 *    the gateway (so "172.16.0.1/24" hands out .2, .3, ...). Lowest-free
 *    rather than hash-derived because the chosen address is persisted in the
 *    store (store_set_guest_ip) and passed back as preferred on later
 *    reconciles, so it never reshuffles; lowest-free keeps addresses dense
 *    and predictable for operators. -ENOSPC when no host address is free.
 * used_strv: NULL-terminated list of addresses already handed out (NULL =
 * none); entries that do not parse or lie outside the subnet are ignored.
 * On success *ret_ip is a newly allocated dotted quad (free()). */
int net_ip_allocate(const NetCidr *c, char *const *used_strv, const char *preferred, char **ret_ip);

/* "06:00:" + the four octets of ip in lower-case hex: a locally administered
 * unicast MAC that is unique as long as the IP is, e.g.
 * 172.16.0.10 → "06:00:ac:10:00:0a". NULL if ip is not a dotted quad.
 * Caller frees. */
char *net_mac_for_ip(const char *ip);

/* NET_TAP_PREFIX + the first 8 hex digits of vm_uid (lower-cased; '-' and
 * other non-hex characters are skipped, so a UUID works too), e.g.
 * "3f2a9c01..." → "bgr-3f2a9c01" (12 chars, fits IFNAMSIZ). NULL when
 * vm_uid has fewer than 8 hex digits. Caller frees. */
char *net_tap_name_for(const char *vm_uid);

/* True when name is acceptable to the kernel as an interface name:
 * 1..15 chars, not "." or "..", no '/', ':' or whitespace. */
bool net_ifname_valid(const char *name);

/* ---- link operations (netlink, need CAP_NET_ADMIN) ----------------------- */

/* Make sure bridge `name` exists, has cidr's gateway address (e.g.
 * 172.16.0.1/24 for "172.16.0.1/24") and is up. Creates only what is
 * missing; a second call is a no-op. -EEXIST when a link with that name
 * exists but is not a bridge; -EINVAL for a bad name or cidr. */
int net_bridge_ensure(const char *name, const char *cidr);

/* Make sure `tap` exists as a persistent TAP device (IFF_TAP|IFF_NO_PI),
 * enslaved to `bridge`, with the given MTU (0 = copy the bridge's MTU), and
 * up, with alias `owner` (NULL: no alias). An existing tap with that name is
 * reused (re-enslaved, MTU set, up again) — this is what a restarted
 * controller does for a VM it finds running — only when its alias is
 * `owner`: -EEXIST when `tap` exists but is not a TAP device or (owner set)
 * carries another alias or none; -ENODEV when the bridge does not exist;
 * -EINVAL when `bridge` is not a bridge. */
int net_tap_ensure(const char *tap, const char *bridge, unsigned mtu, const char *owner);

/* Give the existing persistent tap to uid:gid (TUNSETOWNER, TUNSETGROUP),
 * so a VMM running as that user may attach to it without CAP_NET_ADMIN.
 * Call while no process has the tap open (-EBUSY otherwise). */
int net_tap_set_owner(const char *tap, uid_t uid, gid_t gid);

/* Delete link `tap`; success when it does not exist. Meant for our taps;
 * refuses (-EINVAL) to delete a link that is not a tun/tap device, so a typo
 * cannot take down a host interface. With owner != NULL, a tap whose alias
 * is not owner is left alone (logged, returns 0: it is not ours to delete);
 * untagged_ok also deletes one with no alias at all — for a tap the caller
 * recorded before creating it (a crash between TUNSETIFF and the alias). */
int net_tap_delete(const char *tap, const char *owner, bool untagged_ok);

/* Names of all links whose name starts with prefix ("" = all), sorted.
 * *ret_strv is a NULL-terminated strv (strv_free()), possibly empty. */
int net_list_links(const char *prefix, char ***ret_strv);

/* "banger:<instance>": the IFLA_IFALIAS of this instance's taps. */
char *net_owner_tag(const char *instance);

/* The alias of link `name` (*ret = NULL when it has none). -ENODEV when the
 * link does not exist. */
int net_link_alias(const char *name, char **ret);

/* True when a link named `name` exists (false also on lookup errors, which
 * are logged at debug level). */
bool net_link_exists(const char *name);
