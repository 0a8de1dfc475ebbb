/**
 * 4x4 affine helpers on row-major Float64Array(16), the layout of `Volume.affine`
 * (voxel (i, j, k, 1) -> world mm, RAS+).
 */
import { FreeTumorError } from '../errors.ts';
import type { Affine } from '../volume/volume.ts';

export function multiplyAffine(a: Affine, b: Affine): Affine {
  const out = new Float64Array(16);
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[r * 4 + k] * b[k * 4 + c];
      out[r * 4 + c] = s;
    }
  }
  return out;
}

/** Determinant of the 3x3 part (the signed voxel volume in mm^3). */
export function det3(a: Affine): number {
  return (
    a[0] * (a[5] * a[10] - a[6] * a[9]) -
    a[1] * (a[4] * a[10] - a[6] * a[8]) +
    a[2] * (a[4] * a[9] - a[5] * a[8])
  );
}

/**
 * Whether the affine is finite with a well-conditioned 3x3 part: |det| relative to the product
 * of the column lengths (1 for orthogonal columns, 0 when they are dependent) above 1e-6.
 */
export function isInvertibleAffine(a: Affine): boolean {
  for (let i = 0; i < 12; i++) if (!Number.isFinite(a[i])) return false;
  const n0 = Math.hypot(a[0], a[4], a[8]);
  const n1 = Math.hypot(a[1], a[5], a[9]);
  const n2 = Math.hypot(a[2], a[6], a[10]);
  const scale = n0 * n1 * n2;
  if (!(scale > 0) || !Number.isFinite(scale)) return false;
  return Math.abs(det3(a)) / scale > 1e-6;
}

/** Inverse of an affine (last row 0 0 0 1); throws invalid_geometry when singular. */
export function invertAffine(a: Affine): Affine {
  const d = det3(a);
  if (!isInvertibleAffine(a) || d === 0) {
    throw new FreeTumorError('invalid_geometry', 'affine is singular or not finite');
  }
  const [m00, m01, m02, t0, m10, m11, m12, t1, m20, m21, m22, t2] = a;
  const inv = new Float64Array(16);
  inv[0] = (m11 * m22 - m12 * m21) / d;
  inv[1] = (m02 * m21 - m01 * m22) / d;
  inv[2] = (m01 * m12 - m02 * m11) / d;
  inv[4] = (m12 * m20 - m10 * m22) / d;
  inv[5] = (m00 * m22 - m02 * m20) / d;
  inv[6] = (m02 * m10 - m00 * m12) / d;
  inv[8] = (m10 * m21 - m11 * m20) / d;
  inv[9] = (m01 * m20 - m00 * m21) / d;
  inv[10] = (m00 * m11 - m01 * m10) / d;
  inv[3] = -(inv[0] * t0 + inv[1] * t1 + inv[2] * t2);
  inv[7] = -(inv[4] * t0 + inv[5] * t1 + inv[6] * t2);
  inv[11] = -(inv[8] * t0 + inv[9] * t1 + inv[10] * t2);
  inv[15] = 1;
  return inv;
}

export function applyAffine(a: Affine, p: ArrayLike<number>): [number, number, number] {
  const [x, y, z] = [p[0], p[1], p[2]];
  return [
    a[0] * x + a[1] * y + a[2] * z + a[3],
    a[4] * x + a[5] * y + a[6] * z + a[7],
    a[8] * x + a[9] * y + a[10] * z + a[11],
  ];
}

/** Affine from a row-major 3x3 matrix and a translation. */
export function affineFrom(m: ArrayLike<number>, t: ArrayLike<number>): Affine {
  const a = new Float64Array(16);
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 3; c++) a[r * 4 + c] = m[r * 3 + c];
    a[r * 4 + 3] = t[r];
  }
  a[15] = 1;
  return a;
}

/** Whether every entry of the two affines differs by at most `tol` (absolute, mm). */
export function affinesClose(a: Affine, b: Affine, tol = 1e-6): boolean {
  for (let i = 0; i < 16; i++) if (!(Math.abs(a[i] - b[i]) <= tol)) return false;
  return true;
}

/**
 * The rotation closest to the 3x3 matrix `m` (row-major): the orthogonal factor of its polar
 * decomposition, which is what nibabel gets from `P @ Qs` of an SVD. Newton's iteration
 * X <- (X + X^-T) / 2 converges quadratically for any non-singular matrix.
 */
export function nearestOrthogonal(m: ArrayLike<number>): Float64Array {
  let x = Float64Array.from(m as ArrayLike<number>);
  for (let iter = 0; iter < 100; iter++) {
    const inv = invert3(x);
    if (!inv) return x;
    const next = new Float64Array(9);
    let change = 0;
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 3; c++) {
        // inverse-transpose: (X^-T)[r][c] = (X^-1)[c][r]
        const v = 0.5 * (x[r * 3 + c] + inv[c * 3 + r]);
        change = Math.max(change, Math.abs(v - x[r * 3 + c]));
        next[r * 3 + c] = v;
      }
    }
    x = next;
    if (change < 1e-15) break;
  }
  return x;
}

function invert3(m: Float64Array): Float64Array | null {
  const [a, b, c, d, e, f, g, h, i] = m;
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  if (!Number.isFinite(det) || det === 0) return null;
  return Float64Array.from([
    A / det,
    -(b * i - c * h) / det,
    (b * f - c * e) / det,
    B / det,
    (a * i - c * g) / det,
    -(a * f - c * d) / det,
    C / det,
    -(a * h - b * g) / det,
    (a * e - b * d) / det,
  ]);
}
