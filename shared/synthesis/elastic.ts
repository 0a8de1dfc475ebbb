/**
 * Random-grid elastic deformation of a binary shape with elasticdeform's semantics
 * (`deform_random_grid(X, sigma, points=3, order=0, axis=(a, b))`): a points x points control grid
 * spans the two deformed axes (first and last control points on the box borders), each control
 * point gets N(0, sigma) displacements (one per deformed axis), the displacement field is the
 * cubic B-spline interpolation of the control grid (coefficients prefiltered with mirror
 * boundaries, like scipy's spline_filter1d), and the shape is resampled with nearest neighbour
 * (round half up) and constant 0 outside. The field is constant along the third axis.
 */
import type { Rng } from '../random.ts';
import type { Shape } from './ellipsoid.ts';

export type AxisPair = [0 | 1 | 2, 0 | 1 | 2];

/** The reference deforms three times, over these axis pairs in this order. */
export const DEFORM_AXES: readonly AxisPair[] = [
  [0, 1],
  [1, 2],
  [0, 2],
];

export function deformRandomGrid(shape: Shape, sigma: number, axes: AxisPair, rng: Rng, points = 3): Shape {
  // Same draw order as numpy.random.randn(2, points, points) * sigma.
  const displacement = new Float64Array(2 * points * points);
  for (let n = 0; n < displacement.length; n++) displacement[n] = rng.normal() * sigma;
  return deformGrid(shape, displacement, axes, points);
}

/**
 * `displacement` is [2, points, points] (C order): displacement[d][pa][pb] moves deformed axis d
 * (0 = axes[0], 1 = axes[1]) at control point (pa, pb).
 */
export function deformGrid(shape: Shape, displacement: Float64Array, axes: AxisPair, points = 3): Shape {
  const coef = prefilterGrid(displacement, points);
  const [a, b] = axes;
  const la = shape.dims[a];
  const lb = shape.dims[b];
  const wa = splineTable(la, points);
  const wb = splineTable(lb, points);
  // Source coordinate along each deformed axis for every output (pa, pb); -1 = outside.
  const srcA = new Int32Array(la * lb);
  const srcB = new Int32Array(la * lb);
  for (let pa = 0; pa < la; pa++) {
    for (let pb = 0; pb < lb; pb++) {
      let da = 0;
      let db = 0;
      for (let u = 0; u < 4; u++) {
        const ca = wa.index[4 * pa + u];
        const wu = wa.weight[4 * pa + u];
        for (let v = 0; v < 4; v++) {
          const w = wu * wb.weight[4 * pb + v];
          const cell = ca * points + wb.index[4 * pb + v];
          da += w * coef[cell];
          db += w * coef[points * points + cell];
        }
      }
      const ia = nearestInside(pa + da, la);
      const ib = nearestInside(pb + db, lb);
      const n = pa * lb + pb;
      srcA[n] = ia;
      srcB[n] = ia < 0 ? -1 : ib;
    }
  }
  const strides = [1, shape.dims[0], shape.dims[0] * shape.dims[1]];
  const c = 3 - a - b;
  const lc = shape.dims[c];
  const out = new Uint8Array(shape.data.length);
  for (let pa = 0; pa < la; pa++) {
    for (let pb = 0; pb < lb; pb++) {
      const n = pa * lb + pb;
      if (srcB[n] < 0) continue;
      const from = srcA[n] * strides[a] + srcB[n] * strides[b];
      const to = pa * strides[a] + pb * strides[b];
      for (let pc = 0; pc < lc; pc++) out[to + pc * strides[c]] = shape.data[from + pc * strides[c]];
    }
  }
  return { dims: [...shape.dims] as Shape['dims'], data: out };
}

/** order-0 map_coordinates with mode 'constant': outside [0, len-1] is -1, else round half up. */
function nearestInside(x: number, len: number): number {
  if (x < 0 || x > len - 1) return -1;
  return Math.floor(x + 0.5);
}

/** Cubic B-spline weights and mirror-mapped control indices for every position along an axis. */
function splineTable(len: number, points: number): { weight: Float64Array; index: Int32Array } {
  const weight = new Float64Array(4 * len);
  const index = new Int32Array(4 * len);
  for (let p = 0; p < len; p++) {
    const cp = len > 1 ? ((points - 1) * p) / (len - 1) : 0;
    const fl = Math.floor(cp);
    const x = cp - fl;
    const z = 1 - x;
    const w1 = (x * x * (x - 2) * 3 + 4) / 6;
    const w2 = (z * z * (z - 2) * 3 + 4) / 6;
    const w0 = (z * z * z) / 6;
    weight[4 * p] = w0;
    weight[4 * p + 1] = w1;
    weight[4 * p + 2] = w2;
    weight[4 * p + 3] = 1 - w0 - w1 - w2;
    for (let u = 0; u < 4; u++) index[4 * p + u] = mirror(fl - 1 + u, points);
  }
  return { weight, index };
}

/** Whole-sample symmetric index (scipy 'mirror'): period 2n - 2. */
function mirror(i: number, n: number): number {
  if (n <= 1) return 0;
  const period = 2 * n - 2;
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

/**
 * Cubic B-spline interpolation coefficients of each [points, points] grid (both grid axes), with
 * mirror boundaries: solves sum_k c[mirror(k)] beta3(x - k) = d[x] exactly (tiny systems).
 */
function prefilterGrid(displacement: Float64Array, points: number): Float64Array {
  const m = points;
  const inv = invert(splineMatrix(m), m);
  const out = new Float64Array(displacement.length);
  const tmp = new Float64Array(m * m);
  for (let d = 0; d < 2; d++) {
    const base = d * m * m;
    // Along the first grid axis, then along the second.
    for (let col = 0; col < m; col++) {
      for (let r = 0; r < m; r++) {
        let s = 0;
        for (let q = 0; q < m; q++) s += inv[r * m + q] * displacement[base + q * m + col];
        tmp[r * m + col] = s;
      }
    }
    for (let row = 0; row < m; row++) {
      for (let r = 0; r < m; r++) {
        let s = 0;
        for (let q = 0; q < m; q++) s += inv[r * m + q] * tmp[row * m + q];
        out[base + row * m + r] = s;
      }
    }
  }
  return out;
}

/** Row x: sample x of the spline with coefficients c, mirror-extended. */
function splineMatrix(m: number): Float64Array {
  const a = new Float64Array(m * m);
  if (m === 1) {
    a[0] = 1;
    return a;
  }
  for (let x = 0; x < m; x++) {
    for (const [off, w] of [
      [-1, 1 / 6],
      [0, 4 / 6],
      [1, 1 / 6],
    ]) {
      a[x * m + mirror(x + off, m)] += w;
    }
  }
  return a;
}

function invert(a: Float64Array, m: number): Float64Array {
  const w = Float64Array.from(a);
  const inv = new Float64Array(m * m);
  for (let i = 0; i < m; i++) inv[i * m + i] = 1;
  for (let c = 0; c < m; c++) {
    let p = c;
    for (let r = c + 1; r < m; r++) if (Math.abs(w[r * m + c]) > Math.abs(w[p * m + c])) p = r;
    for (let k = 0; k < m; k++) {
      [w[c * m + k], w[p * m + k]] = [w[p * m + k], w[c * m + k]];
      [inv[c * m + k], inv[p * m + k]] = [inv[p * m + k], inv[c * m + k]];
    }
    const d = w[c * m + c];
    for (let k = 0; k < m; k++) {
      w[c * m + k] /= d;
      inv[c * m + k] /= d;
    }
    for (let r = 0; r < m; r++) {
      if (r === c) continue;
      const f = w[r * m + c];
      if (f === 0) continue;
      for (let k = 0; k < m; k++) {
        w[r * m + k] -= f * w[c * m + k];
        inv[r * m + k] -= f * inv[c * m + k];
      }
    }
  }
  return inv;
}
