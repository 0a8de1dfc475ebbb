import { describe, expect, it } from 'vitest';
import { Rng } from '../random.ts';
import type { Affine, Dims3, Volume } from '../volume/volume.ts';
import { applyAffine, invertAffine } from './affine.ts';
import {
  applyReorientation,
  axcodes,
  fromCanonical,
  inverseReorientation,
  type Reorientation,
  reorientationTo,
  toCanonical,
} from './orientation.ts';

function affineOf(rows: number[]): Affine {
  const a = new Float64Array(16);
  a.set(rows);
  a[15] = 1;
  return a;
}

function rotZ(deg: number, s = 1): number[] {
  const c = Math.cos((deg * Math.PI) / 180);
  const n = Math.sin((deg * Math.PI) / 180);
  return [c * s, -n * s, 0, 5, n * s, c * s, 0, 6, 0, 0, s, 7];
}

describe('axcodes (as nibabel aff2axcodes)', () => {
  const table: Array<[string, number[], string]> = [
    ['identity', [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], 'RAS'],
    ['DICOM LPS', [-0.8, 0, 0, 200, 0, -0.8, 0, 180, 0, 0, 2.5, -50], 'LPS'],
    ['radiological LAS', [-1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], 'LAS'],
    ['LPI', [-1, 0, 0, 0, 0, -1, 0, 0, 0, 0, -1, 0], 'LPI'],
    ['permuted (sagittal stack)', [0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0], 'SRA'],
    ['permuted and flipped', [0, 0, -2, 0, -3, 0, 0, 0, 0, 1, 0, 0], 'PSL'],
    ['oblique 30 degrees about z', rotZ(30), 'RAS'],
    ['oblique 60 degrees about z', rotZ(60), 'ALS'],
    ['oblique 150 degrees about z', rotZ(150), 'LPS'],
    ['135 degrees: round-off decides the tie', rotZ(135), 'ALS'],
    ['45 degrees: a tie goes to the lower world axis', rotZ(45), 'RAS'],
    ['anisotropic oblique', [0.7, -0.2, 0.3, 0, 0.1, 0.9, -0.4, 0, -0.2, 0.3, 2.8, 0], 'RAS'],
    ['sheared', [1, 0.9, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], 'RAS'],
  ];
  for (const [name, rows, codes] of table) {
    it(`${name} -> ${codes}`, () => expect(axcodes(affineOf(rows))).toBe(codes));
  }
  it('marks a zero column with ?', () =>
    expect(axcodes(affineOf([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]))).toBe('R?S'));
});

function ramp(dims: Dims3, affine: Affine): Volume<Float32Array> {
  const data = new Float32Array(dims[0] * dims[1] * dims[2]);
  for (let i = 0; i < data.length; i++) data[i] = i;
  return { dims, data, affine, datatype: 'float32' };
}

/** Every axis permutation with every combination of flips, in world terms. */
function allOrientations(): number[][] {
  const perms = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
  ];
  const out: number[][] = [];
  for (const p of perms) {
    for (let f = 0; f < 8; f++) {
      const rows = new Array(12).fill(0);
      const spacing = [0.7, 1.3, 2.5];
      for (let c = 0; c < 3; c++) rows[p[c] * 4 + c] = (f >> c) & 1 ? -spacing[c] : spacing[c];
      rows[3] = -40.25;
      rows[7] = 17.5;
      rows[11] = 123.125;
      out.push(rows);
    }
  }
  return out;
}

describe('toCanonical / fromCanonical', () => {
  const dims: Dims3 = [5, 4, 3];
  const rng = new Rng(11);
  const oblique = [0.9, -0.3, 0.1, -120.5, 0.25, 1.4, 0.2, 33.25, -0.05, -0.15, 2.9, 77];
  for (const rows of [...allOrientations(), oblique]) {
    const start = affineOf(rows);
    it(`${axcodes(start)} ${rows === oblique ? '(oblique) ' : ''}-> RAS keeps every voxel's world position; undo is exact`, () => {
      const vol = ramp(dims, start);
      const { volume, undo } = toCanonical(vol);
      expect(axcodes(volume.affine)).toBe('RAS');
      // Each original voxel's value is found at the canonical voxel with the same world position.
      const toCan = invertAffine(volume.affine);
      for (let t = 0; t < 20; t++) {
        const v = [rng.int(0, dims[0] - 1), rng.int(0, dims[1] - 1), rng.int(0, dims[2] - 1)];
        const c = applyAffine(toCan, applyAffine(start, v)).map(Math.round);
        const cd = volume.dims;
        expect(volume.data[c[0] + cd[0] * (c[1] + cd[1] * c[2])]).toBe(
          vol.data[v[0] + dims[0] * (v[1] + dims[1] * v[2])],
        );
      }
      const back = fromCanonical(volume, undo);
      expect(back.dims).toEqual(dims);
      expect(back.data).toEqual(vol.data);
      expect(Array.from(back.affine)).toEqual(Array.from(start));
      expect(back.affine).not.toBe(start);
    });
  }

  it('shares the data when the volume is already RAS', () => {
    const vol = ramp(dims, affineOf([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]));
    const { volume } = toCanonical(vol);
    expect(volume.data).toBe(vol.data);
  });

  it('keeps the typed array type', () => {
    const vol: Volume<Int16Array> = {
      dims,
      data: new Int16Array(60).fill(3),
      affine: affineOf([-1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 1, 0]),
      datatype: 'int16',
    };
    expect(toCanonical(vol).volume.data).toBeInstanceOf(Int16Array);
  });

  it('rejects a reorientation that is not a permutation', () => {
    const bad: Reorientation = { axes: [0, 0, 1], flips: [false, false, false] };
    expect(() => applyReorientation(ramp(dims, affineOf([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0])), bad)).toThrow(
      /permutation/,
    );
  });
});

describe('reorientationTo', () => {
  it('reaches any target orientation and back', () => {
    const start = affineOf([-0.8, 0, 0, 200, 0, -0.8, 0, 180, 0, 0, 2.5, -50]);
    const vol = ramp([5, 4, 3], start);
    for (const target of ['LPS', 'RAS', 'PIR', 'SLA']) {
      const r = reorientationTo(start, target);
      const out = applyReorientation(vol, r);
      expect(axcodes(out.affine)).toBe(target);
      const back = applyReorientation(out, inverseReorientation(r, vol));
      expect(back.data).toEqual(vol.data);
      expect(Array.from(back.affine)).toEqual(Array.from(start));
    }
    expect(() => reorientationTo(start, 'RRS')).toThrow(/orientation/);
    expect(() => reorientationTo(start, 'ras')).toThrow(/orientation/);
  });
});
