/* Flush-to-zero and denormals-are-zero for the duration of a kernel call (as TensorFlow's CPU
 * kernels run): flush_denormals() sets them and returns the caller's mode, restore_denormals()
 * puts it back. Shared by lt_core's C kernels. */
#ifndef LT_FP_H
#define LT_FP_H

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
static unsigned long long flush_denormals(void) {
    unsigned int csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040u); /* flush-to-zero and denormals-are-zero */
    return csr;
}
static void restore_denormals(unsigned long long csr) { _mm_setcsr((unsigned int)csr); }
#elif defined(__aarch64__)
static unsigned long long flush_denormals(void) {
    unsigned long long fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (1ull << 24)));
    return fpcr;
}
static void restore_denormals(unsigned long long fpcr) { __asm__ volatile("msr fpcr, %0" : : "r"(fpcr)); }
#else
static unsigned long long flush_denormals(void) { return 0; }
static void restore_denormals(unsigned long long state) { (void)state; }
#endif

#endif
