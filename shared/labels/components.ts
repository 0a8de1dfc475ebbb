/**
 * 3D connected components (6- or 26-connectivity) of a binary mask, and voxel volume in ml.
 *
 * Two passes with union-find (iterative, no recursion, memory linear in the voxel count):
 * the first gives each foreground voxel a provisional label and merges it with the labels of
 * the neighbours already scanned; the second resolves each to its root and renumbers the
 * components 1..count in the order their first voxel appears (i fastest, then j, then k).
 */
import { FreeTumorError } from '../errors.ts';
import { det3 } from '../geometry/affine.ts';
import type { Affine, Dims3 } from '../volume/volume.ts';

export interface Components {
  /** Per voxel: 0 background, else the component 1..count. */
  labels: Int32Array;
  count: number;
  /** sizes[id - 1] is the voxel count of component id. */
  sizes: number[];
}

/** Neighbours already visited in scan order: [di, dj, dk]. */
const BACKWARD_6: Array<[number, number, number]> = [
  [-1, 0, 0],
  [0, -1, 0],
  [0, 0, -1],
];
const BACKWARD_26: Array<[number, number, number]> = [];
for (let dk = -1; dk <= 0; dk++) {
  for (let dj = -1; dj <= 1; dj++) {
    for (let di = -1; di <= 1; di++) {
      if (dk === 0 && (dj > 0 || (dj === 0 && di >= 0))) continue;
      BACKWARD_26.push([di, dj, dk]);
    }
  }
}

/** Components of the voxels where `mask` is non-zero. */
export function connectedComponents(
  mask: ArrayLike<number>,
  dims: Dims3,
  connectivity: 6 | 26 = 26,
): Components {
  const [nx, ny, nz] = dims;
  const n = nx * ny * nz;
  if (mask.length !== n) throw new FreeTumorError('invalid_argument', 'mask length does not match dims');
  if (connectivity !== 6 && connectivity !== 26)
    throw new FreeTumorError('invalid_argument', 'connectivity must be 6 or 26');
  const neighbours = connectivity === 6 ? BACKWARD_6 : BACKWARD_26;
  const offsets = neighbours.map(([di, dj, dk]) => di + nx * (dj + ny * dk));
  const labels = new Int32Array(n);
  let parent = new Int32Array(1024);
  let next = 1;

  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  };

  let idx = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++, idx++) {
        if (mask[idx] === 0) continue;
        let label = 0;
        for (let q = 0; q < neighbours.length; q++) {
          const [di, dj, dk] = neighbours[q];
          const ii = i + di;
          const jj = j + dj;
          if (ii < 0 || ii >= nx || jj < 0 || jj >= ny || k + dk < 0) continue;
          const other = labels[idx + offsets[q]];
          if (other === 0) continue;
          if (label === 0) {
            label = find(other);
            continue;
          }
          const a = find(other);
          if (a !== label) {
            // Keep the smaller root so that roots are the earliest provisional labels.
            if (a < label) {
              parent[label] = a;
              label = a;
            } else parent[a] = label;
          }
        }
        if (label === 0) {
          if (next >= parent.length) {
            const grown = new Int32Array(parent.length * 2);
            grown.set(parent);
            parent = grown;
          }
          parent[next] = next;
          label = next++;
        }
        labels[idx] = label;
      }
    }
  }

  const final = new Int32Array(next);
  const sizes: number[] = [];
  for (let p = 0; p < n; p++) {
    const l = labels[p];
    if (l === 0) continue;
    const root = find(l);
    let id = final[root];
    if (id === 0) {
      sizes.push(0);
      id = sizes.length;
      final[root] = id;
    }
    labels[p] = id;
    sizes[id - 1]++;
  }
  return { labels, count: sizes.length, sizes };
}

/** Volume of one voxel in millilitres: |det| of the affine's 3x3 part (mm^3) / 1000. */
export function voxelVolumeMl(affine: Affine): number {
  return Math.abs(det3(affine)) / 1000;
}
