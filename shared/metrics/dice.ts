/**
 * Overlap metrics on label masks. A mask is any typed array of labels; a metric looks at the voxels
 * whose label is in the chosen set, so one call serves "tumor" (2) and "organ + tumor" (1, 2).
 */
import type { Affine } from '../volume/volume.ts';

/** 1 where the label is one of `labels`, else 0. */
export function binaryMask(data: ArrayLike<number>, labels: number | readonly number[]): Uint8Array {
  const set = typeof labels === 'number' ? [labels] : labels;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    if (set.includes(data[i])) out[i] = 1;
  }
  return out;
}

/**
 * Dice = 2|A∩B| / (|A|+|B|) of two binary masks (non-zero = inside). Both empty gives 1: a model that
 * finds no tumor in a tumor-free case is right, and §10.8 of the method counts such cases.
 */
export function dice(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`masks differ in size: ${a.length} and ${b.length} voxels`);
  let na = 0;
  let nb = 0;
  let both = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] !== 0;
    const y = b[i] !== 0;
    if (x) na++;
    if (y) nb++;
    if (x && y) both++;
  }
  return na + nb === 0 ? 1 : (2 * both) / (na + nb);
}

/** Volume of one voxel in millilitres: |det| of the affine's 3x3 part, mm^3 / 1000. */
export function voxelMl(affine: Affine): number {
  const [a, b, c, , d, e, f, , g, h, i] = affine;
  return Math.abs(a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)) / 1000;
}

/** Number of non-zero voxels. */
export function countNonZero(mask: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) n++;
  return n;
}

/** Volume of the non-zero voxels in millilitres. */
export function volumeMl(mask: ArrayLike<number>, affine: Affine): number {
  return countNonZero(mask) * voxelMl(affine);
}
