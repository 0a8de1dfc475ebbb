import { describe, expect, it } from 'vitest';
import { Rng } from '../random.ts';
import type { Dims3 } from '../volume/volume.ts';
import { connectedComponents, voxelVolumeMl } from './components.ts';

/** Breadth-first flood fill, labels in scan order of each component's first voxel: an independent reference. */
function floodFill(mask: Uint8Array, dims: Dims3, connectivity: 6 | 26): Int32Array {
  const [nx, ny, nz] = dims;
  const labels = new Int32Array(mask.length);
  const queue = new Int32Array(mask.length);
  const steps: number[][] = [];
  for (let dk = -1; dk <= 1; dk++)
    for (let dj = -1; dj <= 1; dj++)
      for (let di = -1; di <= 1; di++) {
        const manhattan = Math.abs(di) + Math.abs(dj) + Math.abs(dk);
        if (manhattan === 0 || (connectivity === 6 && manhattan > 1)) continue;
        steps.push([di, dj, dk]);
      }
  let next = 0;
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || labels[start]) continue;
    labels[start] = ++next;
    let head = 0;
    let tail = 0;
    queue[tail++] = start;
    while (head < tail) {
      const p = queue[head++];
      const i = p % nx;
      const j = Math.floor(p / nx) % ny;
      const k = Math.floor(p / (nx * ny));
      for (const [di, dj, dk] of steps) {
        const a = i + di;
        const b = j + dj;
        const c = k + dk;
        if (a < 0 || b < 0 || c < 0 || a >= nx || b >= ny || c >= nz) continue;
        const q = a + nx * (b + ny * c);
        if (mask[q] && !labels[q]) {
          labels[q] = next;
          queue[tail++] = q;
        }
      }
    }
  }
  return labels;
}

describe('connectedComponents', () => {
  it('separates diagonal neighbours with 6-connectivity and joins them with 26', () => {
    const dims: Dims3 = [4, 4, 4];
    const m = new Uint8Array(64);
    m[0] = 1; // (0,0,0)
    m[1 + 4 * (1 + 4 * 1)] = 1; // (1,1,1): corner-adjacent
    m[3 + 4 * 3 * 1 + 16 * 3] = 1; // (3,3,3): isolated
    const six = connectedComponents(m, dims, 6);
    expect(six.count).toBe(3);
    expect(six.sizes).toEqual([1, 1, 1]);
    const all = connectedComponents(m, dims, 26);
    expect(all.count).toBe(2);
    expect(all.sizes).toEqual([2, 1]);
    expect(all.labels[0]).toBe(1);
    expect(all.labels[1 + 4 * (1 + 4 * 1)]).toBe(1);
  });

  it('counts two cubes and a U shape (needs a merge) correctly', () => {
    const dims: Dims3 = [10, 6, 3];
    const m = new Uint8Array(180);
    const set = (i: number, j: number, k: number) => {
      m[i + 10 * (j + 6 * k)] = 1;
    };
    // U: two prongs joined only at the bottom row of the scan (j = 4).
    for (let j = 0; j < 5; j++) {
      set(0, j, 1);
      set(3, j, 1);
    }
    for (let i = 0; i < 4; i++) set(i, 4, 1);
    for (let i = 6; i < 9; i++) for (let j = 0; j < 2; j++) for (let k = 0; k < 2; k++) set(i, j, k);
    const c = connectedComponents(m, dims, 6);
    expect(c.count).toBe(2);
    expect(c.sizes.sort((a, b) => a - b)).toEqual([12, 12]);
  });

  for (const connectivity of [6, 26] as const) {
    it(`matches a flood fill on random masks (${connectivity}-connectivity)`, () => {
      const rng = new Rng(connectivity);
      for (let t = 0; t < 8; t++) {
        const dims: Dims3 = [rng.int(1, 20), rng.int(1, 20), rng.int(1, 20)];
        const density = rng.uniform(0.1, 0.6);
        const m = new Uint8Array(dims[0] * dims[1] * dims[2]);
        for (let i = 0; i < m.length; i++) m[i] = rng.random() < density ? rng.int(1, 255) : 0;
        const c = connectedComponents(m, dims, connectivity);
        const ref = floodFill(m, dims, connectivity);
        expect(c.labels).toEqual(ref);
        const sizes = new Array(c.count).fill(0);
        for (const l of ref) if (l) sizes[l - 1]++;
        expect(c.sizes).toEqual(sizes);
      }
    });
  }

  it('handles one component spanning a large volume without recursion', () => {
    const dims: Dims3 = [64, 64, 64];
    const c = connectedComponents(new Uint8Array(64 ** 3).fill(1), dims, 26);
    expect(c.count).toBe(1);
    expect(c.sizes).toEqual([64 ** 3]);
  });

  it('rejects a mask of the wrong length', () => {
    expect(() => connectedComponents(new Uint8Array(3), [2, 2, 2], 6)).toThrow(/dims/);
  });
});

describe('voxelVolumeMl', () => {
  it('is |det| / 1000 for any orientation', () => {
    expect(
      voxelVolumeMl(Float64Array.from([1.5, 0, 0, 0, 0, 1.5, 0, 0, 0, 0, 1.5, 0, 0, 0, 0, 1])),
    ).toBeCloseTo(0.003375, 12);
    expect(voxelVolumeMl(Float64Array.from([0, -2, 0, 5, -3, 0, 0, 1, 0, 0, 4, 2, 0, 0, 0, 1]))).toBeCloseTo(
      0.024,
      12,
    );
  });
});
