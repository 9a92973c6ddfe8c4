/* nft.h — the guest firewall: the one module that makes and unmakes nftables
 * rules (through libnftables, in-process: no `nft` child, no shell).
 *
 * Two tables per controller instance, named after its instance tag
 * (store_instance_id()), so two bangerd instances in one network namespace
 * never see or touch each other's rules:
 *
 *   table bridge banger_<instance>          anti-spoofing, per VM
 *     set taps { ifname }                    the VMs' taps
 *     set allowed { ifname . MAC . IPv4 }    what each tap may send as
 *     chain prerouting (hook prerouting)     iifname @taps jump guest
 *     chain guest                            any ethertype but ARP and IPv4
 *         (IPv6, VLAN, ...) dropped; IPv4 whose tap . ether saddr . ip
 *         saddr is not in @allowed dropped; ARP whose tap . ether saddr .
 *         sender IP or tap . sender MAC . sender IP is not dropped.
 *         Guest-to-guest and guest-to-host frames pass these.
 *   table inet banger_<instance>            host services, per instance
 *     chain input (hook input)               iifname <bridge> jump guests
 *     chain guests                           ct established,related accept;
 *         ICMP echo accept; tcp/udp dport in --host-allow accept; drop.
 *
 * A VM's part is two set elements keyed by its tap, not rules of its own:
 * adding or deleting one costs the same with 1 VM or 1,000. (Chains per
 * VM, as before, made every start O(VMs): libnftables fetches every chain
 * into its cache, and the kernel validates every jump target on commit —
 * 25 ms a start with 1,000 VMs.) A tap in @taps without its @allowed
 * element sends nothing (fail closed); both are added, and deleted, in one
 * transaction. The VM's part is made at start after its tap (recorded first in
 * handles.json, with the MAC and IP that make its key), deleted at
 * teardown, and swept at start-up when no VM owns its tap. The instance
 * part is made (and replaced, so a changed --host-allow applies) by
 * nft_instance_ensure and stays like the bridge does; that also removes
 * the per-VM chains and the `ports` map an older bangerd made.
 *
 * Every change is one nft transaction (a script run as a whole or not at
 * all). Inputs that reach a script are checked against strict character
 * sets first: nothing a spec says can add a statement. A VM's start is ONE
 * transaction: its elements (with the instance part in front the first
 * time, and whenever the tables were deleted by hand). The periodic resync
 * re-makes the instance part (a chain flushed by hand comes back). All calls share one libnftables
 * context kept for the life of the process (nft.c says why that is safe:
 * its socket reaches no exec'd child). */
#pragma once

#include "util/util.h"

#include <stdint.h>

#define NFT_LEGACY_CHAIN_PREFIX "vm_" /* per-VM chains of an older bangerd */
#define NFT_HOST_ALLOW_MAX      64

typedef enum {
	NFT_PROTO_TCP,
	NFT_PROTO_UDP,
	_NFT_PROTO_MAX,
} NftProto;

typedef struct {
	NftProto proto;
	uint16_t port;
} NftHostAllow;

typedef struct {
	const char *instance; /* 16 lower-case hex digits */
	const char *bridge;   /* the guests' bridge */
	const NftHostAllow *allow;
	size_t n_allow;
} NftPolicy;

/* ---- pure: names, parsing and scripts (unit-tested) ----------------------- */

/* "banger_<instance>"; NULL when instance is not 16 lower-case hex digits. */
char *nft_table_name(const char *instance);
/* "tcp/PORT" or "udp/PORT" (PORT 1..65535) → *ret. -EINVAL otherwise. */
int nft_host_allow_parse(const char *s, NftHostAllow *ret);

/* The scripts the operations below run; NULL (and a logged reason) when an
 * input fails its check. Caller frees. */
char *nft_script_instance(const NftPolicy *p);
char *nft_script_vm_add(const char *instance, const char *tap, const char *mac, const char *ip);
/* Deletes the tap's @taps element and its @allowed elements (MAC, IP
 * pairs: n_keys of each), whether or not they exist. */
char *nft_script_vm_delete(const char *instance, const char *tap, char *const *macs,
			   char *const *ips, size_t n_keys);
/* The instance script followed by the VM's: what nft_vm_add runs. */
char *nft_script_vm_start(const NftPolicy *p, const char *tap, const char *mac, const char *ip);
/* Removes an older bangerd's layout: its `ports` map (when has_map) and
 * the per-VM chains named (NFT_LEGACY_CHAIN_PREFIX…); NULL when there is
 * nothing to remove or a name fails its check. */
char *nft_script_legacy_remove(const char *instance, bool has_map, char *const *chains);

/* ---- operations (need CAP_NET_ADMIN in the caller's network namespace) --- */

/* Create or replace the instance's tables, sets and base chains, then
 * remove an older bangerd's per-VM layout if one is there. Idempotent. */
int nft_instance_ensure(const NftPolicy *p);
/* Remove an older bangerd's per-VM layout (vm_* chains, the ports map) from
 * our table, with the instance part re-made in the same transaction; 0 at
 * once when there is none (one listing of the table). Once per process:
 * after a success, later calls return 0 without looking. */
int nft_legacy_remove(const NftPolicy *p);
/* Add the VM's elements: frames from `tap` must carry mac and ip.
 * Idempotent. The first call of the process (and any after the tables or
 * sets went missing) makes or replaces the instance's part too, in the
 * same transaction (as nft_instance_ensure, without the legacy check);
 * later ones add the elements alone (one short transaction). */
int nft_vm_add(const NftPolicy *p, const char *tap, const char *mac, const char *ip);
/* Delete the tap's elements; success when they are gone already (and when
 * the instance tables do not exist). mac and ip NULL: not known (no
 * handles): the tap's @allowed elements are looked up first. */
int nft_vm_delete(const char *instance, const char *tap, const char *mac, const char *ip);
/* The taps in the instance's @taps set (sorted strv, empty when the table
 * does not exist). */
int nft_vm_list(const char *instance, char ***ret_taps);
