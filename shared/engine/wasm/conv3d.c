/*
 * 3D convolution kernels: the training kernels of tfjs's cpu backend (trainer/kernels) and the
 * convolutions of the ONNX engine (shared/engine), compiled to wasm32 + SIMD128 (+ relaxed SIMD
 * fused multiply-add) by build.sh, together with ops.c.
 *
 * Layout as tfjs: activations NDHWC, filters [kd][kh][kw][cin][cout]. Every kernel is vol2col
 * followed by one SGEMM per chunk of output voxels:
 *   forward        Y[p][n]     = col[p][k] * W[k][n]
 *   filter grad    dW[k][n]   += col[p][k]^T * dY[p][n]
 *   input grad     dcol[p][k]  = dY[p][n] * W[k][n]^T, then col2vol scatter-adds dcol into dX
 * Each exported kernel handles the output-voxel range [p0, p1), so callers can split one call
 * across threads that share this module's memory. The code keeps nothing on the shadow stack
 * (no local arrays), so threads sharing the memory need no per-thread stack.
 * The engine's forward adds what inference fuses into a conv: a second input read as if it were
 * concatenated after the first on the channel axis (no concat buffer), the bias, and a ReLU.
 */
#include "kernels.h"

#ifndef MR
#define MR 4
#endif
#ifndef NR
#define NR 8
#endif
/* Contraction block: an NR-wide panel of KC rows (16 KiB) stays in L1 while rows of A stream. */
#define KC 512

/* True when the conv is a plain per-voxel matrix product (1x1x1, stride 1, no padding):
 * then col is the input itself and vol2col/col2vol are skipped. */
static int is_pointwise(const Geom *g) {
  return g->inC2 == 0 && g->fD == 1 && g->fH == 1 && g->fW == 1 && g->sD == 1 && g->sH == 1 && g->sW == 1 && g->padF == 0 &&
         g->padT == 0 && g->padL == 0 && g->inD == g->outD && g->inH == g->outH && g->inW == g->outW;
}

/* Copies one tap's channels into a col row: C1 values of x1 then, for a second input, C2 of x2. */
static inline void tap_copy(float *seg, const float *x1, const float *x2, int32_t C1, int32_t C2) {
  copy_f32(seg, x1, C1);
  if (C2) copy_f32(seg + C1, x2, C2);
}

/* Walks output voxels p0..p0+mc-1 and, for each, its kd/kh rows of the receptive field.
 * accumulate=0: col[p][k] = x (vol2col, zeros outside the volume); 1: x += col (col2vol, one input
 * only). With g->inC2 > 0 each tap reads inC channels of x and then inC2 channels of x2. */
static void patches(const Geom *g, float *x, const float *x2, float *col, int32_t p0, int32_t mc, int accumulate) {
  const int32_t C1 = g->inC;
  const int32_t C2 = g->inC2;
  const int32_t C = C1 + C2;
  const int32_t rowLen = g->fW * C;
  const int32_t K = g->fD * g->fH * rowLen;
  const int32_t outHW = g->outH * g->outW;
  const int32_t outDHW = g->outD * outHW;
  const int64_t inVox = (int64_t)g->inD * g->inH * g->inW;
  int32_t b = p0 / outDHW;
  int32_t rem = p0 - b * outDHW;
  int32_t od = rem / outHW;
  rem -= od * outHW;
  int32_t oh = rem / g->outW;
  int32_t ow = rem - oh * g->outW;
  for (int32_t i = 0; i < mc; i++) {
    float *row = col + (int64_t)i * K;
    float *xb = x + (int64_t)b * inVox * C1;
    const float *x2b = C2 ? x2 + (int64_t)b * inVox * C2 : 0;
    const int32_t id0 = od * g->sD - g->padF;
    const int32_t ih0 = oh * g->sH - g->padT;
    const int32_t iw0 = ow * g->sW - g->padL;
    const int contiguous = C2 == 0 && g->dW == 1 && iw0 >= 0 && iw0 + g->fW <= g->inW;
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
        const int64_t line = ((int64_t)id * g->inH + ih) * g->inW;
        float *xr = xb + line * C1;
        if (contiguous) {
          if (accumulate) add_f32(xr + iw0 * C1, row, rowLen);
          else copy_f32(row, xr + iw0 * C1, rowLen);
          continue;
        }
        for (int32_t kw = 0; kw < g->fW; kw++) {
          const int32_t iw = iw0 + kw * g->dW;
          float *seg = row + kw * C;
          if (iw < 0 || iw >= g->inW) {
            if (!accumulate) fill_zero(seg, C);
          } else if (accumulate) {
            add_f32(xr + iw * C1, seg, C1);
          } else {
            tap_copy(seg, xr + iw * C1, C2 ? x2b + (line + iw) * C2 : 0, C1, C2);
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

static int32_t patch_len(const Geom *g) { return g->fD * g->fH * g->fW * (g->inC + g->inC2); }

/* Floats of B panels needed for `cols` columns over L rows. */
static int32_t panel_floats(int32_t L, int32_t cols) { return ((cols + NR - 1) / NR) * NR * L; }

__attribute__((export_name("pack_filter"))) void pack_filter(const Geom *g, const float *w, float *wp) {
  pack_panels(w, patch_len(g), g->outC, g->outC, 1, wp);
}

__attribute__((export_name("pack_filter_t"))) void pack_filter_t(const Geom *g, const float *w, float *wtp) {
  pack_panels(w, g->outC, patch_len(g), 1, g->outC, wtp);
}

/* Rows of y start as the bias (or zero): the GEMM then adds the products. */
static void init_rows(float *y, int32_t rows, int32_t N, const float *bias) {
  if (!bias) {
    fill_zero(y, rows * N);
    return;
  }
  for (int32_t i = 0; i < rows; i++) copy_f32(y + (int64_t)i * N, bias, N);
}

/* y = conv(x [, x2 as extra channels]) [+ bias] [relu when flags & 1]. bias and x2 may be null. */
__attribute__((export_name("conv_forward"))) void conv_forward(const Geom *g, float *x, const float *x2,
                                                               const float *wp, const float *bias, float *y,
                                                               float *col, int32_t chunk, int32_t p0, int32_t p1,
                                                               int32_t flags) {
  const int32_t K = patch_len(g);
  const int32_t N = g->outC;
  const int pointwise = is_pointwise(g);
  for (int32_t c0 = p0; c0 < p1; c0 += chunk) {
    const int32_t mc = p1 - c0 < chunk ? p1 - c0 : chunk;
    const float *a = x + (int64_t)c0 * K;
    if (!pointwise) {
      patches(g, x, x2, col, c0, mc, 0);
      a = col;
    }
    float *yc = y + (int64_t)c0 * N;
    init_rows(yc, mc, N, bias);
    gemm(mc, N, K, a, K, 1, wp, yc, N);
    if (flags & 1) relu_inplace(yc, mc * N);
  }
}

/* Packs any B layout (element (t, j) at src[t*strideL + j*strideCol]) into the GEMM's panels. */
__attribute__((export_name("pack_b"))) void pack_b(const float *src, int32_t L, int32_t cols, int32_t strideL,
                                                   int32_t strideCol, float *out) {
  pack_panels(src, L, cols, strideL, strideCol, out);
}

/* Floats of the panels pack_b writes. */
__attribute__((export_name("packed_b_floats"))) int32_t packed_b_floats(int32_t L, int32_t cols) {
  return panel_floats(L, cols);
}

/* Transposed conv whose kernel equals its stride and has no padding (the U-Net's upsampling):
 * every input voxel owns one kernel-sized block of the output, so it is one GEMM per chunk of
 * input voxels, [mc x inC] * [inC x taps*outC] into tmp, then a scatter of each tap's outC values
 * (+ bias, relu when flags & 1). Rows [p0, p1) are input voxels; g->in* is the low-resolution side. */
__attribute__((export_name("conv_transpose_forward"))) void conv_transpose_forward(
    const Geom *g, const float *x, const float *wp, const float *bias, float *y, float *tmp, int32_t chunk,
    int32_t p0, int32_t p1, int32_t flags) {
  const int32_t Cin = g->inC;
  const int32_t N = g->outC;
  const int32_t taps = g->fD * g->fH * g->fW;
  const int32_t TN = taps * N;
  const int32_t inHW = g->inH * g->inW;
  const int32_t inDHW = g->inD * inHW;
  for (int32_t c0 = p0; c0 < p1; c0 += chunk) {
    const int32_t mc = p1 - c0 < chunk ? p1 - c0 : chunk;
    fill_zero(tmp, mc * TN);
    gemm(mc, TN, Cin, x + (int64_t)c0 * Cin, Cin, 1, wp, tmp, TN);
    for (int32_t i = 0; i < mc; i++) {
      const int32_t p = c0 + i;
      const int32_t b = p / inDHW;
      int32_t rem = p - b * inDHW;
      const int32_t d = rem / inHW;
      rem -= d * inHW;
      const int32_t h = rem / g->inW;
      const int32_t w = rem - h * g->inW;
      const float *src = tmp + (int64_t)i * TN;
      for (int32_t a = 0; a < g->fD; a++) {
        for (int32_t bb = 0; bb < g->fH; bb++) {
          const int64_t line = (((int64_t)b * g->outD + d * g->sD + a) * g->outH + h * g->sH + bb) * g->outW;
          for (int32_t c = 0; c < g->fW; c++, src += N) {
            float *dst = y + (line + w * g->sW + c) * N;
            if (bias) {
              for (int32_t n = 0; n < N; n++) dst[n] = src[n] + bias[n];
            } else {
              copy_f32(dst, src, N);
            }
            if (flags & 1) relu_inplace(dst, N);
          }
        }
      }
    }
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
      patches(g, x, 0, col, c0, mc, 0);
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
    patches(g, dx, 0, col, c0, mc, 1);
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

/*
 * Winograd F(2x2x2, 3x3x3) for 3x3x3 convs with stride 1 and no dilation (every conv of the U-Nets but
 * the 1x1x1 head): each 2x2x2 block of outputs comes from a 4x4x4 block of inputs through
 *   Y = A^T [ sum_c U[xi][c] * V[xi][c] ] A  (per axis),  V = B^T d B,  U = G g G^T,
 * which is 64 GEMMs of [tiles x C] * [C x N] instead of one of [voxels x 27C] * [27C x N]: 8 products
 * per output and input channel instead of 27. B^T, A^T and G are F(2,3)'s (Lavin & Gray 2016); the
 * transforms of d and of the GEMM results are additions only. Tiles are numbered over the batch and
 * the ceil(out/2)^3 grid; [t0, t1) is this thread's share, processed `chunk` tiles at a time. Scratch
 * per thread: V (64*chunk*C floats), M (64*chunk*N) and 64 vectors for the transforms. up holds the
 * 64 transformed filters, each packed as panels of packed_b_floats(C, N) floats (wino_filter).
 */
static inline void bt4(v128_t *p, int32_t s) {
  const v128_t d0 = p[0], d1 = p[s], d2 = p[2 * s], d3 = p[3 * s];
  p[0] = wasm_f32x4_sub(d0, d2);
  p[s] = wasm_f32x4_add(d1, d2);
  p[2 * s] = wasm_f32x4_sub(d2, d1);
  p[3 * s] = wasm_f32x4_sub(d1, d3);
}

/* B^T along x, y and z of a 4x4x4 block of vectors t[z*16 + y*4 + x]. */
static void input_transform(v128_t *t) {
  for (int32_t i = 0; i < 16; i++) bt4(t + 4 * i, 1);
  for (int32_t z = 0; z < 4; z++)
    for (int32_t x = 0; x < 4; x++) bt4(t + 16 * z + x, 4);
  for (int32_t i = 0; i < 16; i++) bt4(t + i, 16);
}

/* A^T along x, y and z: 64 vectors in t -> 8 in t[z*16 + y*4 + x] for x, y, z in {0, 1}. */
static void output_transform(v128_t *t) {
  for (int32_t i = 0; i < 16; i++) {
    v128_t *p = t + 4 * i;
    const v128_t m1 = p[1], m2 = p[2];
    p[0] = wasm_f32x4_add(wasm_f32x4_add(p[0], m1), m2);
    p[1] = wasm_f32x4_sub(wasm_f32x4_sub(m1, m2), p[3]);
  }
  for (int32_t z = 0; z < 4; z++)
    for (int32_t x = 0; x < 2; x++) {
      v128_t *p = t + 16 * z + x;
      const v128_t m1 = p[4], m2 = p[8];
      p[0] = wasm_f32x4_add(wasm_f32x4_add(p[0], m1), m2);
      p[4] = wasm_f32x4_sub(wasm_f32x4_sub(m1, m2), p[12]);
    }
  for (int32_t y = 0; y < 2; y++)
    for (int32_t x = 0; x < 2; x++) {
      v128_t *p = t + 4 * y + x;
      const v128_t m1 = p[16], m2 = p[32];
      p[0] = wasm_f32x4_add(wasm_f32x4_add(p[0], m1), m2);
      p[16] = wasm_f32x4_sub(wasm_f32x4_sub(m1, m2), p[48]);
    }
}

/* Loads up to 4 channels (n of them) of one voxel; zeros past n. */
static inline v128_t load_ch(const float *p, int32_t n) {
  if (n >= 4) return wasm_v128_load(p);
  float a = p[0], b = n > 1 ? p[1] : 0.0f, c = n > 2 ? p[2] : 0.0f;
  return wasm_f32x4_make(a, b, c, 0.0f);
}

/* Transforms the 4x4x4 input block of tile (b, z0, y0, x0) for channels [c, c+n) of one input
 * (channels-last, C of them) and stores them at v[xi*rowStride + col]. */
static void transform_block(const Geom *g, const float *x, int32_t C, int32_t b, int32_t z0, int32_t y0, int32_t x0,
                            int32_t c, int32_t n, v128_t *t, float *v, int64_t xiStride, int32_t col) {
  const int64_t inVox = (int64_t)g->inD * g->inH * g->inW;
  const float *xb = x + (int64_t)b * inVox * C + c;
  for (int32_t dz = 0; dz < 4; dz++) {
    const int32_t iz = z0 + dz;
    for (int32_t dy = 0; dy < 4; dy++) {
      const int32_t iy = y0 + dy;
      v128_t *row = t + 16 * dz + 4 * dy;
      const int inside = iz >= 0 && iz < g->inD && iy >= 0 && iy < g->inH;
      for (int32_t dx = 0; dx < 4; dx++) {
        const int32_t ix = x0 + dx;
        row[dx] = inside && ix >= 0 && ix < g->inW
                      ? load_ch(xb + (((int64_t)iz * g->inH + iy) * g->inW + ix) * C, n)
                      : wasm_f32x4_splat(0.0f);
      }
    }
  }
  input_transform(t);
  for (int32_t xi = 0; xi < 64; xi++) {
    float *dst = v + xi * xiStride + col;
    if (n >= 4) {
      wasm_v128_store(dst, t[xi]);
    } else {
      dst[0] = wasm_f32x4_extract_lane(t[xi], 0);
      if (n > 1) dst[1] = wasm_f32x4_extract_lane(t[xi], 1);
      if (n > 2) dst[2] = wasm_f32x4_extract_lane(t[xi], 2);
    }
  }
}

__attribute__((export_name("wino_scratch_floats"))) int32_t wino_scratch_floats(const Geom *g, int32_t chunk) {
  return 64 * chunk * (g->inC + g->inC2) + 64 * chunk * g->outC + 64 * 4;
}

__attribute__((export_name("wino_forward"))) void wino_forward(const Geom *g, const float *x, const float *x2,
                                                               const float *up, const float *bias, float *y,
                                                               float *scratch, int32_t chunk, int32_t t0, int32_t t1,
                                                               int32_t flags) {
  const int32_t C1 = g->inC, C2 = g->inC2, C = C1 + C2, N = g->outC;
  const int32_t tx = (g->outW + 1) / 2, ty = (g->outH + 1) / 2, tz = (g->outD + 1) / 2;
  const int32_t perSample = tx * ty * tz;
  const int32_t panel = panel_floats(C, N);
  v128_t *t = (v128_t *)scratch;
  float *v = scratch + 64 * 4;
  float *m = v + 64 * chunk * C;
  for (int32_t c0 = t0; c0 < t1; c0 += chunk) {
    const int32_t mc = t1 - c0 < chunk ? t1 - c0 : chunk;
    const int64_t vStride = (int64_t)mc * C;
    const int64_t mStride = (int64_t)mc * N;
    for (int32_t i = 0; i < mc; i++) {
      const int32_t tile = c0 + i;
      const int32_t b = tile / perSample;
      int32_t r = tile - b * perSample;
      const int32_t z = r / (tx * ty);
      r -= z * tx * ty;
      const int32_t yy = r / tx;
      const int32_t xx = r - yy * tx;
      const int32_t z0 = 2 * z - g->padF, y0 = 2 * yy - g->padT, x0 = 2 * xx - g->padL;
      for (int32_t c = 0; c < C1; c += 4)
        transform_block(g, x, C1, b, z0, y0, x0, c, C1 - c, t, v, vStride, i * C + c);
      for (int32_t c = 0; c < C2; c += 4)
        transform_block(g, x2, C2, b, z0, y0, x0, c, C2 - c, t, v, vStride, i * C + C1 + c);
    }
    fill_zero(m, 64 * mc * N);
    for (int32_t xi = 0; xi < 64; xi++)
      gemm(mc, N, C, v + xi * vStride, C, 1, up + (int64_t)xi * panel, m + xi * mStride, N);
    for (int32_t i = 0; i < mc; i++) {
      const int32_t tile = c0 + i;
      const int32_t b = tile / perSample;
      int32_t r = tile - b * perSample;
      const int32_t z = r / (tx * ty);
      r -= z * tx * ty;
      const int32_t yy = r / tx;
      const int32_t xx = r - yy * tx;
      for (int32_t n = 0; n < N; n += 4) {
        const int32_t nn = N - n < 4 ? N - n : 4;
        for (int32_t xi = 0; xi < 64; xi++) t[xi] = load_ch(m + xi * mStride + i * N + n, nn);
        output_transform(t);
        const v128_t bv = bias ? load_ch(bias + n, nn) : wasm_f32x4_splat(0.0f);
        for (int32_t dz = 0; dz < 2; dz++) {
          const int32_t oz = 2 * z + dz;
          if (oz >= g->outD) break;
          for (int32_t dy = 0; dy < 2; dy++) {
            const int32_t oy = 2 * yy + dy;
            if (oy >= g->outH) break;
            for (int32_t dx = 0; dx < 2; dx++) {
              const int32_t ox = 2 * xx + dx;
              if (ox >= g->outW) break;
              v128_t o = wasm_f32x4_add(t[16 * dz + 4 * dy + dx], bv);
              if (flags & 1) o = relu4(o);
              float *dst = y + ((((int64_t)b * g->outD + oz) * g->outH + oy) * g->outW + ox) * N + n;
              if (nn >= 4) {
                wasm_v128_store(dst, o);
              } else {
                dst[0] = wasm_f32x4_extract_lane(o, 0);
                if (nn > 1) dst[1] = wasm_f32x4_extract_lane(o, 1);
                if (nn > 2) dst[2] = wasm_f32x4_extract_lane(o, 2);
              }
            }
          }
        }
      }
    }
  }
}

/* A (4x2) of F(2,3) along x, y and z: 8 vectors t[z*16 + y*4 + x] (x, y, z < 2) -> 64. */
static void grad_transform(v128_t *t) {
  for (int32_t z = 0; z < 2; z++)
    for (int32_t y = 0; y < 2; y++) {
      v128_t *p = t + 16 * z + 4 * y;
      const v128_t a = p[0], b = p[1];
      p[1] = wasm_f32x4_add(a, b);
      p[2] = wasm_f32x4_sub(a, b);
      p[3] = wasm_f32x4_neg(b);
    }
  for (int32_t z = 0; z < 2; z++)
    for (int32_t x = 0; x < 4; x++) {
      v128_t *p = t + 16 * z + x;
      const v128_t a = p[0], b = p[4];
      p[4] = wasm_f32x4_add(a, b);
      p[8] = wasm_f32x4_sub(a, b);
      p[12] = wasm_f32x4_neg(b);
    }
  for (int32_t i = 0; i < 16; i++) {
    v128_t *p = t + i;
    const v128_t a = p[0], b = p[16];
    p[16] = wasm_f32x4_add(a, b);
    p[32] = wasm_f32x4_sub(a, b);
    p[48] = wasm_f32x4_neg(b);
  }
}

__attribute__((export_name("wino_grad_scratch_floats"))) int32_t wino_grad_scratch_floats(const Geom *g,
                                                                                          int32_t chunk) {
  return 64 * chunk * g->inC + 64 * panel_floats(chunk, g->outC) + 64 * 4;
}

/*
 * The filter gradient of the same Winograd conv (one input): with V = B^T d B per input tile and
 * Z = A dY A^T per 2x2x2 block of dy, dU[xi] += V[xi]^T Z[xi] over the tiles [t0, t1), 64 GEMMs of
 * [C x tiles] * [tiles x N]; the host adds the threads' dU and maps it back with dW = G^T dU G.
 * du (64 x C x N) must be zeroed by the caller.
 */
__attribute__((export_name("wino_filter_grad"))) void wino_filter_grad(const Geom *g, const float *x,
                                                                       const float *dy, float *du, float *scratch,
                                                                       int32_t chunk, int32_t t0, int32_t t1) {
  const int32_t C = g->inC, N = g->outC;
  const int32_t tx = (g->outW + 1) / 2, ty = (g->outH + 1) / 2, tz = (g->outD + 1) / 2;
  const int32_t perSample = tx * ty * tz;
  v128_t *t = (v128_t *)scratch;
  float *v = scratch + 64 * 4;
  float *zp = v + 64 * chunk * C;
  for (int32_t c0 = t0; c0 < t1; c0 += chunk) {
    const int32_t mc = t1 - c0 < chunk ? t1 - c0 : chunk;
    const int64_t vStride = (int64_t)mc * C;
    const int32_t zPanel = panel_floats(mc, N);
    fill_zero(zp, 64 * zPanel);
    for (int32_t i = 0; i < mc; i++) {
      const int32_t tile = c0 + i;
      const int32_t b = tile / perSample;
      int32_t r = tile - b * perSample;
      const int32_t z = r / (tx * ty);
      r -= z * tx * ty;
      const int32_t yy = r / tx;
      const int32_t xx = r - yy * tx;
      for (int32_t c = 0; c < C; c += 4)
        transform_block(g, x, C, b, 2 * z - g->padF, 2 * yy - g->padT, 2 * xx - g->padL, c, C - c, t, v, vStride,
                        i * C + c);
      for (int32_t n = 0; n < N; n += 4) {
        const int32_t nn = N - n < 4 ? N - n : 4;
        for (int32_t xi = 0; xi < 64; xi++) t[xi] = wasm_f32x4_splat(0.0f);
        for (int32_t dz = 0; dz < 2; dz++) {
          const int32_t oz = 2 * z + dz;
          if (oz >= g->outD) break;
          for (int32_t dyy = 0; dyy < 2; dyy++) {
            const int32_t oy = 2 * yy + dyy;
            if (oy >= g->outH) break;
            for (int32_t dx = 0; dx < 2; dx++) {
              const int32_t ox = 2 * xx + dx;
              if (ox >= g->outW) break;
              t[16 * dz + 4 * dyy + dx] =
                  load_ch(dy + ((((int64_t)b * g->outD + oz) * g->outH + oy) * g->outW + ox) * N + n, nn);
            }
          }
        }
        grad_transform(t);
        /* Panel layout of Z[xi]: (tile i, channel n) at (n / NR) * NR * mc + i * NR + n % NR. */
        float *dst = zp + (n / NR) * NR * mc + i * NR + n % NR;
        for (int32_t xi = 0; xi < 64; xi++) {
          float *d = dst + xi * zPanel;
          if (nn >= 4) {
            wasm_v128_store(d, t[xi]);
          } else {
            d[0] = wasm_f32x4_extract_lane(t[xi], 0);
            if (nn > 1) d[1] = wasm_f32x4_extract_lane(t[xi], 1);
            if (nn > 2) d[2] = wasm_f32x4_extract_lane(t[xi], 2);
          }
        }
      }
    }
    for (int32_t xi = 0; xi < 64; xi++)
      gemm(C, N, mc, v + xi * vStride, 1, C, zp + xi * zPanel, du + (int64_t)xi * C * N, N);
  }
}
