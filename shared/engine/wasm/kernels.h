/*
 * What conv3d.c and ops.c share: the conv geometry block the host writes, and small loops.
 * Everything here is static inline: nothing may live on the shadow stack (see build.sh).
 */
#ifndef FREETUMOR_KERNELS_H
#define FREETUMOR_KERNELS_H

#include <stdint.h>
#include <wasm_simd128.h>

/* Conv geometry, written by the host as 22 consecutive int32 values. inC2: channels of a second
 * input read as if concatenated after the first (0 = one input). */
typedef struct {
  int32_t batch, inD, inH, inW, inC;
  int32_t outD, outH, outW, outC;
  int32_t fD, fH, fW;
  int32_t sD, sH, sW;
  int32_t dD, dH, dW;
  int32_t padF, padT, padL;
  int32_t inC2;
} Geom;

static inline void fill_zero(float *dst, int32_t n) {
  for (int32_t i = 0; i < n; i++) dst[i] = 0.0f;
}

static inline void copy_f32(float *dst, const float *src, int32_t n) {
  for (int32_t i = 0; i < n; i++) dst[i] = src[i];
}

static inline void add_f32(float *dst, const float *src, int32_t n) {
  for (int32_t i = 0; i < n; i++) dst[i] += src[i];
}

/* acc + a * b: one fused instruction where the host has FMA (relaxed SIMD), else mul + add. */
static inline v128_t fmadd(v128_t acc, v128_t a, v128_t b) {
#ifdef __wasm_relaxed_simd__
  return wasm_f32x4_relaxed_madd(a, b, acc);
#else
  return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b));
#endif
}

/* max(x, 0), NaN kept (as tfjs's and ONNX Runtime's Relu). */
static inline v128_t relu4(v128_t v) {
  const v128_t keep = wasm_v128_or(wasm_f32x4_gt(v, wasm_f32x4_splat(0.0f)), wasm_f32x4_ne(v, v));
  return wasm_v128_and(v, keep);
}

static inline float relu1(float v) { return v > 0.0f || v != v ? v : 0.0f; }

static inline void relu_inplace(float *y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, relu4(wasm_v128_load(y + i)));
  for (; i < n; i++) y[i] = relu1(y[i]);
}

#endif
