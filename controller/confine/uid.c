/* uid.c — the VMM uid range and allocation (see confine.h). Pure. */
#include "confine/confine.h"
#include "util/log.h"

#include <stdio.h>

#define UID_COUNT_MAX (1u << 24)

int confine_uid_range_parse(const char *s, UidRange *ret)
{
	uint64_t base, count;
	const char *colon = s ? strchr(s, ':') : NULL;
	if (!colon)
		return log_errno(-EINVAL, "vmm uid range '%s': expected BASE:COUNT", s ? s : "");
	_cleanup_free_ char *b = xstrndup(s, (size_t)(colon - s));
	if (parse_u64(b, 1, UINT32_MAX, &base) < 0 ||
	    parse_u64(colon + 1, 1, UID_COUNT_MAX, &count) < 0)
		return log_errno(-EINVAL,
				 "vmm uid range '%s': expected BASE:COUNT with BASE >= 1 and "
				 "1 <= COUNT <= %u",
				 s, UID_COUNT_MAX);
	uint64_t last = base + count - 1;
	if (last >= UINT32_MAX)
		return log_errno(-EINVAL, "vmm uid range '%s': reaches 4294967295 ((uid_t)-1)", s);
	if (base <= 65535 && last >= 65534)
		return log_errno(-EINVAL,
				 "vmm uid range '%s': includes 65534/65535 (nobody, "
				 "16-bit -1)",
				 s);
	*ret = (UidRange){ (uint32_t)base, (uint32_t)count };
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static bool in_range(const UidRange *r, uint32_t uid)
{
	return uid >= r->base && uid - r->base < r->count;
}

int confine_uid_pick(const UidRange *range, uint32_t current, const uint32_t *used, size_t n_used,
		     uint32_t *ret)
{
	if (current && in_range(range, current)) {
		*ret = current;
		return 0;
	}
	_cleanup_free_ uint32_t *v = xcalloc(n_used + 1, sizeof(uint32_t));
	size_t n = 0;
	for (size_t i = 0; i < n_used; i++)
		if (in_range(range, used[i]) && used[i] != current)
			v[n++] = used[i];
	qsort(v, n, sizeof(uint32_t), cmp_u32);
	/* Walk the sorted used uids: the first gap is the lowest free uid. */
	uint64_t want = range->base;
	for (size_t i = 0; i < n && v[i] <= want; i++)
		if (v[i] == want)
			want++;
	if (want - range->base >= range->count)
		return -ENOSPC;
	*ret = (uint32_t)want;
	return 0;
}

uint64_t confine_memory_limit(unsigned memory_mib)
{
	return ((uint64_t)memory_mib + CONFINE_MEMORY_OVERHEAD_MIB) << 20;
}

uint64_t confine_pids_limit(unsigned vcpus)
{
	return (uint64_t)vcpus + CONFINE_PIDS_BASE;
}
