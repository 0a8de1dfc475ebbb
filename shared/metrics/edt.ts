/**
 * Exact Euclidean distance transform (Felzenszwalb and Huttenlocher, "Distance transforms of sampled
 * functions", 2012): three separable passes of the 1-D lower envelope of parabolas, one per axis, with
 * the voxel spacing applied in each pass so anisotropic grids get distances in millimetres.
 */
import type { Dims3 } from '../volume/volume.ts';

// Stands for "no site on this line yet"; finite so the parabola intersections stay finite.
const FAR = 1e20;

/**
 * Squared distance in mm^2 from every voxel to the nearest voxel where `sites` is non-zero
 * (0 on the sites). With no site at all, every value is FAR.
 */
export function squaredDistanceTransform(
  sites: ArrayLike<number>,
  dims: Dims3,
  spacing: Dims3,
): Float64Array {
  const [nx, ny, nz] = dims;
  const d = new Float64Array(nx * ny * nz);
  for (let i = 0; i < d.length; i++) d[i] = sites[i] !== 0 ? 0 : FAR;
  const longest = Math.max(nx, ny, nz);
  const f = new Float64Array(longest);
  const out = new Float64Array(longest);
  const v = new Int32Array(longest);
  const z = new Float64Array(longest + 1);
  const pass = (n: number, stride: number, starts: Iterable<number>, step: number) => {
    for (const start of starts) {
      for (let q = 0; q < n; q++) f[q] = d[start + q * stride];
      envelope(f, n, step, out, v, z);
      for (let q = 0; q < n; q++) d[start + q * stride] = out[q];
    }
  };
  pass(
    nx,
    1,
    lineStarts(ny * nz, (l) => l * nx),
    spacing[0],
  );
  pass(
    ny,
    nx,
    lineStarts(nx * nz, (l) => (l % nx) + Math.floor(l / nx) * nx * ny),
    spacing[1],
  );
  pass(
    nz,
    nx * ny,
    lineStarts(nx * ny, (l) => l),
    spacing[2],
  );
  return d;
}

function* lineStarts(count: number, start: (line: number) => number): Generator<number> {
  for (let l = 0; l < count; l++) yield start(l);
}

/** 1-D squared distance of sampled function f with sample step `h`: out[p] = min_q (h(p-q))^2 + f[q]. */
function envelope(
  f: Float64Array,
  n: number,
  h: number,
  out: Float64Array,
  v: Int32Array,
  z: Float64Array,
): void {
  const h2 = h * h;
  let k = 0;
  v[0] = 0;
  z[0] = -Infinity;
  z[1] = Infinity;
  for (let q = 1; q < n; q++) {
    let s = intersect(f, q, v[k], h2);
    while (s <= z[k]) {
      k--;
      s = intersect(f, q, v[k], h2);
    }
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = Infinity;
  }
  k = 0;
  for (let q = 0; q < n; q++) {
    while (z[k + 1] < q) k++;
    const dq = q - v[k];
    out[q] = Math.min(FAR, h2 * dq * dq + f[v[k]]);
  }
}

// Where the parabolas rooted at samples q and r meet, in sample units.
function intersect(f: Float64Array, q: number, r: number, h2: number): number {
  return (f[q] + h2 * q * q - (f[r] + h2 * r * r)) / (2 * h2 * (q - r));
}
