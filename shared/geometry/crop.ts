/**
 * Crop / pad in voxel space with the affine moved along, and bounding boxes of masks.
 */
import { FreeTumorError, LimitError } from '../errors.ts';
import { allocLike } from '../volume/datatype.ts';
import type { Dims3, Volume, VoxelArray } from '../volume/volume.ts';

/** Largest crop/pad result accepted (voxels); larger sizes are a LimitError. */
const MAX_VOXELS = 2 ** 28;

/**
 * The box of `size` voxels starting at voxel `start` of `vol` (either may reach outside the
 * volume: those voxels take `fill`). The affine's origin moves to voxel `start`, so every
 * voxel keeps its world position.
 */
export function cropOrPad<T extends VoxelArray>(
  vol: Volume<T>,
  start: Dims3,
  size: Dims3,
  fill = 0,
): Volume<T> {
  for (let a = 0; a < 3; a++) {
    if (!Number.isInteger(start[a]) || !Number.isInteger(size[a]) || size[a] < 1) {
      throw new FreeTumorError('invalid_argument', 'crop start must be integers and size positive integers');
    }
  }
  const count = size[0] * size[1] * size[2];
  if (count > MAX_VOXELS) throw new LimitError('cropped voxel count', MAX_VOXELS, count);
  const [sx, sy, sz] = vol.dims;
  const [nx, ny, nz] = size;
  const out = allocLike(vol.data, count) as T;
  if (fill !== 0) out.fill(fill);
  // The overlap in x, copied row by row.
  const i0 = Math.max(0, -start[0]);
  const i1 = Math.min(nx, sx - start[0]);
  const src = vol.data;
  if (i1 > i0) {
    for (let k = 0; k < nz; k++) {
      const zk = start[2] + k;
      if (zk < 0 || zk >= sz) continue;
      for (let j = 0; j < ny; j++) {
        const yj = start[1] + j;
        if (yj < 0 || yj >= sy) continue;
        const from = start[0] + i0 + sx * (yj + sy * zk);
        // out and src have the same element type (allocLike), so this is a plain memcpy.
        (out as Float64Array).set(
          src.subarray(from, from + (i1 - i0)) as Float64Array,
          i0 + nx * (j + ny * k),
        );
      }
    }
  }
  const a = vol.affine;
  const affine = Float64Array.from(a);
  for (let r = 0; r < 3; r++) {
    affine[r * 4 + 3] =
      a[r * 4 + 3] + a[r * 4] * start[0] + a[r * 4 + 1] * start[1] + a[r * 4 + 2] * start[2];
  }
  return { dims: [nx, ny, nz], data: out, affine, datatype: vol.datatype };
}

export interface BoundingBox {
  /** First voxel inside the box, per axis. */
  start: Dims3;
  /** One past the last voxel inside the box, per axis. */
  end: Dims3;
  /** end - start. */
  size: Dims3;
}

/** The smallest box holding every voxel where `pred` (default: non-zero) holds, or null when there is none. */
export function boundingBox(
  mask: ArrayLike<number>,
  dims: Dims3,
  pred: (v: number) => boolean = (v) => v !== 0,
): BoundingBox | null {
  const [nx, ny, nz] = dims;
  if (mask.length !== nx * ny * nz)
    throw new FreeTumorError('invalid_argument', 'mask length does not match dims');
  let minX = nx;
  let minY = ny;
  let minZ = nz;
  let maxX = -1;
  let maxY = -1;
  let maxZ = -1;
  let idx = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++, idx++) {
        if (!pred(mask[idx])) continue;
        if (i < minX) minX = i;
        if (i > maxX) maxX = i;
        if (j < minY) minY = j;
        if (j > maxY) maxY = j;
        if (k < minZ) minZ = k;
        if (k > maxZ) maxZ = k;
      }
    }
  }
  if (maxX < 0) return null;
  const start: Dims3 = [minX, minY, minZ];
  const end: Dims3 = [maxX + 1, maxY + 1, maxZ + 1];
  return { start, end, size: [end[0] - start[0], end[1] - start[1], end[2] - start[2]] };
}
