import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TOTALSEG_CT, TOTALSEG_SEG } from '../../test/shared-data.ts';
import { FreeTumorError } from '../errors.ts';
import { applyReorientation, reorientationTo } from '../geometry/orientation.ts';
import { labelIds } from '../labels/detect.ts';
import { FREETUMOR_MAP, parseLabelMap, TOTALSEG_MAP } from '../labels/labelmap.ts';
import { Rng } from '../random.ts';
import { readNifti } from '../volume/nifti.ts';
import type { Dims3, Volume } from '../volume/volume.ts';
import { TextureBank } from './texture.ts';
import { synthesizeVolume, withLabelIds } from './whole-volume.ts';

const bank = new TextureBank({ minBlock: 64 });

/** Voxels that differ, and whether every difference is allowed by `ok(index)`. */
function diff(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  ok: (v: number) => boolean,
): { changed: number; bad: number } {
  let changed = 0;
  let bad = 0;
  for (let v = 0; v < a.length; v++) {
    if (a[v] !== b[v]) {
      changed++;
      if (!ok(v)) bad++;
    }
  }
  return { changed, bad };
}

/** A small int16 CT at 2 x 2 x 3 mm with a liver (1) containing a real tumor (2) and a kidney (5). */
function phantom(): { image: Volume; label: Volume } {
  const dims: Dims3 = [48, 40, 30];
  const n = dims[0] * dims[1] * dims[2];
  const image = new Int16Array(n);
  const label = new Uint8Array(n);
  for (let k = 0; k < dims[2]; k++)
    for (let j = 0; j < dims[1]; j++)
      for (let i = 0; i < dims[0]; i++) {
        const v = i + dims[0] * (j + dims[1] * k);
        image[v] = -80 + ((i * 7 + j * 3 + k) % 11);
        const liver = ((i - 18) / 14) ** 2 + ((j - 20) / 12) ** 2 + ((k - 15) / 10) ** 2;
        if (liver < 1) {
          label[v] = 1;
          image[v] = 60 + ((i + j + k) % 5);
        }
        if (((i - 12) / 3) ** 2 + ((j - 20) / 3) ** 2 + ((k - 15) / 2) ** 2 < 1) label[v] = 2;
        if (((i - 38) / 5) ** 2 + ((j - 20) / 5) ** 2 + ((k - 15) / 5) ** 2 < 1) label[v] = 5;
      }
  const affine = Float64Array.from([2, 0, 0, -40, 0, 2, 0, 10, 0, 0, 3, -200, 0, 0, 0, 1]);
  return {
    image: { dims, data: image, affine, datatype: 'int16' },
    label: { dims, data: label, affine: Float64Array.from(affine), datatype: 'uint8' },
  };
}

describe('synthesizeVolume on a phantom', () => {
  it('keeps grid, datatype and untouched voxels; writes the organ tumor id on organ voxels only', async () => {
    const { image, label } = phantom();
    const r = synthesizeVolume(
      image,
      label,
      { organ: 'liver', labelMap: FREETUMOR_MAP, type: 'small', count: 2, textures: bank },
      new Rng(5),
    );
    expect(r.image.dims).toEqual(image.dims);
    expect(r.image.affine).toEqual(image.affine);
    expect(r.image.datatype).toBe('int16');
    expect(r.image.data).toBeInstanceOf(Int16Array);
    expect(r.label.datatype).toBe('uint8');
    const labels = label.data;
    const img = diff(image.data, r.image.data, (v) => labels[v] === 1);
    expect(img.bad).toBe(0);
    expect(img.changed).toBeGreaterThan(0);
    expect(img.changed).toBe(r.summary.changedVoxels);
    const lab = diff(labels, r.label.data, (v) => labels[v] === 1 && r.label.data[v] === 2);
    expect(lab.bad).toBe(0);
    expect(lab.changed).toBe(r.summary.inputTumorVoxels);
    let darker = 0;
    for (let v = 0; v < labels.length; v++) {
      const d = r.image.data[v] - image.data[v];
      expect(d).toBeLessThanOrEqual(0);
      expect(d).toBeGreaterThanOrEqual(-0.7 * 425 - 1);
      if (d < 0) darker++;
    }
    expect(darker).toBe(img.changed);
    expect(r.summary.tumorLabel).toBe(2);
    expect(r.summary.tumors).toHaveLength(2);
    for (const t of r.summary.tumors) {
      if (t.voxels === 0) continue;
      expect(t.meanHuAfter!).toBeLessThan(t.meanHuBefore!);
      expect(t.volumeMl).toBeCloseTo((t.voxels * 1.5 ** 3) / 1000, 2);
    }
    const png = await r.preview();
    expect([...png.subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
  });

  it('is deterministic for a seed', () => {
    const { image, label } = phantom();
    const opts = {
      organ: 'liver' as const,
      labelMap: FREETUMOR_MAP,
      type: 'random' as const,
      textures: bank,
    };
    const a = synthesizeVolume(image, label, opts, new Rng(11));
    const b = synthesizeVolume(
      image,
      label,
      { ...opts, textures: new TextureBank({ minBlock: 64 }) },
      new Rng(11),
    );
    expect(b.image.data).toEqual(a.image.data);
    expect(b.label.data).toEqual(a.label.data);
  });

  it('fails with typed errors: empty organ, grids that differ, a tumor id the datatype cannot hold', () => {
    const { image, label } = phantom();
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as FreeTumorError).code;
      }
      return null;
    };
    expect(
      code(() =>
        synthesizeVolume(
          image,
          label,
          { organ: 'pancreas', labelMap: FREETUMOR_MAP, type: 'tiny' },
          new Rng(1),
        ),
      ),
    ).toBe('empty_organ');
    const moved = { ...label, affine: Float64Array.from(label.affine).fill(5, 3, 4) };
    expect(
      code(() =>
        synthesizeVolume(image, moved, { organ: 'liver', labelMap: FREETUMOR_MAP, type: 'tiny' }, new Rng(1)),
      ),
    ).toBe('invalid_geometry');
    const wide = parseLabelMap('liver=1,liver_tumor=300');
    expect(
      code(() =>
        synthesizeVolume(image, label, { organ: 'liver', labelMap: wide, type: 'tiny' }, new Rng(1)),
      ),
    ).toBe('invalid_label_map');
    expect(FreeTumorError).toBeDefined();
  });
});

describe('the tumor id from the label ids the caller gathered (labelIds)', () => {
  const { image, label } = phantom();
  // `liver=1` invents tumor id 2, which the phantom's real tumor uses: largest id (5) + 1.
  const invented = { organ: 'liver' as const, labelMap: parseLabelMap('liver=1'), type: 'small' as const };

  it('passed in or computed: the same tumor id, image, label and summary', () => {
    const computed = synthesizeVolume(image, label, { ...invented, textures: bank }, new Rng(21));
    const passed = synthesizeVolume(
      image,
      label,
      { ...invented, textures: bank, labelIds: labelIds(label.data) },
      new Rng(21),
    );
    expect(computed.summary.tumorLabel).toBe(6);
    expect(computed.summary.tumorLabelAssigned).toBe(true);
    expect(passed.summary).toEqual(computed.summary);
    expect(passed.image.data).toEqual(computed.image.data);
    expect(passed.label.data).toEqual(computed.label.data);
    // withLabelIds (synthesize-dataset's retries) gathers the same ids once.
    const once = withLabelIds(invented, label);
    expect(once.labelIds).toEqual(labelIds(label.data));
    expect(withLabelIds(once, label)).toBe(once);
  });

  it('the ids passed in are the ones used (the label is not scanned again)', () => {
    // Ids that deliberately disagree with the label: a second scan would give 6 and 2 instead.
    const without2 = { ids: [1, 5], invalid: 0 };
    const r = synthesizeVolume(
      image,
      label,
      { ...invented, labelIds: without2, textures: bank },
      new Rng(21),
    );
    expect(r.summary.tumorLabel).toBe(2);
    const with9 = { ids: [1, 2, 5, 9], invalid: 0 };
    const s = synthesizeVolume(image, label, { ...invented, labelIds: with9, textures: bank }, new Rng(21));
    expect(s.summary.tumorLabel).toBe(10);
  });

  it("ignores them where the id does not depend on the label: a given id, a scheme's own", () => {
    const clash = { ids: [1, 2, 5, 201], invalid: 0 };
    const given = synthesizeVolume(
      image,
      label,
      { organ: 'liver', labelMap: FREETUMOR_MAP, type: 'small', labelIds: clash, textures: bank },
      new Rng(2),
    );
    expect(given.summary.tumorLabel).toBe(2);
    expect(withLabelIds({ organ: 'liver', labelMap: FREETUMOR_MAP, type: 'small' }, label).labelIds).toBe(
      undefined,
    );
    // TotalSegmentator's liver tumor id 201 is invented but its own: held already, it stays 201.
    const liver5 = { ...label, data: Uint8Array.from(label.data, (v) => (v === 1 ? 5 : 0)) };
    const own = synthesizeVolume(
      image,
      liver5,
      { organ: 'liver', labelMap: TOTALSEG_MAP, type: 'small', labelIds: clash, textures: bank },
      new Rng(2),
    );
    expect(own.summary.tumorLabel).toBe(201);
    expect(own.summary.tumorLabelAssigned).toBe(true);
  });
});

describe.skipIf(!TOTALSEG_CT || !TOTALSEG_SEG)('synthesizeVolume on the real TotalSegmentator sample', () => {
  const image = TOTALSEG_CT ? readNifti(readFileSync(TOTALSEG_CT)) : (null as never);
  const label = TOTALSEG_SEG ? readNifti(readFileSync(TOTALSEG_SEG)) : (null as never);

  it('liver: same dims, affine and int32 datatype; only liver voxels change; tumor id 201', () => {
    expect(image.dims).toEqual([122, 101, 112]);
    const r = synthesizeVolume(
      image,
      label,
      { organ: 'liver', labelMap: TOTALSEG_MAP, type: 'medium', count: 1, textures: bank },
      new Rng(2),
    );
    expect(r.image.dims).toEqual(image.dims);
    expect(r.image.affine).toEqual(image.affine);
    expect(r.image.datatype).toBe('int32');
    expect(r.image.data).toBeInstanceOf(Int32Array);
    expect(r.label.affine).toEqual(label.affine);
    const seg = label.data;
    const img = diff(image.data, r.image.data, (v) => seg[v] === 5);
    expect(img.bad).toBe(0);
    expect(img.changed).toBeGreaterThan(100);
    const lab = diff(seg, r.label.data, (v) => seg[v] === 5 && r.label.data[v] === 201);
    expect(lab.bad).toBe(0);
    expect(lab.changed).toBeGreaterThan(50);
    const t = r.summary.tumors[0];
    expect(t.volumeMl).toBeGreaterThan(1);
    // Liver ~ 40-60 HU in portal venous phase; the tumor is darker by 0.2-0.7 x 425 HU x ~0.5.
    expect(t.meanHuBefore!).toBeGreaterThan(0);
    expect(t.meanHuBefore! - t.meanHuAfter!).toBeGreaterThan(0.2 * 425 * 0.2);
    expect(t.meanHuBefore! - t.meanHuAfter!).toBeLessThan(0.7 * 425 * 0.7);
  });

  it('an invented tumor id that the label already uses becomes the largest id + 1', () => {
    // `liver=5` alone would invent 6, which this TotalSegmentator label already uses.
    let max = 0;
    for (const v of label.data) max = Math.max(max, v);
    expect(label.data.includes(6)).toBe(true);
    const r = synthesizeVolume(
      image,
      label,
      { organ: 'liver', labelMap: parseLabelMap('liver=5'), type: 'small', count: 1, textures: bank },
      new Rng(3),
    );
    expect(r.summary.tumorLabel).toBe(max + 1);
    expect(r.summary.tumorLabelAssigned).toBe(true);
    const seg = label.data;
    const lab = diff(seg, r.label.data, (v) => seg[v] === 5 && r.label.data[v] === max + 1);
    expect(lab.bad).toBe(0);
    expect(lab.changed).toBeGreaterThan(0);
  });

  it('kidney (ids 2+3): the tumor stays in the kidneys', () => {
    const r = synthesizeVolume(
      image,
      label,
      { organ: 'kidney', labelMap: TOTALSEG_MAP, type: 'small', count: 2, textures: bank },
      new Rng(4),
    );
    const seg = label.data;
    expect(diff(image.data, r.image.data, (v) => seg[v] === 2 || seg[v] === 3).bad).toBe(0);
    const lab = diff(seg, r.label.data, (v) => (seg[v] === 2 || seg[v] === 3) && r.label.data[v] === 203);
    expect(lab.bad).toBe(0);
    expect(lab.changed).toBeGreaterThan(0);
  });

  it('an LPS copy gives the LPS copy of the RAS result', () => {
    const lps = reorientationTo(image.affine, 'LPS');
    const imageL = applyReorientation(image, lps);
    const labelL = applyReorientation(label, lps);
    const opts = {
      organ: 'liver' as const,
      labelMap: TOTALSEG_MAP,
      type: 'small' as const,
      count: 1,
      textures: bank,
    };
    const ras = synthesizeVolume(image, label, opts, new Rng(8));
    const fromLps = synthesizeVolume(imageL, labelL, opts, new Rng(8));
    expect(fromLps.image.affine).toEqual(imageL.affine);
    expect(fromLps.image.data).toEqual(applyReorientation(ras.image, lps).data);
    expect(fromLps.label.data).toEqual(applyReorientation(ras.label, lps).data);
  });
});
