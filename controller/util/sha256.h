/* sha256.h — FIPS 180-4 SHA-256, used for spec hashes and VM ids. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t nbuf;
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t n);
void sha256_final(Sha256 *s, uint8_t out[32]);
/* sha256_final as lower-case hex into out (65 bytes incl. NUL). */
void sha256_final_hex(Sha256 *s, char out[65]);
/* Lower-case hex digest of data into out (65 bytes incl. NUL). */
void sha256_hex(const void *data, size_t n, char out[65]);
