/* The pieces of a fully connected layer's training step: sparse views of a layer's input, the
 * forward pass over them, the loss gradient, the input gradient, the weight gradient tiles and
 * Adam (see fc_stack.c for the layout and the determinism rules). Defined in fc_parts.c; hidden,
 * so that the library exports only its lt_ entry points. */
#ifndef LT_FC_PARTS_H
#define LT_FC_PARTS_H

#include <stddef.h>
#include <stdint.h>

#define MAX_LAYERS 16
#define TILE_ROWS 128  /* input rows per tile of the forward pass (a tile's 128 x 64 weight block stays in L1) */
#define IMG_BLOCK 32   /* images per block of the forward pass */
#define COL_BLOCK 64   /* output columns per block (four 16-float vectors) */
#define GRAD_ROWS 32   /* weight rows per gradient tile (a column block of g stays in L1 over all of them) */
#define GT_LANES 64    /* images per pass of the input gradient (four 16-float vectors) */

#define LT_HIDDEN __attribute__((visibility("hidden")))

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

#if defined(__AVX512F__)
#include <immintrin.h>
/* the lanes of vector v that hold one of cnt entries (16 to a vector) */
static inline __mmask16 lanes(int64_t cnt, int v)
{
    int64_t r = cnt - 16 * v;
    r = r < 0 ? 0 : r > 16 ? 16 : r;
    return (__mmask16)((1u << r) - 1u);
}
#endif

static inline size_t align64(size_t n) { return (n + 63) / 64 * 64; }

/* the row stride, in floats, of the step's own (rows, n) buffers: whole 64-byte lines, so that a
 * row's vectors do not straddle two */
static inline int64_t padded(int64_t n) { return (n + 15) / 16 * 16; }

/* The nonzero entries of a (rows, n) matrix, row by row, in tiles of TILE_ROWS columns:
 * entries of row r and tile t are [ptr[r * (tiles + 1) + t], ptr[r * (tiles + 1) + t + 1]). */
typedef struct {
    int64_t rows, n, tiles;
    int64_t *ptr;
    int32_t *idx;
    float *val;
} sparse_rows;

/* The same entries by column: column i's are [ptr[i], ptr[i + 1]), rows ascending. */
typedef struct {
    int64_t *ptr;
    int32_t *row;
    float *val;
} sparse_cols;

LT_HIDDEN size_t sparse_rows_bytes(int64_t rows, int64_t n);
LT_HIDDEN char *sparse_rows_init(sparse_rows *s, int64_t rows, int64_t n, char *mem);
LT_HIDDEN void sparse_rows_build(sparse_rows *s, const float *a, int64_t lda);
LT_HIDDEN size_t sparse_cols_bytes(int64_t rows, int64_t n);
LT_HIDDEN char *sparse_cols_init(sparse_cols *c, int64_t rows, int64_t n, char *mem);
LT_HIDDEN void sparse_cols_build(sparse_cols *c, const sparse_rows *s);
LT_HIDDEN void layer_forward(const sparse_rows *s, int64_t r0, int64_t r1, const float *w, int64_t ldw,
                             const float *bias, int relu, float *z, int64_t ldz, int64_t c0, int64_t c1);
LT_HIDDEN void loss_gradient(const float *z, const int64_t *y, int64_t rows, int64_t n, int64_t ld, float *g);
LT_HIDDEN void input_gradient(const float *a, int64_t lda, int64_t rows, int64_t i_lo, int64_t i_hi, const float *g,
                              int64_t ldg, const float *w, int64_t ldw, int64_t n_out, const uint16_t *sets,
                              int64_t chunks, float *ga, float *gt, float *out);
LT_HIDDEN void sparse_gradient_tile(const sparse_cols *c, const float *g, int64_t ldg, int64_t i0, int64_t i1,
                                    int64_t o0, int64_t cnt, float *tile, int64_t ldt);
LT_HIDDEN void dense_gradient_tile(const float *a, int64_t lda, int64_t rows, const float *g, int64_t ldg, int64_t i0,
                                   int64_t i1, int64_t o0, int64_t cnt, float *tile, int64_t ldt);
/* the weight gradient of rows [row0, row1) and columns [col0, col1) and each row's Adam update
 * (see fc_parts.c) */
LT_HIDDEN void layer_update(const sparse_cols *c, const float *a, int64_t lda, const float *g, int64_t ldg, int64_t rows,
                            int64_t row0, int64_t row1, int64_t col0, int64_t col1, int64_t n_out, float *w,
                            float *mw, float *vw, const uint8_t *mask, int64_t ldw, const lt_adam *h, float *tile,
                            int defer_empty);
/* the bias gradient (column sums of g, images in order) and its update; gb: room for n_out floats */
LT_HIDDEN void bias_update(const float *g, int64_t ldg, int64_t rows, int64_t n_out, float *bias, float *mb, float *vb,
                           const lt_adam *h, float *gb);
/* z[r, o] = act(z[r, o] + bias[o]) for rows [r0, r1) and columns [c0, c1) */
LT_HIDDEN void bias_activation(float *z, int64_t ldz, int64_t r0, int64_t r1, const float *bias, int relu, int64_t c0,
                               int64_t c1);
/* Adam steps h[0 .. count) with a zero gradient over n entries, or the listed vectors (see fc_parts.c) */
LT_HIDDEN void adam_zero_steps(float *p, float *m, float *v, int64_t n, const uint16_t *chunk, int64_t vectors,
                               const lt_adam *h, int64_t count);
/* Adam (as adam_row) over the listed 16-entry vectors of a row of n entries: vector j starts at 16 chunk[j] */
LT_HIDDEN void adam_vectors(float *p, float *m, float *v, const uint8_t *mask, const float *grad, int64_t n,
                            const uint16_t *chunk, int64_t count, const lt_adam *h);

#endif
