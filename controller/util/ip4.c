/* ip4.c — see ip4.h. */
#include "util/ip4.h"
#include "util/util.h"

#include <arpa/inet.h>

int ip4_parse(const char *s, uint32_t *ret)
{
	struct in_addr a;
	/* inet_pton(AF_INET) takes exactly the strict dotted quad (no octal,
	 * no short forms, no leading zeros), unlike inet_aton. */
	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*ret = ntohl(a.s_addr);
	return 0;
}

char *ip4_format(uint32_t ip)
{
	return xasprintf("%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

uint32_t ip4_prefix_mask(unsigned prefix)
{
	return prefix == 0 ? 0 : prefix >= 32 ? UINT32_MAX : UINT32_MAX << (32 - prefix);
}
