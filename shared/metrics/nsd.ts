/**
 * Normalized surface distance (surface Dice at a tolerance, Nikolov et al. 2021): the fraction of the
 * two surfaces that lies within `tolerance` mm of the other surface. Surfaces are the mask voxels with
 * a 6-neighbour outside the mask (or outside the grid); distances are exact Euclidean in millimetres.
 */
import type { Dims3 } from '../volume/volume.ts';
import { squaredDistanceTransform } from './edt.ts';

/** 1 on mask voxels that have a 6-neighbour outside the mask or the grid. */
export function surfaceVoxels(mask: ArrayLike<number>, dims: Dims3): Uint8Array {
  const [nx, ny, nz] = dims;
  const out = new Uint8Array(nx * ny * nz);
  const sxy = nx * ny;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const p = i + nx * (j + ny * k);
        if (mask[p] === 0) continue;
        const border =
          i === 0 ||
          i === nx - 1 ||
          j === 0 ||
          j === ny - 1 ||
          k === 0 ||
          k === nz - 1 ||
          mask[p - 1] === 0 ||
          mask[p + 1] === 0 ||
          mask[p - nx] === 0 ||
          mask[p + nx] === 0 ||
          mask[p - sxy] === 0 ||
          mask[p + sxy] === 0;
        if (border) out[p] = 1;
      }
    }
  }
  return out;
}

/**
 * NSD of two binary masks at `tolerance` mm. Both empty -> 1, one empty -> 0.
 * Work is confined to the bounding box of the two surfaces: every distance that matters is between
 * two points inside it, so the result is exact while a small lesion in a large CT stays cheap.
 */
export function normalizedSurfaceDistance(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dims: Dims3,
  spacing: Dims3,
  tolerance: number,
): number {
  const sa = surfaceVoxels(a, dims);
  const sb = surfaceVoxels(b, dims);
  const box = unionBox(sa, sb, dims);
  if (box === null) return 1;
  const ca = crop(sa, dims, box);
  const cb = crop(sb, dims, box);
  const na = count(ca);
  const nb = count(cb);
  if (na === 0 || nb === 0) return 0;
  const t2 = tolerance * tolerance;
  const toB = squaredDistanceTransform(cb, box.size, spacing);
  const toA = squaredDistanceTransform(ca, box.size, spacing);
  let close = 0;
  for (let p = 0; p < ca.length; p++) {
    if (ca[p] !== 0 && toB[p] <= t2) close++;
    if (cb[p] !== 0 && toA[p] <= t2) close++;
  }
  return close / (na + nb);
}

interface Box {
  start: Dims3;
  size: Dims3;
}

function unionBox(a: Uint8Array, b: Uint8Array, dims: Dims3): Box | null {
  const [nx, ny] = dims;
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-1, -1, -1];
  for (let p = 0; p < a.length; p++) {
    if (a[p] === 0 && b[p] === 0) continue;
    const i = p % nx;
    const j = Math.floor(p / nx) % ny;
    const k = Math.floor(p / (nx * ny));
    const ijk = [i, j, k];
    for (let c = 0; c < 3; c++) {
      if (ijk[c] < lo[c]) lo[c] = ijk[c];
      if (ijk[c] > hi[c]) hi[c] = ijk[c];
    }
  }
  if (hi[0] < 0) return null;
  return { start: [lo[0], lo[1], lo[2]], size: [hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1] };
}

function crop(src: Uint8Array, dims: Dims3, box: Box): Uint8Array {
  const [nx, ny] = dims;
  const [bx, by, bz] = box.size;
  const out = new Uint8Array(bx * by * bz);
  for (let k = 0; k < bz; k++) {
    for (let j = 0; j < by; j++) {
      const from = box.start[0] + nx * (box.start[1] + j + ny * (box.start[2] + k));
      out.set(src.subarray(from, from + bx), bx * (j + by * k));
    }
  }
  return out;
}

function count(m: Uint8Array): number {
  let n = 0;
  for (let p = 0; p < m.length; p++) n += m[p];
  return n;
}
