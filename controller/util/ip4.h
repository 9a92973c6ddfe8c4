/* ip4.h — IPv4 addresses as host-order integers: the one parser and
 * formatter (spec validation, IPAM and the kernel command line share it). */
#pragma once

#include <stdint.h>

/* Strict dotted quad (exactly four decimal octets, no leading zeros) →
 * host byte order; -EINVAL. */
int ip4_parse(const char *s, uint32_t *ret);
/* "A.B.C.D"; the caller frees. */
char *ip4_format(uint32_t ip);
/* The netmask of a prefix length (0..32). */
uint32_t ip4_prefix_mask(unsigned prefix);
