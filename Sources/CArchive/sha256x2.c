/* SHA-256 with the x86 SHA extensions, one stream or two interleaved.
 *
 * A layer is hashed twice as it arrives: the stored (compressed) bytes and the decompressed
 * bytes (the diffID). The sha256rnds2 instruction has a long latency and one stream leaves
 * the unit idle between rounds; two independent streams fed round by round use that idle
 * time, so hashing both costs about as much as hashing one (the Linux kernel does the same
 * for dm-verity: sha256_ni_finup2x). Everything else (padding, lengths) is plain FIPS 180-4.
 * Callers check strata_sha256_accelerated() and otherwise use their usual SHA-256. */
#include "CArchive.h"
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define TARGET __attribute__((target("sha,sse4.1,ssse3")))

/* state[8] (a..h) <-> the two registers the instructions use: ABEF and CDGH. */
TARGET static inline void load_state(const uint32_t *s, __m128i *abef, __m128i *cdgh) {
    __m128i t = _mm_loadu_si128((const __m128i *)&s[0]);
    __m128i u = _mm_loadu_si128((const __m128i *)&s[4]);
    t = _mm_shuffle_epi32(t, 0xB1);           /* CDAB */
    u = _mm_shuffle_epi32(u, 0x1B);           /* EFGH */
    *abef = _mm_alignr_epi8(t, u, 8);         /* ABEF */
    *cdgh = _mm_blend_epi16(u, t, 0xF0);      /* CDGH */
}

TARGET static inline void store_state(uint32_t *s, __m128i abef, __m128i cdgh) {
    __m128i t = _mm_shuffle_epi32(abef, 0x1B);   /* FEBA */
    __m128i u = _mm_shuffle_epi32(cdgh, 0xB1);   /* DCHG */
    _mm_storeu_si128((__m128i *)&s[0], _mm_blend_epi16(t, u, 0xF0));  /* DCBA */
    _mm_storeu_si128((__m128i *)&s[4], _mm_alignr_epi8(u, t, 8));     /* HGFE */
}

/* Four rounds: w holds W[i..i+3] + K[i..i+3]. */
#define ROUNDS4(abef, cdgh, wk) do { \
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk); \
        abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E)); \
    } while (0)

/* W[i+4..i+7] from the four previous groups (w0 oldest). */
#define SCHEDULE(w0, w1, w2, w3) \
    _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), _mm_alignr_epi8(w3, w2, 4)), w3)

TARGET static void blocks1(uint32_t *s, const uint8_t *p, size_t n) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i abef, cdgh;
    load_state(s, &abef, &cdgh);
    for (; n > 0; n--, p += 64) {
        __m128i a0 = abef, c0 = cdgh, w[4];
        _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {
            w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), mask);
            ROUNDS4(abef, cdgh, _mm_add_epi32(w[i], _mm_loadu_si128((const __m128i *)&K[4 * i])));
        }
        _Pragma("GCC unroll 12") for (int i = 4; i < 16; i++) {
            __m128i x = SCHEDULE(w[i & 3], w[(i + 1) & 3], w[(i + 2) & 3], w[(i + 3) & 3]);
            w[i & 3] = x;
            ROUNDS4(abef, cdgh, _mm_add_epi32(x, _mm_loadu_si128((const __m128i *)&K[4 * i])));
        }
        abef = _mm_add_epi32(abef, a0);
        cdgh = _mm_add_epi32(cdgh, c0);
    }
    store_state(s, abef, cdgh);
}

/* Two independent streams, n blocks each, their rounds interleaved. */
TARGET static void blocks2(uint32_t *s1, const uint8_t *p1, uint32_t *s2, const uint8_t *p2, size_t n) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i abef1, cdgh1, abef2, cdgh2;
    load_state(s1, &abef1, &cdgh1);
    load_state(s2, &abef2, &cdgh2);
    for (; n > 0; n--, p1 += 64, p2 += 64) {
        __m128i a1 = abef1, c1 = cdgh1, a2 = abef2, c2 = cdgh2, w1[4], w2[4];
        _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {
            __m128i k = _mm_loadu_si128((const __m128i *)&K[4 * i]);
            w1[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p1 + 16 * i)), mask);
            w2[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p2 + 16 * i)), mask);
            ROUNDS4(abef1, cdgh1, _mm_add_epi32(w1[i], k));
            ROUNDS4(abef2, cdgh2, _mm_add_epi32(w2[i], k));
        }
        _Pragma("GCC unroll 12") for (int i = 4; i < 16; i++) {
            __m128i k = _mm_loadu_si128((const __m128i *)&K[4 * i]);
            __m128i x1 = SCHEDULE(w1[i & 3], w1[(i + 1) & 3], w1[(i + 2) & 3], w1[(i + 3) & 3]);
            __m128i x2 = SCHEDULE(w2[i & 3], w2[(i + 1) & 3], w2[(i + 2) & 3], w2[(i + 3) & 3]);
            w1[i & 3] = x1;
            w2[i & 3] = x2;
            ROUNDS4(abef1, cdgh1, _mm_add_epi32(x1, k));
            ROUNDS4(abef2, cdgh2, _mm_add_epi32(x2, k));
        }
        abef1 = _mm_add_epi32(abef1, a1);
        cdgh1 = _mm_add_epi32(cdgh1, c1);
        abef2 = _mm_add_epi32(abef2, a2);
        cdgh2 = _mm_add_epi32(cdgh2, c2);
    }
    store_state(s1, abef1, cdgh1);
    store_state(s2, abef2, cdgh2);
}

int strata_sha256_accelerated(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3");
}
#else
static void blocks1(uint32_t *s, const uint8_t *p, size_t n) { (void)s; (void)p; (void)n; }
static void blocks2(uint32_t *s1, const uint8_t *p1, uint32_t *s2, const uint8_t *p2, size_t n) {
    (void)s1; (void)p1; (void)s2; (void)p2; (void)n;
}
int strata_sha256_accelerated(void) { return 0; }
#endif

void strata_sha256_init(strata_sha256 *c) {
    static const uint32_t iv[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    };
    memcpy(c->state, iv, sizeof iv);
    c->length = 0;
    c->buffered = 0;
}

/* Fills the partial block; returns the bytes taken. */
static size_t top_up(strata_sha256 *c, const uint8_t **p, size_t *len) {
    if (c->buffered == 0) return 0;
    size_t take = 64 - c->buffered;
    if (take > *len) take = *len;
    memcpy(c->block + c->buffered, *p, take);
    c->buffered += (uint32_t)take;
    *p += take;
    *len -= take;
    if (c->buffered == 64) {
        blocks1(c->state, c->block, 1);
        c->buffered = 0;
    }
    return take;
}

static void keep_rest(strata_sha256 *c, const uint8_t *p, size_t len) {
    memcpy(c->block + c->buffered, p, len);
    c->buffered += (uint32_t)len;
}

void strata_sha256_update(strata_sha256 *c, const void *data, size_t len) {
    const uint8_t *p = data;
    c->length += len;
    top_up(c, &p, &len);
    if (len == 0) return;
    size_t n = len / 64;
    if (n) blocks1(c->state, p, n);
    keep_rest(c, p + 64 * n, len - 64 * n);
}

void strata_sha256_update2(strata_sha256 *a, const void *da, size_t la, strata_sha256 *b, const void *db, size_t lb) {
    const uint8_t *pa = da, *pb = db;
    a->length += la;
    b->length += lb;
    top_up(a, &pa, &la);
    top_up(b, &pb, &lb);
    size_t na = a->buffered ? 0 : la / 64, nb = b->buffered ? 0 : lb / 64;
    size_t both = na < nb ? na : nb;
    if (both) blocks2(a->state, pa, b->state, pb, both);
    if (na > both) blocks1(a->state, pa + 64 * both, na - both);
    if (nb > both) blocks1(b->state, pb + 64 * both, nb - both);
    if (la) keep_rest(a, pa + 64 * na, la - 64 * na);
    if (lb) keep_rest(b, pb + 64 * nb, lb - 64 * nb);
}

void strata_sha256_final(strata_sha256 *c, uint8_t out[32]) {
    uint64_t bits = c->length * 8;
    uint8_t pad[72] = { 0x80 };
    size_t padlen = (c->buffered < 56 ? 56 : 120) - c->buffered;
    uint8_t lenbytes[8];
    for (int i = 0; i < 8; i++) lenbytes[i] = (uint8_t)(bits >> (56 - 8 * i));
    uint64_t length = c->length;
    strata_sha256_update(c, pad, padlen);
    strata_sha256_update(c, lenbytes, 8);
    c->length = length;
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->state[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->state[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->state[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->state[i];
    }
}
