/* tap.h — a tiny TAP producer for unit tests. Each CHECK prints "ok N - ..."
 * or "not ok N - ..." with the failing expression and location; SKIP prints
 * "ok N # SKIP reason" (TAP's directive), counted apart so a skip is never
 * reported as a pass; tap_done() returns the process exit status (1 if
 * anything failed) and says how many checks were skipped. */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed, tap_skipped;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		bool _c = (cond);                                                                  \
		tap_n++;                                                                           \
		if (_c) {                                                                          \
			printf("ok %d - ", tap_n);                                                 \
		} else {                                                                           \
			tap_failed++;                                                              \
			printf("not ok %d - ", tap_n);                                             \
		}                                                                                  \
		printf(__VA_ARGS__);                                                               \
		if (!_c)                                                                           \
			printf("  # failed: %s at %s:%d", #cond, __FILE__, __LINE__);              \
		printf("\n");                                                                      \
		fflush(stdout);                                                                    \
	} while (0)

#define CHECK_STREQ(a, b, ...)                                                                     \
	do {                                                                                       \
		const char *_a = (a), *_b = (b);                                                   \
		bool _ok = _a && _b && strcmp(_a, _b) == 0;                                        \
		CHECK(_ok, __VA_ARGS__);                                                           \
		if (!_ok)                                                                          \
			printf("#   got:      %s\n#   expected: %s\n", _a ? _a : "(null)",         \
			       _b ? _b : "(null)");                                                \
	} while (0)

#define CHECK_INTEQ(a, b, ...)                                                                     \
	do {                                                                                       \
		long long _a = (long long)(a), _b = (long long)(b);                                \
		CHECK(_a == _b, __VA_ARGS__);                                                      \
		if (_a != _b)                                                                      \
			printf("#   got: %lld expected: %lld\n", _a, _b);                          \
	} while (0)

/* A check that cannot run here: SKIP("why %s", arg). */
#define SKIP(...)                                                                                  \
	do {                                                                                       \
		tap_n++;                                                                           \
		tap_skipped++;                                                                     \
		printf("ok %d # SKIP ", tap_n);                                                    \
		printf(__VA_ARGS__);                                                               \
		printf("\n");                                                                      \
		fflush(stdout);                                                                    \
	} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	if (tap_skipped)
		printf("# %d of %d checks skipped\n", tap_skipped, tap_n);
	return tap_failed ? 1 : 0;
}
