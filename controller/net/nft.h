/* nft.h — the guest firewall: the one module that makes and unmakes nftables
 * rules (through libnftables, in-process: no `nft` child, no shell).
 *
 * Two tables per controller instance, named after its instance tag
 * (store_instance_id()), so two bangerd instances in one network namespace
 * never see or touch each other's rules:
 *
 *   table bridge banger_<instance>          anti-spoofing, per VM
 *     map ports { ifname : verdict }         tap name → jump vm_<uid8>
 *     chain prerouting (hook prerouting)     iifname vmap @ports
 *     chain vm_<uid8>                        the VM's own rules:
 *         ether saddr != MAC drop; ARP sender MAC/IP must be the guest's;
 *         IPv4 saddr must be the guest's; any other ethertype (IPv6, VLAN,
 *         ...) dropped. Guest-to-guest and guest-to-host frames pass these.
 *   table inet banger_<instance>            host services, per instance
 *     chain input (hook input)               iifname <bridge> jump guests
 *     chain guests                           ct established,related accept;
 *         ICMP echo accept; tcp/udp dport in --host-allow accept; drop.
 *
 * The per-VM part (map element + chain) belongs to the VM: made at start
 * after its tap (recorded first in handles.json), deleted at teardown, and
 * swept at start-up when no VM owns it. The instance part is made (and
 * replaced, so a changed --host-allow applies) by nft_instance_ensure and
 * stays like the bridge does.
 *
 * Every change is one nft transaction (a script run as a whole or not at
 * all). Inputs that reach a script are checked against strict character
 * sets first: nothing a spec says can add a statement. A VM's start is ONE
 * transaction: the instance part (re-made, so tables deleted by hand come
 * back) and the VM's chain and map element together. All calls share one
 * libnftables context kept for the life of the process (nft.c says why
 * that is safe: its socket reaches no exec'd child). */
#pragma once

#include "util/util.h"

#include <stdint.h>

#define NFT_VM_CHAIN_PREFIX "vm_"
#define NFT_HOST_ALLOW_MAX  64

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
/* NFT_VM_CHAIN_PREFIX + the first 8 hex digits of vm_uid ("vm_3f2a9c01");
 * NULL when vm_uid starts with fewer than 8 hex digits. */
char *nft_vm_chain_for(const char *vm_uid);
/* "tcp/PORT" or "udp/PORT" (PORT 1..65535) → *ret. -EINVAL otherwise. */
int nft_host_allow_parse(const char *s, NftHostAllow *ret);

/* The scripts the operations below run; NULL (and a logged reason) when an
 * input fails its check. Caller frees. */
char *nft_script_instance(const NftPolicy *p);
char *nft_script_vm_add(const char *instance, const char *chain, const char *tap, const char *mac,
			const char *ip);
char *nft_script_vm_delete(const char *instance, const char *chain, const char *tap);
/* The instance script followed by the VM's: what nft_vm_add runs. */
char *nft_script_vm_start(const NftPolicy *p, const char *chain, const char *tap, const char *mac,
			  const char *ip);

/* ---- operations (need CAP_NET_ADMIN in the caller's network namespace) --- */

/* Create or replace the instance's tables and base chains. Idempotent. */
int nft_instance_ensure(const NftPolicy *p);
/* Add VM rules: frames from `tap` must carry mac and ip. Replaces a chain
 * of that name if one exists (idempotent). Makes or replaces the instance's
 * tables (as nft_instance_ensure) in the same transaction. */
int nft_vm_add(const NftPolicy *p, const char *chain, const char *tap, const char *mac,
	       const char *ip);
/* Delete the VM's chain and map element; success when they are gone already
 * (and when the instance tables do not exist). */
int nft_vm_delete(const char *instance, const char *chain, const char *tap);
/* Names of the vm_* chains in the instance's bridge table (sorted strv,
 * empty when the table does not exist). */
int nft_vm_list(const char *instance, char ***ret_chains);
