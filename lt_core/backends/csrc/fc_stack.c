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
 * are the same sums without them. Evaluation computes each layer of a pruned run over its nonzero
 * weights instead (many images at once, one per vector lane, passed so from layer to layer) where
 * that is less work: the same sums again, in the same order. The input gradient of a hidden layer
 * is computed densely (g times the weights' transpose, no horizontal sums) and kept where
 * a[b, i] > 0 (ReLU).
 *
 * Kept weights (fc_kept.h). A training call lists each pruned run's layers once (the mask is fixed
 * within a call, and pruned weights with zero moments never move): a layer's forward pass is then
 * computed over its nonzero weights by output, images in vector lanes, where that is less work
 * than over the nonzero inputs (the same sums in the same order, values read from w each step,
 * frozen nonzero pruned weights included); a sparse layer's weight gradient and Adam update run
 * over the 16-weight vectors that hold a kept weight only (the others would not change: their
 * gradient is masked to 0), the first layer's once at most 3/4 of its vectors hold one, a hidden
 * layer's (summed over all images, as its dense gradient) once at most half do; and a sparse
 * hidden layer's input gradient sums over the weights that may be nonzero only (the terms left
 * out are products with a zero weight). A layer with a pruned
 * weight that could move is updated densely. `kept` of lt_fc_train_steps forces either way (tests:
 * the same values; a zero could differ in sign only after an underflow to -0).
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
 * Threads. The runs of a stack are split between the threads, or stepped by all threads together
 * (those left over after an even split, e.g. a single run, or all of them: see lt_fc_train_steps),
 * each thread then taking a share of every layer's output columns (forward pass, weight gradient
 * and update: its share of a layer's weights and moments stays in its core's cache) and inputs
 * (input gradient), with a barrier between phases. A step is one fork and one join.
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
#include "fc_kept.h"
#include "fc_parts.h"
#include "lt_fp.h"

/* The layer pieces (sparse views, forward, gradients, Adam, MAX_LAYERS and the tile sizes):
 * fc_parts.c / fc_parts.h; a pruned layer over its kept weights: fc_kept.c / fc_kept.h. */

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

/* ---- the two entry points -------------------------------------------------------------------- */

/* How a run's layers are computed in one call (see fc_kept.h): update[l], layer l's weight
 * gradient and Adam over its active vectors (layer[l] listed); forward[l], its forward pass
 * over its weights by output: 0 never, 1 where that is less work, 2 always (listed by output);
 * backward[l], the gradient of its input over the weights that may be nonzero (listed). */
typedef struct {
    int update[MAX_LAYERS], forward[MAX_LAYERS], backward[MAX_LAYERS];
    kept_layer layer[MAX_LAYERS];
} kept_plan;

static size_t step_scratch_bytes(int n_layers, const lt_fc_layer *layers, int64_t rows)
{
    size_t total = 0;
    int64_t widest = 0;
    for (int l = 0; l < n_layers; l++) {
        const int64_t n_in = layers[l].n_in, n_out = layers[l].n_out;
        if (l > 0)  /* activations and their view by rows (the batch's views are apart: see x_views) */
            total += align64(4 * (size_t)(rows * padded(n_in))) + sparse_rows_bytes(rows, n_in);
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
    total += align64(4 * (size_t)layers[0].n_in);  /* since */
    return total;
}

/* A training step's working memory, laid out in one scratch block */
typedef struct {
    float *act[MAX_LAYERS];  /* act[l]: layer l's input, l > 0; rows padded(n_in) floats apart */
    sparse_rows sr[MAX_LAYERS];  /* sr[l]: act[l]'s view by rows, l > 0 */
    kept_plan *plan;  /* the run being stepped: its layers' lists and paths */
    float *logits, *g, *g_next, *tile;  /* rows padded(width) apart; tile, gt, gt_out, xt: each thread its own */
    float *gt, *gt_out;  /* gt: also the transposed output of kept_forward_w */
    float *xt;  /* a layer's input transposed for kept_forward_w */
    int32_t *since;  /* the first layer's deferred rows: row i has had the updates of steps [.., since[i]) */
    int defer;       /* whether the first layer's rows with a zero gradient are deferred (see run_step) */
} step_buffers;

static char *step_buffers_init(step_buffers *b, int n_layers, const lt_fc_layer *layers, int64_t rows, char *mem)
{
    int64_t widest = 0;
    for (int l = 0; l < n_layers; l++) {
        if (l > 0) {
            b->act[l] = (float *)mem;
            mem += align64(4 * (size_t)(rows * padded(layers[l].n_in)));
            mem = sparse_rows_init(&b->sr[l], rows, layers[l].n_in, mem);
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
    mem += align64(4 * (size_t)((rows + KEPT_LANES - 1) / KEPT_LANES * KEPT_LANES * widest));
    b->since = (int32_t *)mem;
    b->defer = 0;
    return mem + align64(4 * (size_t)layers[0].n_in);
}

#define KEPT_AUTO 0   /* lt_fc_train_steps's `kept`: each path where it is less work */
#define KEPT_NEVER 1  /* the dense paths everywhere */
#define KEPT_ALWAYS 2 /* the kept-weight paths wherever a layer is listed */

/* Lists run k's pruned layers in plan->layer for a call and plans their paths (`way`: KEPT_AUTO,
 * _NEVER or _ALWAYS). The forward pass over the kept weights is planned for the hidden layers only
 * (their ReLU turns a zero of either sign into +0, so the two ways' outputs agree to the bit even
 * where a sum of exact zeros differs in sign); by output they are listed only when they are few
 * enough to be worth it. In KEPT_AUTO, a layer with more than a quarter of its weights kept is not
 * listed (neither path pays there); the weight gradient and Adam over the active vectors are
 * planned for the first layer where they skip a quarter of them or more (measured: skipping fewer
 * saves nothing, the update being bound by memory traffic), for a hidden layer where they skip
 * half (its dense gradient tiles are faster per vector than the sums kept_update does), and a
 * hidden layer's input gradient over its listed weights where they are an eighth of the layer or
 * fewer. */
static void kept_plan_run(kept_plan *plan, int n_layers, const lt_fc_layer *layers, int64_t k, int way)
{
    for (int l = 0; l < n_layers; l++) {
        const lt_fc_layer *L = &layers[l];
        const int64_t live = L->live_in < L->n_in ? L->live_in : L->n_in;
        const int64_t cols_below = way == KEPT_ALWAYS ? INT64_MAX : live * L->n_out / 4;
        kept_layer *K = &plan->layer[l];
        plan->update[l] = plan->forward[l] = plan->backward[l] = 0;
        if (way == KEPT_NEVER || L->mask == NULL) continue;
        if (way == KEPT_AUTO && 4 * kept_mask_count(L, k, live) > live * L->n_out) continue;
        if (!kept_build(K, L, k, live, l < n_layers - 1 ? cols_below : -1)) continue;
        plan->update[l] = way == KEPT_ALWAYS || (l == 0 ? 4 * K->active <= 3 * live * K->chunks
                                                        : 2 * K->active <= live * K->chunks);
        plan->forward[l] = K->has_cols ? (way == KEPT_ALWAYS ? 2 : 1) : 0;
        plan->backward[l] = l > 0 && live == L->n_in && (way == KEPT_ALWAYS || 8 * K->nonzero <= live * L->n_out);
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

#define SHARE_NONE 0     /* lt_fc_train_steps's sharing: each run stepped by one thread */
#define SHARE_LEFTOVER 1 /* the runs left over after an even split stepped by all threads together */
#define SHARE_ALL 2      /* every run stepped by all threads together */

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

/* Deferred rows. A first-layer row whose input is 0 in every image of a batch has a zero gradient
 * (MNIST: about a third of the live rows in a batch of 60), and Adam's update with a zero gradient
 * needs nothing of the step but its constants; nor does the forward pass read the row. With
 * b->defer, such a row is left as it is, and the updates it missed are applied in a row -- the row
 * read and written once -- by catch_up: before a step whose batch uses the row, and at the end of
 * a run's steps in the call. The same operations on the same values as updating it every step. */

/* Applies the updates that rows of layer L (the first) of run k missed, up to step t (exclusive),
 * to the columns [lo, hi): every deferred row (all), or those whose input is nonzero in the batch
 * whose column view is xc. adam: the call's step constants. */
static void catch_up(const lt_fc_layer *L, int64_t k, const kept_plan *P, const sparse_cols *xc, int all, int64_t lo,
                     int64_t hi, const lt_adam *adam, int64_t t, int32_t *since)
{
    const int64_t live = L->live_in < L->n_in ? L->live_in : L->n_in, off = k * L->n_in * L->ld;
    const kept_layer *K = &P->layer[0];
    const int64_t v0 = lo / 16, v1 = (hi + 15) / 16;
    for (int64_t i = 0; i < live; i++) {
        if (since[i] >= t || (!all && xc->ptr[i] == xc->ptr[i + 1])) continue;
        const int64_t at = off + i * L->ld;
        if (P->update[0]) {  /* the row's active vectors in [v0, v1) (as kept_update) */
            int64_t j0, j1;
            kept_row_vectors(K, i, v0, v1, &j0, &j1);
            adam_zero_steps(L->w + at, L->m_w + at, L->v_w + at, L->n_out, K->chunk + j0, j1 - j0, adam + since[i],
                            t - since[i]);
        } else {
            adam_zero_steps(L->w + at + lo, L->m_w + at + lo, L->v_w + at + lo, hi - lo, NULL, 0, adam + since[i],
                            t - since[i]);
        }
        since[i] = (int32_t)t;
    }
}

/* Training step t of run k (constants adam[t]) on the batch xk (rows of n_in floats) whose views
 * are xr, xc (built), computed by `team` threads together (this one is `member`), all of them in
 * this call with the same shared buffers b (but each its own b->tile, b->gt, b->gt_out, b->xt,
 * b->since). Every entry is computed alike whatever the team's size, so a run gets the same bits
 * alone, in a stack, and on any number of threads. */
static void run_step(int n_layers, const lt_fc_layer *layers, int64_t k, const float *xk, const sparse_rows *xr,
                     const sparse_cols *xc, const int64_t *yk, int64_t rows, const lt_adam *adam_all, int64_t t,
                     step_buffers *b, int member, int team)
{
    const lt_adam *adam = &adam_all[t];
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
        if (l == 0 && b->defer) catch_up(L, k, P, xc, 0, lo, hi, adam_all, t, b->since);
        if (P->forward[l] == 2 || (P->forward[l] == 1 && kept_forward_pays(K, entries, rows, L->n_out))) {
            if (l == 0)  /* from the batch's column view: its entries, not its rows */
                transpose_cols(xc, rows, K->rows, b->xt);
            else
                transpose_rows(b->act[l], padded(L->n_in), rows, K->rows, b->xt);
            kept_forward_w(&K->cols, w, L->ld, b->xt, K->rows, rows, lo, hi, b->gt, out, ldz);
            bias_activation(out, ldz, 0, rows, bias, l < last, lo, hi);
        } else {
            layer_forward(sr[l], 0, rows, w, L->ld, bias, l < last, out, ldz, lo, hi);
        }
        team_barrier(team);
        if (l < last) {
            if (lead) sparse_rows_build(&b->sr[l + 1], out, ldz);
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
            const kept_layer *K = &P->layer[l];
            input_gradient(b->act[l], padded(L->n_in), rows, lo, hi, g, ldg, L->w + off, L->ld, L->n_out,
                           P->backward[l] ? K->lanes : NULL, K->chunks, g_next, b->gt, b->gt_out);
            team_barrier(team);
        }
        /* each member updates the columns whose forward pass it computed: a layer's weights and
         * moments stay in its core's cache from one step to the next */
        const int64_t live = L->live_in < L->n_in ? L->live_in : L->n_in;
        share(L->n_out, member, team, 16, &lo, &hi);
        const int defer = l == 0 && b->defer;
        if (P->update[l])  /* over the active vectors: from the batch's column view; a hidden layer's densely */
            kept_update(&P->layer[l], l == 0 ? xc : NULL, l == 0 ? NULL : b->act[l], padded(L->n_in), rows, g, ldg,
                        0, live, lo, hi, L->n_out, L->w + off, L->m_w + off, L->v_w + off, L->mask + off, L->ld,
                        adam, b->tile, defer);
        else  /* the batch's weight gradient over its column view; a hidden layer's densely */
            layer_update(l == 0 ? xc : NULL, l == 0 ? NULL : b->act[l], padded(L->n_in), g, ldg, rows, 0, live, lo,
                         hi, L->n_out, L->w + off, L->m_w + off, L->v_w + off, L->mask ? L->mask + off : NULL, L->ld,
                         adam, b->tile, defer);
        if (defer)  /* the rows updated are up to date after this step */
            for (int64_t i = 0; i < live; i++)
                if (xc->ptr[i] != xc->ptr[i + 1]) b->since[i] = (int32_t)(t + 1);
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
 * sharing: SHARE_NONE, each of T threads steps runs // T of the runs alone, or one more;
 * SHARE_LEFTOVER, the same, but the runs left over (runs % T) are each stepped by all T threads
 * together; SHARE_ALL, all T threads step every run together. A run stepped together has a dozen
 * barriers a step, cheap on idle cores, a scheduler time slice each when another process holds one
 * of them; each thread's share of its layers stays in its core's cache. The bits are the same
 * every way. */
int lt_fc_train_steps(int n_layers, const lt_fc_layer *layers, int64_t runs, int64_t steps, const float *x,
                      int64_t x_run_stride, int64_t x_step_stride, const int64_t *y, int64_t y_run_stride,
                      int64_t y_step_stride, int64_t rows, const lt_adam *adam, int num_threads, int sharing,
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
    if (sharing < SHARE_NONE || sharing > SHARE_ALL) return -1;
    if (sharing == SHARE_NONE && num_threads > runs) num_threads = (int)runs;
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
            shared.since = own.since;
            own.defer = shared.defer = kept != KEPT_NEVER;
            const lt_fc_layer *L0 = &layers[0];
            const int64_t live0 = L0->live_in < L0->n_in ? L0->live_in : L0->n_in;
            int64_t lo0, hi0;  /* this thread's columns of the first layer in a team */
            share(L0->n_out, tid, nth, 16, &lo0, &hi0);
            /* runs [0, alone) are stepped by one thread each, the rest by the team */
            const int64_t alone = sharing == SHARE_ALL ? 0 : sharing == SHARE_LEFTOVER ? runs - runs % nth : runs;
            const int64_t k0 = alone * tid / nth, k1 = alone * (tid + 1) / nth;
            const int64_t group = shared_x ? slots : steps;  /* steps a run takes in a row */
            for (int64_t t0 = 0; t0 < steps; t0 += group) {
                const int64_t t1 = t0 + group < steps ? t0 + group : steps;
                if (shared_x && (k0 < k1 || (alone < runs && tid == 0)))
                    for (int64_t t = t0; t < t1; t++)
                        x_views_build(&xr[t - t0], &xc[t - t0], x + t * x_step_stride, n_in);
                for (int64_t k = k0; k < k1; k++) {
                    kept_plan_run(own.plan, n_layers, layers, k, kept);
                    for (int64_t i = 0; i < live0; i++) own.since[i] = (int32_t)t0;
                    for (int64_t t = t0; t < t1; t++) {
                        const int64_t v = shared_x ? t - t0 : 0;
                        if (!shared_x) x_views_build(&xr[0], &xc[0], x + t * x_step_stride + k * x_run_stride, n_in);
                        run_step(n_layers, layers, k, x + t * x_step_stride + k * x_run_stride, &xr[v], &xc[v],
                                 y + t * y_step_stride + k * y_run_stride, rows, adam, t, &own, 0, 1);
                    }
                    if (own.defer) catch_up(L0, k, own.plan, NULL, 1, 0, L0->n_out, adam, t1, own.since);
                }
                if (alone == runs) continue;
                #pragma omp barrier
                for (int64_t k = alone; k < runs; k++) {  /* with thread 0's views and lists */
                    if (tid == 0) kept_plan_run(shared.plan, n_layers, layers, k, kept);
                    for (int64_t i = 0; i < live0; i++) shared.since[i] = (int32_t)t0;
                    #pragma omp barrier
                    for (int64_t t = t0; t < t1; t++) {
                        const int64_t v = shared_x ? t - t0 : 0;
                        if (!shared_x) {
                            if (tid == 0)
                                x_views_build(&xr[0], &xc[0], x + t * x_step_stride + k * x_run_stride, n_in);
                            #pragma omp barrier
                        }
                        run_step(n_layers, layers, k, x + t * x_step_stride + k * x_run_stride, &team_xr[v],
                                 &team_xc[v], y + t * y_step_stride + k * y_run_stride, rows, adam, t, &shared, tid,
                                 nth);
                    }
                    if (shared.defer) catch_up(L0, k, shared.plan, NULL, 1, lo0, hi0, adam, t1, shared.since);
                    #pragma omp barrier
                }
            }
            restore_denormals(fp_state);
        }
    }
    return failed ? -1 : 0;
}

/* ---- evaluation -------------------------------------------------------------------------------- */

static size_t forward_scratch_bytes(int n_layers, const lt_fc_layer *layers, int64_t rows)
{
    size_t total = 0;
    int64_t widest = 0;
    for (int l = 0; l < n_layers; l++) {
        if (l > 0) total += align64(4 * (size_t)(rows * padded(layers[l].n_in)));
        total += sparse_rows_bytes(rows, layers[l].n_in);
        widest = layers[l].n_in > widest ? layers[l].n_in : widest;
        widest = layers[l].n_out > widest ? layers[l].n_out : widest;
    }
    const int64_t lanes_total = (rows + KEPT_LANES - 1) / KEPT_LANES * KEPT_LANES;
    total += align64(4 * (size_t)(lanes_total * layers[0].n_in));  /* the block's images, transposed */
    total += 2 * align64(4 * (size_t)(lanes_total * widest));      /* a layer's input and output, likewise */
    return total;
}

/* Logits (runs, rows, n_out of the last layer) of every run on one shared batch x (rows,
 * layers[0].n_in). Returns 0, or -1 when memory could not be had. `way`: how each layer is
 * computed: 0 the less work of the two below, 1 over its input's nonzero entries (layer_forward),
 * 2 over its nonzero weights (kept_forward_t: a pruned network).
 *
 * Threads take blocks of EVAL_BLOCK images in turn (dynamically: a core busy elsewhere delays
 * only its own blocks), each block through every run. Over the nonzero weights, a layer's input
 * and output are held with the images in vector lanes (fc_kept.h), so that consecutive layers
 * computed that way pass their activations on without transposing them; the layout is changed
 * only where the next layer takes the other way. Every way gives the same sums in the same order
 * (the terms one way skips are exact zeros), so the same values: the hidden layers' ReLU makes a
 * zero of either sign +0, and the logits are equal (a zero logit could differ in its sign only). */
int lt_fc_forward(int n_layers, const lt_fc_layer *layers, int64_t runs, const float *x, int64_t rows, float *logits,
                  int num_threads, int way)
{
    if (n_layers < 1 || n_layers > MAX_LAYERS || rows < 1 || way < 0 || way > 2) return -1;
    const int last = n_layers - 1;
    const int64_t block = rows < EVAL_BLOCK ? rows : EVAL_BLOCK;
    const int64_t blocks = (rows + block - 1) / block;
    const size_t bytes = forward_scratch_bytes(n_layers, layers, block);
    const int64_t n_last = layers[last].n_out, n_in = layers[0].n_in, lists = n_layers * runs;
    /* every layer's kept weights by output, per run: list q = l runs + k (counted, then filled) */
    int64_t *kept = calloc((size_t)lists + 1, sizeof(int64_t)), ptr_total = 0;
    int64_t ptr_at[MAX_LAYERS];
    for (int l = 0; l < n_layers; l++) {
        ptr_at[l] = ptr_total;
        ptr_total += runs * (layers[l].n_out + 1);
    }
    int64_t *ptr = malloc(sizeof(int64_t) * (size_t)ptr_total);
    kept_cols *cols = malloc(sizeof(kept_cols) * (size_t)lists);
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
        #pragma omp for schedule(dynamic)
        for (int64_t q = 0; q < lists; q++) {
            const lt_fc_layer *L = &layers[q / runs];
            kept[q + 1] = kept_count(L->w + (q % runs) * L->n_in * L->ld, L->ld, L->n_in, L->n_out);
        }
        #pragma omp single
        {
            for (int64_t q = 0; q < lists; q++) kept[q + 1] += kept[q];
            idx = malloc(4 * (size_t)kept[lists] + 4);
            val = malloc(4 * (size_t)kept[lists] + 4);
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
            #pragma omp for schedule(dynamic)
            for (int64_t q = 0; q < lists; q++) {
                const int l = (int)(q / runs);
                const int64_t k = q % runs;
                const lt_fc_layer *L = &layers[l];
                cols[q] = (kept_cols){ptr + ptr_at[l] + k * (L->n_out + 1), idx + kept[q], val + kept[q]};
                kept_cols_build(L->w + k * L->n_in * L->ld, L->ld, L->n_in, L->n_out, &cols[q]);
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
            const int64_t lanes_total = (block + KEPT_LANES - 1) / KEPT_LANES * KEPT_LANES;
            int64_t widest = 0;
            for (int l = 0; l < n_layers; l++) {
                widest = layers[l].n_in > widest ? layers[l].n_in : widest;
                widest = layers[l].n_out > widest ? layers[l].n_out : widest;
            }
            float *xt = (float *)mem;
            mem += align64(4 * (size_t)(lanes_total * n_in));
            float *in_t = (float *)mem, *out_t = in_t + align64(4 * (size_t)(lanes_total * widest)) / 4;
            #pragma omp for schedule(dynamic)
            for (int64_t blk = 0; blk < blocks; blk++) {
                const int64_t r0 = blk * block, n = rows - r0 < block ? rows - r0 : block;
                const int64_t groups = (n + KEPT_LANES - 1) / KEPT_LANES;
                sr[0].rows = n;
                sparse_rows_build(&sr[0], x + r0 * n_in, n_in);
                int x_transposed = 0;
                for (int64_t k = 0; k < runs; k++) {
                    const float *in = NULL;  /* the layer's input in lanes, or NULL: by rows, in sr[l] */
                    int64_t entries = sr[0].ptr[n * (sr[0].tiles + 1) - 1];  /* nonzero entries of the input */
                    for (int l = 0; l < n_layers; l++) {
                        const lt_fc_layer *L = &layers[l];
                        const int64_t q = l * runs + k, ldz = l < last ? padded(L->n_out) : n_last;
                        float *out = l < last ? act[l + 1] : logits + (k * rows + r0) * n_last;
                        const float *bias = L->b + k * L->n_out;
                        /* work of each way, in multiply-adds of 16 lanes: the input's nonzero
                         * entries times the output vectors, or the kept weights times the vectors
                         * of images. Measured on the figure's stack: the first layer's kept way
                         * pays up to 4/3 of the other's work (it runs more of them a second); a
                         * hidden layer's, below 1/2, counting an entry's worth for each value of
                         * an input by rows moved into the lanes. */
                        const int64_t by_inputs = entries * ((L->n_out + 15) / 16);
                        const int64_t by_weights = (kept[q + 1] - kept[q]) * groups * (KEPT_LANES / 16);
                        const int pays = l == 0 ? 3 * by_weights < 4 * by_inputs
                                                : 2 * by_weights + (in == NULL ? n * L->n_in : 0) < by_inputs;
                        if (way == 2 || (way == 0 && pays)) {
                            if (in == NULL && l == 0) {
                                if (!x_transposed) transpose_rows(x + r0 * n_in, n_in, n, n_in, xt);
                                x_transposed = 1;
                                in = xt;
                            } else if (in == NULL) {
                                transpose_rows(act[l], padded(L->n_in), n, L->n_in, in_t);
                                in = in_t;
                            }
                            float *z = in == in_t ? out_t : in_t;
                            kept_forward_t(&cols[q], in, L->n_in, groups, L->n_out, z);
                            entries = bias_activation_t(z, groups, L->n_out, bias, l < last);
                            if (l == last) untranspose(z, n, L->n_out, out, ldz);
                            in = z;
                        } else {
                            if (in != NULL) {  /* back to rows */
                                untranspose(in, n, L->n_in, act[l], padded(L->n_in));
                                sr[l].rows = n;
                                sparse_rows_build(&sr[l], act[l], padded(L->n_in));
                                in = NULL;
                            }
                            layer_forward(&sr[l], 0, n, L->w + k * L->n_in * L->ld, L->ld, bias, l < last, out, ldz,
                                          0, L->n_out);
                            if (l < last) {
                                sr[l + 1].rows = n;
                                sparse_rows_build(&sr[l + 1], out, ldz);
                                entries = sr[l + 1].ptr[n * (sr[l + 1].tiles + 1) - 1];
                            }
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
