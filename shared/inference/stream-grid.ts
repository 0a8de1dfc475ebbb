/**
 * The geometry of the streaming pipeline: how storage slices of the input map onto the model grid
 * and back, computed from the header alone.
 *
 * The whole-volume pipeline (pipeline.ts) reorients to canonical RAS (a permutation and flips of the
 * voxel axes), then resamples to the model spacing on a grid with the same axis directions. So every
 * model-grid axis runs along exactly one input axis, and the input's storage axis k is one canonical
 * axis: the "slab axis". Model slabs along it are made from two neighbouring storage slices, in
 * storage order (reversed when k runs against that canonical axis). That holds for any orientation,
 * axial, coronal or sagittal, so every acquisition streams.
 *
 * Sampling uses resample.ts's own per-axis tables and the same arithmetic as its trilinear
 * kernel (x, then y, then z in canonical order), so a model slab equals the corresponding slab of
 * `preprocess()` bit for bit.
 */
import { FreeTumorError } from '../errors.ts';
import { invertAffine, multiplyAffine } from '../geometry/affine.ts';
import { canonicalReorientation, type Reorientation, reorientedGrid } from '../geometry/orientation.ts';
import { gridForSpacing, linearTable, nearestTable } from '../geometry/resample.ts';
import type { Affine, Dims3, VoxelArray } from '../volume/volume.ts';

type Table = { lo: Int32Array; hi: Int32Array; w: Float64Array };

export interface StreamGrid {
  inputDims: Dims3;
  inputAffine: Affine;
  reorientation: Reorientation;
  canonicalDims: Dims3;
  canonicalAffine: Affine;
  modelDims: Dims3;
  modelAffine: Affine;
  /** The canonical axis the input's storage axis k runs along. */
  slabAxis: 0 | 1 | 2;
  /** The two other canonical axes, in order (plane index = p1 + n1 * p2). */
  planeAxes: [number, number];
  /** True when storage order runs against the slab axis (model slabs come last to first). */
  reverse: boolean;
  /** Per canonical axis: canonical input index (lo, hi) and weight for each model index (-1 = outside). */
  linear: [Table, Table, Table];
  /** Per canonical axis: model index for each canonical input index (-1 = outside). */
  nearest: [Int32Array, Int32Array, Int32Array];
}

const ALIGNED_EPS = 1e-9;

export function streamGrid(dims: Dims3, affine: Affine, spacing: Dims3): StreamGrid {
  const r = canonicalReorientation(affine);
  const canonical = reorientedGrid(dims, affine, r);
  const model = gridForSpacing(canonical.dims, canonical.affine, spacing);
  const toCanonical = multiplyAffine(invertAffine(canonical.affine), model.affine);
  const toModel = multiplyAffine(invertAffine(model.affine), canonical.affine);
  for (const m of [toCanonical, toModel]) {
    const off = Math.max(
      Math.abs(m[1]),
      Math.abs(m[2]),
      Math.abs(m[4]),
      Math.abs(m[6]),
      Math.abs(m[8]),
      Math.abs(m[9]),
    );
    if (off >= ALIGNED_EPS)
      throw new Error('internal: the model grid is not aligned with the canonical grid');
  }
  const slabAxis = r.axes.indexOf(2) as 0 | 1 | 2;
  const planeAxes = [0, 1, 2].filter((o) => o !== slabAxis) as [number, number];
  const cd = canonical.dims;
  const md = model.dims;
  const linear = [0, 1, 2].map((o) =>
    linearTable(md[o], cd[o], toCanonical[o * 5], toCanonical[o * 4 + 3], 1),
  ) as [Table, Table, Table];
  const nearest = [0, 1, 2].map((o) => nearestTable(cd[o], md[o], toModel[o * 5], toModel[o * 4 + 3], 1)) as [
    Int32Array,
    Int32Array,
    Int32Array,
  ];
  return {
    inputDims: [...dims] as Dims3,
    inputAffine: Float64Array.from(affine),
    reorientation: r,
    canonicalDims: cd,
    canonicalAffine: canonical.affine,
    modelDims: md,
    modelAffine: model.affine,
    slabAxis,
    planeAxes,
    reverse: r.flips[slabAxis],
    linear,
    nearest,
  };
}

/** Storage slice index of canonical index `c` along the slab axis. */
export function storageIndexOf(g: StreamGrid, c: number): number {
  return g.reverse ? g.inputDims[2] - 1 - c : c;
}

/**
 * The storage slice after which model slab `t` can be made (-1: it needs no input, it lies
 * outside the field of view on the side storage starts from).
 */
export function slabNeed(g: StreamGrid, t: number): number {
  const tab = g.linear[g.slabAxis];
  const n = g.inputDims[2];
  if (tab.lo[t] < 0) {
    // Outside the field of view: before the first canonical index or after the last.
    const before = t < g.modelDims[g.slabAxis] / 2;
    const atStorageStart = before !== g.reverse;
    return atStorageStart ? -1 : n - 1;
  }
  return Math.max(storageIndexOf(g, tab.lo[t]), storageIndexOf(g, tab.hi[t]));
}

/**
 * In-slice offsets (i + nx * j) of the canonical input indices a model index samples along a
 * plane axis: (lo, hi) per model index, -1 outside the field of view.
 */
export function planeOffsets(g: StreamGrid, o: number): { lo: Int32Array; hi: Int32Array; w: Float64Array } {
  const tab = g.linear[o];
  const ax = g.reorientation.axes[o];
  const n = g.inputDims[ax];
  const stride = ax === 0 ? 1 : g.inputDims[0];
  const flip = g.reorientation.flips[o];
  const lo = new Int32Array(tab.lo.length);
  const hi = new Int32Array(tab.lo.length);
  for (let t = 0; t < tab.lo.length; t++) {
    if (tab.lo[t] < 0) {
      lo[t] = -1;
      continue;
    }
    lo[t] = (flip ? n - 1 - tab.lo[t] : tab.lo[t]) * stride;
    hi[t] = (flip ? n - 1 - tab.hi[t] : tab.hi[t]) * stride;
  }
  return { lo, hi, w: tab.w };
}

export interface SlabSampler {
  /** Size of what `sample` writes: the model dims along the two plane axes, or the rect's. */
  n1: number;
  n2: number;
  /**
   * Writes model slab `t` (windowed to [0, 1], or HU with no window) into `out` with row stride
   * `stride` (>= n1), from the storage slices holding its two canonical neighbours (`lo`, `hi`;
   * ignored outside the FOV). With a `rect`, only that part of the plane, from `out[0]`.
   */
  sample(t: number, lo: VoxelArray | null, hi: VoxelArray | null, out: Float32Array, stride: number): void;
}

/** A rectangle of a model plane: first index and count along the two plane axes. */
export interface PlaneRect {
  p1: number;
  n1: number;
  p2: number;
  n2: number;
}

/**
 * Trilinear sampling of model slabs from storage slices, then the HU window (as `preprocess`); with
 * `window` null the float32 HU themselves (as `resampleToSpacing` stores them), e.g. for synthesis.
 */
export function slabSampler(
  g: StreamGrid,
  window: readonly [number, number] | null,
  rect?: PlaneRect,
): SlabSampler {
  const a = g.slabAxis;
  const [o1, o2] = g.planeAxes;
  const p1 = planeOffsets(g, o1);
  const p2 = planeOffsets(g, o2);
  const r = rect ?? { p1: 0, n1: g.modelDims[o1], p2: 0, n2: g.modelDims[o2] };
  const n1 = r.n1;
  const n2 = r.n2;
  const wLo = window ? window[0] : 0;
  const scale = window ? 1 / (window[1] - window[0]) : 1;
  const fillWindowed = window ? windowOf(0, wLo, scale) : 0;
  const f32 = new Float32Array(1);
  // Per canonical axis (x, y, z): for bit b (0 lo, 1 hi), which slice (slab axis) or offset table.
  return {
    n1,
    n2,
    sample(t, sLo, sHi, out, stride) {
      const tab = g.linear[a];
      if (tab.lo[t] < 0 || !sLo || !sHi) {
        for (let q = 0; q < n2; q++) out.fill(fillWindowed, q * stride, q * stride + n1);
        return;
      }
      const wa = tab.w[t];
      for (let q = 0; q < n2; q++) {
        const b2lo = p2.lo[q + r.p2];
        const row = q * stride;
        if (b2lo < 0) {
          out.fill(fillWindowed, row, row + n1);
          continue;
        }
        const b2hi = p2.hi[q + r.p2];
        const w2 = p2.w[q + r.p2];
        for (let p = 0; p < n1; p++) {
          const b1lo = p1.lo[p + r.p1];
          if (b1lo < 0) {
            out[row + p] = fillWindowed;
            continue;
          }
          const b1hi = p1.hi[p + r.p1];
          const w1 = p1.w[p + r.p1];
          let v: number;
          if (a === 2) {
            // x = plane axis 1, y = plane axis 2, z = slab.
            const a0 = sLo[b1lo + b2lo];
            const b0 = sLo[b1lo + b2hi];
            const c0 = sHi[b1lo + b2lo];
            const d0 = sHi[b1lo + b2hi];
            const c00 = a0 + (sLo[b1hi + b2lo] - a0) * w1;
            const c01 = b0 + (sLo[b1hi + b2hi] - b0) * w1;
            const c10 = c0 + (sHi[b1hi + b2lo] - c0) * w1;
            const c11 = d0 + (sHi[b1hi + b2hi] - d0) * w1;
            const e0 = c00 + (c01 - c00) * w2;
            const e1 = c10 + (c11 - c10) * w2;
            v = e0 + (e1 - e0) * wa;
          } else if (a === 1) {
            // x = plane axis 1, y = slab, z = plane axis 2.
            const a0 = sLo[b1lo + b2lo];
            const b0 = sHi[b1lo + b2lo];
            const c0 = sLo[b1lo + b2hi];
            const d0 = sHi[b1lo + b2hi];
            const c00 = a0 + (sLo[b1hi + b2lo] - a0) * w1;
            const c01 = b0 + (sHi[b1hi + b2lo] - b0) * w1;
            const c10 = c0 + (sLo[b1hi + b2hi] - c0) * w1;
            const c11 = d0 + (sHi[b1hi + b2hi] - d0) * w1;
            const e0 = c00 + (c01 - c00) * wa;
            const e1 = c10 + (c11 - c10) * wa;
            v = e0 + (e1 - e0) * w2;
          } else {
            // x = slab, y = plane axis 1, z = plane axis 2.
            const a0 = sLo[b1lo + b2lo];
            const b0 = sLo[b1hi + b2lo];
            const c0 = sLo[b1lo + b2hi];
            const d0 = sLo[b1hi + b2hi];
            const c00 = a0 + (sHi[b1lo + b2lo] - a0) * wa;
            const c01 = b0 + (sHi[b1hi + b2lo] - b0) * wa;
            const c10 = c0 + (sHi[b1lo + b2hi] - c0) * wa;
            const c11 = d0 + (sHi[b1hi + b2hi] - d0) * wa;
            const e0 = c00 + (c01 - c00) * w1;
            const e1 = c10 + (c11 - c10) * w1;
            v = e0 + (e1 - e0) * w2;
          }
          // Rounded to float32 first, as the resampled volume is stored before windowing.
          f32[0] = v;
          out[row + p] = window ? windowOf(f32[0], wLo, scale) : f32[0];
        }
      }
    },
  };
}

/** windowHU's arithmetic for one value. */
function windowOf(x: number, lo: number, scale: number): number {
  const v = (x - lo) * scale;
  return v > 0 ? Math.min(v, 1) : 0;
}

/**
 * For each voxel (i + nx * j) of a storage slice, the model-plane index (p1 + n1 * p2) nearest to it,
 * or -1 outside the model grid: the in-plane half of `toInputGrid`'s nearest resampling.
 */
export function inputPlaneMap(g: StreamGrid): Int32Array {
  const [nx, ny] = g.inputDims;
  const [o1, o2] = g.planeAxes;
  const n1 = g.modelDims[o1];
  const r = g.reorientation;
  const map = new Int32Array(nx * ny);
  const canonicalOf = (o: number, i: number, j: number) => {
    const ax = r.axes[o];
    const idx = ax === 0 ? i : j;
    return r.flips[o] ? g.inputDims[ax] - 1 - idx : idx;
  };
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      const m1 = g.nearest[o1][canonicalOf(o1, i, j)];
      const m2 = g.nearest[o2][canonicalOf(o2, i, j)];
      map[i + nx * j] = m1 < 0 || m2 < 0 ? -1 : m1 + n1 * m2;
    }
  }
  return map;
}

/** The model slab nearest to storage slice k, or -1 outside the model grid. */
export function modelSlabOf(g: StreamGrid, k: number): number {
  return g.nearest[g.slabAxis][storageIndexOf(g, k)];
}

/** Raster index (x + nx * (y + ny * z)) on the model grid of plane voxel (p1, p2) in slab t. */
export function modelRaster(g: StreamGrid, t: number, p1: number, p2: number): number {
  const c = [0, 0, 0];
  c[g.slabAxis] = t;
  c[g.planeAxes[0]] = p1;
  c[g.planeAxes[1]] = p2;
  const [mx, my] = g.modelDims;
  return c[0] + mx * (c[1] + my * c[2]);
}

export function checkSpacing(spacing: Dims3): void {
  if (!spacing.every((s) => Number.isFinite(s) && s > 0))
    throw new FreeTumorError('invalid_argument', 'model spacing must be finite and > 0');
}
