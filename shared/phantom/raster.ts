/**
 * The phantom's voxel grid (world mm <-> voxel) and the painter that writes a structure code
 * into every voxel of a shape, but only over codes the structure may displace (an organ
 * displaces fat, never the spine), so that painting order plus these rules give the anatomy.
 */
import type { Dims3 } from '../volume/volume.ts';
import type { Shape } from './shapes.ts';

export interface Grid {
  dims: Dims3;
  /** Isotropic voxel size in mm. */
  spacing: number;
  /** World coordinates (mm, RAS+) of voxel (0, 0, 0). */
  origin: [number, number, number];
}

/** A grid of `dims` voxels of `spacing` mm whose centre is world (0, 0, 0). */
export function centredGrid(dims: Dims3, spacing: number): Grid {
  return {
    dims: [...dims] as Dims3,
    spacing,
    origin: [0, 1, 2].map((a) => (-spacing * (dims[a] - 1)) / 2) as [number, number, number],
  };
}

/** Voxel -> world RAS+ affine (row-major 4x4): identity rotation, isotropic spacing. */
export function gridAffine(g: Grid): Float64Array {
  const a = new Float64Array(16);
  a[0] = g.spacing;
  a[5] = g.spacing;
  a[10] = g.spacing;
  a[3] = g.origin[0];
  a[7] = g.origin[1];
  a[11] = g.origin[2];
  a[15] = 1;
  return a;
}

/** Inclusive voxel index range [lo, hi] along axis `a` covering world [min, max]; empty when lo > hi. */
function indexRange(g: Grid, a: number, min: number, max: number): [number, number] {
  const lo = Math.max(0, Math.ceil((min - g.origin[a]) / g.spacing));
  const hi = Math.min(g.dims[a] - 1, Math.floor((max - g.origin[a]) / g.spacing));
  return [lo, hi];
}

/** A 256-entry table: which existing codes a structure may overwrite. */
export function overwrites(...codes: number[]): Uint8Array {
  const t = new Uint8Array(256);
  for (const c of codes) t[c] = 1;
  return t;
}

/** Writes `code` into the voxels inside `shape` whose current code `mayOverwrite` allows. Returns the count. */
export function paint(
  g: Grid,
  codes: Uint8Array,
  shape: Shape,
  code: number,
  mayOverwrite: Uint8Array,
): number {
  const [nx, ny] = g.dims;
  const [i0, i1] = indexRange(g, 0, shape.min[0], shape.max[0]);
  const [j0, j1] = indexRange(g, 1, shape.min[1], shape.max[1]);
  const [k0, k1] = indexRange(g, 2, shape.min[2], shape.max[2]);
  const s = g.spacing;
  let n = 0;
  for (let k = k0; k <= k1; k++) {
    const z = g.origin[2] + k * s;
    for (let j = j0; j <= j1; j++) {
      const y = g.origin[1] + j * s;
      const row = nx * (j + ny * k);
      for (let i = i0; i <= i1; i++) {
        const idx = row + i;
        if (mayOverwrite[codes[idx]] === 0) continue;
        if (shape.level(g.origin[0] + i * s, y, z) <= 1) {
          codes[idx] = code;
          n++;
        }
      }
    }
  }
  return n;
}

/** Calls `fn(index, level)` for every voxel in the shape's box whose level is <= `maxLevel`. */
export function visit(
  g: Grid,
  shape: Shape,
  maxLevel: number,
  fn: (index: number, level: number) => void,
): void {
  const [nx, ny] = g.dims;
  const [i0, i1] = indexRange(g, 0, shape.min[0], shape.max[0]);
  const [j0, j1] = indexRange(g, 1, shape.min[1], shape.max[1]);
  const [k0, k1] = indexRange(g, 2, shape.min[2], shape.max[2]);
  const s = g.spacing;
  for (let k = k0; k <= k1; k++) {
    const z = g.origin[2] + k * s;
    for (let j = j0; j <= j1; j++) {
      const y = g.origin[1] + j * s;
      const row = nx * (j + ny * k);
      for (let i = i0; i <= i1; i++) {
        const l = shape.level(g.origin[0] + i * s, y, z);
        if (l <= maxLevel) fn(row + i, l);
      }
    }
  }
}

/**
 * Mirrors a volume's data along x in place. The anatomy is drawn with +x toward the patient's
 * left; on a grid centred at world 0 this turns it into RAS+ (+x toward the patient's right).
 */
export function mirrorX(data: { length: number; [i: number]: number }, dims: Dims3): void {
  const nx = dims[0];
  for (let row = 0; row < data.length; row += nx) {
    for (let a = row, b = row + nx - 1; a < b; a++, b--) {
      const t = data[a];
      data[a] = data[b];
      data[b] = t;
    }
  }
}
