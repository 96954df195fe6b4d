/* MD5, written from RFC 1321 ("The MD5 Message-Digest Algorithm",
 * R. Rivest, 1992), section 3: the four auxiliary functions F, G, H, I
 * (3.4), the table T[i] = floor(2^32 * abs(sin(i))) for i = 1..64 (the
 * constants below were generated from that formula), the four rounds of
 * sixteen steps with their word orders and shift amounts, and the padding
 * of 3.1/3.2 (a 1 bit, zeros to 448 mod 512 bits, then the message length
 * in bits as a 64-bit little-endian number).  Words are read and written
 * little-endian byte by byte, so the code does not depend on the host's
 * byte order or alignment.
 */
#include "md5.h"

#include <string.h>

static const uint32_t T[64] = {
    0xd76aa478U, 0xe8c7b756U, 0x242070dbU, 0xc1bdceeeU,
    0xf57c0fafU, 0x4787c62aU, 0xa8304613U, 0xfd469501U,
    0x698098d8U, 0x8b44f7afU, 0xffff5bb1U, 0x895cd7beU,
    0x6b901122U, 0xfd987193U, 0xa679438eU, 0x49b40821U,
    0xf61e2562U, 0xc040b340U, 0x265e5a51U, 0xe9b6c7aaU,
    0xd62f105dU, 0x02441453U, 0xd8a1e681U, 0xe7d3fbc8U,
    0x21e1cde6U, 0xc33707d6U, 0xf4d50d87U, 0x455a14edU,
    0xa9e3e905U, 0xfcefa3f8U, 0x676f02d9U, 0x8d2a4c8aU,
    0xfffa3942U, 0x8771f681U, 0x6d9d6122U, 0xfde5380cU,
    0xa4beea44U, 0x4bdecfa9U, 0xf6bb4b60U, 0xbebfbc70U,
    0x289b7ec6U, 0xeaa127faU, 0xd4ef3085U, 0x04881d05U,
    0xd9d4d039U, 0xe6db99e5U, 0x1fa27cf8U, 0xc4ac5665U,
    0xf4292244U, 0x432aff97U, 0xab9423a7U, 0xfc93a039U,
    0x655b59c3U, 0x8f0ccc92U, 0xffeff47dU, 0x85845dd1U,
    0x6fa87e4fU, 0xfe2ce6e0U, 0xa3014314U, 0x4e0811a1U,
    0xf7537e82U, 0xbd3af235U, 0x2ad7d2bbU, 0xeb86d391U,
};

#define F(x, y, z) (((x) & (y)) | (~(x) & (z)))
#define G(x, y, z) (((x) & (z)) | ((y) & ~(z)))
#define H(x, y, z) ((x) ^ (y) ^ (z))
#define I(x, y, z) ((y) ^ ((x) | ~(z)))

#define ROTL(x, s) (((x) << (s)) | ((x) >> (32 - (s))))

/* One step: a = b + ((a + fn(b, c, d) + X[k] + T[i]) <<< s). */
#define STEP(fn, a, b, c, d, k, s, i)                       \
    do {                                                    \
        (a) += fn((b), (c), (d)) + X[(k)] + T[(i)];         \
        (a) = ROTL((a), (s));                               \
        (a) += (b);                                         \
    } while (0)

static uint32_t
load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16)
           | ((uint32_t)p[3] << 24);
}

static void
store_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Process one 64-byte block (RFC 1321, 3.4). */
static void
md5_block(uint32_t state[4], const uint8_t block[64])
{
    uint32_t X[16];
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    int j;

    for (j = 0; j < 16; j++) {
        X[j] = load_le32(block + 4 * j);
    }

    /* Round 1: X[k] with k = i. */
    STEP(F, a, b, c, d, 0, 7, 0);
    STEP(F, d, a, b, c, 1, 12, 1);
    STEP(F, c, d, a, b, 2, 17, 2);
    STEP(F, b, c, d, a, 3, 22, 3);
    STEP(F, a, b, c, d, 4, 7, 4);
    STEP(F, d, a, b, c, 5, 12, 5);
    STEP(F, c, d, a, b, 6, 17, 6);
    STEP(F, b, c, d, a, 7, 22, 7);
    STEP(F, a, b, c, d, 8, 7, 8);
    STEP(F, d, a, b, c, 9, 12, 9);
    STEP(F, c, d, a, b, 10, 17, 10);
    STEP(F, b, c, d, a, 11, 22, 11);
    STEP(F, a, b, c, d, 12, 7, 12);
    STEP(F, d, a, b, c, 13, 12, 13);
    STEP(F, c, d, a, b, 14, 17, 14);
    STEP(F, b, c, d, a, 15, 22, 15);

    /* Round 2: k = (1 + 5i) mod 16. */
    STEP(G, a, b, c, d, 1, 5, 16);
    STEP(G, d, a, b, c, 6, 9, 17);
    STEP(G, c, d, a, b, 11, 14, 18);
    STEP(G, b, c, d, a, 0, 20, 19);
    STEP(G, a, b, c, d, 5, 5, 20);
    STEP(G, d, a, b, c, 10, 9, 21);
    STEP(G, c, d, a, b, 15, 14, 22);
    STEP(G, b, c, d, a, 4, 20, 23);
    STEP(G, a, b, c, d, 9, 5, 24);
    STEP(G, d, a, b, c, 14, 9, 25);
    STEP(G, c, d, a, b, 3, 14, 26);
    STEP(G, b, c, d, a, 8, 20, 27);
    STEP(G, a, b, c, d, 13, 5, 28);
    STEP(G, d, a, b, c, 2, 9, 29);
    STEP(G, c, d, a, b, 7, 14, 30);
    STEP(G, b, c, d, a, 12, 20, 31);

    /* Round 3: k = (5 + 3i) mod 16. */
    STEP(H, a, b, c, d, 5, 4, 32);
    STEP(H, d, a, b, c, 8, 11, 33);
    STEP(H, c, d, a, b, 11, 16, 34);
    STEP(H, b, c, d, a, 14, 23, 35);
    STEP(H, a, b, c, d, 1, 4, 36);
    STEP(H, d, a, b, c, 4, 11, 37);
    STEP(H, c, d, a, b, 7, 16, 38);
    STEP(H, b, c, d, a, 10, 23, 39);
    STEP(H, a, b, c, d, 13, 4, 40);
    STEP(H, d, a, b, c, 0, 11, 41);
    STEP(H, c, d, a, b, 3, 16, 42);
    STEP(H, b, c, d, a, 6, 23, 43);
    STEP(H, a, b, c, d, 9, 4, 44);
    STEP(H, d, a, b, c, 12, 11, 45);
    STEP(H, c, d, a, b, 15, 16, 46);
    STEP(H, b, c, d, a, 2, 23, 47);

    /* Round 4: k = 7i mod 16. */
    STEP(I, a, b, c, d, 0, 6, 48);
    STEP(I, d, a, b, c, 7, 10, 49);
    STEP(I, c, d, a, b, 14, 15, 50);
    STEP(I, b, c, d, a, 5, 21, 51);
    STEP(I, a, b, c, d, 12, 6, 52);
    STEP(I, d, a, b, c, 3, 10, 53);
    STEP(I, c, d, a, b, 10, 15, 54);
    STEP(I, b, c, d, a, 1, 21, 55);
    STEP(I, a, b, c, d, 8, 6, 56);
    STEP(I, d, a, b, c, 15, 10, 57);
    STEP(I, c, d, a, b, 6, 15, 58);
    STEP(I, b, c, d, a, 13, 21, 59);
    STEP(I, a, b, c, d, 4, 6, 60);
    STEP(I, d, a, b, c, 11, 10, 61);
    STEP(I, c, d, a, b, 2, 15, 62);
    STEP(I, b, c, d, a, 9, 21, 63);

    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
}

void
pyrc_md5_init(pyrc_md5_ctx *ctx)
{
    /* RFC 1321, 3.3: word A = 01 23 45 67 (low-order byte first), etc. */
    ctx->state[0] = 0x67452301U;
    ctx->state[1] = 0xefcdab89U;
    ctx->state[2] = 0x98badcfeU;
    ctx->state[3] = 0x10325476U;
    ctx->count = 0;
}

void
pyrc_md5_update(pyrc_md5_ctx *ctx, const void *in, size_t inlen)
{
    const uint8_t *p = (const uint8_t *)in;
    size_t used = (size_t)(ctx->count & 63);

    ctx->count += (uint64_t)inlen;
    if (used != 0) {
        size_t fill = 64 - used;
        if (inlen < fill) {
            memcpy(ctx->buf + used, p, inlen);
            return;
        }
        memcpy(ctx->buf + used, p, fill);
        md5_block(ctx->state, ctx->buf);
        p += fill;
        inlen -= fill;
    }
    while (inlen >= 64) {
        md5_block(ctx->state, p);
        p += 64;
        inlen -= 64;
    }
    if (inlen != 0) {
        memcpy(ctx->buf, p, inlen);
    }
}

void
pyrc_md5_final_words(pyrc_md5_ctx *ctx, uint32_t words[4])
{
    uint64_t bits = ctx->count * 8;     /* length mod 2^64, as RFC 3.2 says */
    size_t used = (size_t)(ctx->count & 63);
    int j;

    /* RFC 1321, 3.1: a single 1 bit, then zeros up to 56 bytes mod 64. */
    ctx->buf[used++] = 0x80;
    if (used > 56) {
        memset(ctx->buf + used, 0, 64 - used);
        md5_block(ctx->state, ctx->buf);
        used = 0;
    }
    memset(ctx->buf + used, 0, 56 - used);
    /* 3.2: the 64-bit length, low-order word (and byte) first. */
    for (j = 0; j < 8; j++) {
        ctx->buf[56 + j] = (uint8_t)(bits >> (8 * j));
    }
    md5_block(ctx->state, ctx->buf);
    for (j = 0; j < 4; j++) {
        words[j] = ctx->state[j];
    }
}

void
pyrc_md5_final(pyrc_md5_ctx *ctx, uint8_t digest[16])
{
    uint32_t words[4];
    int j;

    pyrc_md5_final_words(ctx, words);
    for (j = 0; j < 4; j++) {
        store_le32(digest + 4 * j, words[j]);
    }
}
