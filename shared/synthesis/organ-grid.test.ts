import { describe, expect, it } from 'vitest';
import { applyAffine } from '../geometry/affine.ts';
import { toCanonical } from '../geometry/orientation.ts';
import { resampleToSpacing } from '../geometry/resample.ts';
import { windowHU } from '../intensity/window.ts';
import { FREETUMOR_MAP, mergedLookup, toMergedScheme } from '../labels/labelmap.ts';
import { Rng } from '../random.ts';
import { type Dims3, makeVolume } from '../volume/volume.ts';
import { ORGAN_GRID_MARGIN, organWorkGrid } from './organ-grid.ts';
import { forEachTumorVoxel } from './plan.ts';
import { synthesize } from './synthesize.ts';
import { TextureBank } from './texture.ts';
import { synthesizeVolume } from './whole-volume.ts';

/** An LPS int16 CT at 3 mm with a liver (1) off-centre and a kidney (5). */
function makeCase() {
  const dims: Dims3 = [60, 50, 40];
  const n = dims[0] * dims[1] * dims[2];
  const ct = new Int16Array(n).fill(-800);
  const label = new Uint8Array(n);
  for (let k = 0; k < dims[2]; k++)
    for (let j = 0; j < dims[1]; j++)
      for (let i = 0; i < dims[0]; i++) {
        const v = i + dims[0] * (j + dims[1] * k);
        if (((i - 20) / 12) ** 2 + ((j - 22) / 10) ** 2 + ((k - 18) / 9) ** 2 < 1) {
          label[v] = 1;
          ct[v] = 60 + ((i * 7 + j * 3 + k) % 11);
        }
        if (((i - 48) / 4) ** 2 + ((j - 20) / 4) ** 2 + ((k - 20) / 5) ** 2 < 1) label[v] = 5;
      }
  const affine = Float64Array.of(-3, 0, 0, 90, 0, -3, 0, 75, 0, 0, 3, -60, 0, 0, 0, 1);
  return { image: makeVolume(dims, ct, affine, 'int16'), label: makeVolume(dims, label, affine, 'uint8') };
}

describe('organWorkGrid', () => {
  it('is a sub-grid of the full working grid around the organ, with the margin', () => {
    const { label } = makeCase();
    const canon = toCanonical(label).volume;
    const full = resampleToSpacing(canon, [1.5, 1.5, 1.5], 'nearest');
    const grid = organWorkGrid(canon, mergedLookup(FREETUMOR_MAP, 'liver'), 1.5);
    expect(grid.dims.every((d, a) => d < full.dims[a])).toBe(true);
    // Its voxel centres are full-grid voxel centres (integer offsets).
    const origin = applyAffine(grid.affine, [0, 0, 0]);
    const inv = full.affine;
    const offset = [0, 1, 2].map((a) => (origin[a] - inv[a * 4 + 3]) / inv[a * 5]);
    for (const o of offset) expect(Math.abs(o - Math.round(o))).toBeLessThan(1e-9);
    // Every liver voxel of the full grid lies inside, at least the margin from the sides.
    const [fx, fy] = full.dims;
    for (let v = 0; v < full.data.length; v++) {
      if (full.data[v] !== 1) continue;
      const ijk = [v % fx, Math.floor(v / fx) % fy, Math.floor(v / (fx * fy))];
      for (let a = 0; a < 3; a++) {
        const local = ijk[a] - Math.round(offset[a]);
        expect(local).toBeGreaterThanOrEqual(Math.min(ORGAN_GRID_MARGIN, ijk[a]));
        expect(local).toBeLessThan(grid.dims[a]);
      }
    }
  });

  it('gives synthesizeVolume the tumors and HU changes a synthesis on the whole grid gives', () => {
    const { image, label } = makeCase();
    const full = resampleToSpacing(toCanonical(image).volume, [1.5, 1.5, 1.5], 'linear');
    const fullLabel = resampleToSpacing(toCanonical(label).volume, [1.5, 1.5, 1.5], 'nearest');
    const input = {
      image: windowHU(full.data),
      label: toMergedScheme(fullLabel.data, FREETUMOR_MAP, 'liver'),
      dims: full.dims,
    };
    for (const [type, seed] of [
      ['small', 1],
      ['medium', 2],
      ['mix', 3],
    ] as const) {
      const textures = new TextureBank({ size: 32 });
      const count = type === 'mix' ? undefined : 2;
      const cut = synthesizeVolume(
        image,
        label,
        { organ: 'liver', labelMap: FREETUMOR_MAP, type, count, textures },
        new Rng(seed),
      );
      const whole = synthesize(input, { type, count, organ: 'liver', textures }, new Rng(seed)).plan;
      const wholeImage = synthesize(input, { type, count, organ: 'liver', textures }, new Rng(seed)).image;
      expect(cut.summary.blurSigma).toBeCloseTo(whole.blurSigma, 4);
      expect(cut.summary.texture).toEqual(whole.texture);
      expect(cut.summary.tumors.map((t) => t.voxels)).toEqual(whole.tumors.map((t) => t.voxels));
      const mm = whole.tumors.map((t) =>
        t.centroid ? applyAffine(full.affine, t.centroid).map((x) => Math.round(x * 100) / 100) : null,
      );
      expect(cut.summary.tumors.map((t) => t.centroidMm)).toEqual(mm);
      // The HU before and after in each tumor: the image resampled on the region alone is the same.
      const hu = whole.tumors.map((_, n) => {
        let before = 0;
        let after = 0;
        let c = 0;
        forEachTumorVoxel(whole, n, (v) => {
          before += full.data[v];
          after += full.data[v] + (wholeImage[v] - input.image[v]) * 425;
          c++;
        });
        return c > 0 ? [Math.round((before / c) * 10) / 10, Math.round((after / c) * 10) / 10] : [null, null];
      });
      const cutHu = cut.summary.tumors.map((t) => [t.meanHuBefore, t.meanHuAfter]);
      for (let n = 0; n < hu.length; n++) {
        for (let q = 0; q < 2; q++) {
          if (hu[n][q] === null) expect(cutHu[n][q]).toBeNull();
          else expect(cutHu[n][q]).toBeCloseTo(hu[n][q] as number, 0);
        }
      }
    }
  });
});
