import { describe, expect, it } from 'vitest';
import type { Affine, Dims3, Volume } from '../volume/volume.ts';
import { applyAffine } from './affine.ts';
import { boundingBox, cropOrPad } from './crop.ts';

const AFFINE: Affine = Float64Array.from([-0.8, 0, 0, 100, 0, -0.8, 0, 90, 0, 0, 2, -40, 0, 0, 0, 1]);

function indexed(dims: Dims3): Volume<Int16Array> {
  const data = new Int16Array(dims[0] * dims[1] * dims[2]);
  for (let i = 0; i < data.length; i++) data[i] = i;
  return { dims, data, affine: AFFINE, datatype: 'int16' };
}

describe('cropOrPad', () => {
  const vol = indexed([6, 5, 4]);
  const at = (v: Volume, i: number, j: number, k: number) => v.data[i + v.dims[0] * (j + v.dims[1] * k)];

  it('crops inside the volume and moves the origin so world positions are kept', () => {
    const out = cropOrPad(vol, [1, 2, 1], [3, 2, 2]);
    expect(out.dims).toEqual([3, 2, 2]);
    expect(out.data).toBeInstanceOf(Int16Array);
    for (let k = 0; k < 2; k++)
      for (let j = 0; j < 2; j++)
        for (let i = 0; i < 3; i++) {
          expect(at(out, i, j, k)).toBe(at(vol, i + 1, j + 2, k + 1));
          const world = applyAffine(vol.affine, [i + 1, j + 2, k + 1]);
          const got = applyAffine(out.affine, [i, j, k]);
          for (let a = 0; a < 3; a++) expect(got[a]).toBeCloseTo(world[a], 10);
        }
  });

  it('pads with the fill value where the box leaves the volume', () => {
    const out = cropOrPad(vol, [-2, -1, 3], [10, 7, 3], -1024);
    expect(out.dims).toEqual([10, 7, 3]);
    expect(at(out, 0, 0, 0)).toBe(-1024);
    expect(at(out, 2, 1, 0)).toBe(at(vol, 0, 0, 3));
    expect(at(out, 7, 5, 0)).toBe(at(vol, 5, 4, 3));
    expect(at(out, 8, 5, 0)).toBe(-1024);
    expect(at(out, 2, 1, 1)).toBe(-1024);
    let kept = 0;
    for (const v of out.data) if (v !== -1024) kept++;
    expect(kept).toBe(6 * 5);
  });

  it('handles a box entirely outside and rejects bad sizes', () => {
    const out = cropOrPad(vol, [50, 0, 0], [2, 2, 2], 7);
    expect(Array.from(out.data)).toEqual(new Array(8).fill(7));
    expect(() => cropOrPad(vol, [0, 0, 0], [0, 1, 1])).toThrow(/size/);
    expect(() => cropOrPad(vol, [0.5, 0, 0], [1, 1, 1])).toThrow(/integers/);
  });
});

describe('boundingBox', () => {
  it('finds the box of non-zero voxels, or of a predicate', () => {
    const dims: Dims3 = [8, 7, 6];
    const m = new Uint8Array(8 * 7 * 6);
    m[2 + 8 * (3 + 7 * 1)] = 1;
    m[5 + 8 * (1 + 7 * 4)] = 2;
    expect(boundingBox(m, dims)).toEqual({ start: [2, 1, 1], end: [6, 4, 5], size: [4, 3, 4] });
    expect(boundingBox(m, dims, (v) => v === 2)).toEqual({
      start: [5, 1, 4],
      end: [6, 2, 5],
      size: [1, 1, 1],
    });
    expect(boundingBox(new Uint8Array(8 * 7 * 6), dims)).toBeNull();
    expect(() => boundingBox(m, [2, 2, 2])).toThrow(/dims/);
  });
});
