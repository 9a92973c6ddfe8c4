/* timeutil.h — clocks and timestamp formatting. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds / microseconds / nanoseconds. */
uint64_t time_now_ms(void);
uint64_t time_now_us(void);
uint64_t time_now_ns(void);
/* CLOCK_REALTIME in milliseconds since the epoch. */
int64_t time_now_realtime_ms(void);
/* "2026-11-26T09:56:13Z" (UTC, seconds). buf >= 21 bytes. */
void time_format_rfc3339(int64_t epoch_ms, char *buf, size_t n);
/* "2026-11-26T09:56:13.123Z". buf >= 25 bytes. */
void time_format_rfc3339_ms(int64_t epoch_ms, char *buf, size_t n);
/* Inverse of time_format_rfc3339 (also accepts fractional seconds); 0 when
 * s is NULL or malformed. */
int64_t time_parse_rfc3339(const char *s);
