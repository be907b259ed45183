/* A stack of fully connected networks on the CPU: training steps (any number of them, each run
 * taking its steps in a row), and the forward pass for evaluation, each as one call with one
 * parallel region.
 *
 * Layout. Layer l of run k has weights w[k, i, o] (input i, output o), stored as (runs, n_in,
 * n_out) with rows ld >= n_out floats apart: row i of a run's matrix holds the outgoing weights of
 * input i. Masks and Adam's moments share that layout; biases are (runs, n_out). With ld a multiple
 * of 16 (as lt_core lays them out) every row starts on a 64-byte line, so no row's vectors straddle
 * two lines; the step's own buffers (activations, gradients) are padded so too.
 *
 * Sparsity. The forward pass is written over the nonzero entries of a layer's input: MNIST images
 * are about 80% zeros, a hidden layer after ReLU about half. It adds a[b, i] w[i, :] for each
 * nonzero a[b, i]. The first layer's weight gradient of row i sums a[b, i] g[b, :] over the images
 * b where pixel i is nonzero; a hidden layer's is computed densely, in blocks of 4 inputs over all
 * images (faster at half density, and the same sums). Skipped terms are exact zeros, so the sums
 * are the same sums without them. Evaluation computes a pruned run's first layer over its nonzero
 * weights instead (many images at once, one per vector lane) where that is less work: the same
 * sums again, in the same order. The input gradient of a hidden layer is computed densely (g
 * times the weights' transpose, no horizontal sums) and kept where a[b, i] > 0 (ReLU).
 *
 * Kept weights (fc_kept.h). A training call lists each pruned run's layers once (the mask is fixed
 * within a call, and pruned weights with zero moments never move): a hidden layer's forward pass
 * is then computed over its nonzero weights by output, images in vector lanes, where that is less
 * work than over the nonzero inputs (the same sums in the same order, values read from w each
 * step, frozen nonzero pruned weights included), and a sparse first layer's Adam update runs over
 * the 16-weight vectors that hold a kept weight only (the others would not change). The weight
 * gradients are the same sums as before. A layer with a pruned weight that could move is updated
 * densely. `kept` of lt_fc_train_steps forces either way (tests: the same bits).
 *
 * Determinism. A run's arithmetic does not depend on the other runs, on which thread computes it,
 * or on where a value sits in a vector: the vector and scalar code compute each element alike.
 * Products are accumulated with fused multiply-adds, written out (_mm512_fmadd_ps, fmaf: one
 * rounding each, the same in either), and nothing else is fused (-ffp-contract=off). A run trained
 * alone or in a stack gets the same bits.
 *
 * Adam is PyTorch's form, element by element, as in masked_adam.c (same operation order), with the
 * mask applied to the gradient and denormals flushed to zero while a step runs (see there).
 *
 * Threads. The runs of a stack are split between the threads; the runs left over (all of them for
 * a single run) are stepped by all threads together, each taking a share of every layer's columns
 * (forward), inputs (input gradient) and weight rows (update), with a barrier between phases. A
 * step is one fork and one join.
 * Evaluation gives each thread blocks of images in turn, each block through every run.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif
#include "fc_parts.h"
#include "lt_fp.h"

typedef struct {
    int64_t n_in, n_out;
    int64_t ld;             /* the row stride (>= n_out) of w, m_w, v_w and mask: row i of run k at (k n_in + i) ld */
    int64_t live_in;        /* inputs from here on are 0 in every training image: their rows never move */
    float *w, *m_w, *v_w;   /* (runs, n_in, n_out), rows ld apart */
    const uint8_t *mask;    /* (runs, n_in, n_out), rows ld apart, or NULL (nothing pruned) */
    float *b, *m_b, *v_b;   /* (runs, n_out) */
} lt_fc_layer;

typedef struct {
    float beta1, beta2, step_size, bias_correction2_sqrt, eps;
} lt_adam;

/* MAX_LAYERS, the tile sizes and the sparse views: fc_parts.h */

/* ---- per-thread scratch ------------------------------------------------------------------- */

static __thread void *scratch_mem;
static __thread size_t scratch_cap;

static void *scratch(size_t bytes)
{
    if (bytes > scratch_cap) {
        free(scratch_mem);
        scratch_cap = bytes + bytes / 4 + 4096;
        scratch_mem = aligned_alloc(64, (scratch_cap + 63) / 64 * 64);
        if (scratch_mem == NULL) scratch_cap = 0;
    }
    return scratch_mem;
}



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
    return align64(sizeof(int64_t) * (size_t)(n + 1)) + 2 * align64(4 * (size_t)(rows * n));
}

char *sparse_cols_init(sparse_cols *c, int64_t rows, int64_t n, char *mem)
{
    c->ptr = (int64_t *)mem;
    mem += align64(sizeof(int64_t) * (size_t)(n + 1));
    c->row = (int32_t *)mem;
    mem += align64(4 * (size_t)(rows * n));
    c->val = (float *)mem;
    return mem + align64(4 * (size_t)(rows * n));
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
static inline __mmask16 lanes(int64_t cnt, int v)
{
    int64_t r = cnt - 16 * v;
    r = r < 0 ? 0 : r > 16 ? 16 : r;
    return (__mmask16)((1u << r) - 1u);
}

/* rows [r0, r1) of z[:, o0:o0+cnt] (cnt <= 16 * NV), zeroed, then accumulated tile by tile */
static inline __attribute__((always_inline)) void forward_block(const int NV, const sparse_rows *s, int64_t r0,
    int64_t r1, const float *w, int64_t ldw, int64_t o0, int64_t cnt, float *z, int64_t ldz)
{
    __mmask16 mk[4];
    for (int v = 0; v < NV; v++) mk[v] = lanes(cnt, v);
    for (int64_t r = r0; r < r1; r++)
        for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(z + r * ldz + o0 + 16 * v, mk[v], _mm512_setzero_ps());
    const int64_t tiles = s->tiles;
    for (int64_t t = 0; t < tiles; t++) {
        for (int64_t r = r0; r < r1; r++) {
            int64_t e = s->ptr[r * (tiles + 1) + t];
            const int64_t e1 = s->ptr[r * (tiles + 1) + t + 1];
            if (e >= e1) continue;
            float *zr = z + r * ldz + o0;
            __m512 acc[4];
            for (int v = 0; v < NV; v++) acc[v] = _mm512_maskz_loadu_ps(mk[v], zr + 16 * v);
            for (; e < e1; e++) {
                const __m512 x = _mm512_set1_ps(s->val[e]);
                const float *wr = w + (int64_t)s->idx[e] * ldw + o0;
                for (int v = 0; v < NV; v++)
                    acc[v] = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(mk[v], wr + 16 * v), acc[v]);
            }
            for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(zr + 16 * v, mk[v], acc[v]);
        }
    }
}
#endif

/* z[r, o] = act(z[r, o] + bias[o]) for rows [r0, r1) and columns [c0, c1) */
static void bias_activation(float *z, int64_t ldz, int64_t r0, int64_t r1, const float *bias, int relu, int64_t c0,
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
            case 1: forward_block(1, s, b0, b1, w, ldw, o0, cnt, z, ldz); break;
            case 2: forward_block(2, s, b0, b1, w, ldw, o0, cnt, z, ldz); break;
            case 3: forward_block(3, s, b0, b1, w, ldw, o0, cnt, z, ldz); break;
            default: forward_block(4, s, b0, b1, w, ldw, o0, cnt, z, ldz); break;
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

/* The gradient of a layer's input a (after the previous ReLU; a is (rows, n_in), rows lda floats
 * apart, as ga's), for the inputs [i_lo, i_hi): ga[r, i] = sum over o, in order, of g[r, o] w[i, o]
 * where a[r, i] > 0, else 0. Computed densely, 64 images of g's transpose by 4 weight rows at a
 * time (no horizontal sums); gt: room for n_out * GT_LANES floats, 64-byte aligned; out: for
 * 4 * GT_LANES. */
void input_gradient(const float *a, int64_t lda, int64_t rows, int64_t i_lo, int64_t i_hi, const float *g,
                           int64_t ldg, const float *w, int64_t ldw, int64_t n_out, float *ga, float *gt, float *out)
{
    for (int64_t r0 = 0; r0 < rows; r0 += GT_LANES) {
        const int64_t n = rows - r0 < GT_LANES ? rows - r0 : GT_LANES;
        transpose_block(g, ldg, r0, n, n_out, gt);
        for (int64_t i0 = i_lo; i0 < i_hi; i0 += 4) {
            const int ni = i_hi - i0 < 4 ? (int)(i_hi - i0) : 4;
#if defined(__AVX512F__)
            switch (ni) {
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
    __m512 b1, omb1, b2, omb2, ss, bc2, eps;
} adam_consts;

static inline adam_consts adam_vector_constants(const lt_adam *h)
{
    return (adam_consts){_mm512_set1_ps(h->beta1), _mm512_set1_ps(1.0f - h->beta1), _mm512_set1_ps(h->beta2),
                         _mm512_set1_ps(1.0f - h->beta2), _mm512_set1_ps(h->step_size),
                         _mm512_set1_ps(h->bias_correction2_sqrt), _mm512_set1_ps(h->eps)};
}

/* Adam over the lanes mk of the 16 entries from p, m, v (adam_scalar's operations, lane by lane);
 * mask (may be NULL) zeroes the gradient of pruned entries; grad NULL means a zero gradient */
static inline __attribute__((always_inline)) void adam_vector(float *p, float *m, float *v, const uint8_t *mask,
                                                              const float *grad, __mmask16 mk, const adam_consts *c)
{
    __m512 gv = grad ? _mm512_maskz_loadu_ps(mk, grad) : _mm512_setzero_ps();
    if (mask) {
        const __m128i mb = _mm_maskz_loadu_epi8(mk, mask);
        gv = _mm512_maskz_mov_ps(_mm_test_epi8_mask(mb, mb), gv);
    }
    const __m512 mn = _mm512_add_ps(_mm512_mul_ps(c->b1, _mm512_maskz_loadu_ps(mk, m)), _mm512_mul_ps(c->omb1, gv));
    const __m512 vn = _mm512_add_ps(_mm512_mul_ps(c->b2, _mm512_maskz_loadu_ps(mk, v)),
                                    _mm512_mul_ps(_mm512_mul_ps(c->omb2, gv), gv));
    _mm512_mask_storeu_ps(m, mk, mn);
    _mm512_mask_storeu_ps(v, mk, vn);
    const __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vn), c->bc2), c->eps);
    const __m512 pv = _mm512_maskz_loadu_ps(mk, p);
    _mm512_mask_storeu_ps(p, mk, _mm512_sub_ps(pv, _mm512_div_ps(_mm512_mul_ps(c->ss, mn), den)));
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
static void adam_vectors(float *p, float *m, float *v, const uint8_t *mask, const float *grad, int64_t n,
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

/* tile[(i - i0) * ldt + o] = sum over the images r where a[r, i] is nonzero, in order, of
 * a[r, i] g[r, o], for the inputs [i0, i1) and the columns [o0, o0 + cnt) (cnt <= 64), from the
 * input's column view c */
void sparse_gradient_tile(const sparse_cols *c, const float *g, int64_t ldg, int64_t i0, int64_t i1,
                                 int64_t o0, int64_t cnt, float *tile, int64_t ldt)
{
    for (int64_t i = i0; i < i1; i++) {
        float *tr = tile + (i - i0) * ldt + o0;
#if defined(__AVX512F__)
        __mmask16 mk[4];
        __m512 acc[4];
        for (int v = 0; v < 4; v++) {
            mk[v] = lanes(cnt, v);
            acc[v] = _mm512_setzero_ps();
        }
        for (int64_t e = c->ptr[i]; e < c->ptr[i + 1]; e++) {
            const __m512 x = _mm512_set1_ps(c->val[e]);
            const float *gr = g + (int64_t)c->row[e] * ldg + o0;
            for (int v = 0; v < 4; v++)
                acc[v] = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(mk[v], gr + 16 * v), acc[v]);
        }
        for (int v = 0; v < 4; v++) _mm512_mask_storeu_ps(tr + 16 * v, mk[v], acc[v]);
#else
        for (int64_t o = 0; o < cnt; o++) tr[o] = 0.0f;
        for (int64_t e = c->ptr[i]; e < c->ptr[i + 1]; e++) {
            const float x = c->val[e];
            const float *gr = g + (int64_t)c->row[e] * ldg + o0;
            #pragma omp simd
            for (int64_t o = 0; o < cnt; o++) tr[o] = fmaf(x, gr[o], tr[o]);
        }
#endif
    }
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

/* weight gradient of rows [row0, row1) (sum of a[r, i] g[r, :] over the images, in order) with the
 * Adam update of each row as soon as it is known. With c, the input's column view, the sums run
 * over the images where a[r, i] is nonzero (the batch); without, over all images of a (rows lda
 * floats apart), densely (a hidden layer's input, about half nonzero: the dense blocks do more
 * products in less time). The two give the same sums: a skipped term is an exact 0.
 * g's rows are ldg floats apart; w's, and those of its moments and mask, ldw. */
static void layer_update(const sparse_cols *c, const float *a, int64_t lda, const float *g, int64_t ldg, int64_t rows,
                         int64_t row0, int64_t row1, int64_t n_out, float *w, float *mw, float *vw, const uint8_t *mask,
                         int64_t ldw, const lt_adam *h, float *tile)
{
    const int64_t ldt = padded(n_out);
    for (int64_t i0 = row0; i0 < row1; i0 += GRAD_ROWS) {
        const int64_t i1 = i0 + GRAD_ROWS < row1 ? i0 + GRAD_ROWS : row1;
        for (int64_t o0 = 0; o0 < n_out; o0 += COL_BLOCK) {
            const int64_t cnt = n_out - o0 < COL_BLOCK ? n_out - o0 : COL_BLOCK;
            if (c != NULL)
                sparse_gradient_tile(c, g, ldg, i0, i1, o0, cnt, tile, ldt);
            else
                dense_gradient_tile(a, lda, rows, g, ldg, i0, i1, o0, cnt, tile, ldt);
        }
        for (int64_t i = i0; i < i1; i++)
            adam_row(w + i * ldw, mw + i * ldw, vw + i * ldw, mask ? mask + i * ldw : NULL, tile + (i - i0) * ldt,
                     n_out, h);
    }
}

/* the bias gradient (column sums of g, images in order) and its update; gb: room for n_out floats */
static void bias_update(const float *g, int64_t ldg, int64_t rows, int64_t n_out, float *bias, float *mb, float *vb,
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

#include "fc_kept.h"

/* ---- the two entry points -------------------------------------------------------------------- */

/* How a run's layers are computed in one call (see fc_kept.h): update[l], layer l's weight
 * gradient and Adam over its active vectors (layer[l] listed); forward[l], its forward pass
 * over its weights by output: 0 never, 1 where that is less work, 2 always (listed by output). */
typedef struct {
    int update[MAX_LAYERS], forward[MAX_LAYERS];
    kept_layer layer[MAX_LAYERS];
} kept_plan;

static size_t step_scratch_bytes(int n_layers, const lt_fc_layer *layers, int64_t rows)
{
    size_t total = 0;
    int64_t widest = 0;
    for (int l = 0; l < n_layers; l++) {
        const int64_t n_in = layers[l].n_in, n_out = layers[l].n_out;
        if (l > 0)  /* activations and their views (the batch's views are apart: see x_views) */
            total += align64(4 * (size_t)(rows * padded(n_in))) + sparse_rows_bytes(rows, n_in) +
                     sparse_cols_bytes(rows, n_in);
        total += kept_layer_bytes(n_in, n_out);
        widest = n_in > widest ? n_in : widest;
        widest = n_out > widest ? n_out : widest;
    }
    widest = padded(widest);
    total += align64(4 * (size_t)(rows * padded(layers[n_layers - 1].n_out)));  /* logits */
    total += 2 * align64(4 * (size_t)(rows * widest));                    /* gradients */
    total += align64(4 * (size_t)(GRAD_ROWS * widest));                   /* gradient tile */
    total += align64(4 * (size_t)(GT_LANES * widest)) + 4 * 4 * GT_LANES;  /* input gradient */
    total += align64(4 * (size_t)((rows + KEPT_LANES - 1) / KEPT_LANES * KEPT_LANES * widest));  /* transposed input */
    total += align64(sizeof(kept_plan));
    return total;
}

/* A training step's working memory, laid out in one scratch block */
typedef struct {
    float *act[MAX_LAYERS];  /* act[l]: layer l's input, l > 0; rows padded(n_in) floats apart */
    sparse_rows sr[MAX_LAYERS];  /* sr[l]: act[l]'s view by rows, l > 0 */
    sparse_cols sc[MAX_LAYERS];  /* sc[l]: by columns, l > 0, where the update is over the kept weights */
    kept_plan *plan;  /* the run being stepped: its layers' lists and paths */
    float *logits, *g, *g_next, *tile;  /* rows padded(width) apart; tile, gt, gt_out, xt: each thread its own */
    float *gt, *gt_out;  /* gt: also the transposed output of kept_forward_w */
    float *xt;  /* a layer's input transposed for kept_forward_w */
} step_buffers;

static char *step_buffers_init(step_buffers *b, int n_layers, const lt_fc_layer *layers, int64_t rows, char *mem)
{
    int64_t widest = 0;
    for (int l = 0; l < n_layers; l++) {
        if (l > 0) {
            b->act[l] = (float *)mem;
            mem += align64(4 * (size_t)(rows * padded(layers[l].n_in)));
            mem = sparse_rows_init(&b->sr[l], rows, layers[l].n_in, mem);
            mem = sparse_cols_init(&b->sc[l], rows, layers[l].n_in, mem);
        }
        widest = layers[l].n_in > widest ? layers[l].n_in : widest;
        widest = layers[l].n_out > widest ? layers[l].n_out : widest;
    }
    widest = padded(widest);
    b->plan = (kept_plan *)mem;
    mem += align64(sizeof(kept_plan));
    for (int l = 0; l < n_layers; l++) mem = kept_layer_init(&b->plan->layer[l], layers[l].n_in, layers[l].n_out, mem);
    b->logits = (float *)mem;
    mem += align64(4 * (size_t)(rows * padded(layers[n_layers - 1].n_out)));
    b->g = (float *)mem;
    mem += align64(4 * (size_t)(rows * widest));
    b->g_next = (float *)mem;
    mem += align64(4 * (size_t)(rows * widest));
    b->tile = (float *)mem;
    mem += align64(4 * (size_t)(GRAD_ROWS * widest));
    b->gt = (float *)mem;
    mem += align64(4 * (size_t)(GT_LANES * widest));
    b->gt_out = (float *)mem;
    mem += 4 * 4 * GT_LANES;
    b->xt = (float *)mem;
    return mem + align64(4 * (size_t)((rows + KEPT_LANES - 1) / KEPT_LANES * KEPT_LANES * widest));
}

#define KEPT_AUTO 0   /* lt_fc_train_steps's `kept`: each path where it is less work */
#define KEPT_NEVER 1  /* the dense paths everywhere */
#define KEPT_ALWAYS 2 /* the kept-weight paths wherever a layer is listed */

/* Lists run k's pruned layers in plan->layer for a call and plans their paths (`way`: KEPT_AUTO,
 * _NEVER or _ALWAYS). The forward pass over the kept weights is planned for the hidden layers only
 * (their ReLU turns a zero of either sign into +0, so the two ways' outputs agree to the bit even
 * where a sum of exact zeros differs in sign); by output they are listed only when they are few
 * enough to be worth it. In KEPT_AUTO, a layer with more than a quarter of its weights kept is not
 * listed (neither path pays there), and Adam over the active vectors is planned for the first
 * layer where it skips half of them or more (measured: skipping fewer saves nothing, the update
 * being bound by memory traffic; a hidden layer's update is dense over the images, faster than the
 * column view kept_update reads). */
static void kept_plan_run(kept_plan *plan, int n_layers, const lt_fc_layer *layers, int64_t k, int way)
{
    for (int l = 0; l < n_layers; l++) {
        const lt_fc_layer *L = &layers[l];
        const int64_t live = L->live_in < L->n_in ? L->live_in : L->n_in;
        const int64_t cols_below = way == KEPT_ALWAYS ? INT64_MAX : live * L->n_out / 4;
        kept_layer *K = &plan->layer[l];
        plan->update[l] = plan->forward[l] = 0;
        if (way == KEPT_NEVER || L->mask == NULL) continue;
        if (way == KEPT_AUTO && 4 * kept_mask_count(L, k, live) > live * L->n_out) continue;
        if (!kept_build(K, L, k, live, l < n_layers - 1 ? cols_below : -1)) continue;
        plan->update[l] = way == KEPT_ALWAYS || (l == 0 && 2 * K->active <= live * K->chunks);
        plan->forward[l] = K->has_cols ? (way == KEPT_ALWAYS ? 2 : 1) : 0;
    }
}

/* whether kept_forward_w is less work than layer_forward for a layer of n_out outputs whose input
 * view s has `entries` nonzero entries: in multiply-adds of 16 lanes, the nonzero inputs times the
 * output vectors, or the listed weights times the vectors of images. In training the latter must
 * do less than half the former's (measured on the figure's stack: at 0.8^8 of the first layer
 * kept, about 0.85 of the work, it was slower: it also transposes the input and the output) */
static int kept_forward_pays(const kept_layer *K, int64_t entries, int64_t rows, int64_t n_out)
{
    const int64_t by_inputs = entries * ((n_out + 15) / 16);
    const int64_t by_weights = K->nonzero * ((rows + KEPT_LANES - 1) / KEPT_LANES) * (KEPT_LANES / 16);
    return 2 * by_weights < by_inputs;
}

#define X_SLOTS 32  /* batches whose views one call of lt_fc_train_steps holds at a time */

/* The sparse views of `slots` batches of (rows, n_in): by rows and by columns, each */
static size_t x_views_bytes(int64_t slots, int64_t rows, int64_t n_in)
{
    return (size_t)slots * (sparse_rows_bytes(rows, n_in) + sparse_cols_bytes(rows, n_in));
}

static void x_views_init(sparse_rows *xr, sparse_cols *xc, int64_t slots, int64_t rows, int64_t n_in, char *mem)
{
    for (int64_t i = 0; i < slots; i++) {
        mem = sparse_rows_init(&xr[i], rows, n_in, mem);
        mem = sparse_cols_init(&xc[i], rows, n_in, mem);
    }
}

static void x_views_build(sparse_rows *xr, sparse_cols *xc, const float *x, int64_t n_in)
{
    sparse_rows_build(xr, x, n_in);
    sparse_cols_build(xc, xr);
}

/* [*begin, *end): part `part` of `parts` of [0, n), cut at multiples of `align` */
static void share(int64_t n, int part, int parts, int64_t align, int64_t *begin, int64_t *end)
{
    const int64_t units = (n + align - 1) / align;
    *begin = units * part / parts * align;
    *end = units * (part + 1) / parts * align;
    *begin = *begin < n ? *begin : n;
    *end = *end < n ? *end : n;
}

/* every thread of a team of `team` waits here (no-op for a team of one) */
static void team_barrier(int team)
{
    if (team > 1) {
        #pragma omp barrier
    }
}

/* One training step of run k on the batch whose views are xr, xc (built), computed by `team`
 * threads together (this one is `member`), all of them in this call with the same shared buffers b
 * (but each its own b->tile, b->gt, b->gt_out). Every entry is computed alike whatever the team's
 * size, so a run gets the same bits alone, in a stack, and on any number of threads. */
static void run_step(int n_layers, const lt_fc_layer *layers, int64_t k, const sparse_rows *xr,
                     const sparse_cols *xc, const int64_t *yk, int64_t rows, const lt_adam *adam, step_buffers *b,
                     int member, int team)
{
    const int last = n_layers - 1;
    const int lead = member == 0;
    int64_t lo, hi;
    const sparse_rows *sr[MAX_LAYERS];  /* each layer's input by rows */
    sr[0] = xr;
    for (int l = 1; l < n_layers; l++) sr[l] = &b->sr[l];
    const kept_plan *P = b->plan;
    for (int l = 0; l < n_layers; l++) {
        const lt_fc_layer *L = &layers[l];
        float *out = l < last ? b->act[l + 1] : b->logits;
        const float *w = L->w + k * L->n_in * L->ld, *bias = L->b + k * L->n_out;
        const int64_t ldz = padded(L->n_out);
        share(L->n_out, member, team, 16, &lo, &hi);
        const kept_layer *K = &P->layer[l];
        const int64_t entries = sr[l]->ptr[rows * (sr[l]->tiles + 1) - 1];
        if (P->forward[l] == 2 || (P->forward[l] == 1 && kept_forward_pays(K, entries, rows, L->n_out))) {
            transpose_view(sr[l], K->rows, b->xt);
            kept_forward_w(&K->cols, w, L->ld, b->xt, K->rows, rows, lo, hi, b->gt, out, ldz);
            bias_activation(out, ldz, 0, rows, bias, l < last, lo, hi);
        } else {
            layer_forward(sr[l], 0, rows, w, L->ld, bias, l < last, out, ldz, lo, hi);
        }
        team_barrier(team);
        if (l < last) {
            if (lead) {
                sparse_rows_build(&b->sr[l + 1], out, ldz);
                if (P->update[l + 1]) sparse_cols_build(&b->sc[l + 1], &b->sr[l + 1]);
            }
            team_barrier(team);
        }
    }
    if (lead) loss_gradient(b->logits, yk, rows, layers[last].n_out, padded(layers[last].n_out), b->g);
    team_barrier(team);
    float *g = b->g, *g_next = b->g_next;
    for (int l = last; l >= 0; l--) {
        const lt_fc_layer *L = &layers[l];
        const int64_t off = k * L->n_in * L->ld, ldg = padded(L->n_out);
        if (l > 0) {  /* with the weights before this step's update */
            share(L->n_in, member, team, 16, &lo, &hi);
            input_gradient(b->act[l], padded(L->n_in), rows, lo, hi, g, ldg, L->w + off, L->ld, L->n_out, g_next,
                           b->gt, b->gt_out);
            team_barrier(team);
        }
        const int64_t live = L->live_in < L->n_in ? L->live_in : L->n_in;
        share(live, member, team, GRAD_ROWS, &lo, &hi);
        if (P->update[l])  /* over the active vectors, from the input's column view */
            kept_update(&P->layer[l], l == 0 ? xc : &b->sc[l], g, ldg, lo, hi, L->n_out, L->w + off, L->m_w + off,
                        L->v_w + off, L->mask + off, L->ld, adam, b->tile);
        else  /* the batch's weight gradient over its column view; a hidden layer's densely */
            layer_update(l == 0 ? xc : NULL, l == 0 ? NULL : b->act[l], padded(L->n_in), g, ldg, rows, lo, hi,
                         L->n_out, L->w + off, L->m_w + off, L->v_w + off, L->mask ? L->mask + off : NULL, L->ld,
                         adam, b->tile);
        if (lead)
            bias_update(g, ldg, rows, L->n_out, L->b + k * L->n_out, L->m_b + k * L->n_out, L->v_b + k * L->n_out,
                        adam, b->tile);
        team_barrier(team);  /* g_next is overwritten next */
        float *swap = g;
        g = g_next;
        g_next = swap;
    }
}

#define EVAL_BLOCK 250  /* images per evaluation task */

static int thread_index(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static int thread_count(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* `steps` training steps of every run, each a forward pass, the cross-entropy gradient, the
 * backward pass and Adam (adam[s]: step s's constants).
 *
 * x: the batches, each (rows, layers[0].n_in): step s of run k at x + s * x_step_stride +
 * k * x_run_stride (run stride 0: all runs share their batches); y: labels, likewise. Returns 0, or
 * -1 when scratch memory could not be had (then nothing has changed).
 *
 * Each run takes its steps one after another before the next run starts: a run's weights and
 * moments (about 3 MB for FC 300-100-10) then stay in the cache from one step to the next, where
 * stepping all runs once in turn would read the whole stack from memory every step. Runs are
 * independent, so the order changes no result.
 *
 * With T threads, each thread steps runs // T of the runs alone. With share_leftover, the runs
 * left over (runs % T) are each stepped by all T threads together (faster on idle cores; a step
 * then has a dozen barriers, which cost a scheduler time slice each when another process holds
 * one of the cores); without, they go to one thread each, as the others. The bits are the same
 * either way. */
int lt_fc_train_steps(int n_layers, const lt_fc_layer *layers, int64_t runs, int64_t steps, const float *x,
                      int64_t x_run_stride, int64_t x_step_stride, const int64_t *y, int64_t y_run_stride,
                      int64_t y_step_stride, int64_t rows, const lt_adam *adam, int num_threads, int share_leftover,
                      int kept)
{
    if (n_layers < 1 || n_layers > MAX_LAYERS || rows < 1 || steps < 1 || kept < KEPT_AUTO || kept > KEPT_ALWAYS)
        return -1;
    /* Batches shared by all runs have their views built once per thread for up to X_SLOTS steps;
     * a run's own batch has them built for each of its steps (one slot). */
    const int shared_x = x_run_stride == 0;
    const int64_t slots = shared_x ? (steps < X_SLOTS ? steps : X_SLOTS) : 1, n_in = layers[0].n_in;
    const size_t bytes = step_scratch_bytes(n_layers, layers, rows) + x_views_bytes(slots, rows, n_in);
    int failed = 0;
    char *team_mem = NULL;
    if (!share_leftover && num_threads > runs) num_threads = (int)runs;
    if (num_threads < 1) num_threads = 1;
    #pragma omp parallel num_threads(num_threads) shared(failed, team_mem)
    {
        char *mem = (char *)scratch(bytes);
        const int tid = thread_index(), nth = thread_count();
        if (mem == NULL) {
            #pragma omp atomic write
            failed = 1;
        }
        if (tid == 0) team_mem = mem;
        #pragma omp barrier
        int stop;
        #pragma omp atomic read
        stop = failed;
        if (!stop) {
            const unsigned long long fp_state = flush_denormals();
            step_buffers own, shared;  /* shared: thread 0's buffers, with this thread's own gradient tile */
            sparse_rows xr[X_SLOTS], team_xr[X_SLOTS];
            sparse_cols xc[X_SLOTS], team_xc[X_SLOTS];
            x_views_init(xr, xc, slots, rows, n_in, step_buffers_init(&own, n_layers, layers, rows, mem));
            x_views_init(team_xr, team_xc, slots, rows, n_in,
                         step_buffers_init(&shared, n_layers, layers, rows, team_mem));
            shared.tile = own.tile;
            shared.gt = own.gt;
            shared.gt_out = own.gt_out;
            shared.xt = own.xt;
            /* runs [0, alone) are stepped by one thread each */
            const int64_t alone = share_leftover ? runs - runs % nth : runs;
            const int64_t k0 = alone * tid / nth, k1 = alone * (tid + 1) / nth;
            const int64_t group = shared_x ? slots : steps;  /* steps a run takes in a row */
            for (int64_t t0 = 0; t0 < steps; t0 += group) {
                const int64_t t1 = t0 + group < steps ? t0 + group : steps;
                if (shared_x && (k0 < k1 || (alone < runs && tid == 0)))
                    for (int64_t t = t0; t < t1; t++)
                        x_views_build(&xr[t - t0], &xc[t - t0], x + t * x_step_stride, n_in);
                for (int64_t k = k0; k < k1; k++) {
                    kept_plan_run(own.plan, n_layers, layers, k, kept);
                    for (int64_t t = t0; t < t1; t++) {
                        const int64_t v = shared_x ? t - t0 : 0;
                        if (!shared_x) x_views_build(&xr[0], &xc[0], x + t * x_step_stride + k * x_run_stride, n_in);
                        run_step(n_layers, layers, k, &xr[v], &xc[v], y + t * y_step_stride + k * y_run_stride, rows,
                                 &adam[t], &own, 0, 1);
                    }
                }
                if (alone == runs) continue;
                #pragma omp barrier
                for (int64_t k = alone; k < runs; k++) {  /* with thread 0's views and lists */
                    if (tid == 0) kept_plan_run(shared.plan, n_layers, layers, k, kept);
                    #pragma omp barrier
                    for (int64_t t = t0; t < t1; t++) {
                        const int64_t v = shared_x ? t - t0 : 0;
                        if (!shared_x) {
                            if (tid == 0)
                                x_views_build(&xr[0], &xc[0], x + t * x_step_stride + k * x_run_stride, n_in);
                            #pragma omp barrier
                        }
                        run_step(n_layers, layers, k, &team_xr[v], &team_xc[v],
                                 y + t * y_step_stride + k * y_run_stride, rows, &adam[t], &shared, tid, nth);
                    }
                    #pragma omp barrier
                }
            }
            restore_denormals(fp_state);
        }
    }
    return failed ? -1 : 0;
}

/* ---- evaluation over the kept weights -------------------------------------------------------- */

static size_t forward_scratch_bytes(int n_layers, const lt_fc_layer *layers, int64_t rows)
{
    size_t total = 0;
    for (int l = 0; l < n_layers; l++) {
        if (l > 0) total += align64(4 * (size_t)(rows * padded(layers[l].n_in)));
        total += sparse_rows_bytes(rows, layers[l].n_in);
    }
    const int64_t groups = (rows + KEPT_LANES - 1) / KEPT_LANES;
    total += align64(4 * (size_t)(groups * KEPT_LANES * layers[0].n_in));  /* transposed inputs */
    total += align64(4 * (size_t)(KEPT_LANES * layers[0].n_out));          /* transposed outputs */
    return total;
}

/* Logits (runs, rows, n_out of the last layer) of every run on one shared batch x (rows,
 * layers[0].n_in). Returns 0, or -1 when memory could not be had. `way`: how the first layer is
 * computed: 0 the less work of the two below, 1 over the nonzero inputs, 2 over the kept weights.
 *
 * Threads take blocks of EVAL_BLOCK images in turn (dynamically: a core busy elsewhere delays
 * only its own blocks), each block through every run. The first layer of a run is computed over
 * the block's nonzero inputs (layer_forward) or, when that is less work, over the run's nonzero
 * weights (kept_forward: a pruned network's first layer); both give the same bits. */
int lt_fc_forward(int n_layers, const lt_fc_layer *layers, int64_t runs, const float *x, int64_t rows, float *logits,
                  int num_threads, int way)
{
    if (n_layers < 1 || n_layers > MAX_LAYERS || rows < 1 || way < 0 || way > 2) return -1;
    const int last = n_layers - 1;
    const int64_t block = rows < EVAL_BLOCK ? rows : EVAL_BLOCK;
    const int64_t blocks = (rows + block - 1) / block;
    const size_t bytes = forward_scratch_bytes(n_layers, layers, block);
    const int64_t n_last = layers[last].n_out, n_in = layers[0].n_in, n_out = layers[0].n_out;
    const lt_fc_layer *L0 = &layers[0];
    /* the first layer's kept weights by output, per run (counted, then filled) */
    int64_t *kept = calloc((size_t)runs + 1, sizeof(int64_t));
    int64_t *ptr = malloc(sizeof(int64_t) * (size_t)(runs * (n_out + 1)));
    kept_cols *cols = malloc(sizeof(kept_cols) * (size_t)runs);
    if (kept == NULL || ptr == NULL || cols == NULL) {
        free(kept);
        free(ptr);
        free(cols);
        return -1;
    }
    int failed = 0;
    int32_t *idx = NULL;
    float *val = NULL;
    #pragma omp parallel num_threads(num_threads) shared(failed, idx, val)
    {
        #pragma omp for schedule(static)
        for (int64_t k = 0; k < runs; k++) kept[k + 1] = kept_count(L0->w + k * n_in * L0->ld, L0->ld, n_in, n_out);
        #pragma omp single
        {
            for (int64_t k = 0; k < runs; k++) kept[k + 1] += kept[k];
            idx = malloc(4 * (size_t)kept[runs] + 4);
            val = malloc(4 * (size_t)kept[runs] + 4);
            if (idx == NULL || val == NULL) failed = 1;
        }  /* (implicit barrier) */
        char *mem = (char *)scratch(bytes);
        if (mem == NULL) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp barrier
        int stop;
        #pragma omp atomic read
        stop = failed;
        if (!stop) {
            #pragma omp for schedule(static)
            for (int64_t k = 0; k < runs; k++) {
                cols[k] = (kept_cols){ptr + k * (n_out + 1), idx + kept[k], val + kept[k]};
                kept_cols_build(L0->w + k * n_in * L0->ld, L0->ld, n_in, n_out, &cols[k]);
            }  /* (implicit barrier) */
            float *act[MAX_LAYERS];
            sparse_rows sr[MAX_LAYERS];
            for (int l = 0; l < n_layers; l++) {
                if (l > 0) {
                    act[l] = (float *)mem;
                    mem += align64(4 * (size_t)(block * padded(layers[l].n_in)));
                }
                mem = sparse_rows_init(&sr[l], block, layers[l].n_in, mem);
            }
            float *xt = (float *)mem;
            mem += align64(4 * (size_t)(((block + KEPT_LANES - 1) / KEPT_LANES) * KEPT_LANES * n_in));
            float *zt = (float *)mem;
            #pragma omp for schedule(dynamic)
            for (int64_t blk = 0; blk < blocks; blk++) {
                const int64_t r0 = blk * block, n = rows - r0 < block ? rows - r0 : block;
                sr[0].rows = n;
                sparse_rows_build(&sr[0], x + r0 * n_in, n_in);
                /* work of each way, in multiply-adds of 16 lanes: the block's nonzero inputs times
                 * the output vectors, or the run's kept weights times the groups of images (the
                 * latter runs about 1.5 times as many a second, measured: a third of weights kept
                 * is about even) */
                const int64_t by_inputs = sr[0].ptr[n * (sr[0].tiles + 1) - 1] * ((n_out + 15) / 16);
                const int64_t groups4 = (n + KEPT_LANES - 1) / KEPT_LANES * (KEPT_LANES / 16);
                int transposed = 0;
                for (int64_t k = 0; k < runs; k++) {
                    for (int l = 0; l < n_layers; l++) {
                        const lt_fc_layer *L = &layers[l];
                        float *out = l < last ? act[l + 1] : logits + (k * rows + r0) * n_last;
                        const int64_t ldz = l < last ? padded(L->n_out) : n_last;
                        const float *bias = L->b + k * L->n_out;
                        if (l == 0 && (way == 2 || (way == 0 && 3 * (kept[k + 1] - kept[k]) * groups4 < 4 * by_inputs))) {
                            if (!transposed) transpose_inputs(x, n_in, r0, n, xt);
                            transposed = 1;
                            kept_forward(&cols[k], xt, n_in, n, n_out, zt, out, ldz);
                            bias_activation(out, ldz, 0, n, bias, l < last, 0, n_out);
                        } else {
                            layer_forward(&sr[l], 0, n, L->w + k * L->n_in * L->ld, L->ld, bias, l < last, out, ldz,
                                          0, L->n_out);
                        }
                        if (l < last) {
                            sr[l + 1].rows = n;
                            sparse_rows_build(&sr[l + 1], out, ldz);
                        }
                    }
                }
            }
        }
    }
    free(idx);
    free(val);
    free(kept);
    free(ptr);
    free(cols);
    return failed ? -1 : 0;
}
