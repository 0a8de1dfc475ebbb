import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TOTALSEG_CT, TOTALSEG_SEG } from '../../test/shared-data.ts';
import { LimitError } from '../errors.ts';
import { Rng } from '../random.ts';
import { readNifti } from '../volume/nifti.ts';
import { type Affine, type Dims3, spacingOf, type Volume } from '../volume/volume.ts';
import { applyAffine, invertAffine } from './affine.ts';
import { toCanonical } from './orientation.ts';
import { gridForSpacing, resampleToGrid, resampleToSpacing } from './resample.ts';

function affineOf(rows: number[]): Affine {
  const a = new Float64Array(16);
  a.set(rows);
  a[15] = 1;
  return a;
}

const RAS3 = affineOf([3, 0, 0, -100, 0, 3, 0, 20, 0, 0, 3, 50]);
const LPS3 = affineOf([-3, 0, 0, 100, 0, -3, 0, 80, 0, 0, 3, -50]);
/** 3 mm voxels along axes rotated 25 degrees about z then 15 degrees about x. */
const OBLIQUE = (() => {
  const [cz, sz] = [Math.cos((25 * Math.PI) / 180), Math.sin((25 * Math.PI) / 180)];
  const [cx, sx] = [Math.cos((15 * Math.PI) / 180), Math.sin((15 * Math.PI) / 180)];
  // Rz * Rx, times 3 mm.
  const r = [cz, -sz * cx, sz * sx, sz, cz * cx, -cz * sx, 0, sx, cx].map((v) => 3 * v);
  return affineOf([r[0], r[1], r[2], -10, r[3], r[4], r[5], 3, r[6], r[7], r[8], 7]);
})();

/** A field linear in world coordinates: trilinear interpolation must reproduce it exactly. */
const field = (p: number[]) => 0.5 * p[0] - 0.25 * p[1] + 0.75 * p[2] + 10;

function rampVolume(dims: Dims3, affine: Affine): Volume<Float64Array> {
  const data = new Float64Array(dims[0] * dims[1] * dims[2]);
  let idx = 0;
  for (let k = 0; k < dims[2]; k++)
    for (let j = 0; j < dims[1]; j++)
      for (let i = 0; i < dims[0]; i++) data[idx++] = field(applyAffine(affine, [i, j, k]));
  return { dims, data, affine, datatype: 'float64' };
}

/** Random blobs of labels 1..3. */
function blobMask(dims: Dims3, rng: Rng): Uint8Array {
  const m = new Uint8Array(dims[0] * dims[1] * dims[2]);
  for (let b = 0; b < 6; b++) {
    const c = dims.map((d) => rng.uniform(0, d));
    const r = rng.uniform(1.5, 4);
    const label = rng.int(1, 3);
    let idx = 0;
    for (let k = 0; k < dims[2]; k++)
      for (let j = 0; j < dims[1]; j++)
        for (let i = 0; i < dims[0]; i++, idx++)
          if (Math.hypot(i - c[0], j - c[1], k - c[2]) < r) m[idx] = label;
  }
  return m;
}

/** Whether a target voxel is at least one source voxel inside (where no edge clamping happens). */
function interior(src: Volume, p: number[]): boolean {
  const v = applyAffine(invertAffine(src.affine), p);
  return v.every((x, a) => x >= 0 && x <= src.dims[a] - 1);
}

describe('gridForSpacing', () => {
  for (const [name, affine] of [
    ['RAS', RAS3],
    ['LPS', LPS3],
    ['oblique', OBLIQUE],
  ] as const) {
    it(`${name}: same centre, same directions, field of view kept`, () => {
      const dims: Dims3 = [20, 15, 10];
      const g = gridForSpacing(dims, affine, [1.5, 1.5, 1.5]);
      expect(g.dims).toEqual([40, 30, 20]);
      const s = spacingOf(g.affine);
      for (const x of s) expect(x).toBeCloseTo(1.5, 10);
      const centre = applyAffine(
        affine,
        dims.map((d) => (d - 1) / 2),
      );
      const newCentre = applyAffine(
        g.affine,
        g.dims.map((d) => (d - 1) / 2),
      );
      for (let a = 0; a < 3; a++) expect(newCentre[a]).toBeCloseTo(centre[a], 9);
      // The outer faces coincide when the spacing divides evenly.
      const corner = applyAffine(affine, [-0.5, -0.5, -0.5]);
      const newCorner = applyAffine(g.affine, [-0.5, -0.5, -0.5]);
      for (let a = 0; a < 3; a++) expect(newCorner[a]).toBeCloseTo(corner[a], 9);
    });
  }

  it('rounds the dims and splits the difference when the spacing does not divide', () => {
    const g = gridForSpacing([10, 10, 10], RAS3, [4, 1, 7]);
    expect(g.dims).toEqual([8, 30, 4]);
  });

  it('rejects a non-positive spacing', () => {
    expect(() => gridForSpacing([2, 2, 2], RAS3, [1, 0, 1])).toThrow(/spacing/);
  });
});

describe('resampleToSpacing', () => {
  for (const [name, affine] of [
    ['RAS', RAS3],
    ['LPS', LPS3],
    ['oblique', OBLIQUE],
  ] as const) {
    it(`${name}: linear reproduces a world-linear ramp at 1.5 mm and at 4.5 mm`, () => {
      const src = rampVolume([16, 12, 9], affine);
      for (const s of [1.5, 4.5]) {
        const out = resampleToSpacing(src, [s, s, s], 'linear');
        expect(out.data).toBeInstanceOf(Float32Array);
        let checked = 0;
        let idx = 0;
        for (let k = 0; k < out.dims[2]; k++)
          for (let j = 0; j < out.dims[1]; j++)
            for (let i = 0; i < out.dims[0]; i++, idx++) {
              const p = applyAffine(out.affine, [i, j, k]);
              if (!interior(src, p)) continue;
              expect(Math.abs(out.data[idx] - field(p))).toBeLessThan(1e-3);
              checked++;
            }
        expect(checked).toBeGreaterThan(out.data.length / 3);
      }
    });

    it(`${name}: a label map to 1.5 mm and back with nearest is the original`, () => {
      const dims: Dims3 = [18, 14, 11];
      const mask: Volume<Uint8Array> = { dims, data: blobMask(dims, new Rng(5)), affine, datatype: 'uint8' };
      const fine = resampleToSpacing(mask, [1.5, 1.5, 1.5], 'nearest');
      expect(fine.data).toBeInstanceOf(Uint8Array);
      expect(fine.dims).toEqual([36, 28, 22]);
      const back = resampleToGrid(fine, dims, affine, 'nearest');
      expect(back.data).toEqual(mask.data);
      expect(Array.from(back.affine)).toEqual(Array.from(affine));
    });
  }

  it('linear at the same spacing is the identity', () => {
    const src = rampVolume([6, 5, 4], LPS3);
    const out = resampleToSpacing(src, [3, 3, 3], 'linear');
    expect(Array.from(out.data)).toEqual(Array.from(src.data, Math.fround));
  });

  it('refuses a target grid over the voxel limit', () => {
    const src = rampVolume([4, 4, 4], RAS3);
    expect(() => resampleToSpacing(src, [0.01, 0.01, 0.01], 'linear')).toThrow(LimitError);
  });
});

describe('resampleToGrid', () => {
  it('fills target voxels outside the source field of view', () => {
    const src: Volume<Int16Array> = {
      dims: [4, 4, 4],
      data: new Int16Array(64).fill(9),
      affine: RAS3,
      datatype: 'int16',
    };
    const shifted = Float64Array.from(RAS3);
    shifted[3] += 3 * 3; // three voxels along x
    const out = resampleToGrid(src, [4, 4, 4], shifted, 'nearest', { fill: -1 });
    expect(out.data).toBeInstanceOf(Int16Array);
    expect(Array.from(out.data.subarray(0, 4))).toEqual([9, -1, -1, -1]);
    const lin = resampleToGrid(src, [4, 4, 4], shifted, 'linear');
    expect(Array.from(lin.data.subarray(0, 4))).toEqual([9, 0, 0, 0]);
  });

  it('nearest onto the canonical grid equals the exact reorientation (general path)', () => {
    const dims: Dims3 = [7, 6, 5];
    const vol: Volume<Uint8Array> = {
      dims,
      data: blobMask(dims, new Rng(2)),
      affine: affineOf([0, 0, -2, 10, -1, 0, 0, 5, 0, 3, 0, 1]),
      datatype: 'uint8',
    };
    const canon = toCanonical(vol).volume;
    const out = resampleToGrid(vol, canon.dims, canon.affine, 'nearest');
    expect(out.data).toEqual(canon.data);
  });

  it('linear onto an oblique grid reproduces a ramp (general path)', () => {
    const src = rampVolume([30, 30, 30], affineOf([3, 0, 0, -40, 0, 3, 0, -30, 0, 0, 3, -20]));
    const out = resampleToGrid(src, [10, 10, 10], OBLIQUE, 'linear');
    let checked = 0;
    let idx = 0;
    for (let k = 0; k < 10; k++)
      for (let j = 0; j < 10; j++)
        for (let i = 0; i < 10; i++, idx++) {
          const p = applyAffine(OBLIQUE, [i, j, k]);
          if (!interior(src, p)) continue;
          expect(Math.abs(out.data[idx] - field(p))).toBeLessThan(1e-3);
          checked++;
        }
    expect(checked).toBeGreaterThan(100);
  });
});

describe.skipIf(!TOTALSEG_CT || !TOTALSEG_SEG)('real CT: 3 mm -> 1.5 mm -> 3 mm', () => {
  it('keeps the segmentation exactly and the CT close', () => {
    const ct = readNifti(new Uint8Array(readFileSync(TOTALSEG_CT as string)));
    const seg = readNifti(new Uint8Array(readFileSync(TOTALSEG_SEG as string)));
    const fineSeg = resampleToSpacing(seg, [1.5, 1.5, 1.5], 'nearest');
    expect(fineSeg.dims).toEqual([244, 202, 224]);
    const backSeg = resampleToGrid(fineSeg, seg.dims, seg.affine, 'nearest');
    expect(backSeg.data).toEqual(seg.data);
    const fineCt = resampleToSpacing(ct, [1.5, 1.5, 1.5], 'linear');
    const backCt = resampleToGrid(fineCt, ct.dims, ct.affine, 'linear');
    // Back at the original centres the linear samples average two neighbours: close, not equal.
    let sum = 0;
    for (let i = 0; i < ct.data.length; i++) sum += Math.abs(backCt.data[i] - ct.data[i]);
    expect(sum / ct.data.length).toBeLessThan(30);
  });
});
