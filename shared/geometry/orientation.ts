/**
 * Orientation from the affine, as nibabel's `io_orientation` / `aff2axcodes`, and exact
 * reorientation by axis permutations and flips only (voxels are moved, never interpolated).
 *
 * The reorientation to RAS ("closest canonical", as nibabel's `as_closest_canonical` and
 * MONAI's `Orientation('RAS')`) returns an `undo` that `fromCanonical` applies to give back
 * the original voxel order and, bit for bit, the original affine.
 */
import { FreeTumorError } from '../errors.ts';
import { allocLike } from '../volume/datatype.ts';
import type { Affine, Dims3, Volume, VoxelArray } from '../volume/volume.ts';
import { affinesClose, nearestOrthogonal } from './affine.ts';

/** A permutation and flips of the voxel axes. */
export interface Reorientation {
  /** For each output axis, the input axis it runs along. */
  axes: [number, number, number];
  /** For each output axis, whether it runs opposite to that input axis. */
  flips: [boolean, boolean, boolean];
  /**
   * The affine the output should have, used as is when the computed one agrees with it (to
   * within 1e-6 mm): this is how undoing a reorientation restores the affine bit for bit.
   */
  affine?: Affine;
}

const LABELS: [string, string][] = [
  ['L', 'R'],
  ['P', 'A'],
  ['I', 'S'],
];

/**
 * For each voxel axis, the world axis (0 = x/R, 1 = y/A, 2 = z/S) it is closest to and the
 * direction (+1 / -1), or null for an axis with a zero column. nibabel's algorithm: normalise
 * the columns, take the nearest rotation (polar decomposition), then for i, j, k in order the
 * world axis with the largest |component| not already taken (ties go to the lower world axis).
 */
export function ioOrientation(affine: Affine): Array<[number, 1 | -1] | null> {
  const rs = new Float64Array(9);
  for (let c = 0; c < 3; c++) {
    const z = Math.hypot(affine[c], affine[4 + c], affine[8 + c]) || 1;
    for (let r = 0; r < 3; r++) rs[r * 3 + c] = affine[r * 4 + c] / z;
  }
  const r = nearestOrthogonal(rs);
  const out: Array<[number, 1 | -1] | null> = [];
  for (let c = 0; c < 3; c++) {
    let best = -1;
    let bestAbs = 0;
    let allZero = true;
    for (let row = 0; row < 3; row++) {
      const v = Math.abs(r[row * 3 + c]);
      if (v > 1e-8) allZero = false;
      if (v > bestAbs) {
        bestAbs = v;
        best = row;
      }
    }
    if (allZero || best < 0) {
      out.push(null);
      continue;
    }
    out.push([best, r[best * 3 + c] < 0 ? -1 : 1]);
    for (let cc = 0; cc < 3; cc++) r[best * 3 + cc] = 0;
  }
  return out;
}

/** Orientation codes such as 'RAS' or 'LPS' (the direction each voxel axis increases towards); '?' for a degenerate axis. */
export function axcodes(affine: Affine): string {
  return ioOrientation(affine)
    .map((o) => (o ? LABELS[o[0]][o[1] > 0 ? 1 : 0] : '?'))
    .join('');
}

/** The reorientation that takes a volume with this affine to RAS. */
export function canonicalReorientation(affine: Affine): Reorientation {
  return reorientationTo(affine, 'RAS');
}

/** Whether `codes` names each world axis once, e.g. 'RAS', 'LPS', 'PIR'. */
export function isAxcodes(codes: string): boolean {
  return /^[LRPAIS]{3}$/.test(codes) && new Set([...codes].map(worldAxisOf)).size === 3;
}

function worldAxisOf(letter: string): number {
  return LABELS.findIndex((pair) => pair.includes(letter));
}

/** The reorientation that makes a volume with this affine run along `codes` (e.g. 'LPS'). */
export function reorientationTo(affine: Affine, codes: string): Reorientation {
  if (!isAxcodes(codes)) {
    throw new FreeTumorError(
      'invalid_argument',
      'orientation must be 3 letters, one of L/R, P/A, I/S each, e.g. RAS',
    );
  }
  const ornt = ioOrientation(affine);
  const axes: [number, number, number] = [0, 1, 2];
  const flips: [boolean, boolean, boolean] = [false, false, false];
  for (let o = 0; o < 3; o++) {
    const world = worldAxisOf(codes[o]);
    const sign = LABELS[world][1] === codes[o] ? 1 : -1;
    const inAxis = ornt.findIndex((x) => x !== null && x[0] === world);
    if (inAxis < 0)
      throw new FreeTumorError('invalid_geometry', 'affine has a zero column: no orientation for that axis');
    axes[o] = inAxis;
    flips[o] = (ornt[inAxis] as [number, number])[1] !== sign;
  }
  return { axes, flips };
}

/**
 * The volume in RAS voxel order plus the reorientation that undoes it. When the volume is
 * already RAS, the result shares `data` with the input (no copy).
 */
export function toCanonical<T extends VoxelArray>(
  vol: Volume<T>,
): { volume: Volume<T>; undo: Reorientation } {
  const r = canonicalReorientation(vol.affine);
  const volume = applyReorientation(vol, r);
  return { volume, undo: inverseReorientation(r, vol) };
}

/** Applies `undo` from toCanonical: the original voxel order and affine. */
export function fromCanonical<T extends VoxelArray>(vol: Volume<T>, undo: Reorientation): Volume<T> {
  return applyReorientation(vol, undo);
}

/** The reorientation that undoes `r` applied to `source` (restoring `source.affine` exactly). */
export function inverseReorientation(r: Reorientation, source: Volume): Reorientation {
  const axes: [number, number, number] = [0, 1, 2];
  const flips: [boolean, boolean, boolean] = [false, false, false];
  for (let o = 0; o < 3; o++) {
    axes[r.axes[o]] = o;
    flips[r.axes[o]] = r.flips[o];
  }
  return { axes, flips, affine: Float64Array.from(source.affine) };
}

function isIdentity(r: Reorientation): boolean {
  return r.axes[0] === 0 && r.axes[1] === 1 && r.axes[2] === 2 && !r.flips[0] && !r.flips[1] && !r.flips[2];
}

/** The dims and affine a grid has after `r` (what applyReorientation gives, without moving voxels). */
export function reorientedGrid(src: Dims3, a: Affine, r: Reorientation): { dims: Dims3; affine: Affine } {
  const dims: Dims3 = [src[r.axes[0]], src[r.axes[1]], src[r.axes[2]]];
  const computed = new Float64Array(16);
  computed[15] = 1;
  for (let row = 0; row < 3; row++) computed[row * 4 + 3] = a[row * 4 + 3];
  for (let o = 0; o < 3; o++) {
    const ax = r.axes[o];
    const sign = r.flips[o] ? -1 : 1;
    for (let row = 0; row < 3; row++) {
      computed[row * 4 + o] = sign * a[row * 4 + ax];
      if (r.flips[o]) computed[row * 4 + 3] += (src[ax] - 1) * a[row * 4 + ax];
    }
  }
  const affine = r.affine && affinesClose(r.affine, computed, 1e-6) ? Float64Array.from(r.affine) : computed;
  return { dims, affine };
}

/** Moves the voxels by `r` (exactly) and updates the affine so every voxel keeps its world position. */
export function applyReorientation<T extends VoxelArray>(vol: Volume<T>, r: Reorientation): Volume<T> {
  const seen = new Set(r.axes);
  if (seen.size !== 3 || r.axes.some((a) => a !== 0 && a !== 1 && a !== 2)) {
    throw new FreeTumorError('invalid_argument', 'reorientation axes must be a permutation of 0, 1, 2');
  }
  const src = vol.dims;
  const { dims, affine } = reorientedGrid(src, vol.affine, r);
  if (isIdentity(r)) return { dims, data: vol.data, affine, datatype: vol.datatype };
  return { dims, data: permute(vol.data, src, dims, r), affine, datatype: vol.datatype };
}

function permute<T extends VoxelArray>(data: T, src: Dims3, dims: Dims3, r: Reorientation): T {
  const srcStride = [1, src[0], src[0] * src[1]];
  const step = [0, 0, 0];
  let base = 0;
  for (let o = 0; o < 3; o++) {
    const s = srcStride[r.axes[o]];
    step[o] = r.flips[o] ? -s : s;
    if (r.flips[o]) base += (dims[o] - 1) * s;
  }
  const out = allocLike(data, data.length) as T;
  const [nx, ny, nz] = dims;
  const [s0, s1, s2] = step;
  let idx = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      let p = base + j * s1 + k * s2;
      for (let i = 0; i < nx; i++) {
        out[idx++] = data[p];
        p += s0;
      }
    }
  }
  return out;
}
