/*
 * The memory-bound ops around the convolutions, channels-last (x[v * C + c]): per-channel moments
 * and the affine map of instance/group normalisation (forward, with an optional ReLU, and
 * gradient), ReLU and its gradient, bias add and bias gradient, max pooling. Each takes a range of
 * voxels (or elements) so the host can split a call across threads; per-channel sums go to a
 * float64 array per thread that the host adds up. Partial sums run in float32 over blocks of VB
 * voxels and are then added in float64, so long reductions keep their precision.
 */
#include "kernels.h"

#define VB 256

static inline void add_lanes_f64(double *dst, v128_t v) {
  dst[0] += wasm_f32x4_extract_lane(v, 0);
  dst[1] += wasm_f32x4_extract_lane(v, 1);
  dst[2] += wasm_f32x4_extract_lane(v, 2);
  dst[3] += wasm_f32x4_extract_lane(v, 3);
}

/* sum[c] += sum_v (x - shift[c]), sq[c] += sum_v (x - shift[c])^2, v in [v0, v1). Shifting by a
 * value of the channel (the host passes its first voxel) keeps the two moments from cancelling. */
__attribute__((export_name("chan_moments"))) void chan_moments(const float *x, int32_t C, int32_t v0, int32_t v1,
                                                               const float *shift, double *sum, double *sq) {
  for (int32_t b0 = v0; b0 < v1; b0 += VB) {
    const int32_t b1 = v1 - b0 < VB ? v1 : b0 + VB;
    int32_t c = 0;
    for (; c + 4 <= C; c += 4) {
      const v128_t sh = wasm_v128_load(shift + c);
      v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, q0 = s0, q1 = s0;
      const float *p = x + (int64_t)b0 * C + c;
      int32_t v = b0;
      for (; v + 2 <= b1; v += 2, p += 2 * C) {
        const v128_t d0 = wasm_f32x4_sub(wasm_v128_load(p), sh);
        const v128_t d1 = wasm_f32x4_sub(wasm_v128_load(p + C), sh);
        s0 = wasm_f32x4_add(s0, d0);
        s1 = wasm_f32x4_add(s1, d1);
        q0 = fmadd(q0, d0, d0);
        q1 = fmadd(q1, d1, d1);
      }
      if (v < b1) {
        const v128_t d0 = wasm_f32x4_sub(wasm_v128_load(p), sh);
        s0 = wasm_f32x4_add(s0, d0);
        q0 = fmadd(q0, d0, d0);
      }
      add_lanes_f64(sum + c, wasm_f32x4_add(s0, s1));
      add_lanes_f64(sq + c, wasm_f32x4_add(q0, q1));
    }
    for (; c < C; c++) {
      float s = 0.0f, q = 0.0f;
      for (int32_t v = b0; v < b1; v++) {
        const float d = x[(int64_t)v * C + c] - shift[c];
        s += d;
        q += d * d;
      }
      sum[c] += s;
      sq[c] += q;
    }
  }
}

/* y = x * scale[c] + shift[c], then max(., 0) when relu; x and y may be the same buffer. */
__attribute__((export_name("chan_affine"))) void chan_affine(const float *x, float *y, int32_t C, int32_t v0,
                                                             int32_t v1, const float *scale, const float *shift,
                                                             int32_t relu) {
  for (int32_t v = v0; v < v1; v++) {
    const float *p = x + (int64_t)v * C;
    float *q = y + (int64_t)v * C;
    int32_t c = 0;
    for (; c + 4 <= C; c += 4) {
      v128_t r = fmadd(wasm_v128_load(shift + c), wasm_v128_load(p + c), wasm_v128_load(scale + c));
      if (relu) r = relu4(r);
      wasm_v128_store(q + c, r);
    }
    for (; c < C; c++) {
      const float r = p[c] * scale[c] + shift[c];
      q[c] = relu ? relu1(r) : r;
    }
  }
}

/* For the normalisation gradient: s1[c] += sum dy, s2[c] += sum dy (x - mu[c]). */
__attribute__((export_name("norm_grad_moments"))) void norm_grad_moments(const float *dy, const float *x, int32_t C,
                                                                         int32_t v0, int32_t v1, const float *mu,
                                                                         double *s1, double *s2) {
  for (int32_t b0 = v0; b0 < v1; b0 += VB) {
    const int32_t b1 = v1 - b0 < VB ? v1 : b0 + VB;
    int32_t c = 0;
    for (; c + 4 <= C; c += 4) {
      const v128_t m = wasm_v128_load(mu + c);
      v128_t a = wasm_f32x4_splat(0.0f), b = a;
      for (int32_t v = b0; v < b1; v++) {
        const int64_t o = (int64_t)v * C + c;
        const v128_t g = wasm_v128_load(dy + o);
        a = wasm_f32x4_add(a, g);
        b = fmadd(b, g, wasm_f32x4_sub(wasm_v128_load(x + o), m));
      }
      add_lanes_f64(s1 + c, a);
      add_lanes_f64(s2 + c, b);
    }
    for (; c < C; c++) {
      float a = 0.0f, b = 0.0f;
      for (int32_t v = b0; v < b1; v++) {
        const int64_t o = (int64_t)v * C + c;
        a += dy[o];
        b += dy[o] * (x[o] - mu[c]);
      }
      s1[c] += a;
      s2[c] += b;
    }
  }
}

/* dx = a[c] dy + b[c] (x - mu[c]) - k[c]. */
__attribute__((export_name("norm_grad_apply"))) void norm_grad_apply(const float *dy, const float *x, float *dx,
                                                                     int32_t C, int32_t v0, int32_t v1,
                                                                     const float *a, const float *b, const float *mu,
                                                                     const float *k) {
  for (int32_t v = v0; v < v1; v++) {
    const int64_t o = (int64_t)v * C;
    int32_t c = 0;
    for (; c + 4 <= C; c += 4) {
      const v128_t t = fmadd(wasm_f32x4_neg(wasm_v128_load(k + c)), wasm_v128_load(a + c), wasm_v128_load(dy + o + c));
      const v128_t r = fmadd(t, wasm_v128_load(b + c), wasm_f32x4_sub(wasm_v128_load(x + o + c), wasm_v128_load(mu + c)));
      wasm_v128_store(dx + o + c, r);
    }
    for (; c < C; c++) dx[o + c] = a[c] * dy[o + c] + b[c] * (x[o + c] - mu[c]) - k[c];
  }
}

/* y = max(x, 0) over elements [i0, i1). */
__attribute__((export_name("relu_forward"))) void relu_forward(const float *x, float *y, int32_t i0, int32_t i1) {
  int32_t i = i0;
  for (; i + 4 <= i1; i += 4) wasm_v128_store(y + i, relu4(wasm_v128_load(x + i)));
  for (; i < i1; i++) y[i] = relu1(x[i]);
}

/* dx = dy * step(x), step = 1 where x > 0, NaN where x is NaN, else 0: stock tfjs's ReLU gradient,
 * bit for bit (a non-finite dy where x <= 0 gives NaN, as 0 * inf does). */
__attribute__((export_name("relu_grad"))) void relu_grad(const float *dy, const float *x, float *dx, int32_t i0,
                                                         int32_t i1) {
  int32_t i = i0;
  const v128_t one = wasm_f32x4_splat(1.0f), zero = wasm_f32x4_splat(0.0f);
  for (; i + 4 <= i1; i += 4) {
    const v128_t xv = wasm_v128_load(x + i);
    v128_t step = wasm_v128_bitselect(one, zero, wasm_f32x4_gt(xv, zero));
    step = wasm_v128_bitselect(xv, step, wasm_f32x4_ne(xv, xv));
    wasm_v128_store(dx + i, wasm_f32x4_mul(wasm_v128_load(dy + i), step));
  }
  for (; i < i1; i++) dx[i] = dy[i] * (x[i] != x[i] ? x[i] : x[i] > 0.0f ? 1.0f : 0.0f);
}

/* y = x + bias[c]. */
__attribute__((export_name("bias_add"))) void bias_add(const float *x, float *y, int32_t C, int32_t v0, int32_t v1,
                                                       const float *bias) {
  for (int32_t v = v0; v < v1; v++) {
    const int64_t o = (int64_t)v * C;
    int32_t c = 0;
    for (; c + 4 <= C; c += 4)
      wasm_v128_store(y + o + c, wasm_f32x4_add(wasm_v128_load(x + o + c), wasm_v128_load(bias + c)));
    for (; c < C; c++) y[o + c] = x[o + c] + bias[c];
  }
}

/* out[c] += sum over voxels [v0, v1) of x[v][c] (the bias gradient). */
__attribute__((export_name("chan_sum"))) void chan_sum(const float *x, int32_t C, int32_t v0, int32_t v1,
                                                       double *out) {
  for (int32_t b0 = v0; b0 < v1; b0 += VB) {
    const int32_t b1 = v1 - b0 < VB ? v1 : b0 + VB;
    int32_t c = 0;
    for (; c + 4 <= C; c += 4) {
      v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0;
      const float *p = x + (int64_t)b0 * C + c;
      int32_t v = b0;
      for (; v + 2 <= b1; v += 2, p += 2 * C) {
        s0 = wasm_f32x4_add(s0, wasm_v128_load(p));
        s1 = wasm_f32x4_add(s1, wasm_v128_load(p + C));
      }
      if (v < b1) s0 = wasm_f32x4_add(s0, wasm_v128_load(p));
      add_lanes_f64(out + c, wasm_f32x4_add(s0, s1));
    }
    for (; c < C; c++) {
      float s = 0.0f;
      for (int32_t v = b0; v < b1; v++) s += x[(int64_t)v * C + c];
      out[c] += s;
    }
  }
}

/* Max pooling over output voxels [p0, p1) (g: kernel f*, stride s*, padding pad*, no dilation);
 * padding never wins. A NaN in a window gives NaN (as ONNX Runtime's MaxPool). */
__attribute__((export_name("max_pool"))) void max_pool(const Geom *g, const float *x, float *y, int32_t p0,
                                                       int32_t p1) {
  const int32_t C = g->inC;
  const int32_t outHW = g->outH * g->outW;
  const int32_t outDHW = g->outD * outHW;
  const int64_t inVox = (int64_t)g->inD * g->inH * g->inW;
  for (int32_t p = p0; p < p1; p++) {
    const int32_t b = p / outDHW;
    int32_t rem = p - b * outDHW;
    const int32_t od = rem / outHW;
    rem -= od * outHW;
    const int32_t oh = rem / g->outW;
    const int32_t ow = rem - oh * g->outW;
    const int32_t d0 = od * g->sD - g->padF, h0 = oh * g->sH - g->padT, w0 = ow * g->sW - g->padL;
    const int32_t dLo = d0 < 0 ? 0 : d0, hLo = h0 < 0 ? 0 : h0, wLo = w0 < 0 ? 0 : w0;
    const int32_t dHi = d0 + g->fD > g->inD ? g->inD : d0 + g->fD;
    const int32_t hHi = h0 + g->fH > g->inH ? g->inH : h0 + g->fH;
    const int32_t wHi = w0 + g->fW > g->inW ? g->inW : w0 + g->fW;
    const float *xb = x + (int64_t)b * inVox * C;
    float *out = y + (int64_t)p * C;
    int32_t c = 0;
    for (; c + 4 <= C; c += 4) {
      v128_t m = wasm_f32x4_splat(-__builtin_inff());
      for (int32_t d = dLo; d < dHi; d++)
        for (int32_t h = hLo; h < hHi; h++)
          for (int32_t w = wLo; w < wHi; w++)
            m = wasm_f32x4_max(m, wasm_v128_load(xb + (((int64_t)d * g->inH + h) * g->inW + w) * C + c));
      wasm_v128_store(out + c, m);
    }
    for (; c < C; c++) {
      float m = -__builtin_inff();
      for (int32_t d = dLo; d < dHi; d++)
        for (int32_t h = hLo; h < hHi; h++)
          for (int32_t w = wLo; w < wHi; w++) {
            const float v = xb[(((int64_t)d * g->inH + h) * g->inW + w) * C + c];
            m = v != v || m != m ? v + m : v > m ? v : m;
          }
      out[c] = m;
    }
  }
}
