/*
 * Merge arithmetic kernels shared by the scalar and AVX2+F16C builds. Semantics are defined by
 * src/kernels/merge-kernel.ts and the TypeScript reference (src/kernels/js-kernel.ts): f32 math with
 * every operation rounded separately (this file and its users are compiled with -ffp-contract=off), except
 * lerp, which uses an explicit fused multiply-add because torch does; round-to-nearest-even stores;
 * canonical NaN 0x7fc00000 out of the arithmetic.
 */
#ifndef GYOZA_KERNELS_H
#define GYOZA_KERNELS_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "float expressions must be evaluated in float (SSE math), not in extended precision"
#endif

enum { GYOZA_F16 = 0, GYOZA_BF16 = 1, GYOZA_F32 = 2, GYOZA_DTYPE_COUNT = 3 };

#define GYOZA_CANONICAL_NAN_BITS 0x7fc00000u

typedef struct {
  void (*to_f32)(const uint8_t *src, int dtype, float *out, size_t n);
  void (*from_f32)(const float *src, int dtype, uint8_t *out, size_t n);
  void (*weighted_sum_f32)(const float *a, const float *b, float w0, float w1, float *out, size_t n);
  void (*lerp_f32)(const float *a, const float *b, float weight, float *out, size_t n);
  void (*add_difference_f32)(const float *a, const float *b, const float *c, float alpha, float *out, size_t n);
  void (*weighted_sum)(const uint8_t *a, int a_type, const uint8_t *b, int b_type, float w0, float w1,
                       uint8_t *out, int out_type, size_t n);
  /* A weighted sum of a weighted sum and c: inner = a·w0 + b·w1 kept in f32, out = inner·u + c·v. */
  void (*nested_weighted_sum)(const uint8_t *a, int a_type, const uint8_t *b, int b_type, const uint8_t *c,
                              int c_type, float w0, float w1, float u, float v, uint8_t *out, int out_type,
                              size_t n);
  /* Elements whose exponent is all ones (NaN or ±Inf). */
  size_t (*count_non_finite)(const uint8_t *src, int dtype, size_t n);
  /* A low-rank update of elements [begin, begin + n) of a row-major [rows, cols] matrix:
   * out = base + m·(up @ down), see gyoza_low_rank_one; down's rows lie `stride` floats apart.
   * `out` may be `base`. */
  void (*add_low_rank_f32)(const float *base, const float *up, const float *down, size_t rank, size_t cols,
                           size_t stride, size_t begin, float multiplier, float *out, size_t n);
} gyoza_kernel_table;

extern const gyoza_kernel_table gyoza_scalar_kernels;
/* Defined only on x86: the AVX2 + F16C implementation (the caller checks the CPU first). */
extern const gyoza_kernel_table gyoza_avx2_kernels;

static inline size_t gyoza_dtype_bytes(int dtype) { return dtype == GYOZA_F32 ? 4 : 2; }

static inline uint32_t gyoza_f32_bits(float value) {
  uint32_t bits;
  memcpy(&bits, &value, 4);
  return bits;
}

static inline float gyoza_bits_f32(uint32_t bits) {
  float value;
  memcpy(&value, &bits, 4);
  return value;
}

static inline float gyoza_canonical(float value) {
  return value != value ? gyoza_bits_f32(GYOZA_CANONICAL_NAN_BITS) : value;
}

/* f16 → f32 bits, exact; NaN is quieted (as F16C's vcvtph2ps does). */
static inline uint32_t gyoza_f16_to_f32_bits(uint16_t half) {
  uint32_t sign = (uint32_t)(half & 0x8000u) << 16;
  uint32_t exponent = (half >> 10) & 0x1fu;
  uint32_t mantissa = half & 0x3ffu;
  if (exponent == 0x1f) return sign | 0x7f800000u | (mantissa << 13) | (mantissa ? 0x00400000u : 0);
  if (exponent != 0) return sign | ((exponent + 112) << 23) | (mantissa << 13);
  /* zero or subnormal: mantissa · 2^-24 is exact in f32 */
  return sign | gyoza_f32_bits((float)mantissa * 5.9604644775390625e-8f);
}

/* f32 bits → f16 bits, round to nearest even; NaN → sign | 0x7e00 (src/io/float-convert.ts). */
static inline uint16_t gyoza_f32_bits_to_f16(uint32_t bits) {
  uint32_t sign = (bits >> 16) & 0x8000u;
  int exponent = (int)((bits >> 23) & 0xffu);
  uint32_t mantissa = bits & 0x7fffffu;
  if (exponent == 0xff) return (uint16_t)(mantissa ? sign | 0x7e00u : sign | 0x7c00u);
  int half_exponent = exponent - 112;
  if (half_exponent >= 0x1f) return (uint16_t)(sign | 0x7c00u);
  if (half_exponent <= 0) {
    if (half_exponent < -10) return (uint16_t)sign;
    mantissa |= 0x800000u;
    int shift = 14 - half_exponent;
    uint32_t half = mantissa >> shift;
    uint32_t remainder = mantissa & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (remainder > halfway || (remainder == halfway && (half & 1))) half++;
    return (uint16_t)(sign | half);
  }
  uint32_t half = ((uint32_t)half_exponent << 10) | (mantissa >> 13);
  uint32_t remainder = mantissa & 0x1fffu;
  if (remainder > 0x1000u || (remainder == 0x1000u && (half & 1))) half++;
  return (uint16_t)(sign | half);
}

/* f32 bits → bf16 bits like c10::round_to_nearest_even (NaN → 0x7fc0). */
static inline uint16_t gyoza_f32_bits_to_bf16(uint32_t bits) {
  if ((bits & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

/* The same conversions with a branch-free path for the normal f16 range, where nearly all weights
 * are: the rounding branch of the general code is a coin flip on real data. */
static inline uint32_t gyoza_f16_to_f32_bits_fast(uint16_t half) {
  uint32_t exponent = half & 0x7c00u;
  if (exponent == 0 || exponent == 0x7c00u) return gyoza_f16_to_f32_bits(half);
  return ((uint32_t)(half & 0x8000u) << 16) | (((uint32_t)(half & 0x7fffu) << 13) + 0x38000000u);
}

static inline uint16_t gyoza_f32_bits_to_f16_fast(uint32_t bits) {
  uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude - 0x38800000u >= 0x47800000u - 0x38800000u) return gyoza_f32_bits_to_f16(bits);
  uint32_t odd = (magnitude >> 13) & 1u;
  return (uint16_t)(((bits >> 16) & 0x8000u) | ((magnitude - 0x38000000u + 0xfffu + odd) >> 13));
}

/* The all-ones exponent of each dtype: an element is NaN or ±Inf exactly when it has these bits set. */
static inline uint32_t gyoza_exponent_mask(int dtype) {
  return dtype == GYOZA_F16 ? 0x7c00u : dtype == GYOZA_BF16 ? 0x7f80u : 0x7f800000u;
}

static inline float gyoza_load_scalar(const uint8_t *p, int dtype) {
  if (dtype == GYOZA_F32) {
    float value;
    memcpy(&value, p, 4);
    return value;
  }
  uint16_t half;
  memcpy(&half, p, 2);
  return gyoza_bits_f32(dtype == GYOZA_F16 ? gyoza_f16_to_f32_bits_fast(half) : (uint32_t)half << 16);
}

static inline void gyoza_store_scalar(uint8_t *p, int dtype, float value) {
  if (dtype == GYOZA_F32) {
    memcpy(p, &value, 4);
    return;
  }
  uint32_t bits = gyoza_f32_bits(value);
  uint16_t half = dtype == GYOZA_F16 ? gyoza_f32_bits_to_f16_fast(bits) : gyoza_f32_bits_to_bf16(bits);
  memcpy(p, &half, 2);
}

/* The elementwise formulas; the SIMD paths compute the same operations lane by lane. */
static inline float gyoza_weighted_sum_one(float a, float b, float w0, float w1) {
  float left = a * w0;
  float right = b * w1;
  return gyoza_canonical(left + right);
}

/* Two weighted sums in a row, the inner one never stored: the same bits as computing the inner sum into
 * an f32 array and the outer one from it. Addition is commutative in IEEE arithmetic, so whether the
 * inner sum was the outer step's first or second operand is only a matter of which weight is `u`. */
static inline float gyoza_nested_weighted_sum_one(float a, float b, float c, float w0, float w1, float u,
                                                  float v) {
  float left = a * w0;
  float right = b * w1;
  float inner = left + right; /* a NaN here stays NaN through the outer sum, which canonicalizes it */
  return gyoza_weighted_sum_one(inner, c, u, v);
}

/* torch's CPU lerp_vec (aten/src/ATen/native/cpu/LerpKernel.cpp): |w| < 0.5 ? fmadd(w, b − a, a)
 * : fmadd(w − 1, b − a, b). fmaf is the correctly rounded fused multiply-add of C99 (hardware or
 * libm), so this matches torch's AVX2/AVX-512/NEON builds bit for bit. `coefficient` is w or w − 1. */
static inline float gyoza_lerp_one(float a, float b, float coefficient, int small) {
  return gyoza_canonical(fmaf(coefficient, b - a, small ? a : b));
}

static inline float gyoza_add_difference_one(float a, float b, float c, float alpha) {
  float difference = b - c;
  float step = alpha * difference;
  return gyoza_canonical(a + step);
}

/* One element (row i, column j) of a low-rank update: the dot product of up's row i and down's column
 * j summed in order k = 0, 1, … from +0, every product and sum rounded to f32, then scaled and added,
 * each rounded once. The SIMD paths run the same sum for 8 columns at a time: the same bits. */
static inline float gyoza_low_rank_one(float base, const float *up_row, const float *down_column, size_t rank,
                                       size_t stride, float multiplier) {
  float sum = 0.0f;
  for (size_t k = 0; k < rank; k++) {
    float product = up_row[k] * down_column[k * stride];
    sum = sum + product;
  }
  float step = multiplier * sum;
  return gyoza_canonical(base + step);
}

#endif
