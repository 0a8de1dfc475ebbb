/**
 * The working grid of a whole-volume synthesis, cut to the organ: the grid `resampleToSpacing`
 * would give (same voxel centres), restricted to the box of the organ's voxels (and its real
 * tumors) plus a margin. A handcrafted synthesis only reads and writes voxels of the organ, its
 * erosion looks 2 voxels around them and its blur region 9, so a margin of 12 gives the same
 * tumors, textures and HU changes as the whole grid, at the cost of resampling ~1/8 of the
 * voxels of an abdomen CT (the organ's box instead of the field of view).
 */
import { applyAffine, invertAffine } from '../geometry/affine.ts';
import { gridForSpacing } from '../geometry/resample.ts';
import type { Affine, Dims3, Volume } from '../volume/volume.ts';

/** Working voxels kept around the organ's box (>= erosion radius 2 + blur pad 9, plus one). */
export const ORGAN_GRID_MARGIN = 12;

export interface WorkGrid {
  dims: Dims3;
  affine: Affine;
}

/**
 * The grid at `spacing` over `label`'s field of view, cut to the voxels whose `lut` entry is
 * non-zero plus `margin`; the whole grid when no voxel is (the caller reports the empty organ).
 */
export function organWorkGrid(
  label: Volume,
  lut: Uint8Array,
  spacing: number,
  margin = ORGAN_GRID_MARGIN,
): WorkGrid {
  const full = gridForSpacing(label.dims, label.affine, [spacing, spacing, spacing]);
  const [nx, ny, nz] = label.dims;
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-Infinity, -Infinity, -Infinity];
  const data = label.data;
  let v = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++, v++) {
        const l = data[v];
        if (!(l > 0 && l === (l | 0) && lut[l] !== 0)) continue;
        if (i < lo[0]) lo[0] = i;
        if (i > hi[0]) hi[0] = i;
        if (j < lo[1]) lo[1] = j;
        if (j > hi[1]) hi[1] = j;
        if (k < lo[2]) lo[2] = k;
        if (k > hi[2]) hi[2] = k;
      }
    }
  }
  if (lo[0] > hi[0]) return full;
  // The label voxels' box (faces at +-0.5) in working voxel coordinates.
  const toWork = invertAffine(full.affine);
  const wlo = [Infinity, Infinity, Infinity];
  const whi = [-Infinity, -Infinity, -Infinity];
  for (let c = 0; c < 8; c++) {
    const corner = [0, 1, 2].map((a) => ((c >> a) & 1 ? hi[a] + 0.5 : lo[a] - 0.5));
    const p = applyAffine(toWork, applyAffine(label.affine, corner));
    for (let a = 0; a < 3; a++) {
      wlo[a] = Math.min(wlo[a], p[a]);
      whi[a] = Math.max(whi[a], p[a]);
    }
  }
  const start = [0, 1, 2].map((a) => Math.max(0, Math.floor(wlo[a]) - margin)) as Dims3;
  const end = [0, 1, 2].map((a) => Math.min(full.dims[a] - 1, Math.ceil(whi[a]) + margin));
  const dims = [0, 1, 2].map((a) => end[a] - start[a] + 1) as Dims3;
  const affine = Float64Array.from(full.affine);
  const origin = applyAffine(full.affine, start);
  affine[3] = origin[0];
  affine[7] = origin[1];
  affine[11] = origin[2];
  return { dims, affine };
}
