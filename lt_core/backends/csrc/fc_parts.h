/* The pieces of fc_stack.c's training step that other kernels reuse: sparse views of a layer's
 * input, the forward pass over them, the loss gradient, the input gradient and the weight
 * gradient tiles (see fc_stack.c for the layout and what each computes). The functions are
 * defined in fc_stack.c; hidden, so that the library exports only its lt_ entry points. */
#ifndef LT_FC_PARTS_H
#define LT_FC_PARTS_H

#include <stddef.h>
#include <stdint.h>

#define MAX_LAYERS 16
#define TILE_ROWS 64   /* input rows per tile of the forward pass (a tile's weight block stays in L1) */
#define IMG_BLOCK 32   /* images per block of the forward pass */
#define COL_BLOCK 64   /* output columns per block (four 16-float vectors) */
#define GRAD_ROWS 32   /* weight rows per gradient tile (a column block of g stays in L1 over all of them) */
#define GT_LANES 64    /* images per pass of the input gradient (four 16-float vectors) */

#define LT_HIDDEN __attribute__((visibility("hidden")))

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
                              int64_t ldg, const float *w, int64_t ldw, int64_t n_out, float *ga, float *gt,
                              float *out);
LT_HIDDEN void sparse_gradient_tile(const sparse_cols *c, const float *g, int64_t ldg, int64_t i0, int64_t i1,
                                    int64_t o0, int64_t cnt, float *tile, int64_t ldt);
LT_HIDDEN void dense_gradient_tile(const float *a, int64_t lda, int64_t rows, const float *g, int64_t ldg, int64_t i0,
                                   int64_t i1, int64_t o0, int64_t cnt, float *tile, int64_t ldt);

#endif
