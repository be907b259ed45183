/* A pruned layer computed over its kept weights: the paths fc_stack.c takes for a pruned layer
 * where they are less work (fc_kept.c; see fc_stack.c's comment for the layout and the
 * determinism rules).
 *
 * Forward. kept_forward_t and kept_forward_w compute z[r, o] as the sum over a layer's nonzero
 * weights w[i, o] of x[r, i] w[i, o], inputs ascending, many images at a time (one per vector
 * lane), from the weights listed by output (kept_cols): the same sums in the same order as
 * layer_forward's over the nonzero inputs (the terms one has and the other lacks are exact zeros).
 * Evaluation lists a run's weights with their values and keeps a network's activations with the
 * images in lanes from layer to layer; training lists them once per call (kept_layer), reads the
 * values from w and transposes the output back to rows.
 *
 * Training. Within one call of lt_fc_train_steps a run's mask is fixed, and a pruned weight whose
 * moments are 0 never moves: its gradient is masked to 0, so Adam leaves m = v = 0 and adds
 * 0 / (0 + eps) = 0 to it. kept_build lists, once per call and run, a layer's 16-lane vectors of
 * each row that hold a kept weight ("active" vectors) and the weights that may be nonzero during
 * the call (kept, or pruned and nonzero: a frozen value); kept_update then runs Adam over the
 * active vectors only: the same operations on the same lanes, the others left as the dense update
 * leaves them (it changes nothing there but a moment of -0 to +0, an equal value). Skipping pays
 * only where most vectors are skipped: the update is bound by memory traffic, and a vector is a
 * quarter of a cache line's worth of p, m and v. A layer whose pruned weights could still move
 * (a nonzero moment, or a denormal weight, which the dense update flushes to 0) is not listed and
 * takes the dense paths in that call. */
#ifndef LT_FC_KEPT_H
#define LT_FC_KEPT_H

#include "fc_parts.h"

#define KEPT_LANES 64  /* images per pass of the kept-weight forward */

/* A layer's nonzero weights of one run by output: output o's are [ptr[o], ptr[o + 1]), inputs
 * ascending (the order the sparse-input forward adds them in); val: their values, or NULL where
 * they are read from the weights themselves. */
typedef struct {
    int64_t *ptr;
    int32_t *idx;
    float *val;
} kept_cols;

/* A pruned layer in training: its kept weights, listed once per call (kept_build) */
typedef struct {
    int64_t rows, chunks;  /* the rows listed (the live inputs); 16-lane vectors per row */
    int32_t *row_ptr;      /* row i's active vectors: chunk[row_ptr[i]] ... chunk[row_ptr[i + 1] - 1], ascending */
    uint16_t *chunk;
    uint16_t *lanes;       /* (rows, chunks): the lanes that may hold a nonzero weight during the call */
    int64_t nonzero;       /* lanes set in `lanes` */
    int64_t active;        /* active vectors */
    int has_cols;          /* cols lists `lanes` by output */
    kept_cols cols;
} kept_layer;

/* nonzero weights of run k's matrix w (n_in rows ld apart) */
LT_HIDDEN int64_t kept_count(const float *w, int64_t ld, int64_t n_in, int64_t n_out);
/* c->ptr: room for n_out + 1; c->idx, c->val: for the kept count */
LT_HIDDEN void kept_cols_build(const float *w, int64_t ld, int64_t n_in, int64_t n_out, kept_cols *c);
/* xt[g][i][c] = a[64 g + c, i] for the images [0, rows) (a's rows lda floats apart) and the
 * inputs [0, n), zero past `rows`: a block's inputs transposed, KEPT_LANES images to a group
 * (xt 64-byte aligned) */
LT_HIDDEN void transpose_rows(const float *a, int64_t lda, int64_t rows, int64_t n, float *xt);
/* the same from the column view c of a (rows, >= n) matrix (inputs [0, n)) */
LT_HIDDEN void transpose_cols(const sparse_cols *c, int64_t rows, int64_t n, float *xt);
/* kept_forward_impl with the values read from w (rows ldw apart; training) */
LT_HIDDEN void kept_forward_w(const kept_cols *c, const float *w, int64_t ldw, const float *xt, int64_t n_in,
                              int64_t n, int64_t o_lo, int64_t o_hi, float *zt, float *z, int64_t ldz);
/* ---- a network in images-in-lanes layout (evaluation): a layer's input and output as
 * [group][unit][KEPT_LANES], groups of KEPT_LANES images (lanes past the images hold values
 * computed from zero inputs, never read back) */
/* zt = the sums of kept_forward (no bias or activation) of every group of xt, in that layout */
LT_HIDDEN void kept_forward_t(const kept_cols *c, const float *xt, int64_t n_in, int64_t groups, int64_t n_out,
                              float *zt);
/* bias_activation's operations on every entry of zt; returns the entries left nonzero */
LT_HIDDEN int64_t bias_activation_t(float *zt, int64_t groups, int64_t n_out, const float *bias, int relu);
/* z[r, o] = zt's entry of image r and unit o for the images [0, n) (rows ldz floats apart) */
LT_HIDDEN void untranspose(const float *zt, int64_t n, int64_t n_out, float *z, int64_t ldz);
/* ---- a pruned layer in training: its kept weights, listed once per call ---------------------- */
LT_HIDDEN size_t kept_layer_bytes(int64_t n_in, int64_t n_out);
LT_HIDDEN char *kept_layer_init(kept_layer *K, int64_t n_in, int64_t n_out, char *mem);
/* kept weights of layer L of run k in the rows [0, rows) */
LT_HIDDEN int64_t kept_mask_count(const lt_fc_layer *L, int64_t k, int64_t rows);
/* Lists layer L of run k for a call over the rows [0, rows) (the live inputs), and by output too
 * (for kept_forward_w) when no more than cols_below weights are listed. Returns 0 where the layer must take the dense paths in this
 * call: nothing pruned, or a pruned weight that the dense update would change (a nonzero moment,
 * or a denormal weight: the update flushes it to 0). */
LT_HIDDEN int kept_build(kept_layer *K, const lt_fc_layer *L, int64_t k, int64_t rows, int64_t cols_below);
/* [*j0, *j1): the positions in K->chunk of row i's active vectors among the vectors [v0, v1) */
LT_HIDDEN void kept_row_vectors(const kept_layer *K, int64_t i, int64_t v0, int64_t v1, int64_t *j0, int64_t *j1);
/* layer_update's weight rows [row0, row1) and columns [col0, col1) with Adam over their active
 * vectors only, the gradient from the column view c or, with c NULL, densely from a (see fc_kept.c) */
LT_HIDDEN void kept_update(const kept_layer *K, const sparse_cols *c, const float *a, int64_t lda, int64_t rows,
                           const float *g, int64_t ldg, int64_t row0, int64_t row1, int64_t col0, int64_t col1,
                           int64_t n_out, float *w, float *mw, float *vw, const uint8_t *mask, int64_t ldw,
                           const lt_adam *h, float *tile, int defer_empty);

#endif
