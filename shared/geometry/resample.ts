/**
 * Resampling in world coordinates: trilinear for images, nearest neighbour for label maps.
 *
 * `resampleToGrid` samples a volume on any target grid (dims + affine): each target voxel's
 * centre is mapped through inv(source affine) · target affine to a source voxel position.
 * Positions inside the source's field of view (voxel centres +- half a voxel) are clamped to
 * the edge voxels (MONAI's 'border' padding); positions beyond it take `fill` (default 0).
 *
 * `resampleToSpacing` builds the target grid for a spacing: new dims = round(dims * spacing /
 * new spacing), the same axis directions, and the grid centred on the same world point, so
 * it covers the same field of view (when the spacings divide evenly the outer voxel faces
 * coincide exactly, as MONAI's Spacing with scale_extent / align_corners=False; otherwise the
 * rounding difference is split evenly on both sides). Resampling a label map to half the
 * spacing and back with 'nearest' gives back the original voxels exactly.
 *
 * Axis-aligned cases (no rotation between the grids, the usual one) use per-axis lookup
 * tables; oblique ones step the source position incrementally along each row. Neither
 * allocates per voxel.
 */
import { FreeTumorError, LimitError } from '../errors.ts';
import { allocLike } from '../volume/datatype.ts';
import type { Affine, Dims3, Volume, VoxelArray } from '../volume/volume.ts';
import { invertAffine, multiplyAffine } from './affine.ts';

export type ResampleMode = 'linear' | 'nearest';

export interface ResampleOptions {
  /** Value for target voxels outside the source's field of view (default 0). */
  fill?: number;
  /** Largest target voxel count accepted (default 2^28); more is a LimitError. */
  maxVoxels?: number;
}

const DEFAULT_MAX_VOXELS = 2 ** 28;

/** The grid `resampleToSpacing` samples on: same field of view and directions, the new spacing. */
export function gridForSpacing(dims: Dims3, affine: Affine, spacing: Dims3): { dims: Dims3; affine: Affine } {
  for (const s of spacing) {
    if (!(Number.isFinite(s) && s > 0))
      throw new FreeTumorError('invalid_argument', 'target spacing must be finite and > 0');
  }
  const out = new Float64Array(16);
  out[15] = 1;
  const newDims: number[] = [];
  const centreShift = [0, 0, 0];
  for (let c = 0; c < 3; c++) {
    const old = Math.hypot(affine[c], affine[4 + c], affine[8 + c]);
    const ratio = spacing[c] / old;
    const n = Math.max(1, Math.round((dims[c] * old) / spacing[c]));
    newDims.push(n);
    // Source voxel coordinate of the new voxel 0 such that both grids share their centre.
    centreShift[c] = (dims[c] - 1 - (n - 1) * ratio) / 2;
    for (let r = 0; r < 3; r++) out[r * 4 + c] = affine[r * 4 + c] * ratio;
  }
  for (let r = 0; r < 3; r++) {
    out[r * 4 + 3] =
      affine[r * 4 + 3] +
      affine[r * 4] * centreShift[0] +
      affine[r * 4 + 1] * centreShift[1] +
      affine[r * 4 + 2] * centreShift[2];
  }
  return { dims: newDims as Dims3, affine: out };
}

/** Resamples to a voxel spacing (mm) on the same field of view; see the module comment. */
export function resampleToSpacing<T extends VoxelArray>(
  vol: Volume<T>,
  spacing: Dims3,
  mode: ResampleMode,
  opts: ResampleOptions = {},
): Volume {
  const grid = gridForSpacing(vol.dims, vol.affine, spacing);
  return resampleToGrid(vol, grid.dims, grid.affine, mode, opts);
}

/**
 * Samples `vol` on the grid (dims, affine). 'linear' gives Float32Array data; 'nearest' keeps
 * the source's array type. The result keeps the source's `datatype` (what it is written as).
 */
export function resampleToGrid<T extends VoxelArray>(
  vol: Volume<T>,
  dims: Dims3,
  affine: Affine,
  mode: ResampleMode,
  opts: ResampleOptions = {},
): Volume {
  const maxVoxels = opts.maxVoxels ?? DEFAULT_MAX_VOXELS;
  for (const d of dims) {
    if (!(Number.isInteger(d) && d >= 1))
      throw new FreeTumorError('invalid_argument', 'target dims must be positive integers');
  }
  const count = dims[0] * dims[1] * dims[2];
  if (count > maxVoxels) throw new LimitError('resampled voxel count', maxVoxels, count);
  if (mode !== 'linear' && mode !== 'nearest')
    throw new FreeTumorError('invalid_argument', 'mode must be linear or nearest');
  const m = multiplyAffine(invertAffine(vol.affine), affine);
  const fill = opts.fill ?? 0;
  const out = mode === 'linear' ? new Float32Array(count) : allocLike(vol.data, count);
  const aligned =
    Math.max(Math.abs(m[1]), Math.abs(m[2]), Math.abs(m[4]), Math.abs(m[6]), Math.abs(m[8]), Math.abs(m[9])) <
    1e-9;
  if (aligned) {
    if (mode === 'linear') linearAligned(vol.data, vol.dims, out, dims, m, fill);
    else nearestAligned(vol.data, vol.dims, out, dims, m, fill);
  } else {
    sampleGeneral(vol.data, vol.dims, out, dims, m, fill, mode === 'linear');
  }
  return { dims: [...dims], data: out, affine: Float64Array.from(affine), datatype: vol.datatype };
}

/** Slack on the field-of-view test so that round-off at exactly half a voxel does not drop a sample. */
const EDGE_EPS = 1e-6;

/**
 * Per target index along one axis: the two source indices (times the axis stride) and the
 * weight of the second, or -1 when the position is outside the field of view. Exported for the
 * slice-streaming resampler (shared/inference/stream-grid.ts), which must sample identically.
 */
export function linearTable(n: number, srcN: number, scale: number, offset: number, stride: number) {
  const lo = new Int32Array(n);
  const hi = new Int32Array(n);
  const w = new Float64Array(n);
  for (let t = 0; t < n; t++) {
    const x = scale * t + offset;
    if (!(x >= -0.5 - EDGE_EPS && x <= srcN - 0.5 + EDGE_EPS)) {
      lo[t] = -1;
      continue;
    }
    const c = Math.min(Math.max(x, 0), srcN - 1);
    const f = Math.min(Math.floor(c), Math.max(srcN - 2, 0));
    lo[t] = f * stride;
    hi[t] = Math.min(f + 1, srcN - 1) * stride;
    w[t] = c - f;
  }
  return { lo, hi, w };
}

function linearAligned(
  src: VoxelArray,
  sd: Dims3,
  out: VoxelArray,
  td: Dims3,
  m: Affine,
  fill: number,
): void {
  const tx = linearTable(td[0], sd[0], m[0], m[3], 1);
  const ty = linearTable(td[1], sd[1], m[5], m[7], sd[0]);
  const tz = linearTable(td[2], sd[2], m[10], m[11], sd[0] * sd[1]);
  const [nx, ny, nz] = td;
  const xlo = tx.lo;
  const xhi = tx.hi;
  const xw = tx.w;
  let idx = 0;
  for (let k = 0; k < nz; k++) {
    const z0 = tz.lo[k];
    const z1 = tz.hi[k];
    const wz = tz.w[k];
    for (let j = 0; j < ny; j++) {
      const y0 = ty.lo[j];
      if (z0 < 0 || y0 < 0) {
        out.fill(fill, idx, idx + nx);
        idx += nx;
        continue;
      }
      const y1 = ty.hi[j];
      const wy = ty.w[j];
      const r00 = z0 + y0;
      const r01 = z0 + y1;
      const r10 = z1 + y0;
      const r11 = z1 + y1;
      for (let i = 0; i < nx; i++) {
        const x0 = xlo[i];
        if (x0 < 0) {
          out[idx++] = fill;
          continue;
        }
        const x1 = xhi[i];
        const wx = xw[i];
        const a = src[r00 + x0];
        const b = src[r01 + x0];
        const c = src[r10 + x0];
        const d = src[r11 + x0];
        const c00 = a + (src[r00 + x1] - a) * wx;
        const c01 = b + (src[r01 + x1] - b) * wx;
        const c10 = c + (src[r10 + x1] - c) * wx;
        const c11 = d + (src[r11 + x1] - d) * wx;
        const c0 = c00 + (c01 - c00) * wy;
        const c1 = c10 + (c11 - c10) * wy;
        out[idx++] = c0 + (c1 - c0) * wz;
      }
    }
  }
}

export function nearestTable(
  n: number,
  srcN: number,
  scale: number,
  offset: number,
  stride: number,
): Int32Array {
  const t = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const x = scale * i + offset;
    if (!(x >= -0.5 - EDGE_EPS && x <= srcN - 0.5 + EDGE_EPS)) {
      t[i] = -1;
      continue;
    }
    t[i] = Math.min(Math.max(Math.floor(x + 0.5), 0), srcN - 1) * stride;
  }
  return t;
}

function nearestAligned(
  src: VoxelArray,
  sd: Dims3,
  out: VoxelArray,
  td: Dims3,
  m: Affine,
  fill: number,
): void {
  const tx = nearestTable(td[0], sd[0], m[0], m[3], 1);
  const ty = nearestTable(td[1], sd[1], m[5], m[7], sd[0]);
  const tz = nearestTable(td[2], sd[2], m[10], m[11], sd[0] * sd[1]);
  const [nx, ny, nz] = td;
  let idx = 0;
  for (let k = 0; k < nz; k++) {
    const z = tz[k];
    for (let j = 0; j < ny; j++) {
      const y = ty[j];
      if (z < 0 || y < 0) {
        out.fill(fill, idx, idx + nx);
        idx += nx;
        continue;
      }
      const row = z + y;
      for (let i = 0; i < nx; i++) {
        const x = tx[i];
        out[idx++] = x < 0 ? fill : src[row + x];
      }
    }
  }
}

/** Any orientation between the grids: the source position advances by m's first column along a row. */
function sampleGeneral(
  src: VoxelArray,
  sd: Dims3,
  out: VoxelArray,
  td: Dims3,
  m: Affine,
  fill: number,
  linear: boolean,
): void {
  const [sx, sy, sz] = sd;
  const sxy = sx * sy;
  const [nx, ny, nz] = td;
  const lox = -0.5 - EDGE_EPS;
  const hix = sx - 0.5 + EDGE_EPS;
  const hiy = sy - 0.5 + EDGE_EPS;
  const hiz = sz - 0.5 + EDGE_EPS;
  const mx = sx - 1;
  const my = sy - 1;
  const mz = sz - 1;
  let idx = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      let x = m[1] * j + m[2] * k + m[3];
      let y = m[5] * j + m[6] * k + m[7];
      let z = m[9] * j + m[10] * k + m[11];
      for (let i = 0; i < nx; i++, x += m[0], y += m[4], z += m[8]) {
        if (!(x >= lox && x <= hix && y >= lox && y <= hiy && z >= lox && z <= hiz)) {
          out[idx++] = fill;
          continue;
        }
        if (!linear) {
          const xi = Math.min(Math.max(Math.floor(x + 0.5), 0), mx);
          const yi = Math.min(Math.max(Math.floor(y + 0.5), 0), my);
          const zi = Math.min(Math.max(Math.floor(z + 0.5), 0), mz);
          out[idx++] = src[xi + sx * yi + sxy * zi];
          continue;
        }
        const cx = x < 0 ? 0 : Math.min(x, mx);
        const cy = y < 0 ? 0 : Math.min(y, my);
        const cz = z < 0 ? 0 : Math.min(z, mz);
        const x0 = Math.min(Math.floor(cx), mx > 0 ? mx - 1 : 0);
        const y0 = Math.min(Math.floor(cy), my > 0 ? my - 1 : 0);
        const z0 = Math.min(Math.floor(cz), mz > 0 ? mz - 1 : 0);
        const wx = cx - x0;
        const wy = cy - y0;
        const wz = cz - z0;
        const dx = x0 < mx ? 1 : 0;
        const dy = y0 < my ? sx : 0;
        const dz = z0 < mz ? sxy : 0;
        const p = x0 + sx * y0 + sxy * z0;
        const a = src[p];
        const b = src[p + dy];
        const c = src[p + dz];
        const d = src[p + dy + dz];
        const c00 = a + (src[p + dx] - a) * wx;
        const c01 = b + (src[p + dy + dx] - b) * wx;
        const c10 = c + (src[p + dz + dx] - c) * wx;
        const c11 = d + (src[p + dy + dz + dx] - d) * wx;
        const c0 = c00 + (c01 - c00) * wy;
        const c1 = c10 + (c11 - c10) * wy;
        out[idx++] = c0 + (c1 - c0) * wz;
      }
    }
  }
}
