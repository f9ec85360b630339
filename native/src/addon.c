/*
 * N-API glue: exposes `scalar` (always) and `simd` (AVX2 + F16C, only when this CPU has both) kernel
 * tables with the same nine functions. Arguments are checked in TypeScript (src/kernels/merge-kernel.ts);
 * here only enough is checked that a wrong call throws instead of touching memory it does not own.
 */
#define NAPI_VERSION 8
#if defined(__linux__)
#define _GNU_SOURCE /* readahead(2) */
#endif
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__) || defined(__APPLE__) || defined(__unix__)
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#define GYOZA_HAVE_READ_AHEAD 1
#endif

#include "kernels.h"

#define MAX_ARGS 12

typedef struct {
  void *data;
  size_t bytes;
} view;

static int throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return 0;
}

static int get_view(napi_env env, napi_value value, view *out) {
  napi_typedarray_type type;
  size_t length;
  void *data;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, &buffer, &offset) != napi_ok) {
    return throw_type(env, "expected a typed array");
  }
  if (type != napi_uint8_array && type != napi_float32_array) return throw_type(env, "expected Uint8Array or Float32Array");
  out->data = data;
  out->bytes = length * (type == napi_float32_array ? 4 : 1);
  return 1;
}

static int get_number(napi_env env, napi_value value, double *out) {
  if (napi_get_value_double(env, value, out) != napi_ok) return throw_type(env, "expected a number");
  return 1;
}

static int get_dtype(napi_env env, napi_value value, int *out) {
  int32_t code;
  if (napi_get_value_int32(env, value, &code) != napi_ok || code < 0 || code >= GYOZA_DTYPE_COUNT) {
    return throw_type(env, "expected a dtype code 0 (F16), 1 (BF16) or 2 (F32)");
  }
  *out = code;
  return 1;
}

/* Reads the arguments and the kernel table attached to the function. */
static const gyoza_kernel_table *get_args(napi_env env, napi_callback_info info, size_t expected, napi_value *argv) {
  size_t argc = MAX_ARGS;
  void *table;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, &table) != napi_ok) return NULL;
  if (argc < expected) {
    throw_type(env, "too few arguments");
    return NULL;
  }
  return table;
}

static int check_bytes(napi_env env, size_t bytes, size_t expected) {
  return bytes == expected ? 1 : throw_type(env, "buffer lengths do not match");
}

static napi_value to_float32(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  const gyoza_kernel_table *table = get_args(env, info, 3, argv);
  view src, out;
  int dtype;
  if (!table || !get_view(env, argv[0], &src) || !get_dtype(env, argv[1], &dtype) || !get_view(env, argv[2], &out)) return NULL;
  size_t n = out.bytes / 4;
  if (!check_bytes(env, src.bytes, n * gyoza_dtype_bytes(dtype))) return NULL;
  table->to_f32(src.data, dtype, out.data, n);
  return NULL;
}

static napi_value from_float32(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  const gyoza_kernel_table *table = get_args(env, info, 3, argv);
  view src, out;
  int dtype;
  if (!table || !get_view(env, argv[0], &src) || !get_dtype(env, argv[1], &dtype) || !get_view(env, argv[2], &out)) return NULL;
  size_t n = src.bytes / 4;
  if (!check_bytes(env, out.bytes, n * gyoza_dtype_bytes(dtype))) return NULL;
  table->from_f32(src.data, dtype, out.data, n);
  return NULL;
}

static napi_value weighted_sum_f32(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  const gyoza_kernel_table *table = get_args(env, info, 5, argv);
  view a, b, out;
  double w0, w1;
  if (!table || !get_view(env, argv[0], &a) || !get_view(env, argv[1], &b) || !get_number(env, argv[2], &w0) ||
      !get_number(env, argv[3], &w1) || !get_view(env, argv[4], &out)) return NULL;
  if (!check_bytes(env, a.bytes, out.bytes) || !check_bytes(env, b.bytes, out.bytes)) return NULL;
  table->weighted_sum_f32(a.data, b.data, (float)w0, (float)w1, out.data, out.bytes / 4);
  return NULL;
}

static napi_value lerp_f32(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  const gyoza_kernel_table *table = get_args(env, info, 4, argv);
  view a, b, out;
  double weight;
  if (!table || !get_view(env, argv[0], &a) || !get_view(env, argv[1], &b) || !get_number(env, argv[2], &weight) ||
      !get_view(env, argv[3], &out)) return NULL;
  if (!check_bytes(env, a.bytes, out.bytes) || !check_bytes(env, b.bytes, out.bytes)) return NULL;
  table->lerp_f32(a.data, b.data, (float)weight, out.data, out.bytes / 4);
  return NULL;
}

static napi_value add_difference_f32(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  const gyoza_kernel_table *table = get_args(env, info, 5, argv);
  view a, b, c, out;
  double alpha;
  if (!table || !get_view(env, argv[0], &a) || !get_view(env, argv[1], &b) || !get_view(env, argv[2], &c) ||
      !get_number(env, argv[3], &alpha) || !get_view(env, argv[4], &out)) return NULL;
  if (!check_bytes(env, a.bytes, out.bytes) || !check_bytes(env, b.bytes, out.bytes) ||
      !check_bytes(env, c.bytes, out.bytes)) return NULL;
  table->add_difference_f32(a.data, b.data, c.data, (float)alpha, out.data, out.bytes / 4);
  return NULL;
}

static napi_value weighted_sum(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  const gyoza_kernel_table *table = get_args(env, info, 8, argv);
  view a, b, out;
  int a_type, b_type, out_type;
  double w0, w1;
  if (!table || !get_view(env, argv[0], &a) || !get_dtype(env, argv[1], &a_type) || !get_view(env, argv[2], &b) ||
      !get_dtype(env, argv[3], &b_type) || !get_number(env, argv[4], &w0) || !get_number(env, argv[5], &w1) ||
      !get_view(env, argv[6], &out) || !get_dtype(env, argv[7], &out_type)) return NULL;
  size_t n = a.bytes / gyoza_dtype_bytes(a_type);
  if (!check_bytes(env, a.bytes, n * gyoza_dtype_bytes(a_type)) || !check_bytes(env, b.bytes, n * gyoza_dtype_bytes(b_type)) ||
      !check_bytes(env, out.bytes, n * gyoza_dtype_bytes(out_type))) return NULL;
  table->weighted_sum(a.data, a_type, b.data, b_type, (float)w0, (float)w1, out.data, out_type, n);
  return NULL;
}

static napi_value nested_weighted_sum(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  const gyoza_kernel_table *table = get_args(env, info, 12, argv);
  view a, b, c, out;
  int a_type, b_type, c_type, out_type;
  double w0, w1, u, v;
  if (!table || !get_view(env, argv[0], &a) || !get_dtype(env, argv[1], &a_type) || !get_view(env, argv[2], &b) ||
      !get_dtype(env, argv[3], &b_type) || !get_view(env, argv[4], &c) || !get_dtype(env, argv[5], &c_type) ||
      !get_number(env, argv[6], &w0) || !get_number(env, argv[7], &w1) || !get_number(env, argv[8], &u) ||
      !get_number(env, argv[9], &v) || !get_view(env, argv[10], &out) || !get_dtype(env, argv[11], &out_type))
    return NULL;
  size_t n = a.bytes / gyoza_dtype_bytes(a_type);
  if (!check_bytes(env, a.bytes, n * gyoza_dtype_bytes(a_type)) || !check_bytes(env, b.bytes, n * gyoza_dtype_bytes(b_type)) ||
      !check_bytes(env, c.bytes, n * gyoza_dtype_bytes(c_type)) ||
      !check_bytes(env, out.bytes, n * gyoza_dtype_bytes(out_type))) return NULL;
  table->nested_weighted_sum(a.data, a_type, b.data, b_type, c.data, c_type, (float)w0, (float)w1, (float)u, (float)v,
                             out.data, out_type, n);
  return NULL;
}

static napi_value count_non_finite(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  const gyoza_kernel_table *table = get_args(env, info, 2, argv);
  view src;
  int dtype;
  if (!table || !get_view(env, argv[0], &src) || !get_dtype(env, argv[1], &dtype)) return NULL;
  size_t size = gyoza_dtype_bytes(dtype);
  if (src.bytes % size != 0) {
    throw_type(env, "buffer length is not a whole number of elements");
    return NULL;
  }
  napi_value result;
  napi_create_double(env, (double)table->count_non_finite(src.data, dtype, src.bytes / size), &result);
  return result;
}

/*
 * addLowRankF32(base, up, down, rank, cols, stride, begin, multiplier, out): elements [begin, begin + n)
 * of a row-major [rows, cols] low-rank update (n = out's length), up [rows, rank], down [rank, cols]
 * with its rows `stride` floats apart.
 */
static napi_value add_low_rank_f32(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  const gyoza_kernel_table *table = get_args(env, info, 9, argv);
  view base, up, down, out;
  double rank, cols, stride, begin, multiplier;
  if (!table || !get_view(env, argv[0], &base) || !get_view(env, argv[1], &up) || !get_view(env, argv[2], &down) ||
      !get_number(env, argv[3], &rank) || !get_number(env, argv[4], &cols) || !get_number(env, argv[5], &stride) ||
      !get_number(env, argv[6], &begin) || !get_number(env, argv[7], &multiplier) || !get_view(env, argv[8], &out))
    return NULL;
  if (!check_bytes(env, base.bytes, out.bytes)) return NULL;
  size_t n = out.bytes / 4;
  if (!(rank >= 1 && cols >= 1 && stride >= cols && begin >= 0) ||
      ((size_t)rank - 1) * (size_t)stride * 4 + (size_t)cols * 4 > down.bytes || up.bytes % ((size_t)rank * 4) != 0 ||
      (size_t)begin + n > up.bytes / ((size_t)rank * 4) * (size_t)cols) {
    throw_type(env, "low-rank factors do not cover the range");
    return NULL;
  }
  table->add_low_rank_f32(base.data, up.data, down.data, (size_t)rank, (size_t)cols, (size_t)stride, (size_t)begin,
                          (float)multiplier, out.data, n);
  return NULL;
}

/*
 * copyBytes(target, source): memmove of source into target (same length). V8 copies between shared
 * buffers with relaxed atomics, byte by byte when the two are not equally aligned (3 GB/s here, the
 * largest cost after hashing when a merge's output is staged for O_DIRECT writes); memmove is not.
 */
static napi_value copy_bytes(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  size_t argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 2) {
    throw_type(env, "too few arguments");
    return NULL;
  }
  view target, source;
  if (!get_view(env, argv[0], &target) || !get_view(env, argv[1], &source) ||
      !check_bytes(env, target.bytes, source.bytes)) return NULL;
  memmove(target.data, source.data, source.bytes);
  return NULL;
}

#ifdef GYOZA_HAVE_READ_AHEAD
/* Bytes per readahead(2) call: no more than the smallest read-ahead window Linux uses (128 KiB). */
#define READ_AHEAD_CALL_BYTES ((int64_t)128 << 10)

/*
 * readAhead(fd, offset, length) → Promise<void>: asks the kernel to bring a file range into the page
 * cache (readahead(2) on Linux, posix_fadvise WILLNEED elsewhere) on a libuv worker thread. The data is
 * not copied into the process: a prefetch of a torch `.ckpt` read out of its file order costs no CPU
 * for the bytes, where reading them into a scratch buffer copied every byte once more.
 */
typedef struct {
  int fd;
  int64_t offset;
  int64_t length;
  int error;
  napi_deferred deferred;
  napi_async_work work;
} read_ahead_job;

static void read_ahead_execute(napi_env env, void *data) {
  (void)env;
  read_ahead_job *job = data;
#if defined(__linux__)
  /* the kernel reads at most the device's read-ahead window (read_ahead_kb, 128 KiB to 8 MiB) per call
     and drops the rest of a longer range: ask for it a window at a time */
  const int64_t end = job->offset + job->length;
  for (int64_t at = job->offset; at < end; at += READ_AHEAD_CALL_BYTES) {
    const int64_t length = end - at < READ_AHEAD_CALL_BYTES ? end - at : READ_AHEAD_CALL_BYTES;
    if (readahead(job->fd, (off64_t)at, (size_t)length) != 0) {
      job->error = errno;
      return;
    }
  }
  job->error = 0;
#elif defined(__APPLE__)
  struct radvisory advice = {.ra_offset = (off_t)job->offset, .ra_count = (int)job->length};
  job->error = fcntl(job->fd, F_RDADVISE, &advice) == 0 ? 0 : errno;
#else
  job->error = posix_fadvise(job->fd, (off_t)job->offset, (off_t)job->length, POSIX_FADV_WILLNEED);
#endif
}

static void read_ahead_complete(napi_env env, napi_status status, void *data) {
  read_ahead_job *job = data;
  if (status == napi_ok && job->error == 0) {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, job->deferred, undefined);
  } else {
    napi_value message, error;
    napi_create_string_utf8(env, status == napi_ok ? strerror(job->error) : "read-ahead cancelled", NAPI_AUTO_LENGTH,
                            &message);
    napi_create_error(env, NULL, message, &error);
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

/* The (fd, offset, length) arguments of readAhead and cachedBytes; throws `usage` and returns 0 when wrong. */
static int get_file_range(napi_env env, napi_callback_info info, int32_t *fd, double *offset, double *length,
                          const char *usage) {
  napi_value argv[MAX_ARGS];
  size_t argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (argc < 3 || napi_get_value_int32(env, argv[0], fd) != napi_ok || *fd < 0 || !get_number(env, argv[1], offset) ||
      !get_number(env, argv[2], length) || !(*offset >= 0 && *length >= 0 && *offset + *length <= 9007199254740991.0)) {
    throw_type(env, usage);
    return 0;
  }
  return 1;
}

static napi_value read_ahead(napi_env env, napi_callback_info info) {
  int32_t fd;
  double offset, length;
  if (!get_file_range(env, info, &fd, &offset, &length, "readAhead(fd, offset, length) takes a descriptor and a byte range"))
    return NULL;
  read_ahead_job *job = calloc(1, sizeof *job);
  if (!job) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  job->fd = fd;
  job->offset = (int64_t)offset;
  job->length = (int64_t)length;
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "gyoza.readAhead", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, read_ahead_execute, read_ahead_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}
#endif

#ifdef GYOZA_HAVE_READ_AHEAD
/*
 * cachedBytes(fd, offset, length) → number: how many bytes of a file range are in the page cache now, to
 * the page (mincore(2) over a mapping of the range, which is never touched, so nothing is read). Tells
 * a merge whether to read an input past the cache (O_DIRECT, cold files) or through it (files just read
 * or written). -1 where the range cannot be mapped.
 */
static napi_value cached_bytes(napi_env env, napi_callback_info info) {
  int32_t fd;
  double offset, length;
  if (!get_file_range(env, info, &fd, &offset, &length, "cachedBytes(fd, offset, length) takes a descriptor and a byte range"))
    return NULL;
  const long page = sysconf(_SC_PAGESIZE);
  const int64_t start = ((int64_t)offset / page) * page;
  const int64_t end = (int64_t)offset + (int64_t)length;
  double result = 0;
  if (end > start) {
    const size_t span = (size_t)(end - start);
    const size_t pages = (span + (size_t)page - 1) / (size_t)page;
    void *mapped = mmap(NULL, span, PROT_READ, MAP_SHARED, fd, (off_t)start);
#if defined(__APPLE__)
    char *resident = mapped == MAP_FAILED ? NULL : malloc(pages);
#else
    unsigned char *resident = mapped == MAP_FAILED ? NULL : malloc(pages);
#endif
    if (!resident || mincore(mapped, span, resident) != 0) {
      result = -1;
    } else {
      size_t count = 0;
      for (size_t i = 0; i < pages; i++) count += resident[i] & 1;
      /* whole pages: the first may start before `offset` */
      result = (double)count * (double)page;
      if (result > length) result = length;
    }
    free(resident);
    if (mapped != MAP_FAILED) munmap(mapped, span);
  }
  napi_value value;
  napi_create_double(env, result, &value);
  return value;
}
#endif

static napi_value make_table(napi_env env, const gyoza_kernel_table *table) {
  napi_value object;
  napi_property_descriptor properties[] = {
      {"toFloat32", NULL, to_float32, NULL, NULL, NULL, napi_enumerable, (void *)table},
      {"fromFloat32", NULL, from_float32, NULL, NULL, NULL, napi_enumerable, (void *)table},
      {"weightedSumF32", NULL, weighted_sum_f32, NULL, NULL, NULL, napi_enumerable, (void *)table},
      {"lerpF32", NULL, lerp_f32, NULL, NULL, NULL, napi_enumerable, (void *)table},
      {"addDifferenceF32", NULL, add_difference_f32, NULL, NULL, NULL, napi_enumerable, (void *)table},
      {"weightedSum", NULL, weighted_sum, NULL, NULL, NULL, napi_enumerable, (void *)table},
      {"nestedWeightedSum", NULL, nested_weighted_sum, NULL, NULL, NULL, napi_enumerable, (void *)table},
      {"countNonFinite", NULL, count_non_finite, NULL, NULL, NULL, napi_enumerable, (void *)table},
      {"addLowRankF32", NULL, add_low_rank_f32, NULL, NULL, NULL, napi_enumerable, (void *)table},
  };
  napi_create_object(env, &object);
  napi_define_properties(env, object, sizeof properties / sizeof properties[0], properties);
  return object;
}

static int cpu_has_avx2_f16c(void) {
#if defined(GYOZA_HAVE_AVX2) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
#else
  return 0;
#endif
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value simd;
#ifdef GYOZA_HAVE_AVX2
  if (cpu_has_avx2_f16c()) simd = make_table(env, &gyoza_avx2_kernels);
  else napi_get_null(env, &simd);
#else
  napi_get_null(env, &simd);
#endif
  napi_set_named_property(env, exports, "scalar", make_table(env, &gyoza_scalar_kernels));
  napi_set_named_property(env, exports, "simd", simd);
  napi_value copy;
  napi_create_function(env, "copyBytes", NAPI_AUTO_LENGTH, copy_bytes, NULL, &copy);
  napi_set_named_property(env, exports, "copyBytes", copy);
#ifdef GYOZA_HAVE_READ_AHEAD
  napi_value ahead;
  napi_create_function(env, "readAhead", NAPI_AUTO_LENGTH, read_ahead, NULL, &ahead);
  napi_set_named_property(env, exports, "readAhead", ahead);
  napi_value cached;
  napi_create_function(env, "cachedBytes", NAPI_AUTO_LENGTH, cached_bytes, NULL, &cached);
  napi_set_named_property(env, exports, "cachedBytes", cached);
#endif
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
