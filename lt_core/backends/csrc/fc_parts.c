/* The pieces of a fully connected layer's training step (declared in fc_parts.h): sparse views of
 * a layer's input, the forward pass over them, the loss gradient, the input gradient, the weight
 * gradient tiles and Adam. fc_stack.c (the lottery training step and evaluation), fc_kept.c (a
 * pruned layer over its kept weights) and learned_fc.c (learned supermasks) are built on them; the
 * layout, the sparsity and the determinism rules are in fc_stack.c's comment. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include "fc_parts.h"

/* ---- sparse views of a layer's input ------------------------------------------------------ */


/* entries a sparse view has room for: every entry of the matrix, and 16 lanes of slack */
static size_t sparse_capacity(int64_t rows, int64_t n) { return (size_t)(rows * n) + 16; }

size_t sparse_rows_bytes(int64_t rows, int64_t n)
{
    const int64_t tiles = (n + TILE_ROWS - 1) / TILE_ROWS;
    return align64(sizeof(int64_t) * (size_t)(rows * (tiles + 1))) + 2 * align64(4 * sparse_capacity(rows, n));
}

char *sparse_rows_init(sparse_rows *s, int64_t rows, int64_t n, char *mem)
{
    s->rows = rows;
    s->n = n;
    s->tiles = (n + TILE_ROWS - 1) / TILE_ROWS;
    s->ptr = (int64_t *)mem;
    mem += align64(sizeof(int64_t) * (size_t)(rows * (s->tiles + 1)));
    s->idx = (int32_t *)mem;
    mem += align64(4 * sparse_capacity(rows, n));
    s->val = (float *)mem;
    return mem + align64(4 * sparse_capacity(rows, n));
}

void sparse_rows_build(sparse_rows *s, const float *a, int64_t lda)
{
    const int64_t n = s->n, tiles = s->tiles;
    int64_t count = 0;
    for (int64_t r = 0; r < s->rows; r++) {
        const float *row = a + r * lda;
        int64_t *ptr = s->ptr + r * (tiles + 1);
        for (int64_t t = 0; t < tiles; t++) {
            ptr[t] = count;
            const int64_t j1 = (t + 1) * TILE_ROWS < n ? (t + 1) * TILE_ROWS : n;
            int64_t j = t * TILE_ROWS;
#if defined(__AVX512F__)
            const __m512i step = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
            for (; j + 16 <= j1; j += 16) {
                const __m512 v = _mm512_loadu_ps(row + j);
                const __mmask16 nz = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
                if (!nz) continue;
                /* compressed in a register, then stored whole (compressing straight to memory is
                 * microcoded on some processors; the buffers have room for the 16 lanes) */
                _mm512_storeu_ps(s->val + count, _mm512_maskz_compress_ps(nz, v));
                _mm512_storeu_si512(s->idx + count,
                                    _mm512_maskz_compress_epi32(nz, _mm512_add_epi32(_mm512_set1_epi32((int)j), step)));
                count += __builtin_popcount((unsigned)nz);
            }
#endif
            for (; j < j1; j++)
                if (row[j] != 0.0f) {
                    s->idx[count] = (int32_t)j;
                    s->val[count] = row[j];
                    count++;
                }
        }
        ptr[tiles] = count;
    }
}


size_t sparse_cols_bytes(int64_t rows, int64_t n)
{
    return align64(sizeof(int64_t) * (size_t)(n + 1)) + 2 * align64(4 * sparse_capacity(rows, n));
}

char *sparse_cols_init(sparse_cols *c, int64_t rows, int64_t n, char *mem)
{
    c->ptr = (int64_t *)mem;
    mem += align64(sizeof(int64_t) * (size_t)(n + 1));
    c->row = (int32_t *)mem;
    mem += align64(4 * sparse_capacity(rows, n));
    c->val = (float *)mem;
    return mem + align64(4 * sparse_capacity(rows, n));
}

void sparse_cols_build(sparse_cols *c, const sparse_rows *s)
{
    const int64_t n = s->n, tiles = s->tiles;
    for (int64_t i = 0; i <= n; i++) c->ptr[i] = 0;
    const int64_t total = s->ptr[s->rows * (tiles + 1) - 1];
    for (int64_t e = 0; e < total; e++) c->ptr[s->idx[e] + 1]++;
    for (int64_t i = 0; i < n; i++) c->ptr[i + 1] += c->ptr[i];
    for (int64_t r = 0; r < s->rows; r++) {
        const int64_t *ptr = s->ptr + r * (tiles + 1);
        for (int64_t e = ptr[0]; e < ptr[tiles]; e++) {
            const int64_t pos = c->ptr[s->idx[e]]++;
            c->row[pos] = (int32_t)r;
            c->val[pos] = s->val[e];
        }
    }
    for (int64_t i = n; i > 0; i--) c->ptr[i] = c->ptr[i - 1];  /* the fill advanced each start by its count */
    c->ptr[0] = 0;
}

/* ---- forward: z = act(a w + bias) over a's nonzero entries ------------------------------- */

#if defined(__AVX512F__)
/* acc[v] += x row[16 v ...] for NV vectors of a row (a weight row's column block in the forward
 * pass, a gradient row's in the weight gradient; FULL: all lanes, read with plain loads; else the
 * lanes mk) */
static inline __attribute__((always_inline)) void add_scaled_row(const int NV, const int FULL, __m512 *acc, float x,
                                                                 const float *row, const __mmask16 *mk)
{
    const __m512 xv = _mm512_set1_ps(x);
    for (int v = 0; v < NV; v++)
        acc[v] = _mm512_fmadd_ps(xv, FULL ? _mm512_loadu_ps(row + 16 * v) : _mm512_maskz_loadu_ps(mk[v], row + 16 * v),
                                 acc[v]);
}

/* rows [r0, r1) of z[:, o0:o0+cnt] (cnt <= 16 * NV; FULL when cnt == 16 * NV), zeroed, then
 * accumulated tile by tile. Two images at a time: one image's sums are NV chains of dependent
 * multiply-adds, too few to keep the multiply-add units busy through their latency; two images'
 * chains interleaved are twice as many. Each image's sums are the same, in the same order. */
static inline __attribute__((always_inline)) void forward_block(const int NV, const int FULL, const sparse_rows *s,
    int64_t r0, int64_t r1, const float *w, int64_t ldw, int64_t o0, int64_t cnt, float *z, int64_t ldz)
{
    __mmask16 mk[4];
    for (int v = 0; v < NV; v++) mk[v] = lanes(cnt, v);
    for (int64_t r = r0; r < r1; r++)
        for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(z + r * ldz + o0 + 16 * v, mk[v], _mm512_setzero_ps());
    const int64_t tiles = s->tiles;
    for (int64_t t = 0; t < tiles; t++) {
        int64_t r = r0;
        for (; r + 1 < r1; r += 2) {
            int64_t ea = s->ptr[r * (tiles + 1) + t], eb = s->ptr[(r + 1) * (tiles + 1) + t];
            const int64_t ea1 = s->ptr[r * (tiles + 1) + t + 1], eb1 = s->ptr[(r + 1) * (tiles + 1) + t + 1];
            if (ea >= ea1 && eb >= eb1) continue;
            float *za = z + r * ldz + o0, *zb = za + ldz;
            __m512 a[4], b[4];
            for (int v = 0; v < NV; v++) {
                a[v] = _mm512_maskz_loadu_ps(mk[v], za + 16 * v);
                b[v] = _mm512_maskz_loadu_ps(mk[v], zb + 16 * v);
            }
            for (; ea < ea1 && eb < eb1; ea++, eb++) {
                add_scaled_row(NV, FULL, a, s->val[ea], w + (int64_t)s->idx[ea] * ldw + o0, mk);
                add_scaled_row(NV, FULL, b, s->val[eb], w + (int64_t)s->idx[eb] * ldw + o0, mk);
            }
            for (; ea < ea1; ea++) add_scaled_row(NV, FULL, a, s->val[ea], w + (int64_t)s->idx[ea] * ldw + o0, mk);
            for (; eb < eb1; eb++) add_scaled_row(NV, FULL, b, s->val[eb], w + (int64_t)s->idx[eb] * ldw + o0, mk);
            for (int v = 0; v < NV; v++) {
                _mm512_mask_storeu_ps(za + 16 * v, mk[v], a[v]);
                _mm512_mask_storeu_ps(zb + 16 * v, mk[v], b[v]);
            }
        }
        if (r < r1) {
            int64_t e = s->ptr[r * (tiles + 1) + t];
            const int64_t e1 = s->ptr[r * (tiles + 1) + t + 1];
            if (e >= e1) continue;
            float *zr = z + r * ldz + o0;
            __m512 acc[4];
            for (int v = 0; v < NV; v++) acc[v] = _mm512_maskz_loadu_ps(mk[v], zr + 16 * v);
            for (; e < e1; e++) add_scaled_row(NV, FULL, acc, s->val[e], w + (int64_t)s->idx[e] * ldw + o0, mk);
            for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(zr + 16 * v, mk[v], acc[v]);
        }
    }
}
/* forward_block with plain loads where all NV vectors are whole (every block but a layer's last) */
static inline __attribute__((always_inline)) void forward_columns(const int NV, const sparse_rows *s, int64_t r0,
    int64_t r1, const float *w, int64_t ldw, int64_t o0, int64_t cnt, float *z, int64_t ldz)
{
    if (cnt == 16 * NV)
        forward_block(NV, 1, s, r0, r1, w, ldw, o0, cnt, z, ldz);
    else
        forward_block(NV, 0, s, r0, r1, w, ldw, o0, cnt, z, ldz);
}
#endif

/* z[r, o] = act(z[r, o] + bias[o]) for rows [r0, r1) and columns [c0, c1) */
void bias_activation(float *z, int64_t ldz, int64_t r0, int64_t r1, const float *bias, int relu, int64_t c0,
                     int64_t c1)
{
    for (int64_t r = r0; r < r1; r++) {
        float *zr = z + r * ldz;
        #pragma omp simd
        for (int64_t o = c0; o < c1; o++) {
            const float v = zr[o] + bias[o];
            zr[o] = relu && !(v > 0.0f) ? 0.0f : v;
        }
    }
}

/* z[r, o] = act(bias[o] + sum over nonzero a[r, i] of a[r, i] w[i, o]) for rows [r0, r1) and
 * columns [c0, c1) (each entry is computed alike whatever the ranges); w's rows are ldw floats
 * apart, z's ldz */
void layer_forward(const sparse_rows *s, int64_t r0, int64_t r1, const float *w, int64_t ldw,
                          const float *bias, int relu, float *z, int64_t ldz, int64_t c0, int64_t c1)
{
    for (int64_t o0 = c0; o0 < c1; o0 += COL_BLOCK) {
        const int64_t cnt = c1 - o0 < COL_BLOCK ? c1 - o0 : COL_BLOCK;
        for (int64_t b0 = r0; b0 < r1; b0 += IMG_BLOCK) {
            const int64_t b1 = b0 + IMG_BLOCK < r1 ? b0 + IMG_BLOCK : r1;
#if defined(__AVX512F__)
            switch ((cnt + 15) / 16) {
            case 1: forward_columns(1, s, b0, b1, w, ldw, o0, cnt, z, ldz); break;
            case 2: forward_columns(2, s, b0, b1, w, ldw, o0, cnt, z, ldz); break;
            case 3: forward_columns(3, s, b0, b1, w, ldw, o0, cnt, z, ldz); break;
            default: forward_columns(4, s, b0, b1, w, ldw, o0, cnt, z, ldz); break;
            }
#else
            const int64_t tiles = s->tiles;
            for (int64_t r = b0; r < b1; r++) {
                float acc[COL_BLOCK] = {0};
                for (int64_t e = s->ptr[r * (tiles + 1)]; e < s->ptr[r * (tiles + 1) + tiles]; e++) {
                    const float x = s->val[e];
                    const float *wr = w + (int64_t)s->idx[e] * ldw + o0;
                    #pragma omp simd
                    for (int64_t c = 0; c < cnt; c++) acc[c] = fmaf(x, wr[c], acc[c]);
                }
                memcpy(z + r * ldz + o0, acc, sizeof(float) * (size_t)cnt);
            }
#endif
        }
    }
    bias_activation(z, ldz, r0, r1, bias, relu, c0, c1);
}

/* ---- backward ------------------------------------------------------------------------------ */

/* d(mean cross-entropy)/d logits: (softmax(z) - onehot(y)) / rows; rows ld floats apart */
void loss_gradient(const float *z, const int64_t *y, int64_t rows, int64_t n, int64_t ld, float *g)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *zr = z + r * ld;
        float *gr = g + r * ld;
        float mx = zr[0];
        for (int64_t o = 1; o < n; o++) mx = zr[o] > mx ? zr[o] : mx;
        float sum = 0.0f;
        for (int64_t o = 0; o < n; o++) {
            gr[o] = expf(zr[o] - mx);
            sum += gr[o];
        }
        for (int64_t o = 0; o < n; o++) gr[o] = gr[o] / sum;
        gr[y[r]] -= 1.0f;
        for (int64_t o = 0; o < n; o++) gr[o] = gr[o] / (float)rows;
    }
}


/* gt[o * GT_LANES + c] = g[r0 + c, o] for the images [r0, r0 + n) (n <= GT_LANES), zero past n;
 * g's rows are ldg floats apart */
static void transpose_block(const float *g, int64_t ldg, int64_t r0, int64_t n, int64_t n_out, float *gt)
{
    for (int64_t o = 0; o < n_out; o++) {
        float *col = gt + o * GT_LANES;
        for (int64_t c = 0; c < n; c++) col[c] = g[(r0 + c) * ldg + o];
        for (int64_t c = n; c < GT_LANES; c++) col[c] = 0.0f;
    }
}

#if defined(__AVX512F__)
/* out[q][c] = sum over o, in order, of w[i0 + q, o] g[c, o] for NI inputs and the 64 images of gt */
static inline __attribute__((always_inline)) void input_gradient_block(const int NI, const float *w, int64_t i0,
    int64_t ldw, int64_t n_out, const float *gt, float *out)
{
    __m512 acc[4][4];
    for (int q = 0; q < NI; q++)
        for (int v = 0; v < 4; v++) acc[q][v] = _mm512_setzero_ps();
    for (int64_t o = 0; o < n_out; o++) {
        __m512 gv[4];
        for (int v = 0; v < 4; v++) gv[v] = _mm512_load_ps(gt + o * GT_LANES + 16 * v);
        for (int q = 0; q < NI; q++) {
            const __m512 wq = _mm512_set1_ps(w[(i0 + q) * ldw + o]);
            for (int v = 0; v < 4; v++) acc[q][v] = _mm512_fmadd_ps(wq, gv[v], acc[q][v]);
        }
    }
    for (int q = 0; q < NI; q++)
        for (int v = 0; v < 4; v++) _mm512_store_ps(out + q * GT_LANES + 16 * v, acc[q][v]);
}
#endif

#if defined(__AVX512F__)
/* input_gradient_block's sums over row i0 + q's weights in `sets` only (its lanes that may be
 * nonzero: bit o % 16 of sets[(i0 + q) chunks + o / 16]), o ascending */
static void listed_input_gradient(int ni, const float *w, int64_t i0, int64_t ldw, const uint16_t *sets,
                                  int64_t chunks, const float *gt, float *out)
{
    for (int q = 0; q < ni; q++) {
        __m512 acc[4];
        for (int v = 0; v < 4; v++) acc[v] = _mm512_setzero_ps();
        const uint16_t *row_sets = sets + (i0 + q) * chunks;
        const float *wr = w + (i0 + q) * ldw;
        for (int64_t c = 0; c < chunks; c++)
            for (unsigned m = row_sets[c]; m; m &= m - 1) {
                const int64_t o = 16 * c + __builtin_ctz(m);
                const __m512 wq = _mm512_set1_ps(wr[o]);
                for (int v = 0; v < 4; v++) acc[v] = _mm512_fmadd_ps(wq, _mm512_load_ps(gt + o * GT_LANES + 16 * v), acc[v]);
            }
        for (int v = 0; v < 4; v++) _mm512_store_ps(out + q * GT_LANES + 16 * v, acc[v]);
    }
}
#endif

/* The gradient of a layer's input a (after the previous ReLU; a is (rows, n_in), rows lda floats
 * apart, as ga's), for the inputs [i_lo, i_hi): ga[r, i] = sum over o, in order, of g[r, o] w[i, o]
 * where a[r, i] > 0, else 0. Computed densely, 64 images of g's transpose by 4 weight rows at a
 * time (no horizontal sums); gt: room for n_out * GT_LANES floats, 64-byte aligned; out: for
 * 4 * GT_LANES. With sets (a pruned layer listed for the call: (n_in, chunks) bit sets of the
 * weights that may be nonzero, 16 outputs to a chunk), the sums run over those weights only: the
 * terms left out are products with a zero weight, so the sums have the same values (a sum that is
 * 0 could differ in its sign only, and only where a partial sum underflowed to -0 first). */
void input_gradient(const float *a, int64_t lda, int64_t rows, int64_t i_lo, int64_t i_hi, const float *g,
                    int64_t ldg, const float *w, int64_t ldw, int64_t n_out, const uint16_t *sets, int64_t chunks,
                    float *ga, float *gt, float *out)
{
    for (int64_t r0 = 0; r0 < rows; r0 += GT_LANES) {
        const int64_t n = rows - r0 < GT_LANES ? rows - r0 : GT_LANES;
        transpose_block(g, ldg, r0, n, n_out, gt);
        for (int64_t i0 = i_lo; i0 < i_hi; i0 += 4) {
            const int ni = i_hi - i0 < 4 ? (int)(i_hi - i0) : 4;
#if defined(__AVX512F__)
            if (sets) listed_input_gradient(ni, w, i0, ldw, sets, chunks, gt, out);
            else switch (ni) {
            case 1: input_gradient_block(1, w, i0, ldw, n_out, gt, out); break;
            case 2: input_gradient_block(2, w, i0, ldw, n_out, gt, out); break;
            case 3: input_gradient_block(3, w, i0, ldw, n_out, gt, out); break;
            default: input_gradient_block(4, w, i0, ldw, n_out, gt, out); break;
            }
#else
            for (int q = 0; q < ni; q++) {
                float *acc = out + q * GT_LANES;
                for (int c = 0; c < GT_LANES; c++) acc[c] = 0.0f;
                for (int64_t o = 0; o < n_out; o++) {
                    if (sets && !((sets[(i0 + q) * chunks + o / 16] >> (o % 16)) & 1u)) continue;
                    const float wq = w[(i0 + q) * ldw + o];
                    const float *gv = gt + o * GT_LANES;
                    #pragma omp simd
                    for (int c = 0; c < GT_LANES; c++) acc[c] = fmaf(wq, gv[c], acc[c]);
                }
            }
#endif
            int64_t c = 0;
#if defined(__AVX512F__)
            if (ni == 4)  /* four images at a time: a 4 x 4 transpose, then one masked row of 4 each */
                for (; c + 4 <= n; c += 4) {
                    __m128 q0 = _mm_load_ps(out + c), q1 = _mm_load_ps(out + GT_LANES + c);
                    __m128 q2 = _mm_load_ps(out + 2 * GT_LANES + c), q3 = _mm_load_ps(out + 3 * GT_LANES + c);
                    _MM_TRANSPOSE4_PS(q0, q1, q2, q3);
                    const __m128 rowv[4] = {q0, q1, q2, q3};
                    for (int j = 0; j < 4; j++) {
                        const int64_t at = (r0 + c + j) * lda + i0;
                        const __m128 live = _mm_cmpgt_ps(_mm_loadu_ps(a + at), _mm_setzero_ps());
                        _mm_storeu_ps(ga + at, _mm_and_ps(live, rowv[j]));
                    }
                }
#endif
            for (; c < n; c++)
                for (int q = 0; q < ni; q++) {
                    const int64_t at = (r0 + c) * lda + i0 + q;
                    ga[at] = a[at] > 0.0f ? out[q * GT_LANES + c] : 0.0f;
                }
        }
    }
}

static inline void adam_scalar(float *p, float *m, float *v, float g, const lt_adam *h)
{
    const float mn = h->beta1 * *m + (1.0f - h->beta1) * g;
    const float vn = h->beta2 * *v + (1.0f - h->beta2) * g * g;
    *m = mn;
    *v = vn;
    *p = *p - h->step_size * mn / (sqrtf(vn) / h->bias_correction2_sqrt + h->eps);
}

#if defined(__AVX512F__)
typedef struct {
    __m512 b1, omb1, b2, omb2, ss, bc2, inv_bc2, eps;
} adam_consts;

static inline adam_consts adam_vector_constants(const lt_adam *h)
{
    return (adam_consts){_mm512_set1_ps(h->beta1), _mm512_set1_ps(1.0f - h->beta1), _mm512_set1_ps(h->beta2),
                         _mm512_set1_ps(1.0f - h->beta2), _mm512_set1_ps(h->step_size),
                         _mm512_set1_ps(h->bias_correction2_sqrt), _mm512_set1_ps(1.0f / h->bias_correction2_sqrt),
                         _mm512_set1_ps(h->eps)};
}

/* x / b for x = sqrt(v) (0, a normal number, +inf or NaN: denormals are flushed while a step
 * runs), b in (0, 1] and y = 1 / b correctly rounded: the same bits as _mm512_div_ps(x, b) at a
 * fraction of its cost (the divider's throughput bounds the update). With q = x y rounded, the
 * remainder r = x - q b is exact (one fused multiply-add) and q + r y, rounded, is the correctly
 * rounded quotient (Markstein's theorem: y within half an ulp of 1 / b, q within one ulp of x / b;
 * tests/test_native.py checks every significand of x against many steps' b). Where x is inf or
 * NaN, q is the quotient already. */
static inline __m512 divide_by_constant(__m512 x, __m512 b, __m512 y)
{
    const __m512 q = _mm512_mul_ps(x, y);
    const __mmask16 not_finite = _mm512_fpclass_ps_mask(x, 0x99);  /* quiet or signalling NaN, +inf, -inf */
    return _mm512_mask_mov_ps(_mm512_fmadd_ps(_mm512_fnmadd_ps(q, b, x), y, q), not_finite, q);
}

/* For the tests: of x = m 2^e for every significand m in [1, 2) and e in [e_lo, e_hi], and of inf
 * and NaN, how many divide_by_constant(x, b, 1 / b) gives other bits than x / b for (-1: not built
 * with AVX-512) */
int64_t lt_constant_division_mismatches(float b, int e_lo, int e_hi)
{
    const float y = 1.0f / b;
    const __m512 bv = _mm512_set1_ps(b), yv = _mm512_set1_ps(y);
    const __m512i step = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    int64_t bad = 0;
    for (int e = e_lo; e <= e_hi; e++)
        for (int32_t m = 0; m < (1 << 23); m += 16) {
            const __m512i bits = _mm512_add_epi32(_mm512_set1_epi32(((127 + e) << 23) + m), step);
            const __m512 x = _mm512_castsi512_ps(bits);
            const __m512 d = _mm512_div_ps(x, bv), q = divide_by_constant(x, bv, yv);
            bad += __builtin_popcount(_mm512_cmpneq_epi32_mask(_mm512_castps_si512(d), _mm512_castps_si512(q)));
        }
    const __m512 special = _mm512_set_ps(INFINITY, NAN, 0.0f, 1.0f, INFINITY, NAN, 0.0f, 1.0f, INFINITY, NAN, 0.0f,
                                         1.0f, INFINITY, NAN, 0.0f, 1.0f);
    bad += __builtin_popcount(_mm512_cmpneq_epi32_mask(_mm512_castps_si512(_mm512_div_ps(special, bv)),
                                                       _mm512_castps_si512(divide_by_constant(special, bv, yv))));
    return bad;
}

/* Adam's update of 16 entries held in registers (adam_scalar's operations, lane by lane) */
static inline __attribute__((always_inline)) void adam_lanes(__m512 *p, __m512 *m, __m512 *v, __m512 gv,
                                                             const adam_consts *c)
{
    *m = _mm512_add_ps(_mm512_mul_ps(c->b1, *m), _mm512_mul_ps(c->omb1, gv));
    *v = _mm512_add_ps(_mm512_mul_ps(c->b2, *v), _mm512_mul_ps(_mm512_mul_ps(c->omb2, gv), gv));
    const __m512 den = _mm512_add_ps(divide_by_constant(_mm512_sqrt_ps(*v), c->bc2, c->inv_bc2), c->eps);
    *p = _mm512_sub_ps(*p, _mm512_div_ps(_mm512_mul_ps(c->ss, *m), den));
}

/* Adam over the lanes mk of the 16 entries from p, m, v; mask (may be NULL) zeroes the gradient of
 * pruned entries; grad NULL means a zero gradient */
static inline __attribute__((always_inline)) void adam_vector(float *p, float *m, float *v, const uint8_t *mask,
                                                              const float *grad, __mmask16 mk, const adam_consts *c)
{
    __m512 gv = grad ? _mm512_maskz_loadu_ps(mk, grad) : _mm512_setzero_ps();
    if (mask) {
        const __m128i mb = _mm_maskz_loadu_epi8(mk, mask);
        gv = _mm512_maskz_mov_ps(_mm_test_epi8_mask(mb, mb), gv);
    }
    __m512 pv = _mm512_maskz_loadu_ps(mk, p), mv = _mm512_maskz_loadu_ps(mk, m), vv = _mm512_maskz_loadu_ps(mk, v);
    adam_lanes(&pv, &mv, &vv, gv, c);
    _mm512_mask_storeu_ps(m, mk, mv);
    _mm512_mask_storeu_ps(v, mk, vv);
    _mm512_mask_storeu_ps(p, mk, pv);
}

/* `count` steps of Adam with a zero gradient (steps c[0], c[1], ...) over the lanes mk of 16
 * entries: loaded once, stepped in registers, stored once */
static inline __attribute__((always_inline)) void adam_vector_zero_steps(float *p, float *m, float *v, __mmask16 mk,
                                                                         const adam_consts *c, int64_t count)
{
    __m512 pv = _mm512_maskz_loadu_ps(mk, p), mv = _mm512_maskz_loadu_ps(mk, m), vv = _mm512_maskz_loadu_ps(mk, v);
    for (int64_t s = 0; s < count; s++) adam_lanes(&pv, &mv, &vv, _mm512_setzero_ps(), &c[s]);
    _mm512_mask_storeu_ps(m, mk, mv);
    _mm512_mask_storeu_ps(v, mk, vv);
    _mm512_mask_storeu_ps(p, mk, pv);
}
#else
int64_t lt_constant_division_mismatches(float b, int e_lo, int e_hi)
{
    (void)b, (void)e_lo, (void)e_hi;
    return -1;
}
#endif

/* Adam over n contiguous entries; mask (may be NULL) zeroes the gradient of pruned entries;
 * grad NULL means a zero gradient */
static void adam_row(float *p, float *m, float *v, const uint8_t *mask, const float *grad, int64_t n, const lt_adam *h)
{
    int64_t i = 0;
#if defined(__AVX512F__)
    const adam_consts c = adam_vector_constants(h);
    for (; i < n; i += 16)
        adam_vector(p + i, m + i, v + i, mask ? mask + i : NULL, grad ? grad + i : NULL, lanes(n - i, 0), &c);
#endif
    for (; i < n; i++) {
        const float g = (grad && (mask == NULL || mask[i])) ? grad[i] : 0.0f;
        adam_scalar(p + i, m + i, v + i, g, h);
    }
}

/* adam_row over the listed 16-entry vectors of a row of n entries only: vector j starts at entry
 * 16 chunk[j] */
void adam_vectors(float *p, float *m, float *v, const uint8_t *mask, const float *grad, int64_t n,
                  const uint16_t *chunk, int64_t count, const lt_adam *h)
{
#if defined(__AVX512F__)
    const adam_consts c = adam_vector_constants(h);
    for (int64_t j = 0; j < count; j++) {
        const int64_t i = 16 * (int64_t)chunk[j];
        adam_vector(p + i, m + i, v + i, mask + i, grad + i, lanes(n - i, 0), &c);
    }
#else
    for (int64_t j = 0; j < count; j++)
        for (int64_t i = 16 * (int64_t)chunk[j]; i < n && i < 16 * (int64_t)chunk[j] + 16; i++)
            adam_scalar(p + i, m + i, v + i, mask[i] ? grad[i] : 0.0f, h);
#endif
}

#define ZERO_STEPS 32  /* steps adam_zero_steps keeps the constants of at a time */

/* Adam steps h[0], ..., h[count - 1] with a zero gradient over n contiguous entries, or, with
 * chunk, over the listed 16-entry vectors of a row of n entries only (vector j starts at entry
 * 16 chunk[j]): the same operations as that many calls of adam_row or adam_vectors with a zero
 * gradient, each entry read and written once every ZERO_STEPS steps */
void adam_zero_steps(float *p, float *m, float *v, int64_t n, const uint16_t *chunk, int64_t vectors,
                     const lt_adam *h, int64_t count)
{
#if defined(__AVX512F__)
    adam_consts c[ZERO_STEPS];
    for (int64_t s0 = 0; s0 < count; s0 += ZERO_STEPS) {  /* ZERO_STEPS steps at a time */
        const int64_t cnt = count - s0 < ZERO_STEPS ? count - s0 : ZERO_STEPS;
        for (int64_t s = 0; s < cnt; s++) c[s] = adam_vector_constants(&h[s0 + s]);
        if (chunk == NULL)
            for (int64_t i = 0; i < n; i += 16) adam_vector_zero_steps(p + i, m + i, v + i, lanes(n - i, 0), c, cnt);
        else
            for (int64_t j = 0; j < vectors; j++) {
                const int64_t i = 16 * (int64_t)chunk[j];
                adam_vector_zero_steps(p + i, m + i, v + i, lanes(n - i, 0), c, cnt);
            }
    }
#else
    const int64_t parts = chunk == NULL ? 1 : vectors;
    for (int64_t j = 0; j < parts; j++) {
        const int64_t i0 = chunk == NULL ? 0 : 16 * (int64_t)chunk[j];
        const int64_t i1 = chunk == NULL ? n : (i0 + 16 < n ? i0 + 16 : n);
        for (int64_t i = i0; i < i1; i++)
            for (int64_t s = 0; s < count; s++) adam_scalar(p + i, m + i, v + i, 0.0f, &h[s]);
    }
#endif
}

#if defined(__AVX512F__)
/* tr[q * ldt + o0 + c] = sum over all images r, in order, of a[r, i + q] g[r, o0 + c], for NI
 * inputs and cnt <= 64 columns (a dense block: 4 inputs by 4 vectors per image) */
static inline __attribute__((always_inline)) void weight_gradient_block(const int NI, const float *a, int64_t lda,
    int64_t rows, int64_t i, const float *g, int64_t ldg, int64_t o0, int64_t cnt, float *tr, int64_t ldt)
{
    __mmask16 mk[4];
    __m512 acc[4][4];
    for (int v = 0; v < 4; v++) mk[v] = lanes(cnt, v);
    for (int q = 0; q < NI; q++)
        for (int v = 0; v < 4; v++) acc[q][v] = _mm512_setzero_ps();
    for (int64_t r = 0; r < rows; r++) {
        const float *gr = g + r * ldg + o0;
        __m512 gv[4];
        for (int v = 0; v < 4; v++) gv[v] = _mm512_maskz_loadu_ps(mk[v], gr + 16 * v);
        for (int q = 0; q < NI; q++) {
            const __m512 x = _mm512_set1_ps(a[r * lda + i + q]);
            for (int v = 0; v < 4; v++) acc[q][v] = _mm512_fmadd_ps(x, gv[v], acc[q][v]);
        }
    }
    for (int q = 0; q < NI; q++)
        for (int v = 0; v < 4; v++) _mm512_mask_storeu_ps(tr + q * ldt + 16 * v, mk[v], acc[q][v]);
}
#endif

#if defined(__AVX512F__)
/* sparse_gradient_tile's rows (FULL when cnt == 64), two inputs at a time: one input's sums are
 * four chains of dependent multiply-adds, two inputs' interleaved are eight (as forward_block's
 * images); each sum is the same, in the same order */
static inline __attribute__((always_inline)) void gradient_rows(const int FULL, const sparse_cols *c, const float *g,
    int64_t ldg, int64_t i0, int64_t i1, int64_t o0, int64_t cnt, float *tile, int64_t ldt)
{
    __mmask16 mk[4];
    for (int v = 0; v < 4; v++) mk[v] = lanes(cnt, v);
    int64_t i = i0;
    for (; i + 1 < i1; i += 2) {
        __m512 a[4], b[4];
        for (int v = 0; v < 4; v++) a[v] = b[v] = _mm512_setzero_ps();
        int64_t ea = c->ptr[i], eb = c->ptr[i + 1];
        const int64_t ea1 = c->ptr[i + 1], eb1 = c->ptr[i + 2];
        for (; ea < ea1 && eb < eb1; ea++, eb++) {
            add_scaled_row(4, FULL, a, c->val[ea], g + (int64_t)c->row[ea] * ldg + o0, mk);
            add_scaled_row(4, FULL, b, c->val[eb], g + (int64_t)c->row[eb] * ldg + o0, mk);
        }
        for (; ea < ea1; ea++) add_scaled_row(4, FULL, a, c->val[ea], g + (int64_t)c->row[ea] * ldg + o0, mk);
        for (; eb < eb1; eb++) add_scaled_row(4, FULL, b, c->val[eb], g + (int64_t)c->row[eb] * ldg + o0, mk);
        float *ta = tile + (i - i0) * ldt + o0, *tb = ta + ldt;
        for (int v = 0; v < 4; v++) {
            _mm512_mask_storeu_ps(ta + 16 * v, mk[v], a[v]);
            _mm512_mask_storeu_ps(tb + 16 * v, mk[v], b[v]);
        }
    }
    if (i < i1) {
        __m512 acc[4];
        for (int v = 0; v < 4; v++) acc[v] = _mm512_setzero_ps();
        for (int64_t e = c->ptr[i]; e < c->ptr[i + 1]; e++)
            add_scaled_row(4, FULL, acc, c->val[e], g + (int64_t)c->row[e] * ldg + o0, mk);
        float *tr = tile + (i - i0) * ldt + o0;
        for (int v = 0; v < 4; v++) _mm512_mask_storeu_ps(tr + 16 * v, mk[v], acc[v]);
    }
}
#endif

/* tile[(i - i0) * ldt + o] = sum over the images r where a[r, i] is nonzero, in order, of
 * a[r, i] g[r, o], for the inputs [i0, i1) and the columns [o0, o0 + cnt) (cnt <= 64), from the
 * input's column view c */
void sparse_gradient_tile(const sparse_cols *c, const float *g, int64_t ldg, int64_t i0, int64_t i1,
                                 int64_t o0, int64_t cnt, float *tile, int64_t ldt)
{
#if defined(__AVX512F__)
    if (cnt == 64)
        gradient_rows(1, c, g, ldg, i0, i1, o0, cnt, tile, ldt);
    else
        gradient_rows(0, c, g, ldg, i0, i1, o0, cnt, tile, ldt);
#else
    for (int64_t i = i0; i < i1; i++) {
        float *tr = tile + (i - i0) * ldt + o0;
        for (int64_t o = 0; o < cnt; o++) tr[o] = 0.0f;
        for (int64_t e = c->ptr[i]; e < c->ptr[i + 1]; e++) {
            const float x = c->val[e];
            const float *gr = g + (int64_t)c->row[e] * ldg + o0;
            #pragma omp simd
            for (int64_t o = 0; o < cnt; o++) tr[o] = fmaf(x, gr[o], tr[o]);
        }
    }
#endif
}

/* The same sums over all images of a (rows lda floats apart), densely, 4 inputs at a time */
void dense_gradient_tile(const float *a, int64_t lda, int64_t rows, const float *g, int64_t ldg, int64_t i0,
                                int64_t i1, int64_t o0, int64_t cnt, float *tile, int64_t ldt)
{
    for (int64_t i = i0; i < i1; i += 4) {
        const int ni = i1 - i < 4 ? (int)(i1 - i) : 4;
        float *tr = tile + (i - i0) * ldt + o0;
#if defined(__AVX512F__)
        switch (ni) {
        case 1: weight_gradient_block(1, a, lda, rows, i, g, ldg, o0, cnt, tr, ldt); break;
        case 2: weight_gradient_block(2, a, lda, rows, i, g, ldg, o0, cnt, tr, ldt); break;
        case 3: weight_gradient_block(3, a, lda, rows, i, g, ldg, o0, cnt, tr, ldt); break;
        default: weight_gradient_block(4, a, lda, rows, i, g, ldg, o0, cnt, tr, ldt); break;
        }
#else
        for (int q = 0; q < ni; q++) {
            float *tq = tr + q * ldt;
            for (int64_t o = 0; o < cnt; o++) tq[o] = 0.0f;
            for (int64_t r = 0; r < rows; r++) {
                const float x = a[r * lda + i + q];
                const float *gr = g + r * ldg + o0;
                #pragma omp simd
                for (int64_t o = 0; o < cnt; o++) tq[o] = fmaf(x, gr[o], tq[o]);
            }
        }
#endif
    }
}

/* weight gradient of rows [row0, row1) and columns [col0, col1) (sum of a[r, i] g[r, o] over the
 * images, in order) with the Adam update of each row's part as soon as it is known (col0 a multiple
 * of 16). With c, the input's column view, the sums run over the images where a[r, i] is nonzero
 * (the batch); without, over all images of a (rows lda floats apart), densely (a hidden layer's
 * input, about half nonzero: the dense blocks do more products in less time). The two give the
 * same sums: a skipped term is an exact 0. g's rows are ldg floats apart; w's, and those of its
 * moments and mask, ldw. With defer_empty (and c), rows whose input is 0 in every image of the
 * batch (a zero gradient) are not updated: the caller steps them later (adam_zero_steps). */
void layer_update(const sparse_cols *c, const float *a, int64_t lda, const float *g, int64_t ldg, int64_t rows,
                  int64_t row0, int64_t row1, int64_t col0, int64_t col1, int64_t n_out, float *w, float *mw,
                  float *vw, const uint8_t *mask, int64_t ldw, const lt_adam *h, float *tile, int defer_empty)
{
    const int64_t ldt = padded(n_out);
    for (int64_t i0 = row0; i0 < row1; i0 += GRAD_ROWS) {
        const int64_t i1 = i0 + GRAD_ROWS < row1 ? i0 + GRAD_ROWS : row1;
        for (int64_t o0 = col0; o0 < col1; o0 += COL_BLOCK) {
            const int64_t cnt = col1 - o0 < COL_BLOCK ? col1 - o0 : COL_BLOCK;
            if (c != NULL)
                sparse_gradient_tile(c, g, ldg, i0, i1, o0, cnt, tile, ldt);
            else
                dense_gradient_tile(a, lda, rows, g, ldg, i0, i1, o0, cnt, tile, ldt);
        }
        for (int64_t i = i0; i < i1; i++) {
            if (defer_empty && c->ptr[i] == c->ptr[i + 1]) continue;
            const int64_t at = i * ldw + col0;
            adam_row(w + at, mw + at, vw + at, mask ? mask + at : NULL, tile + (i - i0) * ldt + col0, col1 - col0, h);
        }
    }
}

/* the bias gradient (column sums of g, images in order) and its update; gb: room for n_out floats */
void bias_update(const float *g, int64_t ldg, int64_t rows, int64_t n_out, float *bias, float *mb, float *vb,
                 const lt_adam *h, float *gb)
{
    for (int64_t o = 0; o < n_out; o++) gb[o] = 0.0f;
    for (int64_t r = 0; r < rows; r++) {
        const float *gr = g + r * ldg;
        #pragma omp simd
        for (int64_t o = 0; o < n_out; o++) gb[o] = gb[o] + gr[o];
    }
    adam_row(bias, mb, vb, NULL, gb, n_out, h);
}
