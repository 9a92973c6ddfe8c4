/* timeutil.c — see timeutil.h. */
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t time_now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t time_now_us(void)
{
	return clock_ns(CLOCK_MONOTONIC) / 1000;
}

uint64_t time_now_ms(void)
{
	return clock_ns(CLOCK_MONOTONIC) / 1000000;
}

int64_t time_now_realtime_ms(void)
{
	return (int64_t)(clock_ns(CLOCK_REALTIME) / 1000000);
}

void time_format_rfc3339(int64_t epoch_ms, char *buf, size_t n)
{
	time_t t = (time_t)(epoch_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void time_format_rfc3339_ms(int64_t epoch_ms, char *buf, size_t n)
{
	time_t t = (time_t)(epoch_ms / 1000);
	struct tm tm;
	char base[32];
	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, n, "%s.%03dZ", base, (int)(epoch_ms % 1000));
}

int64_t time_parse_rfc3339(const char *s)
{
	struct tm tm = { 0 };
	const char *end;
	if (!s || !(end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
		return 0;
	int64_t ms = (int64_t)timegm(&tm) * 1000;
	if (*end == '.')
		ms += strtol(end + 1, NULL, 10) % 1000;
	return ms;
}
