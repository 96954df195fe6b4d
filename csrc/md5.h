/* MD5 (RFC 1321).  Owned by hashing.c, which places ketama ring points and
 * keys with it; plain C, no Python.  MD5 is used here only as rc's ketama
 * ring uses it, to spread keys: it is not a security primitive. */
#ifndef PYRC_MD5_H
#define PYRC_MD5_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t state[4];  /* A, B, C, D */
    uint64_t count;     /* total number of bytes hashed */
    uint8_t buf[64];    /* pending input */
} pyrc_md5_ctx;

void pyrc_md5_init(pyrc_md5_ctx *ctx);
void pyrc_md5_update(pyrc_md5_ctx *ctx, const void *in, size_t inlen);
/* The digest as its four little-endian 32-bit words: digest bytes
 * 4*i .. 4*i+3 are words[i] in little-endian order.  ctx is spent. */
void pyrc_md5_final_words(pyrc_md5_ctx *ctx, uint32_t words[4]);
/* The 16-byte digest.  ctx is spent. */
void pyrc_md5_final(pyrc_md5_ctx *ctx, uint8_t digest[16]);

#endif /* PYRC_MD5_H */
