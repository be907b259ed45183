/* A pruned layer over its kept weights: what each path computes, and why it gives the dense
 * paths' bits, is in fc_kept.h. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include "fc_kept.h"

/* ---- weights by output -------------------------------------------------------------------- */

/* nonzero weights of run k's matrix w (n_in rows ld apart) */
int64_t kept_count(const float *w, int64_t ld, int64_t n_in, int64_t n_out)
{
    int64_t n = 0;
    for (int64_t i = 0; i < n_in; i++)
        for (int64_t o = 0; o < n_out; o++) n += w[i * ld + o] != 0.0f;
    return n;
}

/* c->ptr: room for n_out + 1; c->idx, c->val: for the kept count */
void kept_cols_build(const float *w, int64_t ld, int64_t n_in, int64_t n_out, kept_cols *c)
{
    for (int64_t o = 0; o <= n_out; o++) c->ptr[o] = 0;
    for (int64_t i = 0; i < n_in; i++)
        for (int64_t o = 0; o < n_out; o++) c->ptr[o + 1] += w[i * ld + o] != 0.0f;
    for (int64_t o = 0; o < n_out; o++) c->ptr[o + 1] += c->ptr[o];
    for (int64_t i = 0; i < n_in; i++)
        for (int64_t o = 0; o < n_out; o++)
            if (w[i * ld + o] != 0.0f) {
                const int64_t pos = c->ptr[o]++;
                c->idx[pos] = (int32_t)i;
                c->val[pos] = w[i * ld + o];
            }
    for (int64_t o = n_out; o > 0; o--) c->ptr[o] = c->ptr[o - 1];  /* the fill advanced each start by its count */
    c->ptr[0] = 0;
}

#if defined(__AVX512F__)
/* one stage of transpose16: rows i and i + B (i without bit B) trade the halves of their lanes
 * that the transpose moves across (lanes with bit B set in row i, clear in row i + B) */
static inline __attribute__((always_inline)) void swap_stage(__m512 r[16], const int B, __m512i lo, __m512i hi)
{
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) {
        if (i & B) continue;
        const __m512 a = r[i], c = r[i + B];
        r[i] = _mm512_permutex2var_ps(a, lo, c);
        r[i + B] = _mm512_permutex2var_ps(a, hi, c);
    }
}

/* r[q] lane j <- r[j] lane q: a 16 x 16 block transposed in registers, one bit of the row and
 * lane numbers swapped at a time. In stage B, lane j of row i (bit B clear) takes lane j of row
 * i where j has bit B clear, else lane j - B of row i + B; row i + B takes lane j + B of row i
 * where j has bit B clear, else its own lane j (indices 16 and up pick from the second row). */
static inline __attribute__((always_inline)) void transpose16(__m512 r[16])
{
    swap_stage(r, 8, _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
               _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31));
    swap_stage(r, 4, _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27),
               _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31));
    swap_stage(r, 2, _mm512_setr_epi32(0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
               _mm512_setr_epi32(2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31));
    swap_stage(r, 1, _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30),
               _mm512_setr_epi32(1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31));
}
#endif

/* xt[g][i][c] = a[64 g + c, i] for the images [0, rows) (a's rows lda floats apart) and the
 * inputs [0, n), zero past `rows`: a block's inputs transposed, KEPT_LANES images to a group
 * (xt 64-byte aligned) */
void transpose_rows(const float *a, int64_t lda, int64_t rows, int64_t n, float *xt)
{
    const int64_t groups = (rows + KEPT_LANES - 1) / KEPT_LANES;
    for (int64_t g = 0; g < groups; g++) {
        float *dst = xt + g * n * KEPT_LANES;
#if defined(__AVX512F__)
        for (int64_t c0 = 0; c0 < KEPT_LANES; c0 += 16) {  /* 16 images by 16 inputs at a time */
            const int64_t r0 = g * KEPT_LANES + c0;
            for (int64_t i0 = 0; i0 < n; i0 += 16) {
                const __mmask16 mk = lanes(n - i0, 0);
                __m512 r[16];
#pragma GCC unroll 16
                for (int q = 0; q < 16; q++)
                    r[q] = r0 + q < rows ? _mm512_maskz_loadu_ps(mk, a + (r0 + q) * lda + i0) : _mm512_setzero_ps();
                transpose16(r);
                for (int q = 0; q < 16 && i0 + q < n; q++) _mm512_store_ps(dst + (i0 + q) * KEPT_LANES + c0, r[q]);
            }
        }
#else
        const int64_t m = rows - g * KEPT_LANES < KEPT_LANES ? rows - g * KEPT_LANES : KEPT_LANES;
        for (int64_t i = 0; i < n; i++)
            for (int64_t c = 0; c < KEPT_LANES; c++) dst[i * KEPT_LANES + c] = c < m ? a[(g * KEPT_LANES + c) * lda + i] : 0.0f;
#endif
    }
}

/* The same from the column view c of a (rows, >= n) matrix (inputs [0, n)): each input's
 * entries expanded into its lanes, group by group (every lane written; reads c's values up to 16
 * past its last entry, room sparse_cols_init leaves) */
void transpose_cols(const sparse_cols *c, int64_t rows, int64_t n, float *xt)
{
    const int64_t groups = (rows + KEPT_LANES - 1) / KEPT_LANES;
    for (int64_t i = 0; i < n; i++) {
        int64_t e = c->ptr[i];
        const int64_t e1 = c->ptr[i + 1];
        for (int64_t g = 0; g < groups; g++) {
            float *dst = xt + (g * n + i) * KEPT_LANES;
            const int64_t e0 = e, top = (g + 1) * KEPT_LANES;
            uint64_t bits = 0;  /* the group's images with an entry (rows ascending) */
            for (; e < e1 && c->row[e] < top; e++) bits |= 1ull << (c->row[e] - g * KEPT_LANES);
#if defined(__AVX512F__)
            const float *v = c->val + e0;
            for (int q = 0; q < KEPT_LANES / 16; q++) {
                const __mmask16 m = (__mmask16)(bits >> (16 * q));
                _mm512_store_ps(dst + 16 * q, _mm512_maskz_expand_ps(m, _mm512_loadu_ps(v)));
                v += __builtin_popcount((unsigned)m);
            }
#else
            for (int64_t l = 0; l < KEPT_LANES; l++) dst[l] = 0.0f;
            for (int64_t f = e0; f < e; f++) dst[c->row[f] - g * KEPT_LANES] = c->val[f];
#endif
        }
    }
}

/* output o's weight number e: from the list, or (FROM_W) from the weights, rows ldw apart */
#define KEPT_VALUE(e, o) (FROM_W ? w[(int64_t)c->idx[e] * ldw + (o)] : c->val[e])

/* zt[o * KEPT_LANES + l] = sum over the kept weights w[i, o], inputs ascending, of
 * x[i * KEPT_LANES + l] w[i, o] for one group of images (one per lane) and the outputs
 * [o_lo, o_hi): bias and activation not yet applied. The same sum, in the same order, as
 * layer_forward's over the nonzero inputs: the terms one path has and the other lacks are exact
 * zeros (x or w is 0), which leave a sum's value unchanged. */
static inline __attribute__((always_inline)) void kept_group(const int FROM_W, const kept_cols *c, const float *w,
    int64_t ldw, const float *x, int64_t o_lo, int64_t o_hi, float *zt)
{
#if defined(__AVX512F__)
    /* two outputs at a time: eight independent sums keep the multiply-add units busy */
    for (int64_t o = o_lo; o < o_hi; o += 2) {
        const int two = o + 1 < o_hi;
        __m512 a0[KEPT_LANES / 16], a1[KEPT_LANES / 16];
        for (int v = 0; v < KEPT_LANES / 16; v++) a0[v] = a1[v] = _mm512_setzero_ps();
        int64_t e0 = c->ptr[o], e1 = c->ptr[o + 1];
        const int64_t end0 = c->ptr[o + 1], end1 = two ? c->ptr[o + 2] : e1;
        for (; e0 < end0 && e1 < end1; e0++, e1++) {
            const __m512 w0 = _mm512_set1_ps(KEPT_VALUE(e0, o)), w1 = _mm512_set1_ps(KEPT_VALUE(e1, o + 1));
            const float *x0 = x + (int64_t)c->idx[e0] * KEPT_LANES, *x1 = x + (int64_t)c->idx[e1] * KEPT_LANES;
            for (int v = 0; v < KEPT_LANES / 16; v++) {
                a0[v] = _mm512_fmadd_ps(w0, _mm512_load_ps(x0 + 16 * v), a0[v]);
                a1[v] = _mm512_fmadd_ps(w1, _mm512_load_ps(x1 + 16 * v), a1[v]);
            }
        }
        for (; e0 < end0; e0++) {
            const __m512 w0 = _mm512_set1_ps(KEPT_VALUE(e0, o));
            const float *x0 = x + (int64_t)c->idx[e0] * KEPT_LANES;
            for (int v = 0; v < KEPT_LANES / 16; v++) a0[v] = _mm512_fmadd_ps(w0, _mm512_load_ps(x0 + 16 * v), a0[v]);
        }
        for (; e1 < end1; e1++) {
            const __m512 w1 = _mm512_set1_ps(KEPT_VALUE(e1, o + 1));
            const float *x1 = x + (int64_t)c->idx[e1] * KEPT_LANES;
            for (int v = 0; v < KEPT_LANES / 16; v++) a1[v] = _mm512_fmadd_ps(w1, _mm512_load_ps(x1 + 16 * v), a1[v]);
        }
        for (int v = 0; v < KEPT_LANES / 16; v++) {
            _mm512_store_ps(zt + o * KEPT_LANES + 16 * v, a0[v]);
            if (two) _mm512_store_ps(zt + (o + 1) * KEPT_LANES + 16 * v, a1[v]);
        }
    }
#else
    for (int64_t o = o_lo; o < o_hi; o++) {
        float acc[KEPT_LANES];
        for (int64_t l = 0; l < KEPT_LANES; l++) acc[l] = 0.0f;
        for (int64_t e = c->ptr[o]; e < c->ptr[o + 1]; e++) {
            const float wv = KEPT_VALUE(e, o);
            const float *xr = x + (int64_t)c->idx[e] * KEPT_LANES;
            #pragma omp simd
            for (int64_t l = 0; l < KEPT_LANES; l++) acc[l] = fmaf(wv, xr[l], acc[l]);
        }
        memcpy(zt + o * KEPT_LANES, acc, sizeof acc);
    }
#endif
}

/* z[g * KEPT_LANES + l, o] = zt[o * KEPT_LANES + l] (rows ldz apart) for the m images of group g
 * and the outputs [o_lo, o_hi) */
static void untranspose_group(const float *zt, int64_t g, int64_t m, int64_t o_lo, int64_t o_hi, float *z,
                              int64_t ldz)
{
    for (int64_t l = 0; l < m; l++)
        for (int64_t o = o_lo; o < o_hi; o++) z[(g * KEPT_LANES + l) * ldz + o] = zt[o * KEPT_LANES + l];
}

/* kept_group for every group of xt, the sums transposed into z (n images, rows ldz apart;
 * zt: room for n_out * KEPT_LANES floats) */
static inline __attribute__((always_inline)) void kept_forward_impl(const int FROM_W, const kept_cols *c,
    const float *w, int64_t ldw, const float *xt, int64_t n_in, int64_t n, int64_t o_lo, int64_t o_hi, float *zt,
    float *z, int64_t ldz)
{
    const int64_t groups = (n + KEPT_LANES - 1) / KEPT_LANES;
    for (int64_t g = 0; g < groups; g++) {
        kept_group(FROM_W, c, w, ldw, xt + g * n_in * KEPT_LANES, o_lo, o_hi, zt);
        untranspose_group(zt, g, n - g * KEPT_LANES < KEPT_LANES ? n - g * KEPT_LANES : KEPT_LANES, o_lo, o_hi, z,
                          ldz);
    }
}

#undef KEPT_VALUE

/* kept_forward_impl with the values read from w (rows ldw apart; training) */
void kept_forward_w(const kept_cols *c, const float *w, int64_t ldw, const float *xt, int64_t n_in, int64_t n,
                    int64_t o_lo, int64_t o_hi, float *zt, float *z, int64_t ldz)
{
    kept_forward_impl(1, c, w, ldw, xt, n_in, n, o_lo, o_hi, zt, z, ldz);
}

/* ---- a network in images-in-lanes layout (evaluation) ---------------------------------------- */

void kept_forward_t(const kept_cols *c, const float *xt, int64_t n_in, int64_t groups, int64_t n_out, float *zt)
{
    for (int64_t g = 0; g < groups; g++)
        kept_group(0, c, NULL, 0, xt + g * n_in * KEPT_LANES, 0, n_out, zt + g * n_out * KEPT_LANES);
}

int64_t bias_activation_t(float *zt, int64_t groups, int64_t n_out, const float *bias, int relu)
{
    int64_t nonzero = 0;
    for (int64_t g = 0; g < groups; g++)
        for (int64_t o = 0; o < n_out; o++) {
            float *z = zt + (g * n_out + o) * KEPT_LANES;
            const float b = bias[o];
            for (int64_t l = 0; l < KEPT_LANES; l++) {  /* bias_activation's operations */
                const float v = z[l] + b;
                z[l] = relu && !(v > 0.0f) ? 0.0f : v;
                nonzero += z[l] != 0.0f;
            }
        }
    return nonzero;
}

void untranspose(const float *zt, int64_t n, int64_t n_out, float *z, int64_t ldz)
{
    for (int64_t g = 0; g * KEPT_LANES < n; g++)
        untranspose_group(zt + g * n_out * KEPT_LANES, g, n - g * KEPT_LANES < KEPT_LANES ? n - g * KEPT_LANES : KEPT_LANES,
                          0, n_out, z, ldz);
}

/* ---- a pruned layer in training: its kept weights, listed once per call ---------------------- */

size_t kept_layer_bytes(int64_t n_in, int64_t n_out)
{
    const int64_t chunks = (n_out + 15) / 16;
    return align64(4 * (size_t)(n_in + 1)) + 2 * align64(2 * (size_t)(n_in * chunks)) +
           align64(8 * (size_t)(n_out + 2)) + align64(4 * (size_t)(n_in * n_out) + 4);
}

char *kept_layer_init(kept_layer *K, int64_t n_in, int64_t n_out, char *mem)
{
    const int64_t chunks = (n_out + 15) / 16;
    K->row_ptr = (int32_t *)mem;
    mem += align64(4 * (size_t)(n_in + 1));
    K->chunk = (uint16_t *)mem;
    mem += align64(2 * (size_t)(n_in * chunks));
    K->lanes = (uint16_t *)mem;
    mem += align64(2 * (size_t)(n_in * chunks));
    K->cols.ptr = (int64_t *)mem;
    mem += align64(8 * (size_t)(n_out + 2));
    K->cols.idx = (int32_t *)mem;
    K->cols.val = NULL;
    return mem + align64(4 * (size_t)(n_in * n_out) + 4);
}

/* kept weights of layer L of run k in the rows [0, rows) */
int64_t kept_mask_count(const lt_fc_layer *L, int64_t k, int64_t rows)
{
    const uint8_t *mask = L->mask + k * L->n_in * L->ld;
    int64_t n = 0;
    for (int64_t i = 0; i < rows; i++) {
        const uint8_t *row = mask + i * L->ld;
        int64_t o = 0;
#if defined(__AVX512F__)
        for (; o + 64 <= L->n_out; o += 64) {
            const __m512i v = _mm512_loadu_si512(row + o);
            n += __builtin_popcountll(_mm512_test_epi8_mask(v, v));
        }
#endif
        for (; o < L->n_out; o++) n += row[o] != 0;
    }
    return n;
}

#define F32_MAGNITUDE 0x7fffffff  /* a float's bits but the sign */
#define F32_EXPONENT 0x7f800000

/* Lists layer L of run k for a call over the rows [0, rows) (the live inputs), and by output too
 * (for kept_forward_w) when no more than cols_below weights are listed. Returns 0 where the layer must take the dense paths in this
 * call: nothing pruned, or a pruned weight that the dense update would change (a nonzero moment,
 * or a denormal weight: the update flushes it to 0). */
int kept_build(kept_layer *K, const lt_fc_layer *L, int64_t k, int64_t rows, int64_t cols_below)
{
    if (L->mask == NULL) return 0;
    const int64_t n_out = L->n_out, ld = L->ld, chunks = (n_out + 15) / 16, off = k * L->n_in * ld;
    const float *w = L->w + off, *mw = L->m_w + off, *vw = L->v_w + off;
    const uint8_t *mask = L->mask + off;
    int64_t count = 0, nonzero = 0;
    K->rows = rows;
    K->chunks = chunks;
    for (int64_t i = 0; i < rows; i++) {
        K->row_ptr[i] = (int32_t)count;
        for (int64_t c = 0; c < chunks; c++) {
            const int64_t o = 16 * c, at = i * ld + o, n = n_out - o < 16 ? n_out - o : 16;
            unsigned kept = 0, set = 0, moves = 0;
#if defined(__AVX512F__)
            const __mmask16 mk = lanes(n, 0);
            const __m128i mb = _mm_maskz_loadu_epi8(mk, mask + at);
            const __m512i mag = _mm512_set1_epi32(F32_MAGNITUDE);
            const __m512i wv = _mm512_maskz_loadu_epi32(mk, w + at);
            kept = _mm_test_epi8_mask(mb, mb);
            set = kept | _mm512_test_epi32_mask(wv, mag);
            const __mmask16 pruned = mk & (__mmask16)~kept;
            if (pruned) {
                const __mmask16 tiny = _mm512_test_epi32_mask(wv, mag) &
                                       (__mmask16)~_mm512_test_epi32_mask(wv, _mm512_set1_epi32(F32_EXPONENT));
                moves = pruned & (_mm512_mask_test_epi32_mask(pruned, _mm512_loadu_si512(mw + at), mag) |
                                  _mm512_mask_test_epi32_mask(pruned, _mm512_loadu_si512(vw + at), mag) | tiny);
            }
#else
            for (int64_t j = 0; j < n; j++) {
                uint32_t wb, mbits, vbits;
                memcpy(&wb, w + at + j, 4);
                memcpy(&mbits, mw + at + j, 4);
                memcpy(&vbits, vw + at + j, 4);
                const unsigned bit = 1u << j;
                if (mask[at + j]) kept |= bit;
                if (mask[at + j] || (wb & F32_MAGNITUDE)) set |= bit;
                if (!mask[at + j] && ((mbits & F32_MAGNITUDE) || (vbits & F32_MAGNITUDE) ||
                                      ((wb & F32_MAGNITUDE) && !(wb & F32_EXPONENT))))
                    moves |= bit;
            }
#endif
            if (moves) return 0;
            K->lanes[i * chunks + c] = (uint16_t)set;
            nonzero += __builtin_popcount(set);
            if (kept) K->chunk[count++] = (uint16_t)c;
        }
    }
    K->row_ptr[rows] = (int32_t)count;
    K->nonzero = nonzero;
    K->active = count;
    K->has_cols = nonzero <= cols_below;
    if (!K->has_cols) return 1;
    int64_t *ptr = K->cols.ptr;  /* the lanes by output: counted, then filled (rows ascending) */
    for (int64_t o = 0; o <= n_out; o++) ptr[o] = 0;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t c = 0; c < chunks; c++)
            for (unsigned s = K->lanes[i * chunks + c]; s; s &= s - 1) ptr[16 * c + __builtin_ctz(s) + 1]++;
    for (int64_t o = 0; o < n_out; o++) ptr[o + 1] += ptr[o];
    for (int64_t i = 0; i < rows; i++)
        for (int64_t c = 0; c < chunks; c++)
            for (unsigned s = K->lanes[i * chunks + c]; s; s &= s - 1) K->cols.idx[ptr[16 * c + __builtin_ctz(s)]++] = (int32_t)i;
    for (int64_t o = n_out; o > 0; o--) ptr[o] = ptr[o - 1];
    ptr[0] = 0;
    return 1;
}

/* [*j0, *j1): the positions in K->chunk of row i's active vectors among the vectors [v0, v1) */
void kept_row_vectors(const kept_layer *K, int64_t i, int64_t v0, int64_t v1, int64_t *j0, int64_t *j1)
{
    int64_t a = K->row_ptr[i], b = K->row_ptr[i + 1];
    while (a < b && K->chunk[a] < v0) a++;
    while (b > a && K->chunk[b - 1] >= v1) b--;
    *j0 = a;
    *j1 = b;
}

/* Where a row's weight gradient comes from: the input's column view c (its nonzero entries, as
 * sparse_gradient_tile), or, with c NULL, every image of the input a (rows, lda floats apart), as
 * dense_gradient_tile. The terms of image number e (of the view, or of a) of input i. */
#define TERM_COUNT(c, i, rows) ((c) ? (c)->ptr[(i) + 1] - (c)->ptr[i] : (rows))
#define TERM_VALUE(c, a, lda, i, e) ((c) ? (c)->val[(c)->ptr[i] + (e)] : (a)[(e) * (lda) + (i)])
#define TERM_IMAGE(c, i, e) ((c) ? (int64_t)(c)->row[(c)->ptr[i] + (e)] : (e))

#if defined(__AVX512F__)
/* out[16 chunk[j] ...] = the sum over the terms of input i, in order, of x g[r, 16 chunk[j] ...]
 * for NV listed vectors (the dense or sparse gradient tile's sums, lane by lane; NV independent
 * chains of multiply-adds). g's rows are padded to whole vectors, so a vector is read whole;
 * lanes past n_out are not stored. */
static inline __attribute__((always_inline)) void chunk_sums(const int NV, const sparse_cols *c, const float *a,
    int64_t lda, int64_t rows, const float *g, int64_t ldg, int64_t i, const uint16_t *chunk, int64_t n_out,
    float *out)
{
    __m512 acc[4];
    int64_t off[4];
    for (int v = 0; v < NV; v++) {
        acc[v] = _mm512_setzero_ps();
        off[v] = 16 * (int64_t)chunk[v];
    }
    const int64_t terms = TERM_COUNT(c, i, rows);
    for (int64_t e = 0; e < terms; e++) {
        const __m512 x = _mm512_set1_ps(TERM_VALUE(c, a, lda, i, e));
        const float *gr = g + TERM_IMAGE(c, i, e) * ldg;
        for (int v = 0; v < NV; v++) acc[v] = _mm512_fmadd_ps(x, _mm512_loadu_ps(gr + off[v]), acc[v]);
    }
    for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(out + off[v], lanes(n_out - off[v], 0), acc[v]);
}
#endif

/* row i's weight gradient over the listed 16-entry vectors only (vector j starts at entry
 * 16 chunk[j]), into out (a row of n_out entries), from c or a (see TERM_COUNT): the same sums as
 * the sparse or dense gradient tile's */
static void row_chunk_gradient(const sparse_cols *c, const float *a, int64_t lda, int64_t rows, const float *g,
                               int64_t ldg, int64_t i, const uint16_t *chunk, int64_t count, int64_t n_out,
                               float *out)
{
#if defined(__AVX512F__)
    int64_t j = 0;
    for (; j + 4 <= count; j += 4) chunk_sums(4, c, a, lda, rows, g, ldg, i, chunk + j, n_out, out);
    switch (count - j) {
    case 1: chunk_sums(1, c, a, lda, rows, g, ldg, i, chunk + j, n_out, out); break;
    case 2: chunk_sums(2, c, a, lda, rows, g, ldg, i, chunk + j, n_out, out); break;
    case 3: chunk_sums(3, c, a, lda, rows, g, ldg, i, chunk + j, n_out, out); break;
    default: break;
    }
#else
    const int64_t terms = TERM_COUNT(c, i, rows);
    for (int64_t j = 0; j < count; j++) {
        const int64_t o0 = 16 * (int64_t)chunk[j], o1 = o0 + 16 < n_out ? o0 + 16 : n_out;
        for (int64_t o = o0; o < o1; o++) out[o] = 0.0f;
        for (int64_t e = 0; e < terms; e++) {
            const float x = TERM_VALUE(c, a, lda, i, e);
            const float *gr = g + TERM_IMAGE(c, i, e) * ldg;
            for (int64_t o = o0; o < o1; o++) out[o] = fmaf(x, gr[o], out[o]);
        }
    }
#endif
}

#undef TERM_COUNT
#undef TERM_VALUE
#undef TERM_IMAGE

/* layer_update's weight rows [row0, row1) and columns [col0, col1) (col0 a multiple of 16) over
 * their active vectors only: each row's gradient over those vectors, from the input's column view
 * c (the first layer's: sparse_gradient_tile's sums, lane by lane) or, with c NULL, from all images
 * of the input a (rows, lda floats apart: a hidden layer's, dense_gradient_tile's sums), then Adam
 * over them. The rest of a row keeps its weights and its zero moments, as the dense update leaves
 * them, and its gradient is not computed (it would be masked to 0). defer_empty (with c): as
 * layer_update's. g's rows are ldg >= padded(n_out) floats apart. */
void kept_update(const kept_layer *K, const sparse_cols *c, const float *a, int64_t lda, int64_t rows,
                 const float *g, int64_t ldg, int64_t row0, int64_t row1, int64_t col0, int64_t col1, int64_t n_out,
                 float *w, float *mw, float *vw, const uint8_t *mask, int64_t ldw, const lt_adam *h, float *tile,
                 int defer_empty)
{
    const int64_t v0 = col0 / 16, v1 = (col1 + 15) / 16;
    for (int64_t i = row0; i < row1; i++) {
        if (defer_empty && c->ptr[i] == c->ptr[i + 1]) continue;
        int64_t j0, j1;
        kept_row_vectors(K, i, v0, v1, &j0, &j1);
        if (j0 == j1) continue;
        row_chunk_gradient(c, a, lda, rows, g, ldg, i, K->chunk + j0, j1 - j0, n_out, tile);
        adam_vectors(w + i * ldw, mw + i * ldw, vw + i * ldw, mask + i * ldw, tile, n_out, K->chunk + j0, j1 - j0, h);
    }
}
