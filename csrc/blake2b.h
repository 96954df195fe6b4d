/* BLAKE2b (RFC 7693), unkeyed, digest of 1..64 bytes.  Owned by keys.c,
 * which hashes cache keys with it; plain C, no Python. */
#ifndef PYRC_BLAKE2B_H
#define PYRC_BLAKE2B_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t h[8];      /* chained state */
    uint64_t t[2];      /* total number of bytes */
    uint8_t b[128];     /* input buffer */
    size_t c;           /* bytes in b */
    size_t outlen;      /* digest size */
} pyrc_blake2b_ctx;

/* outlen must be 1..64. */
void pyrc_blake2b_init(pyrc_blake2b_ctx *ctx, size_t outlen);
void pyrc_blake2b_update(pyrc_blake2b_ctx *ctx, const void *in, size_t inlen);
/* Writes ctx->outlen bytes to out. */
void pyrc_blake2b_final(pyrc_blake2b_ctx *ctx, void *out);

#endif /* PYRC_BLAKE2B_H */
