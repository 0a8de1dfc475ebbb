/*
 * 3D convolution kernels for tfjs's cpu backend, compiled to wasm32 + SIMD128 by build.sh.
 *
 * Layout as tfjs: activations NDHWC, filters [kd][kh][kw][cin][cout]. Every kernel is vol2col
 * followed by one SGEMM per chunk of output voxels:
 *   forward        Y[p][n]     = col[p][k] * W[k][n]
 *   filter grad    dW[k][n]   += col[p][k]^T * dY[p][n]
 *   input grad     dcol[p][k]  = dY[p][n] * W[k][n]^T, then col2vol scatter-adds dcol into dX
 * Each exported kernel handles the output-voxel range [p0, p1), so callers can split one call
 * across threads that share this module's memory. The code keeps nothing on the shadow stack
 * (no local arrays), so threads sharing the memory need no per-thread stack.
 */
#include <stdint.h>
#include <wasm_simd128.h>

#ifndef MR
#define MR 4
#endif
#ifndef NR
#define NR 8
#endif
/* Contraction block: an NR-wide panel of KC rows (16 KiB) stays in L1 while rows of A stream. */
#define KC 512

/* Conv geometry, written by the host as 21 consecutive int32 values. */
typedef struct {
  int32_t batch, inD, inH, inW, inC;
  int32_t outD, outH, outW, outC;
  int32_t fD, fH, fW;
  int32_t sD, sH, sW;
  int32_t dD, dH, dW;
  int32_t padF, padT, padL;
} Geom;

static void fill_zero(float *dst, int32_t n) {
  for (int32_t i = 0; i < n; i++) dst[i] = 0.0f;
}

static void copy_f32(float *dst, const float *src, int32_t n) {
  for (int32_t i = 0; i < n; i++) dst[i] = src[i];
}

static void add_f32(float *dst, const float *src, int32_t n) {
  for (int32_t i = 0; i < n; i++) dst[i] += src[i];
}

/* True when the conv is a plain per-voxel matrix product (1x1x1, stride 1, no padding):
 * then col is the input itself and vol2col/col2vol are skipped. */
static int is_pointwise(const Geom *g) {
  return g->fD == 1 && g->fH == 1 && g->fW == 1 && g->sD == 1 && g->sH == 1 && g->sW == 1 && g->padF == 0 &&
         g->padT == 0 && g->padL == 0 && g->inD == g->outD && g->inH == g->outH && g->inW == g->outW;
}

/* Walks output voxels p0..p0+mc-1 and, for each, its kd/kh rows of the receptive field.
 * accumulate=0: col[p][k] = x (vol2col, zeros outside the volume); 1: x += col (col2vol). */
static void patches(const Geom *g, float *x, float *col, int32_t p0, int32_t mc, int accumulate) {
  const int32_t C = g->inC;
  const int32_t rowLen = g->fW * C;
  const int32_t K = g->fD * g->fH * rowLen;
  const int32_t outHW = g->outH * g->outW;
  const int32_t outDHW = g->outD * outHW;
  const int32_t inVol = g->inD * g->inH * g->inW * C;
  int32_t b = p0 / outDHW;
  int32_t rem = p0 - b * outDHW;
  int32_t od = rem / outHW;
  rem -= od * outHW;
  int32_t oh = rem / g->outW;
  int32_t ow = rem - oh * g->outW;
  for (int32_t i = 0; i < mc; i++) {
    float *row = col + (int64_t)i * K;
    float *xb = x + (int64_t)b * inVol;
    const int32_t id0 = od * g->sD - g->padF;
    const int32_t ih0 = oh * g->sH - g->padT;
    const int32_t iw0 = ow * g->sW - g->padL;
    const int contiguous = g->dW == 1 && iw0 >= 0 && iw0 + g->fW <= g->inW;
    for (int32_t kd = 0; kd < g->fD; kd++) {
      const int32_t id = id0 + kd * g->dD;
      if (id < 0 || id >= g->inD) {
        if (!accumulate) fill_zero(row, g->fH * rowLen);
        row += g->fH * rowLen;
        continue;
      }
      for (int32_t kh = 0; kh < g->fH; kh++, row += rowLen) {
        const int32_t ih = ih0 + kh * g->dH;
        if (ih < 0 || ih >= g->inH) {
          if (!accumulate) fill_zero(row, rowLen);
          continue;
        }
        float *xr = xb + ((int64_t)id * g->inH + ih) * g->inW * C;
        if (contiguous) {
          if (accumulate) add_f32(xr + iw0 * C, row, rowLen);
          else copy_f32(row, xr + iw0 * C, rowLen);
          continue;
        }
        for (int32_t kw = 0; kw < g->fW; kw++) {
          const int32_t iw = iw0 + kw * g->dW;
          float *seg = row + kw * C;
          if (iw < 0 || iw >= g->inW) {
            if (!accumulate) fill_zero(seg, C);
          } else if (accumulate) {
            add_f32(xr + iw * C, seg, C);
          } else {
            copy_f32(seg, xr + iw * C, C);
          }
        }
      }
    }
    if (++ow == g->outW) {
      ow = 0;
      if (++oh == g->outH) {
        oh = 0;
        if (++od == g->outD) {
          od = 0;
          b++;
        }
      }
    }
  }
}

/* Packs B (L rows of `cols` values; element (t, j) at src[t*strideL + j*strideCol]) into
 * NR-wide panels: out[jp][t][0..NR-1], zero-padded past the last column. */
static void pack_panels(const float *src, int32_t L, int32_t cols, int32_t strideL, int32_t strideCol, float *out) {
  for (int32_t j0 = 0; j0 < cols; j0 += NR) {
    const int32_t nc = cols - j0 < NR ? cols - j0 : NR;
    for (int32_t t = 0; t < L; t++) {
      const float *s = src + (int64_t)t * strideL + (int64_t)j0 * strideCol;
      int32_t j = 0;
      for (; j < nc; j++) out[j] = s[j * strideCol];
      for (; j < NR; j++) out[j] = 0.0f;
      out += NR;
    }
  }
}

static inline v128_t fmadd(v128_t acc, v128_t a, v128_t b) { return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b)); }

/* c[0..n) += v's first n lanes (n <= 4); lane indices must be constants, hence the cases. */
static inline void add_lanes(float *c, int32_t n, v128_t v) {
  if (n >= 4) {
    wasm_v128_store(c, wasm_f32x4_add(wasm_v128_load(c), v));
    return;
  }
  if (n > 0) c[0] += wasm_f32x4_extract_lane(v, 0);
  if (n > 1) c[1] += wasm_f32x4_extract_lane(v, 1);
  if (n > 2) c[2] += wasm_f32x4_extract_lane(v, 2);
}

/* C[MR x NR] += A[MR x kc] * Bpanel[kc x NR], A element (r, t) at a[r*ars + t*ats]. Rows past
 * `mrows` re-read row 0 and are dropped, so edges need no separate code path. The fixed-size
 * loops unroll fully and the accumulators live in registers. */
static void micro(int32_t kc, const float *a, int32_t ars, int32_t ats, int32_t mrows, const float *b, float *c,
                  int32_t ldc, int32_t ncols) {
  const float *ar[MR];
  v128_t acc[MR][NR / 4];
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++) {
    ar[r] = r < mrows ? a + r * ars : a;
#pragma clang loop unroll(full)
    for (int j = 0; j < NR / 4; j++) acc[r][j] = wasm_f32x4_splat(0.0f);
  }
  int32_t o = 0;
  for (int32_t t = 0; t < kc; t++, o += ats, b += NR) {
    v128_t bv[NR / 4];
#pragma clang loop unroll(full)
    for (int j = 0; j < NR / 4; j++) bv[j] = wasm_v128_load(b + 4 * j);
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
      const v128_t x = wasm_v128_load32_splat(ar[r] + o);
#pragma clang loop unroll(full)
      for (int j = 0; j < NR / 4; j++) acc[r][j] = fmadd(acc[r][j], x, bv[j]);
    }
  }
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++) {
    if (r < mrows) {
#pragma clang loop unroll(full)
      for (int j = 0; j < NR / 4; j++) add_lanes(c + r * ldc + 4 * j, ncols - 4 * j, acc[r][j]);
    }
  }
}

/* C[M x N] += A[M x L] * B[L x N] with B already in NR-wide panels of L rows. */
static void gemm(int32_t M, int32_t N, int32_t L, const float *a, int32_t ars, int32_t ats, const float *bp, float *c,
                 int32_t ldc) {
  for (int32_t t0 = 0; t0 < L; t0 += KC) {
    const int32_t kc = L - t0 < KC ? L - t0 : KC;
    for (int32_t j0 = 0; j0 < N; j0 += NR) {
      const float *b = bp + ((int64_t)j0 * L + (int64_t)t0 * NR);
      const int32_t nc = N - j0 < NR ? N - j0 : NR;
      for (int32_t i = 0; i < M; i += MR) {
        const int32_t mr = M - i < MR ? M - i : MR;
        micro(kc, a + (int64_t)i * ars + (int64_t)t0 * ats, ars, ats, mr, b, c + (int64_t)i * ldc + j0, ldc, nc);
      }
    }
  }
}

static int32_t patch_len(const Geom *g) { return g->fD * g->fH * g->fW * g->inC; }

/* Floats of B panels needed for `cols` columns over L rows. */
static int32_t panel_floats(int32_t L, int32_t cols) { return ((cols + NR - 1) / NR) * NR * L; }

__attribute__((export_name("pack_filter"))) void pack_filter(const Geom *g, const float *w, float *wp) {
  pack_panels(w, patch_len(g), g->outC, g->outC, 1, wp);
}

__attribute__((export_name("pack_filter_t"))) void pack_filter_t(const Geom *g, const float *w, float *wtp) {
  pack_panels(w, g->outC, patch_len(g), 1, g->outC, wtp);
}

__attribute__((export_name("conv_forward"))) void conv_forward(const Geom *g, float *x, const float *wp, float *y,
                                                               float *col, int32_t chunk, int32_t p0, int32_t p1) {
  const int32_t K = patch_len(g);
  const int32_t N = g->outC;
  const int pointwise = is_pointwise(g);
  for (int32_t c0 = p0; c0 < p1; c0 += chunk) {
    const int32_t mc = p1 - c0 < chunk ? p1 - c0 : chunk;
    const float *a = x + (int64_t)c0 * K;
    if (!pointwise) {
      patches(g, x, col, c0, mc, 0);
      a = col;
    }
    float *yc = y + (int64_t)c0 * N;
    fill_zero(yc, mc * N);
    gemm(mc, N, K, a, K, 1, wp, yc, N);
  }
}

/* dw (K x N) must be zeroed by the caller; this adds the range's contribution. */
__attribute__((export_name("conv_filter_grad"))) void conv_filter_grad(const Geom *g, float *x, const float *dy,
                                                                       float *dw, float *col, float *dyp, int32_t chunk,
                                                                       int32_t p0, int32_t p1) {
  const int32_t K = patch_len(g);
  const int32_t N = g->outC;
  const int pointwise = is_pointwise(g);
  for (int32_t c0 = p0; c0 < p1; c0 += chunk) {
    const int32_t mc = p1 - c0 < chunk ? p1 - c0 : chunk;
    const float *a = x + (int64_t)c0 * K;
    if (!pointwise) {
      patches(g, x, col, c0, mc, 0);
      a = col;
    }
    pack_panels(dy + (int64_t)c0 * N, mc, N, N, 1, dyp);
    gemm(K, N, mc, a, 1, K, dyp, dw, N);
  }
}

/* dx (the whole input) must be zeroed by the caller; this scatter-adds the range's contribution. */
__attribute__((export_name("conv_input_grad"))) void conv_input_grad(const Geom *g, const float *dy, const float *wtp,
                                                                     float *dx, float *col, int32_t chunk, int32_t p0,
                                                                     int32_t p1) {
  const int32_t K = patch_len(g);
  const int32_t N = g->outC;
  const int pointwise = is_pointwise(g);
  for (int32_t c0 = p0; c0 < p1; c0 += chunk) {
    const int32_t mc = p1 - c0 < chunk ? p1 - c0 : chunk;
    if (pointwise) {
      gemm(mc, K, N, dy + (int64_t)c0 * N, N, 1, wtp, dx + (int64_t)c0 * K, K);
      continue;
    }
    fill_zero(col, mc * K);
    gemm(mc, K, N, dy + (int64_t)c0 * N, N, 1, wtp, col, K);
    patches(g, dx, col, c0, mc, 1);
  }
}

/* Sums per-thread partial results: dst[i] += src[i] for i in [i0, i1). */
__attribute__((export_name("add_into"))) void add_into(float *dst, const float *src, int32_t i0, int32_t i1) {
  add_f32(dst + i0, src + i0, i1 - i0);
}

/* Floats of scratch one thread needs (col chunk + packed dy chunk), for the host's layout. */
__attribute__((export_name("scratch_floats"))) int32_t scratch_floats(const Geom *g, int32_t chunk) {
  return chunk * patch_len(g) + panel_floats(chunk, g->outC);
}

__attribute__((export_name("filter_panel_floats"))) int32_t filter_panel_floats(const Geom *g) {
  const int32_t K = patch_len(g);
  const int32_t a = panel_floats(K, g->outC);
  const int32_t b = panel_floats(g->outC, K);
  return a > b ? a : b;
}
