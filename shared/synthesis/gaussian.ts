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
      // Two taps per sweep over the row: half the loads and stores of the accumulator.
      let t = 1;
      for (; t + 1 <= r; t += 2) {
        const wa = w[r + t];
        const wb = w[r + t + 1];
        const la = block + reflectIndex(p - t, n) * inner;
        const ha = block + reflectIndex(p + t, n) * inner;
        const lb = block + reflectIndex(p - t - 1, n) * inner;
        const hb = block + reflectIndex(p + t + 1, n) * inner;
        for (let q = 0; q < inner; q++) {
          acc[q] += wa * (src[la + q] + src[ha + q]) + wb * (src[lb + q] + src[hb + q]);
        }
      }
      if (t <= r) {
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

/**
 * Coarsening factor of gaussianFilterMultiscale: floor(sigma / coarse), where `coarse` is the
 * sigma left on the coarse grid (default 2; 1 (exact) when that is below 2).
 */
export function multiscaleFactor(sigma: number, coarse = 2): number {
  return Math.max(1, Math.floor(sigma / coarse));
}

/**
 * A Gaussian filter of one sigma for smooth random fields (the texture's noise and speckle):
 * the volume is averaged over f^3 blocks (f = floor(sigma / coarseSigma), so about coarseSigma
 * is left on the coarse grid), filtered there with sigma_c, and interpolated back trilinearly,
 * which costs ~f^3 times less; exact (gaussianFilter3d) when f is 1. sigma_c = sqrt(sigma^2 - (f^2 - 1) / 12 - f^2 / 6) / f, so that the
 * block average (variance (f^2 - 1) / 12), the coarse Gaussian and the interpolation (a tent of
 * variance f^2 / 6) add up to the asked sigma^2, and the deviations from the mean are scaled so
 * that filtered white noise has the exact filter's variance. The result keeps the mean, the
 * variance and, to within a few per cent (texture.test.ts), the autocorrelation of the exact
 * filter. For random fields only: a sharp edge in an image would show the coarse grid.
 */
export function gaussianFilterMultiscale(
  src: Float32Array,
  dims: Dims3,
  sigma: number,
  out?: Float32Array,
  coarseSigma = 2,
): Float32Array {
  const f = multiscaleFactor(sigma, coarseSigma);
  if (f === 1) return gaussianFilter3d(src, dims, sigma, 4, out);
  const sigmaC = Math.sqrt(sigma * sigma - (f * f - 1) / 12 - (f * f) / 6) / f;
  const cdims = dims.map((d) => Math.ceil(d / f)) as Dims3;
  const coarse = gaussianFilter3d(blockMean(src, dims, f, cdims), cdims, sigmaC);
  const result = out ?? new Float32Array(src.length);
  // The sum of the stored values, in voxel order, comes with the interpolation (one pass less).
  const mean = upsampleLinear(coarse, cdims, dims, f, result) / result.length;
  // Same second moment is not same energy: scale the deviations from the mean so that the
  // variance of filtered white noise equals the exact filter's (sum of squared weights).
  const k = Math.sqrt((sumSquares(gaussianKernel(sigma)) / effectiveSumSquares(f, sigmaC)) ** 3);
  for (let v = 0; v < result.length; v++) result[v] = mean + (result[v] - mean) * k;
  return result;
}

function sumSquares(w: Float64Array): number {
  let s = 0;
  for (const x of w) s += x * x;
  return s;
}

/**
 * Sum of squared weights of the 1-D operator block mean (f) -> Gaussian (sigmaC, coarse) ->
 * linear interpolation, on an unbounded line, averaged over the f output phases.
 */
function effectiveSumSquares(f: number, sigmaC: number): number {
  const g = gaussianKernel(sigmaC);
  const r = (g.length - 1) >> 1;
  // Coarse weights around one output: c in [-span, span] covers interpolation + Gaussian.
  const span = r + 2;
  let total = 0;
  for (let x = 0; x < f; x++) {
    const w = new Map<number, number>();
    for (let c = -1; c <= 1; c++) {
      const t = 1 - Math.abs(x - (c * f + (f - 1) / 2)) / f;
      if (t <= 0) continue;
      for (let d = -r; d <= r; d++) {
        const cc = c + d;
        if (Math.abs(cc) > span) continue;
        for (let y = cc * f; y < cc * f + f; y++) w.set(y, (w.get(y) ?? 0) + (t * g[d + r]) / f);
      }
    }
    for (const v of w.values()) total += v * v;
  }
  return total / f;
}

/**
 * Mean over f x f x f blocks of the volume continued by reflection (as the filter's borders):
 * the ceil(n / f) blocks per axis are centred on the volume, so every block holds f^3 voxels and
 * has the same variance (a short edge block would be noisier).
 */
function blockMean(src: Float32Array, dims: Dims3, f: number, cdims: Dims3): Float32Array {
  const [nx, ny] = dims;
  const [cx, cy, cz] = cdims;
  const fine = [0, 1, 2].map((a) => {
    const off = Math.floor((cdims[a] * f - dims[a]) / 2);
    return Int32Array.from({ length: cdims[a] * f }, (_, t) => reflectIndex(t - off, dims[a]));
  });
  const out = new Float32Array(cx * cy * cz);
  const inv = 1 / (f * f * f);
  let c = 0;
  for (let k = 0; k < cz; k++) {
    for (let j = 0; j < cy; j++) {
      for (let i = 0; i < cx; i++, c++) {
        let sum = 0;
        for (let dk = 0; dk < f; dk++) {
          const zk = nx * ny * fine[2][k * f + dk];
          for (let dj = 0; dj < f; dj++) {
            const row = zk + nx * fine[1][j * f + dj];
            for (let di = 0; di < f; di++) sum += src[row + fine[0][i * f + di]];
          }
        }
        out[c] = sum * inv;
      }
    }
  }
  return out;
}

/** Per fine index: the two coarse indices and the weight of the second (block centres as blockMean's). */
function upsampleTable(n: number, cn: number, f: number, stride: number) {
  const lo = new Int32Array(n);
  const hi = new Int32Array(n);
  const w = new Float64Array(n);
  const off = Math.floor((cn * f - n) / 2);
  for (let i = 0; i < n; i++) {
    const x = Math.min(Math.max((i + off - (f - 1) / 2) / f, 0), cn - 1);
    const a = Math.min(Math.floor(x), Math.max(cn - 2, 0));
    lo[i] = a * stride;
    hi[i] = Math.min(a + 1, cn - 1) * stride;
    w[i] = x - a;
  }
  return { lo, hi, w };
}

/** Trilinear interpolation of the coarse grid into `out`; returns the sum of the stored values. */
function upsampleLinear(
  coarse: Float32Array,
  cdims: Dims3,
  dims: Dims3,
  f: number,
  out: Float32Array,
): number {
  const [nx, ny, nz] = dims;
  const tx = upsampleTable(nx, cdims[0], f, 1);
  const ty = upsampleTable(ny, cdims[1], f, cdims[0]);
  const tz = upsampleTable(nz, cdims[2], f, cdims[0] * cdims[1]);
  let v = 0;
  let sum = 0;
  for (let k = 0; k < nz; k++) {
    const z0 = tz.lo[k];
    const z1 = tz.hi[k];
    const wz = tz.w[k];
    for (let j = 0; j < ny; j++) {
      const wy = ty.w[j];
      const r00 = z0 + ty.lo[j];
      const r01 = z0 + ty.hi[j];
      const r10 = z1 + ty.lo[j];
      const r11 = z1 + ty.hi[j];
      for (let i = 0; i < nx; i++, v++) {
        const x0 = tx.lo[i];
        const x1 = tx.hi[i];
        const wx = tx.w[i];
        const a = coarse[r00 + x0] + (coarse[r00 + x1] - coarse[r00 + x0]) * wx;
        const b = coarse[r01 + x0] + (coarse[r01 + x1] - coarse[r01 + x0]) * wx;
        const c = coarse[r10 + x0] + (coarse[r10 + x1] - coarse[r10 + x0]) * wx;
        const d = coarse[r11 + x0] + (coarse[r11 + x1] - coarse[r11 + x0]) * wx;
        const e = a + (b - a) * wy;
        const stored = Math.fround(e + (c + (d - c) * wy - e) * wz);
        out[v] = stored;
        sum += stored;
      }
    }
  }
  return sum;
}
