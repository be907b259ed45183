/* PyTorch's CPU generator (at::mt19937, its state as Generator.get_state() lays it out) and
 * torch.bernoulli's draws from it, for learned_fc.c: the same generator state in, the same masks
 * and the same state out. */
#ifndef LT_TORCH_BERNOULLI_H
#define LT_TORCH_BERNOULLI_H

#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* ---- PyTorch's CPU generator ------------------------------------------------------------------ */

#define MT_N 624
#define MT_M 397
/* byte offsets in CPUGeneratorImpl's state (its legacy part: seed, left, seeded, next, state[624]
 * as 64-bit words) */
#define STATE_BYTES 5056
#define AT_LEFT 8
#define AT_NEXT 16
#define AT_WORDS 24

typedef struct {
    uint32_t s[MT_N];
    int64_t left, next;  /* as at::mt19937: the next output is s[next] after left - 1 more, then a refill */
} mt_state;

static void mt_load(mt_state *g, const uint8_t *st)
{
    int32_t left;
    uint64_t next, word;
    memcpy(&left, st + AT_LEFT, 4);
    memcpy(&next, st + AT_NEXT, 8);
    g->left = left;
    g->next = (int64_t)next;
    for (int j = 0; j < MT_N; j++) {
        memcpy(&word, st + AT_WORDS + 8 * j, 8);
        g->s[j] = (uint32_t)word;
    }
}

static void mt_store(const mt_state *g, uint8_t *st)
{
    const int32_t left = (int32_t)g->left;
    const uint64_t next = (uint64_t)g->next;
    memcpy(st + AT_LEFT, &left, 4);
    memcpy(st + AT_NEXT, &next, 8);
    for (int j = 0; j < MT_N; j++) {
        const uint64_t word = g->s[j];
        memcpy(st + AT_WORDS + 8 * j, &word, 8);
    }
}

static inline uint32_t twist(uint32_t u, uint32_t v)
{
    return (((u & 0x80000000u) | (v & 0x7fffffffu)) >> 1) ^ ((v & 1u) ? 0x9908b0dfu : 0u);
}

#if defined(__AVX512F__)
static inline __m512i twist16(__m512i u, __m512i v)
{
    const __m512i mixed = _mm512_or_si512(_mm512_and_si512(u, _mm512_set1_epi32((int)0x80000000u)),
                                          _mm512_and_si512(v, _mm512_set1_epi32(0x7fffffff)));
    const __mmask16 odd = _mm512_test_epi32_mask(v, _mm512_set1_epi32(1));
    return _mm512_xor_si512(_mm512_srli_epi32(mixed, 1), _mm512_maskz_mov_epi32(odd, _mm512_set1_epi32((int)0x9908b0dfu)));
}
#endif

/* the next 624 words (at::mt19937::next_state), 16 at a time where no word depends on another of
 * the same 16 */
__attribute__((noinline)) static void mt_refill(uint32_t *s)
{
    int i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= MT_N - MT_M; i += 16)
        _mm512_storeu_si512(s + i, _mm512_xor_si512(_mm512_loadu_si512(s + i + MT_M),
                                                    twist16(_mm512_loadu_si512(s + i), _mm512_loadu_si512(s + i + 1))));
#endif
    for (; i < MT_N - MT_M; i++) s[i] = s[i + MT_M] ^ twist(s[i], s[i + 1]);
#if defined(__AVX512F__)
    for (; i + 16 <= MT_N - 1; i += 16)
        _mm512_storeu_si512(s + i, _mm512_xor_si512(_mm512_loadu_si512(s + i + MT_M - MT_N),
                                                    twist16(_mm512_loadu_si512(s + i), _mm512_loadu_si512(s + i + 1))));
#endif
    for (; i < MT_N - 1; i++) s[i] = s[i + MT_M - MT_N] ^ twist(s[i], s[i + 1]);
    s[MT_N - 1] = s[MT_M - 1] ^ twist(s[MT_N - 1], s[0]);
}

static inline uint32_t temper(uint32_t y)
{
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

#if defined(__AVX512F__)
static inline __m512i temper16(__m512i y)
{
    y = _mm512_xor_si512(y, _mm512_srli_epi32(y, 11));
    y = _mm512_xor_si512(y, _mm512_and_si512(_mm512_slli_epi32(y, 7), _mm512_set1_epi32((int)0x9d2c5680u)));
    y = _mm512_xor_si512(y, _mm512_and_si512(_mm512_slli_epi32(y, 15), _mm512_set1_epi32((int)0xefc60000u)));
    return _mm512_xor_si512(y, _mm512_srli_epi32(y, 18));
}
#endif

#define UNIT (1.0f / 16777216.0f)  /* a 24-bit uniform: (r & 0xffffff) UNIT, exact */

#if defined(__AVX512F__)
/* the first n of 16 lanes */
static inline __mmask16 first(int64_t n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u); }
#endif

/* Draws one layer's mask (n entries), b = (uniform < p) for its entries in order, as
 * torch.bernoulli(p, generator) draws them, into the bit array bits (entry j: bit j % 8 of byte
 * j / 8; room for n / 8 + 8 bytes). Returns the number of ones. */
static int64_t sample_layer(mt_state *g, const float *p, int64_t n, uint8_t *bits)
{
    int64_t pos = 0, ones = 0;
    memset(bits, 0, (size_t)(n / 8 + 8));
    while (pos < n) {
        if (g->left <= 1) {
            mt_refill(g->s);
            g->left = MT_N + 1;
            g->next = 0;
        }
        const int64_t take = g->left - 1 < n - pos ? g->left - 1 : n - pos;
        const uint32_t *r = g->s + g->next;
        int64_t j = 0;
#if defined(__AVX512F__)
        for (; j < take; j += 16) {
            const __mmask16 mk = first(take - j);
            const __m512i y = temper16(_mm512_maskz_loadu_epi32(mk, r + j));
            const __m512 u = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(y, _mm512_set1_epi32(0xffffff))),
                                           _mm512_set1_ps(UNIT));
            const unsigned b = _mm512_mask_cmp_ps_mask(mk, u, _mm512_maskz_loadu_ps(mk, p + pos + j), _CMP_LT_OQ);
            const int64_t at = pos + j;
            uint32_t word;
            memcpy(&word, bits + (at >> 3), 4);
            word |= b << (at & 7);
            memcpy(bits + (at >> 3), &word, 4);
            ones += __builtin_popcount(b);
        }
#else
        for (; j < take; j++) {
            const int64_t at = pos + j;
            const int b = (float)(temper(r[j]) & 0xffffffu) * UNIT < p[at];
            bits[at >> 3] |= (uint8_t)(b << (at & 7));
            ones += b;
        }
#endif
        g->next += take;
        g->left -= take;
        pos += take;
    }
    return ones;
}

#endif
