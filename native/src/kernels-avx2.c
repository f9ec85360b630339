/*
 * AVX2 + F16C implementation, compiled with -mavx2 -mf16c and no -mfma: a fused multiply-add would
 * round once where torch rounds twice. Only lerp opts in, because torch's lerp is fused. Each loop
 * handles 8 lanes and leaves the tail to the scalar formulas in kernels.h, which compute the same.
 */
#include <immintrin.h>

#include "kernels.h"

#define LANES 8

static inline __m256 canonical8(__m256 value) {
  __m256 is_nan = _mm256_cmp_ps(value, value, _CMP_UNORD_Q);
  return _mm256_blendv_ps(value, _mm256_castsi256_ps(_mm256_set1_epi32((int)GYOZA_CANONICAL_NAN_BITS)), is_nan);
}

/* vcvtph2ps is exact and quiets NaN the way gyoza_f16_to_f32_bits does. */
static inline __m256 load8_F16(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

static inline __m256 load8_BF16(const uint8_t *p) {
  __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

static inline __m256 load8_F32(const uint8_t *p) { return _mm256_loadu_ps((const float *)p); }

/* vcvtps2ph with imm 0 rounds to nearest even like the reference; only NaN differs (it keeps payload
 * bits), so NaN lanes become sign | quiet NaN first, which it turns into sign | 0x7e00. */
static inline void store8_F16(uint8_t *p, __m256 value) {
  __m256 is_nan = _mm256_cmp_ps(value, value, _CMP_UNORD_Q);
  __m256 sign = _mm256_and_ps(value, _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u)));
  __m256 quiet = _mm256_or_ps(sign, _mm256_castsi256_ps(_mm256_set1_epi32((int)GYOZA_CANONICAL_NAN_BITS)));
  __m256 cleaned = _mm256_blendv_ps(value, quiet, is_nan);
  _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph(cleaned, _MM_FROUND_TO_NEAREST_INT));
}

static inline void store8_BF16(uint8_t *p, __m256 value) {
  __m256i bits = _mm256_castps_si256(value);
  __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  __m256i is_nan = _mm256_castps_si256(_mm256_cmp_ps(value, value, _CMP_UNORD_Q));
  __m256i result = _mm256_blendv_epi8(rounded, _mm256_set1_epi32(0x7fc0), is_nan);
  __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(result, _mm256_setzero_si256()), 0x08);
  _mm_storeu_si128((__m128i *)p, _mm256_castsi256_si128(packed));
}

static inline void store8_F32(uint8_t *p, __m256 value) { _mm256_storeu_ps((float *)p, value); }

#define SIZE_F16 2
#define SIZE_BF16 2
#define SIZE_F32 4

static void to_f32(const uint8_t *src, int dtype, float *out, size_t n) {
  size_t i = 0;
  if (dtype == GYOZA_F16) {
    for (; i + LANES <= n; i += LANES) _mm256_storeu_ps(out + i, load8_F16(src + i * 2));
  } else if (dtype == GYOZA_BF16) {
    for (; i + LANES <= n; i += LANES) _mm256_storeu_ps(out + i, load8_BF16(src + i * 2));
  }
  gyoza_scalar_kernels.to_f32(src + i * gyoza_dtype_bytes(dtype), dtype, out + i, n - i);
}

static void from_f32(const float *src, int dtype, uint8_t *out, size_t n) {
  size_t i = 0;
  if (dtype == GYOZA_F16) {
    for (; i + LANES <= n; i += LANES) store8_F16(out + i * 2, _mm256_loadu_ps(src + i));
  } else if (dtype == GYOZA_BF16) {
    for (; i + LANES <= n; i += LANES) store8_BF16(out + i * 2, _mm256_loadu_ps(src + i));
  }
  gyoza_scalar_kernels.from_f32(src + i, dtype, out + i * gyoza_dtype_bytes(dtype), n - i);
}

static void weighted_sum_f32(const float *a, const float *b, float w0, float w1, float *out, size_t n) {
  __m256 v0 = _mm256_set1_ps(w0), v1 = _mm256_set1_ps(w1);
  size_t i = 0;
  for (; i + LANES <= n; i += LANES) {
    __m256 left = _mm256_mul_ps(_mm256_loadu_ps(a + i), v0);
    __m256 right = _mm256_mul_ps(_mm256_loadu_ps(b + i), v1);
    _mm256_storeu_ps(out + i, canonical8(_mm256_add_ps(left, right)));
  }
  gyoza_scalar_kernels.weighted_sum_f32(a + i, b + i, w0, w1, out + i, n - i);
}

/* The one place with a fused multiply-add: torch's lerp uses one (see gyoza_lerp_one). Compiled for
 * FMA on its own and only called when the CPU has it. */
__attribute__((target("avx2,fma"))) static void lerp_f32_fma(const float *a, const float *b, float weight,
                                                              float *out, size_t n) {
  int small = (weight < 0 ? -weight : weight) < 0.5f;
  __m256 coefficient = _mm256_set1_ps(small ? weight : weight - 1.0f);
  size_t i = 0;
  for (; i + LANES <= n; i += LANES) {
    __m256 start = _mm256_loadu_ps(a + i);
    __m256 end = _mm256_loadu_ps(b + i);
    __m256 result = _mm256_fmadd_ps(coefficient, _mm256_sub_ps(end, start), small ? start : end);
    _mm256_storeu_ps(out + i, canonical8(result));
  }
  gyoza_scalar_kernels.lerp_f32(a + i, b + i, weight, out + i, n - i);
}

static void lerp_f32(const float *a, const float *b, float weight, float *out, size_t n) {
  static int has_fma = -1;
  if (has_fma < 0) has_fma = __builtin_cpu_supports("fma") ? 1 : 0;
  if (has_fma) lerp_f32_fma(a, b, weight, out, n);
  else gyoza_scalar_kernels.lerp_f32(a, b, weight, out, n);
}

static void add_difference_f32(const float *a, const float *b, const float *c, float alpha, float *out,
                               size_t n) {
  __m256 scale = _mm256_set1_ps(alpha);
  size_t i = 0;
  for (; i + LANES <= n; i += LANES) {
    __m256 difference = _mm256_sub_ps(_mm256_loadu_ps(b + i), _mm256_loadu_ps(c + i));
    __m256 sum = _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_mul_ps(scale, difference));
    _mm256_storeu_ps(out + i, canonical8(sum));
  }
  gyoza_scalar_kernels.add_difference_f32(a + i, b + i, c + i, alpha, out + i, n - i);
}

typedef void (*fused_fn)(const uint8_t *a, const uint8_t *b, __m256 w0, __m256 w1, uint8_t *out, size_t n);

/* One loop per (a, b, out) dtype combination, so no branch runs per element. Unrolled twice. */
#define DEFINE_FUSED(A, B, O)                                                                          \
  static void fused_##A##_##B##_##O(const uint8_t *a, const uint8_t *b, __m256 w0, __m256 w1,          \
                                    uint8_t *out, size_t n) {                                          \
    size_t i = 0;                                                                                      \
    for (; i + 2 * LANES <= n; i += 2 * LANES) {                                                       \
      __m256 first = _mm256_add_ps(_mm256_mul_ps(load8_##A(a + i * SIZE_##A), w0),                     \
                                   _mm256_mul_ps(load8_##B(b + i * SIZE_##B), w1));                    \
      __m256 second = _mm256_add_ps(_mm256_mul_ps(load8_##A(a + (i + LANES) * SIZE_##A), w0),          \
                                    _mm256_mul_ps(load8_##B(b + (i + LANES) * SIZE_##B), w1));         \
      store8_##O(out + i * SIZE_##O, canonical8(first));                                               \
      store8_##O(out + (i + LANES) * SIZE_##O, canonical8(second));                                    \
    }                                                                                                  \
    for (; i + LANES <= n; i += LANES) {                                                               \
      __m256 value = _mm256_add_ps(_mm256_mul_ps(load8_##A(a + i * SIZE_##A), w0),                     \
                                   _mm256_mul_ps(load8_##B(b + i * SIZE_##B), w1));                    \
      store8_##O(out + i * SIZE_##O, canonical8(value));                                               \
    }                                                                                                  \
  }

#define DEFINE_FUSED_OUT(A, B) DEFINE_FUSED(A, B, F16) DEFINE_FUSED(A, B, BF16) DEFINE_FUSED(A, B, F32)
#define DEFINE_FUSED_B(A) DEFINE_FUSED_OUT(A, F16) DEFINE_FUSED_OUT(A, BF16) DEFINE_FUSED_OUT(A, F32)
DEFINE_FUSED_B(F16)
DEFINE_FUSED_B(BF16)
DEFINE_FUSED_B(F32)

#define FUSED_OUT(A, B) {fused_##A##_##B##_F16, fused_##A##_##B##_BF16, fused_##A##_##B##_F32}
#define FUSED_B(A) {FUSED_OUT(A, F16), FUSED_OUT(A, BF16), FUSED_OUT(A, F32)}
static const fused_fn FUSED[GYOZA_DTYPE_COUNT][GYOZA_DTYPE_COUNT][GYOZA_DTYPE_COUNT] = {
    FUSED_B(F16), FUSED_B(BF16), FUSED_B(F32)};

static void weighted_sum(const uint8_t *a, int a_type, const uint8_t *b, int b_type, float w0, float w1,
                         uint8_t *out, int out_type, size_t n) {
  size_t body = n - n % LANES;
  FUSED[a_type][b_type][out_type](a, b, _mm256_set1_ps(w0), _mm256_set1_ps(w1), out, body);
  gyoza_scalar_kernels.weighted_sum(a + body * gyoza_dtype_bytes(a_type), a_type, b + body * gyoza_dtype_bytes(b_type),
                                    b_type, w0, w1, out + body * gyoza_dtype_bytes(out_type), out_type, n - body);
}

/* The nested weighted sum: (a·w0 + b·w1)·u + c·v, every product and sum rounded on its own, one loop
 * per (a, b, c, out) dtype combination like the fused weighted sum above. */
typedef void (*nested_fn)(const uint8_t *a, const uint8_t *b, const uint8_t *c, __m256 w0, __m256 w1, __m256 u,
                          __m256 v, uint8_t *out, size_t n);

#define NESTED8(A, B, C, at)                                                                           \
  canonical8(_mm256_add_ps(                                                                            \
      _mm256_mul_ps(_mm256_add_ps(_mm256_mul_ps(load8_##A(a + (at) * SIZE_##A), w0),                   \
                                  _mm256_mul_ps(load8_##B(b + (at) * SIZE_##B), w1)),                  \
                    u),                                                                                \
      _mm256_mul_ps(load8_##C(c + (at) * SIZE_##C), v)))

#define DEFINE_NESTED(A, B, C, O)                                                                      \
  static void nested_##A##_##B##_##C##_##O(const uint8_t *a, const uint8_t *b, const uint8_t *c,       \
                                           __m256 w0, __m256 w1, __m256 u, __m256 v, uint8_t *out,     \
                                           size_t n) {                                                 \
    size_t i = 0;                                                                                      \
    for (; i + 2 * LANES <= n; i += 2 * LANES) {                                                       \
      __m256 first = NESTED8(A, B, C, i);                                                              \
      __m256 second = NESTED8(A, B, C, i + LANES);                                                     \
      store8_##O(out + i * SIZE_##O, first);                                                           \
      store8_##O(out + (i + LANES) * SIZE_##O, second);                                                \
    }                                                                                                  \
    for (; i + LANES <= n; i += LANES) store8_##O(out + i * SIZE_##O, NESTED8(A, B, C, i));            \
  }

#define DEFINE_NESTED_OUT(A, B, C) DEFINE_NESTED(A, B, C, F16) DEFINE_NESTED(A, B, C, BF16) DEFINE_NESTED(A, B, C, F32)
#define DEFINE_NESTED_C(A, B) DEFINE_NESTED_OUT(A, B, F16) DEFINE_NESTED_OUT(A, B, BF16) DEFINE_NESTED_OUT(A, B, F32)
#define DEFINE_NESTED_B(A) DEFINE_NESTED_C(A, F16) DEFINE_NESTED_C(A, BF16) DEFINE_NESTED_C(A, F32)
DEFINE_NESTED_B(F16)
DEFINE_NESTED_B(BF16)
DEFINE_NESTED_B(F32)

#define NESTED_OUT(A, B, C) {nested_##A##_##B##_##C##_F16, nested_##A##_##B##_##C##_BF16, nested_##A##_##B##_##C##_F32}
#define NESTED_C(A, B) {NESTED_OUT(A, B, F16), NESTED_OUT(A, B, BF16), NESTED_OUT(A, B, F32)}
#define NESTED_B(A) {NESTED_C(A, F16), NESTED_C(A, BF16), NESTED_C(A, F32)}
static const nested_fn NESTED[GYOZA_DTYPE_COUNT][GYOZA_DTYPE_COUNT][GYOZA_DTYPE_COUNT][GYOZA_DTYPE_COUNT] = {
    NESTED_B(F16), NESTED_B(BF16), NESTED_B(F32)};

static void nested_weighted_sum(const uint8_t *a, int a_type, const uint8_t *b, int b_type, const uint8_t *c,
                                int c_type, float w0, float w1, float u, float v, uint8_t *out, int out_type,
                                size_t n) {
  size_t body = n - n % LANES;
  NESTED[a_type][b_type][c_type][out_type](a, b, c, _mm256_set1_ps(w0), _mm256_set1_ps(w1), _mm256_set1_ps(u),
                                           _mm256_set1_ps(v), out, body);
  gyoza_scalar_kernels.nested_weighted_sum(
      a + body * gyoza_dtype_bytes(a_type), a_type, b + body * gyoza_dtype_bytes(b_type), b_type,
      c + body * gyoza_dtype_bytes(c_type), c_type, w0, w1, u, v, out + body * gyoza_dtype_bytes(out_type), out_type,
      n - body);
}

/* 32 bytes at a time: lanes whose exponent bits are all set, counted from a byte mask. A 16-bit
 * lane sets two mask bits, a 32-bit lane four. */
static size_t count_non_finite(const uint8_t *src, int dtype, size_t n) {
  size_t size = gyoza_dtype_bytes(dtype);
  size_t lanes = 32 / size;
  uint32_t mask = gyoza_exponent_mask(dtype);
  __m256i exponent = size == 4 ? _mm256_set1_epi32((int)mask) : _mm256_set1_epi16((short)mask);
  size_t bits = 0;
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    __m256i value = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(src + i * size)), exponent);
    __m256i special = size == 4 ? _mm256_cmpeq_epi32(value, exponent) : _mm256_cmpeq_epi16(value, exponent);
    bits += (size_t)__builtin_popcount((unsigned)_mm256_movemask_epi8(special));
  }
  return bits / size + gyoza_scalar_kernels.count_non_finite(src + i * size, dtype, n - i);
}

/* One stretch of a row of a low-rank update: columns [j, j + n) of row `up_row`, 32 columns (four
 * independent sums, so the adds overlap) then 8 at a time; each lane sums exactly as
 * gyoza_low_rank_one does, which also takes the tail. */
static void low_rank_row(const float *base, const float *up_row, const float *down, size_t rank, size_t stride,
                         size_t j, float multiplier, float *out, size_t n) {
  __m256 m = _mm256_set1_ps(multiplier);
  size_t t = 0;
  for (; t + 4 * LANES <= n; t += 4 * LANES) {
    const float *column = down + j + t;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    for (size_t k = 0; k < rank; k++) {
      __m256 u = _mm256_set1_ps(up_row[k]);
      const float *d = column + k * stride;
      s0 = _mm256_add_ps(s0, _mm256_mul_ps(u, _mm256_loadu_ps(d)));
      s1 = _mm256_add_ps(s1, _mm256_mul_ps(u, _mm256_loadu_ps(d + LANES)));
      s2 = _mm256_add_ps(s2, _mm256_mul_ps(u, _mm256_loadu_ps(d + 2 * LANES)));
      s3 = _mm256_add_ps(s3, _mm256_mul_ps(u, _mm256_loadu_ps(d + 3 * LANES)));
    }
    _mm256_storeu_ps(out + t, canonical8(_mm256_add_ps(_mm256_loadu_ps(base + t), _mm256_mul_ps(m, s0))));
    _mm256_storeu_ps(out + t + LANES,
                     canonical8(_mm256_add_ps(_mm256_loadu_ps(base + t + LANES), _mm256_mul_ps(m, s1))));
    _mm256_storeu_ps(out + t + 2 * LANES,
                     canonical8(_mm256_add_ps(_mm256_loadu_ps(base + t + 2 * LANES), _mm256_mul_ps(m, s2))));
    _mm256_storeu_ps(out + t + 3 * LANES,
                     canonical8(_mm256_add_ps(_mm256_loadu_ps(base + t + 3 * LANES), _mm256_mul_ps(m, s3))));
  }
  for (; t + LANES <= n; t += LANES) {
    const float *column = down + j + t;
    __m256 s = _mm256_setzero_ps();
    for (size_t k = 0; k < rank; k++)
      s = _mm256_add_ps(s, _mm256_mul_ps(_mm256_set1_ps(up_row[k]), _mm256_loadu_ps(column + k * stride)));
    _mm256_storeu_ps(out + t, canonical8(_mm256_add_ps(_mm256_loadu_ps(base + t), _mm256_mul_ps(m, s))));
  }
  for (; t < n; t++) out[t] = gyoza_low_rank_one(base[t], up_row, down + j + t, rank, stride, multiplier);
}

/* Columns of down taken at a time over all whole rows of a call: rank · 512 floats (64 KiB at rank
 * 32) stay in the cache while every row uses them, where a row of a wide weight (ff.net.2: 5120
 * columns) would otherwise stream all of down from memory again. Each element is computed as
 * before; only the order of elements changes. */
#define TILE_COLUMNS 512

static void add_low_rank_f32(const float *base, const float *up, const float *down, size_t rank, size_t cols,
                             size_t stride, size_t begin, float multiplier, float *out, size_t n) {
  size_t t = 0;
  size_t column = begin % cols;
  if (column != 0) { /* the rest of a row begun before the range */
    size_t stretch = cols - column < n ? cols - column : n;
    low_rank_row(base, up + (begin / cols) * rank, down, rank, stride, column, multiplier, out, stretch);
    t = stretch;
  }
  size_t rows = (n - t) / cols, first = (begin + t) / cols;
  for (size_t j = 0; rows > 0 && j < cols; j += TILE_COLUMNS) {
    size_t width = cols - j < TILE_COLUMNS ? cols - j : TILE_COLUMNS;
    for (size_t r = 0; r < rows; r++) {
      size_t at = t + r * cols + j;
      low_rank_row(base + at, up + (first + r) * rank, down, rank, stride, j, multiplier, out + at, width);
    }
  }
  t += rows * cols;
  if (t < n) low_rank_row(base + t, up + ((begin + t) / cols) * rank, down, rank, stride, 0, multiplier, out + t, n - t);
}

const gyoza_kernel_table gyoza_avx2_kernels = {
    to_f32, from_f32, weighted_sum_f32, lerp_f32, add_difference_f32, weighted_sum, nested_weighted_sum,
    count_non_finite, add_low_rank_f32,
};
