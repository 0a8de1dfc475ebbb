/**
 * Separable 3-D Gaussian filter with scipy.ndimage.gaussian_filter's semantics: the kernel
 * radius is int(truncate * sigma + 0.5) (truncate 4 by default), the kernel is normalised to
 * sum 1, and borders use mode 'reflect' (half-sample symmetric: d c b a | a b c d | d c b a),
 * repeated as often as the kernel needs. Axes whose sigma is ~0 are skipped, as SciPy does.
 * Each 1-D pass accumulates in float64 and stores float32.
 */
import type { Dims3 } from '../volume/volume.ts';

/** scipy.ndimage._filters._gaussian_kernel1d (order 0). */
export function gaussianKernel(sigma: number, truncate = 4): Float64Array {
  const radius = Math.trunc(truncate * sigma + 0.5);
  const w = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let t = -radius; t <= radius; t++) {
    const v = Math.exp((-0.5 / (sigma * sigma)) * t * t);
    w[t + radius] = v;
    sum += v;
  }
  for (let t = 0; t < w.length; t++) w[t] /= sum;
  return w;
}

/** Index of a sample outside [0, n) under 'reflect' (period 2n). */
export function reflectIndex(i: number, n: number): number {
  const period = 2 * n;
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - 1 - m;
}

/**
 * Gaussian filter of a [nz, ny, nx] volume (index i + nx*(j + ny*k)). `sigma` per axis in
 * voxels (i, j, k) or one value for all.
 */
export function gaussianFilter3d(
  src: Float32Array,
  dims: Dims3,
  sigma: number | Dims3,
  truncate = 4,
  out?: Float32Array,
): Float32Array {
  const sigmas: Dims3 = typeof sigma === 'number' ? [sigma, sigma, sigma] : sigma;
  const [nx, ny, nz] = dims;
  const result = out ?? new Float32Array(src.length);
  const axes = [0, 1, 2].filter((a) => sigmas[a] > 1e-15);
  if (axes.length === 0) {
    result.set(src);
    return result;
  }
  // Passes alternate between `result` and one scratch buffer, chosen so the last lands in `result`.
  const scratch = axes.length > 1 ? new Float32Array(src.length) : result;
  let current: Float32Array = src;
  for (let n = 0; n < axes.length; n++) {
    const axis = axes[n];
    const dst = (axes.length - 1 - n) % 2 === 0 ? result : scratch;
    const w = gaussianKernel(sigmas[axis], truncate);
    if (axis === 0) filterRows(current, dst, nx, ny * nz, w);
    else if (axis === 1) filterStrided(current, dst, nz, ny, nx, w);
    else filterStrided(current, dst, 1, nz, nx * ny, w);
    current = dst;
  }
  return result;
}

/** Contiguous lines (axis i): copy each line into a reflected, padded buffer, then correlate. */
function filterRows(src: Float32Array, dst: Float32Array, n: number, lines: number, w: Float64Array): void {
  const r = (w.length - 1) >> 1;
  const buf = new Float64Array(n + 2 * r);
  const pad = new Int32Array(2 * r);
  for (let t = 0; t < r; t++) {
    pad[t] = reflectIndex(t - r, n);
    pad[r + t] = reflectIndex(n + t, n);
  }
  const w0 = w[r];
  for (let line = 0; line < lines; line++) {
    const base = line * n;
    for (let t = 0; t < r; t++) {
      buf[t] = src[base + pad[t]];
      buf[n + r + t] = src[base + pad[r + t]];
    }
    for (let i = 0; i < n; i++) buf[r + i] = src[base + i];
    for (let i = 0; i < n; i++) {
      const c = i + r;
      let acc = w0 * buf[c];
      for (let t = 1; t <= r; t++) acc += w[r + t] * (buf[c - t] + buf[c + t]);
      dst[base + i] = acc;
    }
  }
}

/**
 * A strided axis of length n between `outer` blocks and `inner` contiguous voxels: whole rows of
 * `inner` voxels are accumulated at once, so memory is read in order.
 */
function filterStrided(
  src: Float32Array,
  dst: Float32Array,
  outer: number,
  n: number,
  inner: number,
  w: Float64Array,
): void {
  const r = (w.length - 1) >> 1;
  const acc = new Float64Array(inner);
  const w0 = w[r];
  for (let o = 0; o < outer; o++) {
    const block = o * n * inner;
    for (let p = 0; p < n; p++) {
      const centre = block + p * inner;
      for (let q = 0; q < inner; q++) acc[q] = w0 * src[centre + q];
      for (let t = 1; t <= r; t++) {
        const wt = w[r + t];
        const lo = block + reflectIndex(p - t, n) * inner;
        const hi = block + reflectIndex(p + t, n) * inner;
        for (let q = 0; q < inner; q++) acc[q] += wt * (src[lo + q] + src[hi + q]);
      }
      const out = block + p * inner;
      for (let q = 0; q < inner; q++) dst[out + q] = acc[q];
    }
  }
}
