/* One Adam step over a float32 tensor, with the pruning mask applied to the gradient on the fly.
 *
 * Reads param, grad, exp_avg, exp_avg_sq and (optionally) a uint8 mask once and writes param,
 * exp_avg and exp_avg_sq once: the mask multiply and the update are one pass over memory instead
 * of two. Entries whose mask is 0 see a zero gradient, so when they start at 0 (param and both
 * moments) they stay exactly 0.
 *
 * The arithmetic is PyTorch's form of Adam, element by element in float32:
 *     m <- beta1 m + (1 - beta1) g
 *     v <- beta2 v + (1 - beta2) g g
 *     p <- p - step_size m / (sqrt(v) / bias_correction2_sqrt + eps)
 * with step_size = lr / (1 - beta1^t) and bias_correction2_sqrt = sqrt(1 - beta2^t) computed by
 * the caller. Built with -ffp-contract=off, so the vectorised and the scalar code round alike and
 * every element's result is independent of where it sits in the tensor (a run trained alone or in
 * a stack gets the same bits).
 *
 * Denormal numbers are flushed to zero while the kernel runs (as TensorFlow, which the original
 * code used, does in its CPU kernels). Without it, the first moment of weights whose input pixel
 * is 0 for many batches in a row decays by 0.9 a step into the denormal range, and every operation
 * on such a value takes a slow microcode path: training slowed down by half after a few thousand
 * steps. A flushed value is below 1.2e-38, far under what can move a weight. (The first moment is
 * written beta1 m + (1 - beta1) g, as in TensorFlow, rather than PyTorch's m + (1 - beta1)(g - m):
 * with flushing, the latter would stop decaying at the smallest normal number.)
 */
#include <math.h>
#include <stdint.h>
#include "lt_fp.h"

#define CHUNK 16384

static inline void update(float *restrict param, float *restrict exp_avg, float *restrict exp_avg_sq,
                          int64_t i, float g, float beta1, float beta2, float step_size,
                          float bias_correction2_sqrt, float eps)
{
    const float m = beta1 * exp_avg[i] + (1.0f - beta1) * g;
    const float v = beta2 * exp_avg_sq[i] + (1.0f - beta2) * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    param[i] = param[i] - step_size * m / (sqrtf(v) / bias_correction2_sqrt + eps);
}

/* param, exp_avg, exp_avg_sq, mask: (rows, cols) contiguous; grad: (rows, grad_cols), grad_cols <=
 * live_cols <= cols, the gradient of the leading grad_cols columns (the others' gradient is exactly
 * 0: the inputs they multiply were all 0 in this batch). Columns from live_cols on are left as
 * they are: their gradient has always been 0, so both moments are 0 and the update is exactly 0.
 * mask may be NULL (nothing pruned). */
void lt_masked_adam(float *restrict param, const float *restrict grad, float *restrict exp_avg,
                    float *restrict exp_avg_sq, const uint8_t *restrict mask, int64_t rows, int64_t cols,
                    int64_t grad_cols, int64_t live_cols, float beta1, float beta2, float step_size,
                    float bias_correction2_sqrt, float eps, int num_threads)
{
    const int64_t n = rows * cols;
    if (grad_cols == cols && live_cols == cols) {  /* one flat range, in chunks */
        const int64_t chunks = (n + CHUNK - 1) / CHUNK;
        #pragma omp parallel num_threads(num_threads) if(chunks > 1)
        {
            const unsigned long long fp_state = flush_denormals();
            #pragma omp for schedule(static)
            for (int64_t c = 0; c < chunks; c++) {
                const int64_t lo = c * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
                #pragma omp simd
                for (int64_t i = lo; i < hi; i++)
                    update(param, exp_avg, exp_avg_sq, i, (mask == 0 || mask[i]) ? grad[i] : 0.0f,
                           beta1, beta2, step_size, bias_correction2_sqrt, eps);
            }
            restore_denormals(fp_state);
        }
        return;
    }
    #pragma omp parallel num_threads(num_threads) if(n > CHUNK)
    {
        const unsigned long long fp_state = flush_denormals();
        #pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            const int64_t base = r * cols;
            const float *restrict grow = grad + r * grad_cols;
            #pragma omp simd
            for (int64_t c = 0; c < grad_cols; c++)
                update(param, exp_avg, exp_avg_sq, base + c, (mask == 0 || mask[base + c]) ? grow[c] : 0.0f,
                       beta1, beta2, step_size, bias_correction2_sqrt, eps);
            #pragma omp simd
            for (int64_t c = grad_cols; c < live_cols; c++)
                update(param, exp_avg, exp_avg_sq, base + c, 0.0f,
                       beta1, beta2, step_size, bias_correction2_sqrt, eps);
        }
        restore_denormals(fp_state);
    }
}
