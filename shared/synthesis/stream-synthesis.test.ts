import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TOTALSEG_CT, TOTALSEG_SEG } from '../../test/shared-data.ts';
import { applyReorientation, axcodes, reorientationTo } from '../geometry/orientation.ts';
import { LabelIdCollector } from '../labels/detect.ts';
import { type LabelMap, parseLabelMap, TOTALSEG_MAP } from '../labels/labelmap.ts';
import { Rng } from '../random.ts';
import { readNifti, writeNifti } from '../volume/nifti.ts';
import { NiftiSliceReader, streamOfBytes } from '../volume/nifti-slices.ts';
import { niftiSliceStream } from '../volume/nifti-write-stream.ts';
import type { Dims3, Volume } from '../volume/volume.ts';
import { CROP_MARGIN } from './stream-plan.ts';
import { StreamedSynthesis } from './stream-synthesis.ts';
import { TextureBank } from './texture.ts';
import type { SynthesisType } from './tumors.ts';
import { synthesizeVolume, type VolumeSynthesisOptions } from './whole-volume.ts';

const bank = new TextureBank({ minBlock: 64 });
const CT_DESCRIPTION = 'freetumor synthetic CT (HU)';
const LABEL_DESCRIPTION = 'freetumor labels + synthetic tumor';

async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  return Buffer.from(await new Response(stream).arrayBuffer());
}

/** The streamed synthesis of two NIfTI files: uncompressed output bytes and the summary. */
async function streamed(
  imageBytes: Uint8Array,
  labelBytes: Uint8Array,
  options: VolumeSynthesisOptions,
  seed: number,
) {
  const ct = await NiftiSliceReader.open(streamOfBytes(imageBytes, 7001));
  const openLabel = () => NiftiSliceReader.open(streamOfBytes(labelBytes, 6007));
  const s = await StreamedSynthesis.plan(ct.info, openLabel, options, new Rng(seed), { maxVoxels: 1e8 });
  const image = await bytesOf(
    niftiSliceStream(ct.info.dims, ct.info.affine, ct.info.datatype, s.ctSlices(ct), {
      description: CT_DESCRIPTION,
    }),
  );
  const label = await bytesOf(
    niftiSliceStream(s.label.dims, s.label.affine, s.label.datatype, s.labelSlices(), {
      description: LABEL_DESCRIPTION,
    }),
  );
  return { image, label, summary: s.summary() };
}

/** Streamed and whole-volume synthesis of the same files and seed: the same bytes and summary. */
async function expectSame(image: Volume, label: Volume, options: VolumeSynthesisOptions, seed: number) {
  const imageBytes = writeNifti(image);
  const labelBytes = writeNifti(label);
  const whole = synthesizeVolume(readNifti(imageBytes), readNifti(labelBytes), options, new Rng(seed));
  const s = await streamed(imageBytes, labelBytes, options, seed);
  expect(s.summary).toEqual(whole.summary);
  const wholeImage = Buffer.from(writeNifti(whole.image, { gzip: false, description: CT_DESCRIPTION }));
  const wholeLabel = Buffer.from(writeNifti(whole.label, { gzip: false, description: LABEL_DESCRIPTION }));
  expect(s.image.length).toBe(wholeImage.length);
  expect(s.image.equals(wholeImage)).toBe(true);
  expect(s.label.equals(wholeLabel)).toBe(true);
  return whole.summary;
}

/** An int16 CT with a liver (1) holding a real tumor (2) and a kidney (5), on an anisotropic grid. */
function phantom(dims: Dims3 = [56, 48, 26], affine = [1.7, 0, 0, -40, 0, 1.9, 0, 10, 0, 0, 3.2, -200]) {
  const n = dims[0] * dims[1] * dims[2];
  const image = new Int16Array(n);
  const label = new Uint8Array(n);
  const [cx, cy, cz] = dims.map((d) => d / 2);
  for (let k = 0; k < dims[2]; k++)
    for (let j = 0; j < dims[1]; j++)
      for (let i = 0; i < dims[0]; i++) {
        const v = i + dims[0] * (j + dims[1] * k);
        image[v] = -80 + ((i * 7 + j * 3 + k) % 11);
        const liver = ((i - cx + 6) / 16) ** 2 + ((j - cy) / 14) ** 2 + ((k - cz) / 8) ** 2;
        if (liver < 1) {
          label[v] = 1;
          image[v] = 60 + ((i * 5 + j + k * 3) % 9);
        }
        if (((i - cx + 12) / 3) ** 2 + ((j - cy) / 3) ** 2 + ((k - cz) / 2) ** 2 < 1) label[v] = 2;
        if (((i - cx - 18) / 5) ** 2 + ((j - cy) / 5) ** 2 + ((k - cz) / 4) ** 2 < 1) label[v] = 5;
      }
  const a = Float64Array.from([...affine, 0, 0, 0, 1]);
  return {
    image: { dims, data: image, affine: a, datatype: 'int16' } as Volume,
    label: { dims, data: label, affine: Float64Array.from(a), datatype: 'uint8' } as Volume,
  };
}

const map: LabelMap = parseLabelMap('liver=1,liver_tumor=2,kidney=5');

describe('streamed synthesis equals the whole-volume synthesis (the CLI), byte for byte', () => {
  const base = phantom();
  for (const codes of ['RAS', 'LPS', 'LPI', 'ASL', 'SRP']) {
    it(`${codes} storage`, async () => {
      const r = codes === 'RAS' ? null : reorientationTo(base.image.affine, codes);
      const image = r ? applyReorientation(base.image, r) : base.image;
      const label = r ? applyReorientation(base.label, r) : base.label;
      expect(axcodes(image.affine)).toBe(codes);
      const summary = await expectSame(
        image,
        label,
        { organ: 'liver', labelMap: map, type: 'medium', textures: bank },
        3,
      );
      expect(summary.changedVoxels).toBeGreaterThan(0);
      expect(summary.inputTumorVoxels).toBeGreaterThan(0);
    });
  }

  it('every tumor type, several tumors, a given difference and the brighten mode', async () => {
    const types: SynthesisType[] = ['tiny', 'small', 'large', 'mix', 'random'];
    for (const [n, type] of types.entries()) {
      await expectSame(
        base.image,
        base.label,
        { organ: 'liver', labelMap: map, type, textures: bank },
        10 + n,
      );
    }
    await expectSame(
      base.image,
      base.label,
      {
        organ: 'liver',
        labelMap: map,
        type: 'small',
        count: 3,
        difference: 0.4,
        mode: 'brighten',
        textures: bank,
      },
      5,
    );
  });

  it('an invented tumor id past the largest one, float data, fine slices and an organ at the volume edge', async () => {
    // liver=1 with no tumor id: the label uses 2 already, so the tumor id becomes 6 (largest + 1).
    const invented = parseLabelMap('liver=1');
    const summary = await expectSame(
      base.image,
      base.label,
      { organ: 'liver', labelMap: invented, type: 'small', textures: bank },
      4,
    );
    expect(summary.tumorLabel).toBe(6);
    const fine = phantom([40, 36, 70], [2.1, 0, 0, -40, 0, 2.2, 0, 10, 0, 0, 0.9, -20]);
    const scaled = {
      ...fine.image,
      data: Float32Array.from(fine.image.data, (v) => v * 0.75 + 0.3),
      datatype: 'float32' as const,
    };
    await expectSame(
      scaled,
      fine.label,
      { organ: 'liver', labelMap: map, type: 'medium', textures: bank },
      8,
    );
    // The kidney lies within the crop margin of the volume's edge.
    const edge = phantom([44, 48, 26]);
    expect(CROP_MARGIN).toBeGreaterThan(0);
    await expectSame(
      edge.image,
      edge.label,
      { organ: 'kidney', labelMap: map, type: 'small', textures: bank },
      9,
    );
  });

  it('label ids gathered slice by slice beforehand (the Worker resolving the map) are the ones used', async () => {
    // liver=1 invents 2, which the label uses: 6 from the label's own ids, computed or passed in.
    const invented = parseLabelMap('liver=1');
    const imageBytes = writeNifti(base.image);
    const labelBytes = writeNifti(base.label);
    const reader = await NiftiSliceReader.open(streamOfBytes(labelBytes, 6007));
    const collector = new LabelIdCollector();
    for (let slice = await reader.next(); slice; slice = await reader.next()) collector.add(slice);
    const options = { organ: 'liver' as const, labelMap: invented, type: 'small' as const, textures: bank };
    const whole = synthesizeVolume(readNifti(imageBytes), readNifti(labelBytes), options, new Rng(4));
    const passed = await streamed(imageBytes, labelBytes, { ...options, labelIds: collector.ids() }, 4);
    expect(whole.summary.tumorLabel).toBe(6);
    expect(passed.summary).toEqual(whole.summary);
    expect(
      passed.label.equals(
        Buffer.from(writeNifti(whole.label, { gzip: false, description: LABEL_DESCRIPTION })),
      ),
    ).toBe(true);
    // Ids that disagree with the label: the plan takes them as given rather than scanning again.
    const told = await streamed(
      imageBytes,
      labelBytes,
      { ...options, labelIds: { ids: [1, 5], invalid: 0 } },
      4,
    );
    expect(told.summary.tumorLabel).toBe(2);
  });

  it('refuses an empty organ and a crop over the limit, naming them, as the CLI does', async () => {
    const imageBytes = writeNifti(base.image);
    const labelBytes = writeNifti({ ...base.label, data: new Uint8Array(base.label.data.length) });
    const options: VolumeSynthesisOptions = { organ: 'liver', labelMap: map, type: 'small', textures: bank };
    const err = await streamed(imageBytes, labelBytes, options, 1).catch((e) => e);
    const whole = (() => {
      try {
        synthesizeVolume(readNifti(imageBytes), readNifti(labelBytes), options, new Rng(1));
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err.code).toBe('empty_organ');
    expect(err.message).toBe(whole?.message);
    const ct = await NiftiSliceReader.open(streamOfBytes(imageBytes));
    const big = await StreamedSynthesis.plan(
      ct.info,
      () => NiftiSliceReader.open(streamOfBytes(writeNifti(base.label))),
      options,
      new Rng(1),
      { maxVoxels: 1000 },
    ).catch((e) => e);
    expect(big.code).toBe('too_large');
    expect(big.message).toMatch(/synthesis voxels/);
  });

  it.skipIf(!TOTALSEG_CT || !TOTALSEG_SEG)('on the real CT sample (TotalSegmentator labels)', async () => {
    const image = readNifti(readFileSync(TOTALSEG_CT as string));
    const label = readNifti(readFileSync(TOTALSEG_SEG as string));
    for (const [organ, seed] of [
      ['liver', 1],
      ['kidney', 2],
    ] as const) {
      const summary = await expectSame(
        image,
        label,
        { organ, labelMap: TOTALSEG_MAP, type: 'random', textures: bank },
        seed,
      );
      expect(summary.tumors.length).toBeGreaterThan(0);
    }
  });
});
