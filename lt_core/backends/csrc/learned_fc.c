/* Learned supermasks of a stack of fully connected networks (lt_core.supermask.learned): one
 * training step of every run in one call -- sample the masks, forward, backward with the
 * straight-through gradient, SGD with momentum on the scores.
 *
 * Layout. Every tensor of layer l is PyTorch's, (runs, n_out, n_in), contiguous: the frozen
 * weights w, the scores, p = sigmoid(scores) (computed by PyTorch before the call, so that it is
 * the very p the reference samples from) and the momentum buffers. The forward and backward
 * passes work on input-major copies (fc_stack.c's layout): the effective weights are gathered into
 * one, and the gradient comes out of one and is gathered back.
 *
 * Sampling. A run draws its masks from its own PyTorch CPU generator, whose state (the bytes of
 * Generator.get_state()) is read, advanced and written back here: mt19937 as at::mt19937 steps it,
 * and b = (24-bit uniform < p) in each layer's element order, layer after layer, exactly as
 * torch.bernoulli(p, generator=...) draws them (torch_bernoulli.h). Same generator state in, same
 * masks and same state out as the reference.
 *
 * Gradient. With eff = w b s (s = N / sum(b) for a run with dynamic weight rescaling, else 1) and
 * G = dL/deff, the score gradient is ((G w) s + t) p (1 - p), where t = -N / sum(b)^2 times the sum
 * of G w b over the layer (the gradient through the count; 0 without rescaling), each product
 * rounded as PyTorch's autograd function rounds it. SGD is torch.optim.SGD's (non-Nesterov):
 * buf = buf momentum + g, score += -lr buf (one fused multiply-add, as PyTorch's vectorised add).
 * The matrix products are fc_stack.c's, over the nonzero entries of each layer's input, so the
 * sums differ from PyTorch's in rounding only.
 *
 * Threads. The runs are split between the threads, each run's step computed by one thread with
 * its own buffers: a run's numbers do not depend on the others or on the thread count.
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

typedef struct {
    int64_t n_in, n_out;
    const float *w;     /* (runs, n_out, n_in), frozen */
    const float *w_in;  /* the same, input-major: (runs, n_in, padded(n_out)) */
    float *score;    /* (runs, n_out, n_in), updated in place */
    const float *p;  /* sigmoid(score) */
    float *mom;      /* momentum buffers, updated in place */
} lt_mask_layer;

/* PyTorch's generator and torch.bernoulli's draws: torch_bernoulli.h */
#include "torch_bernoulli.h"

#if defined(__AVX512F__)

/* r[c] becomes the old column c (16 x 16 floats, in registers) */
static inline void transpose16(__m512 *r)
{
    __m512 a[16], b[16];
    for (int j = 0; j < 8; j++) {  /* pairs of 32-bit entries */
        a[2 * j] = _mm512_unpacklo_ps(r[2 * j], r[2 * j + 1]);
        a[2 * j + 1] = _mm512_unpackhi_ps(r[2 * j], r[2 * j + 1]);
    }
    for (int j = 0; j < 4; j++) {  /* b[4j + m], 128-bit lane L: column 4L + m of rows 4j .. 4j + 3 */
        const __m512d a0 = _mm512_castps_pd(a[4 * j]), a1 = _mm512_castps_pd(a[4 * j + 1]);
        const __m512d a2 = _mm512_castps_pd(a[4 * j + 2]), a3 = _mm512_castps_pd(a[4 * j + 3]);
        b[4 * j] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
        b[4 * j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
        b[4 * j + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
        b[4 * j + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
    }
    for (int m = 0; m < 4; m++) {  /* the 4 x 4 lanes of b[m], b[4 + m], b[8 + m], b[12 + m] */
        const __m512 s0 = _mm512_shuffle_f32x4(b[m], b[4 + m], 0x44), s1 = _mm512_shuffle_f32x4(b[m], b[4 + m], 0xee);
        const __m512 s2 = _mm512_shuffle_f32x4(b[8 + m], b[12 + m], 0x44);
        const __m512 s3 = _mm512_shuffle_f32x4(b[8 + m], b[12 + m], 0xee);
        r[m] = _mm512_shuffle_f32x4(s0, s2, 0x88);
        r[4 + m] = _mm512_shuffle_f32x4(s0, s2, 0xdd);
        r[8 + m] = _mm512_shuffle_f32x4(s1, s3, 0x88);
        r[12 + m] = _mm512_shuffle_f32x4(s1, s3, 0xdd);
    }
}
#endif
/* The input-major effective weights e[i * ld + o] = b[o, i] ? w_in[i * ld + o] : 0 from the
 * mask's bits (canonical order, entry o n_in + i) and the input-major weights w_in (padding
 * columns of e zeroed). vbuf: room for padded(n_out) words, 64-byte aligned (the bits of 16
 * inputs for every output, so that each row of e is then written in one sequential pass). */
static void effective_weights(const uint8_t *bits, const float *w_in, int64_t n_out, int64_t n_in, float *e,
                              int64_t ld, uint32_t *vbuf)
{
#if defined(__AVX512F__)
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i row_step = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)n_in));
    for (int64_t i0 = 0; i0 < n_in; i0 += 16) {
        for (int64_t o0 = 0; o0 < n_out; o0 += 16) {  /* lane q: the bits of output o0 + q, inputs i0 .. */
            const __mmask16 rows = first(n_out - o0);
            const __m512i at = _mm512_add_epi32(row_step, _mm512_set1_epi32((int)(o0 * n_in + i0)));
            const __m512i words = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), rows, _mm512_srli_epi32(at, 3),
                                                              bits, 1);
            _mm512_store_si512(vbuf + o0, _mm512_srlv_epi32(words, _mm512_and_si512(at, _mm512_set1_epi32(7))));
        }
        for (int64_t c = 0; c < 16 && i0 + c < n_in; c++) {
            const __m512i bit = _mm512_set1_epi32(1 << c);
            const float *wr = w_in + (i0 + c) * ld;
            float *er = e + (i0 + c) * ld;
            for (int64_t o0 = 0; o0 < n_out; o0 += 16) {
                const __mmask16 kept = _mm512_mask_test_epi32_mask(first(n_out - o0), _mm512_load_si512(vbuf + o0), bit);
                _mm512_storeu_ps(er + o0, _mm512_maskz_loadu_ps(kept, wr + o0));
            }
        }
    }
#else
    (void)vbuf;
    for (int64_t i = 0; i < n_in; i++) {
        for (int64_t o = 0; o < n_out; o++) {
            const int64_t at = o * n_in + i;
            e[i * ld + o] = (bits[at >> 3] >> (at & 7)) & 1 ? w_in[i * ld + o] : 0.0f;
        }
        for (int64_t o = n_out; o < padded(n_out); o++) e[i * ld + o] = 0.0f;
    }
#endif
}

/* e *= scale over an input-major (n_in, n_out) matrix, rows lde apart */
static void rescale(float *e, int64_t lde, int64_t n_in, int64_t n_out, float scale)
{
    for (int64_t i = 0; i < n_in; i++) {
        float *row = e + i * lde;
        #pragma omp simd
        for (int64_t o = 0; o < n_out; o++) row[o] = row[o] * scale;
    }
}

/* ---- the score update ---------------------------------------------------------------------------- */

/* The sum over a layer of G w b, from the input-major gradient gim and effective weights e
 * (= w b s; rows ld apart): the sum of G e in double, divided by s */
static float count_term_sum(const float *gim, const float *e, int64_t ld, int64_t n_out, int64_t n_in, float scale)
{
    double sum = 0.0;
    int64_t i = 0;
#if defined(__AVX512F__)
    __m512d acc = _mm512_setzero_pd();
    for (; i < n_in; i++)
        for (int64_t o = 0; o < n_out; o += 16) {
            const __mmask16 mk = first(n_out - o);
            const __m512 prod = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, gim + i * ld + o),
                                              _mm512_maskz_loadu_ps(mk, e + i * ld + o));
            acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(prod)));
            acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(prod), 1))));
        }
    sum = _mm512_reduce_add_pd(acc);
#endif
    for (; i < n_in; i++)
        for (int64_t o = 0; o < n_out; o++) sum += (double)(gim[i * ld + o] * e[i * ld + o]);
    return (float)(sum / scale);
}

/* SGD on one layer's scores from the input-major gradient gim (rows ldg apart) of its effective
 * weights; scale: s, through: the count term t (0 without rescaling). gbuf: room for 16
 * padded(n_in) floats, 64-byte aligned (16 outputs' gradients, transposed, so that each score
 * row is then read and written in one sequential pass) */
static void update_layer(const float *gim, int64_t ldg, int64_t n_out, int64_t n_in, const float *w, const float *p,
                         float *score, float *mom, int dwr, float scale, float through, float lr, float momentum,
                         float *gbuf)
{
#if defined(__AVX512F__)
    const __m512 sv = _mm512_set1_ps(scale), tv = _mm512_set1_ps(through), one = _mm512_set1_ps(1.0f);
    const __m512 mv = _mm512_set1_ps(momentum), nlr = _mm512_set1_ps(-lr);
    const int64_t ldb = padded(n_in);
    for (int64_t o0 = 0; o0 < n_out; o0 += 16) {
        const int64_t rows = n_out - o0 < 16 ? n_out - o0 : 16;
        for (int64_t i0 = 0; i0 < n_in; i0 += 16) {
            __m512 r[16];  /* rows i0 .. i0 + 15 of gim's columns o0 .. o0 + 15, then their transpose */
            for (int64_t c = 0; c < 16; c++)
                r[c] = i0 + c < n_in ? _mm512_loadu_ps(gim + (i0 + c) * ldg + o0) : _mm512_setzero_ps();
            transpose16(r);
            for (int64_t q = 0; q < rows; q++) _mm512_store_ps(gbuf + q * ldb + i0, r[q]);
        }
        for (int64_t q = 0; q < rows; q++)
            for (int64_t i0 = 0; i0 < n_in; i0 += 16) {
                const __mmask16 mk = first(n_in - i0);
                const int64_t at = (o0 + q) * n_in + i0;
                __m512 g = _mm512_mul_ps(_mm512_load_ps(gbuf + q * ldb + i0), _mm512_maskz_loadu_ps(mk, w + at));
                if (dwr) g = _mm512_add_ps(_mm512_mul_ps(g, sv), tv);
                const __m512 pv = _mm512_maskz_loadu_ps(mk, p + at);
                g = _mm512_mul_ps(_mm512_mul_ps(g, pv), _mm512_sub_ps(one, pv));
                const __m512 buf = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, mom + at), mv), g);
                _mm512_mask_storeu_ps(mom + at, mk, buf);
                _mm512_mask_storeu_ps(score + at, mk, _mm512_fmadd_ps(buf, nlr, _mm512_maskz_loadu_ps(mk, score + at)));
            }
    }
#else
    (void)gbuf;
    for (int64_t o = 0; o < n_out; o++)
        for (int64_t i = 0; i < n_in; i++) {
            const int64_t at = o * n_in + i;
            float g = gim[i * ldg + o] * w[at];
            if (dwr) g = g * scale + through;
            g = g * p[at] * (1.0f - p[at]);
            const float buf = mom[at] * momentum + g;
            mom[at] = buf;
            score[at] = fmaf(buf, -lr, score[at]);
        }
#endif
}

/* ---- one run's step ------------------------------------------------------------------------------ */

typedef struct {
    sparse_rows xr, sr[MAX_LAYERS];  /* the batch by rows; sr[l]: layer l's input by rows, l > 0 */
    sparse_cols xc;                  /* the batch by columns */
    float *act[MAX_LAYERS];          /* act[l]: layer l's input, l > 0; rows padded(n_in) apart */
    float *e[MAX_LAYERS], *grad[MAX_LAYERS];  /* eff and dL/deff, input-major */
    float *logits, *g, *g_next, *gt, *gt_out, *zero, *gbuf;
    uint8_t *bits;                   /* a layer's mask */
} mask_buffers;

static size_t buffers_bytes(int n_layers, const lt_mask_layer *layers, int64_t rows)
{
    int64_t widest = 0;
    size_t total = sparse_rows_bytes(rows, layers[0].n_in) + sparse_cols_bytes(rows, layers[0].n_in);
    for (int l = 0; l < n_layers; l++) {
        const int64_t n_in = layers[l].n_in, n_out = layers[l].n_out;
        if (l > 0) total += align64(4 * (size_t)(rows * padded(n_in))) + sparse_rows_bytes(rows, n_in);
        total += 2 * align64(4 * (size_t)(n_in * padded(n_out)));
        widest = n_in > widest ? n_in : widest;
        widest = n_out > widest ? n_out : widest;
    }
    widest = padded(widest);
    total += align64(4 * (size_t)(rows * padded(layers[n_layers - 1].n_out)));
    total += 2 * align64(4 * (size_t)(rows * widest)) + align64(4 * (size_t)(GT_LANES * widest));
    return total + align64(4 * 4 * GT_LANES) + align64(4 * (size_t)widest) + align64((size_t)(widest * widest / 8 + 8)) + align64(4 * 16 * (size_t)widest);
}

static void buffers_init(mask_buffers *b, int n_layers, const lt_mask_layer *layers, int64_t rows, char *mem)
{
    int64_t widest = 0;
    mem = sparse_rows_init(&b->xr, rows, layers[0].n_in, mem);
    mem = sparse_cols_init(&b->xc, rows, layers[0].n_in, mem);
    for (int l = 0; l < n_layers; l++) {
        const int64_t n_in = layers[l].n_in, n_out = layers[l].n_out;
        if (l > 0) {
            b->act[l] = (float *)mem;
            mem += align64(4 * (size_t)(rows * padded(n_in)));
            mem = sparse_rows_init(&b->sr[l], rows, n_in, mem);
        }
        b->e[l] = (float *)mem;
        mem += align64(4 * (size_t)(n_in * padded(n_out)));
        b->grad[l] = (float *)mem;
        mem += align64(4 * (size_t)(n_in * padded(n_out)));
        widest = n_in > widest ? n_in : widest;
        widest = n_out > widest ? n_out : widest;
    }
    widest = padded(widest);
    b->logits = (float *)mem;
    mem += align64(4 * (size_t)(rows * padded(layers[n_layers - 1].n_out)));
    b->g = (float *)mem;
    mem += align64(4 * (size_t)(rows * widest));
    b->g_next = (float *)mem;
    mem += align64(4 * (size_t)(rows * widest));
    b->gt = (float *)mem;
    mem += align64(4 * (size_t)(GT_LANES * widest));
    b->gt_out = (float *)mem;
    mem += align64(4 * 4 * GT_LANES);
    b->zero = (float *)mem;
    memset(b->zero, 0, 4 * (size_t)widest);
    mem += align64(4 * (size_t)widest);
    b->bits = (uint8_t *)mem;
    mem += align64((size_t)(widest * widest / 8 + 8));
    b->gbuf = (float *)mem;
}

/* images of the batch whose largest logit (the first, on ties) is their label */
static int64_t count_correct(const float *z, int64_t ldz, const int64_t *y, int64_t rows, int64_t n)
{
    int64_t correct = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *zr = z + r * ldz;
        int64_t best = 0;
        for (int64_t o = 1; o < n; o++)
            if (zr[o] > zr[best] || (isnan(zr[o]) && !isnan(zr[best]))) best = o;
        correct += best == y[r];
    }
    return correct;
}

static int64_t run_step(int n_layers, const lt_mask_layer *layers, int64_t k, int dwr, uint8_t *state,
                        const int64_t *y, int64_t rows, float lr, float momentum, mask_buffers *b)
{
    const int last = n_layers - 1;
    float scale[MAX_LAYERS], ones[MAX_LAYERS];
    mt_state gen;
    mt_load(&gen, state);
    for (int l = 0; l < n_layers; l++) {  /* masks, layer after layer from the one generator */
        const lt_mask_layer *L = &layers[l];
        const int64_t n = L->n_out * L->n_in, off = k * n;
        const int64_t lde = padded(L->n_out);
        ones[l] = (float)sample_layer(&gen, L->p + off, n, b->bits);
        effective_weights(b->bits, L->w_in + k * L->n_in * lde, L->n_out, L->n_in, b->e[l], lde, (uint32_t *)b->gbuf);
        ones[l] = ones[l] < 1.0f ? 1.0f : ones[l];
        scale[l] = dwr ? 1.0f / ones[l] * (float)n : 1.0f;  /* PyTorch's N / tensor: reciprocal, then times N */
        if (dwr) rescale(b->e[l], lde, L->n_in, L->n_out, scale[l]);
    }
    mt_store(&gen, state);
    for (int l = 0; l < n_layers; l++) {
        const lt_mask_layer *L = &layers[l];
        float *out = l < last ? b->act[l + 1] : b->logits;
        const int64_t ldz = padded(L->n_out);
        layer_forward(l == 0 ? &b->xr : &b->sr[l], 0, rows, b->e[l], ldz, b->zero, l < last, out, ldz, 0, L->n_out);
        if (l < last) sparse_rows_build(&b->sr[l + 1], out, ldz);
    }
    const int64_t n_last = layers[last].n_out;
    const int64_t correct = count_correct(b->logits, padded(n_last), y, rows, n_last);
    loss_gradient(b->logits, y, rows, n_last, padded(n_last), b->g);
    float *g = b->g, *g_next = b->g_next;
    for (int l = last; l >= 0; l--) {
        const lt_mask_layer *L = &layers[l];
        const int64_t ldg = padded(L->n_out);
        if (l > 0)
            input_gradient(b->act[l], padded(L->n_in), rows, 0, L->n_in, g, ldg, b->e[l], ldg, L->n_out, NULL, 0, g_next,
                           b->gt, b->gt_out);
        for (int64_t i0 = 0; i0 < L->n_in; i0 += GRAD_ROWS) {
            const int64_t i1 = i0 + GRAD_ROWS < L->n_in ? i0 + GRAD_ROWS : L->n_in;
            for (int64_t o0 = 0; o0 < L->n_out; o0 += COL_BLOCK) {
                const int64_t cnt = L->n_out - o0 < COL_BLOCK ? L->n_out - o0 : COL_BLOCK;
                if (l == 0)
                    sparse_gradient_tile(&b->xc, g, ldg, i0, i1, o0, cnt, b->grad[l] + i0 * ldg, ldg);
                else
                    dense_gradient_tile(b->act[l], padded(L->n_in), rows, g, ldg, i0, i1, o0, cnt,
                                        b->grad[l] + i0 * ldg, ldg);
            }
        }
        float *swap = g;
        g = g_next;
        g_next = swap;
    }
    for (int l = 0; l < n_layers; l++) {
        const lt_mask_layer *L = &layers[l];
        const int64_t off = k * L->n_out * L->n_in;
        const int64_t ld = padded(L->n_out);
        float through = 0.0f;
        if (dwr)  /* sum(G w b) times PyTorch's -N / sum(b)^2 */
            through = count_term_sum(b->grad[l], b->e[l], ld, L->n_out, L->n_in, scale[l]) *
                      -(float)(L->n_out * L->n_in) / (ones[l] * ones[l]);
        update_layer(b->grad[l], ld, L->n_out, L->n_in, L->w + off, L->p + off, L->score + off, L->mom + off, dwr,
                     scale[l], through, lr, momentum, b->gbuf);
    }
    return correct;
}

static __thread void *buffers_mem;
static __thread size_t buffers_cap;

/* One step of every run on its batch x (rows, layers[0].n_in) at x + k x_run_stride (0: one batch
 * for all), labels y likewise. dwr[k]: run k rescales; states: runs x STATE_BYTES generator states
 * (advanced in place); correct[k]: the images whose prediction (before the update) was right.
 * Returns 0, -1 on bad arguments, -2 when no thread had scratch memory (then nothing changed). */
int lt_mask_train_step(int n_layers, const lt_mask_layer *layers, int64_t runs, const uint8_t *dwr, uint8_t *states,
                       int64_t state_bytes, const float *x, int64_t x_run_stride, const int64_t *y,
                       int64_t y_run_stride, int64_t rows, float lr, float momentum, int num_threads, int64_t *correct)
{
    if (n_layers < 1 || n_layers > MAX_LAYERS || rows < 1 || runs < 1 || state_bytes != STATE_BYTES) return -1;
    const size_t bytes = buffers_bytes(n_layers, layers, rows);
    int64_t next = 0, done = 0;
    if (num_threads > runs) num_threads = (int)runs;
    if (num_threads < 1) num_threads = 1;
    /* the runs with rescaling (two more passes over each layer) handed out first, so that the
     * threads' shares even out */
    int64_t *order = malloc(sizeof(int64_t) * (size_t)runs);
    if (order == NULL) return -2;
    for (int64_t k = 0, j = 0; j < 2; j++)
        for (int64_t r = 0; r < runs; r++)
            if ((dwr[r] != 0) == (j == 0)) order[k++] = r;
    /* runs handed out one at a time, with no barrier before the first: a thread that another
     * process keeps off its core (or that has no memory) leaves its share to the others */
    #pragma omp parallel num_threads(num_threads) shared(next, done)
    {
        if (bytes > buffers_cap) {
            free(buffers_mem);
            buffers_cap = bytes;
            buffers_mem = aligned_alloc(64, align64(bytes));
            if (buffers_mem == NULL) buffers_cap = 0;
        }
        if (buffers_mem != NULL) {
            mask_buffers b;
            buffers_init(&b, n_layers, layers, rows, (char *)buffers_mem);
            int built = 0;
            for (;;) {
                int64_t at;
                #pragma omp atomic capture
                at = next++;
                if (at >= runs) break;
                const int64_t k = order[at];
                if (x_run_stride != 0 || !built) {
                    sparse_rows_build(&b.xr, x + k * x_run_stride, layers[0].n_in);
                    sparse_cols_build(&b.xc, &b.xr);
                    built = 1;
                }
                correct[k] = run_step(n_layers, layers, k, dwr[k], states + k * state_bytes, y + k * y_run_stride,
                                      rows, lr, momentum, &b);
                #pragma omp atomic update
                done++;
            }
        }
    }
    free(order);
    return done == runs ? 0 : -2;  /* (a thread with memory takes every run left) */
}

/* The effective weights eff[l] (runs, n_out, n_in) = w b s of every run, with masks drawn as a step
 * draws them (same generator consumption; states advanced in place), for evaluation. Returns 0, or
 * -1 on bad arguments, -2 when scratch memory could not be had. */
int lt_mask_draw(int n_layers, const lt_mask_layer *layers, int64_t runs, const uint8_t *dwr, uint8_t *states,
                 int64_t state_bytes, float *const *eff, int num_threads)
{
    if (n_layers < 1 || n_layers > MAX_LAYERS || runs < 1 || state_bytes != STATE_BYTES) return -1;
    size_t bytes = 0;
    for (int l = 0; l < n_layers; l++) {
        const size_t need = (size_t)(layers[l].n_out * layers[l].n_in / 8 + 8);
        bytes = need > bytes ? need : bytes;
    }
    int failed = 0;
    if (num_threads > runs) num_threads = (int)runs;
    if (num_threads < 1) num_threads = 1;
    #pragma omp parallel num_threads(num_threads) shared(failed)
    {
        uint8_t *bits = malloc(bytes);
        if (bits == NULL) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp barrier
        int stop;
        #pragma omp atomic read
        stop = failed;
        if (!stop) {
            #pragma omp for schedule(dynamic, 1)
            for (int64_t k = 0; k < runs; k++) {
                mt_state gen;
                mt_load(&gen, states + k * state_bytes);
                for (int l = 0; l < n_layers; l++) {
                    const lt_mask_layer *L = &layers[l];
                    const int64_t n = L->n_out * L->n_in, off = k * n;
                    float ones = (float)sample_layer(&gen, L->p + off, n, bits);
                    ones = ones < 1.0f ? 1.0f : ones;
                    const float scale = dwr[k] ? 1.0f / ones * (float)n : 1.0f;
                    const float *w = L->w + off;
                    float *out = eff[l] + off;
                    for (int64_t j = 0; j < n; j++) out[j] = ((bits[j >> 3] >> (j & 7)) & 1 ? w[j] : 0.0f) * scale;
                }
                mt_store(&gen, states + k * state_bytes);
            }
        }
        free(bits);
    }
    return failed ? -2 : 0;
}
