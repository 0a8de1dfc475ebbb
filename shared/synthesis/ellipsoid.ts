/**
 * Binary 3-D shapes in small boxes (the tumor before it is pasted into a volume), and the
 * discrete ellipsoid of the reference (SyntheticTumors `get_ellipsoid`).
 */
import type { Dims3 } from '../volume/volume.ts';

/** A binary mask in its own box, volume layout (index i + nx*(j + ny*k)). */
export interface Shape {
  dims: Dims3;
  data: Uint8Array;
}

/**
 * Ellipsoid with integer semi-axes in a box of (4rx, 4ry, 4rz) centred at (2rx, 2ry, 2rz): a voxel
 * is inside iff sum(((p - c) / r)^2) < 1 (strict, as the reference's `1 - sum > 0`).
 */
export function ellipsoid(radii: Dims3): Shape {
  const dims = radii.map((r) => 4 * r) as Dims3;
  const [nx, ny, nz] = dims;
  const [rx, ry, rz] = radii;
  const data = new Uint8Array(nx * ny * nz);
  for (let k = 0; k < nz; k++) {
    const dz = (k - 2 * rz) / rz;
    for (let j = 0; j < ny; j++) {
      const dy = (j - 2 * ry) / ry;
      const rest = dz * dz + dy * dy;
      if (rest >= 1) continue;
      const row = nx * (j + ny * k);
      for (let i = 0; i < nx; i++) {
        const dx = (i - 2 * rx) / rx;
        if (dx * dx + rest < 1) data[row + i] = 1;
      }
    }
  }
  return { dims, data };
}
