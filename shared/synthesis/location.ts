/**
 * Where a tumor goes (method §2.1): an axial slice in the middle of the organ's extent along the
 * last axis (k, axial after RAS), eroded with a 5x5 square, and a uniform voxel of what remains.
 *
 * Retry policy (the reference silently uses voxel (0, 0, 0) when the eroded slice is empty):
 * 1. up to `retries` new slices drawn from the same 0.3-0.7 band;
 * 2. then any slice of the organ's whole k-range whose eroded slice is non-empty (visited in a
 *    random order);
 * 3. then any organ voxel, uniformly (thin organs that a 5x5 erosion removes entirely);
 * 4. only an organ with no voxel at all is an error (`empty_organ`).
 */
import { FreeTumorError } from '../errors.ts';
import type { Rng } from '../random.ts';
import type { Dims3 } from '../volume/volume.ts';

export type Placement = 'eroded' | 'retried' | 'widened' | 'any_voxel';

export interface Location {
  center: Dims3;
  placement: Placement;
}

export interface LocationOptions {
  /** New slices from the 0.3-0.7 band before widening to the whole organ. */
  retries?: number;
  /** Erosion kernel edge in voxels: one value (a square) or [along i, along j]. Default 5 (the reference at 1.5 mm). */
  kernel?: number | [number, number];
}

/** First and last k that contain an organ voxel (label == 1), or null for an empty organ. */
export function organKRange(label: Uint8Array, dims: Dims3): [number, number] | null {
  const plane = dims[0] * dims[1];
  let first = -1;
  let last = -1;
  for (let k = 0; k < dims[2]; k++) {
    const base = k * plane;
    for (let v = 0; v < plane; v++) {
      if (label[base + v] === 1) {
        if (first < 0) first = k;
        last = k;
        break;
      }
    }
  }
  return first < 0 ? null : [first, last];
}

/**
 * Organ mask of slice k eroded with a kernel x kernel rectangle (one size, or one per axis i, j),
 * OpenCV semantics: pixels outside the image count as set (the border does not erode).
 */
export function erodedSlice(
  label: Uint8Array,
  dims: Dims3,
  k: number,
  kernel: number | [number, number] = 5,
): Uint8Array {
  const [nx, ny] = dims;
  const [ki, kj] = typeof kernel === 'number' ? [kernel, kernel] : kernel;
  const r = ki >> 1;
  const rj = kj >> 1;
  const base = k * nx * ny;
  // Separable: a run of `kernel` set pixels along i, then along j.
  const rows = new Uint8Array(nx * ny);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      let ok = 1;
      for (let t = Math.max(0, i - r); t <= Math.min(nx - 1, i + r) && ok; t++) {
        if (label[base + j * nx + t] !== 1) ok = 0;
      }
      rows[j * nx + i] = ok;
    }
  }
  const out = new Uint8Array(nx * ny);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      let ok = 1;
      for (let t = Math.max(0, j - rj); t <= Math.min(ny - 1, j + rj) && ok; t++) {
        if (rows[t * nx + i] === 0) ok = 0;
      }
      out[j * nx + i] = ok;
    }
  }
  return out;
}

/** Python's round(): half to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

export function pickLocation(
  label: Uint8Array,
  dims: Dims3,
  rng: Rng,
  options: LocationOptions = {},
): Location {
  const retries = options.retries ?? 10;
  const kernel = options.kernel ?? 5;
  const range = organKRange(label, dims);
  if (!range)
    throw new FreeTumorError('empty_organ', 'the organ mask is empty: no voxel to place a tumor in');
  const [k0, k1] = range;
  for (let attempt = 0; attempt <= retries; attempt++) {
    const k = roundHalfEven(rng.uniform(0.3, 0.7) * (k1 - k0)) + k0;
    const hit = pickInSlice(erodedSlice(label, dims, k, kernel), dims, k, rng);
    if (hit) return { center: hit, placement: attempt === 0 ? 'eroded' : 'retried' };
  }
  const ks: number[] = [];
  for (let k = k0; k <= k1; k++) ks.push(k);
  rng.shuffle(ks);
  for (const k of ks) {
    const hit = pickInSlice(erodedSlice(label, dims, k, kernel), dims, k, rng);
    if (hit) return { center: hit, placement: 'widened' };
  }
  return { center: pickAnyOrganVoxel(label, dims, rng), placement: 'any_voxel' };
}

function pickInSlice(slice: Uint8Array, dims: Dims3, k: number, rng: Rng): Dims3 | null {
  let count = 0;
  for (let v = 0; v < slice.length; v++) count += slice[v];
  if (count === 0) return null;
  let n = rng.int(0, count - 1);
  for (let v = 0; v < slice.length; v++) {
    if (slice[v] && n-- === 0) return [v % dims[0], Math.floor(v / dims[0]), k];
  }
  return null;
}

function pickAnyOrganVoxel(label: Uint8Array, dims: Dims3, rng: Rng): Dims3 {
  let count = 0;
  for (let v = 0; v < label.length; v++) if (label[v] === 1) count++;
  let n = rng.int(0, count - 1);
  const plane = dims[0] * dims[1];
  for (let v = 0; v < label.length; v++) {
    if (label[v] === 1 && n-- === 0) {
      const k = Math.floor(v / plane);
      const r = v - k * plane;
      return [r % dims[0], Math.floor(r / dims[0]), k];
    }
  }
  throw new FreeTumorError('empty_organ', 'the organ mask is empty: no voxel to place a tumor in');
}
