/* Portable implementation: used on CPUs without AVX2/F16C and for the tails of the SIMD loops. */
#include "kernels.h"

static void to_f32(const uint8_t *src, int dtype, float *out, size_t n) {
  size_t size = gyoza_dtype_bytes(dtype);
  if (dtype == GYOZA_F32) {
    memmove(out, src, n * 4);
    return;
  }
  for (size_t i = 0; i < n; i++) out[i] = gyoza_load_scalar(src + i * size, dtype);
}

static void from_f32(const float *src, int dtype, uint8_t *out, size_t n) {
  size_t size = gyoza_dtype_bytes(dtype);
  if (dtype == GYOZA_F32) {
    memmove(out, src, n * 4);
    return;
  }
  for (size_t i = 0; i < n; i++) gyoza_store_scalar(out + i * size, dtype, src[i]);
}

static void weighted_sum_f32(const float *a, const float *b, float w0, float w1, float *out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = gyoza_weighted_sum_one(a[i], b[i], w0, w1);
}

static void lerp_f32(const float *a, const float *b, float weight, float *out, size_t n) {
  int small = (weight < 0 ? -weight : weight) < 0.5f;
  float coefficient = small ? weight : weight - 1.0f;
  for (size_t i = 0; i < n; i++) out[i] = gyoza_lerp_one(a[i], b[i], coefficient, small);
}

static void add_difference_f32(const float *a, const float *b, const float *c, float alpha, float *out,
                               size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = gyoza_add_difference_one(a[i], b[i], c[i], alpha);
}

static void weighted_sum(const uint8_t *a, int a_type, const uint8_t *b, int b_type, float w0, float w1,
                         uint8_t *out, int out_type, size_t n) {
  size_t a_size = gyoza_dtype_bytes(a_type), b_size = gyoza_dtype_bytes(b_type);
  size_t out_size = gyoza_dtype_bytes(out_type);
  for (size_t i = 0; i < n; i++) {
    float x = gyoza_load_scalar(a + i * a_size, a_type);
    float y = gyoza_load_scalar(b + i * b_size, b_type);
    gyoza_store_scalar(out + i * out_size, out_type, gyoza_weighted_sum_one(x, y, w0, w1));
  }
}

static void nested_weighted_sum(const uint8_t *a, int a_type, const uint8_t *b, int b_type, const uint8_t *c,
                                int c_type, float w0, float w1, float u, float v, uint8_t *out, int out_type,
                                size_t n) {
  size_t a_size = gyoza_dtype_bytes(a_type), b_size = gyoza_dtype_bytes(b_type);
  size_t c_size = gyoza_dtype_bytes(c_type), out_size = gyoza_dtype_bytes(out_type);
  for (size_t i = 0; i < n; i++) {
    float x = gyoza_load_scalar(a + i * a_size, a_type);
    float y = gyoza_load_scalar(b + i * b_size, b_type);
    float z = gyoza_load_scalar(c + i * c_size, c_type);
    gyoza_store_scalar(out + i * out_size, out_type, gyoza_nested_weighted_sum_one(x, y, z, w0, w1, u, v));
  }
}

static size_t count_non_finite(const uint8_t *src, int dtype, size_t n) {
  uint32_t mask = gyoza_exponent_mask(dtype);
  size_t count = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t bits;
    if (dtype == GYOZA_F32) memcpy(&bits, src + i * 4, 4);
    else {
      uint16_t half;
      memcpy(&half, src + i * 2, 2);
      bits = half;
    }
    count += (bits & mask) == mask;
  }
  return count;
}

static void add_low_rank_f32(const float *base, const float *up, const float *down, size_t rank, size_t cols,
                             size_t stride, size_t begin, float multiplier, float *out, size_t n) {
  for (size_t t = 0; t < n; t++) {
    size_t row = (begin + t) / cols, column = (begin + t) % cols;
    out[t] = gyoza_low_rank_one(base[t], up + row * rank, down + column, rank, stride, multiplier);
  }
}

const gyoza_kernel_table gyoza_scalar_kernels = {
    to_f32, from_f32, weighted_sum_f32, lerp_f32, add_difference_f32, weighted_sum, nested_weighted_sum,
    count_non_finite, add_low_rank_f32,
};
