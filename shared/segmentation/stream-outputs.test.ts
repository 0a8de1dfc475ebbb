import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TOTALSEG_CT } from '../../test/shared-data.ts';
import { applyReorientation, axcodes, reorientationTo } from '../geometry/orientation.ts';
import { segmentNiftiStream } from '../inference/stream-segment.ts';
import { positionalRunner, scene, testManifest } from '../inference/test-helpers.ts';
import { readNifti, writeNifti } from '../volume/nifti.ts';
import { NiftiSliceReader, streamOfBytes } from '../volume/nifti-slices.ts';
import type { Volume } from '../volume/volume.ts';
import { renderSegmentPreviewPng } from './preview.ts';
import { segmentationStatistics } from './statistics.ts';
import { maskCentroid, secondPass } from './stream-outputs.ts';
import { maskStructures } from './structures.ts';

const manifest = testManifest({ spacing: [3, 3, 3], patchSize: [16, 16, 16], overlap: 0.25, divisor: 4 });
const structures = maskStructures(manifest.labels, 'liver');
const context = { model: { name: 'test', version: '0' }, organ: 'liver' };
const open = (bytes: Uint8Array) => NiftiSliceReader.open(streamOfBytes(bytes, 5003));

/**
 * The streamed segmentation's statistics and preview (second pass over the CT) against the
 * whole-volume functions on the same mask and CT.
 */
async function compare(bytes: Uint8Array) {
  const seg = await segmentNiftiStream(await open(bytes), manifest, positionalRunner(), {});
  const centroid = maskCentroid(seg, structures);
  const plane = seg.dims[0] * seg.dims[1];
  const data = new Uint8Array(plane * seg.dims[2]);
  let k = 0;
  for (const s of seg.slices()) {
    centroid.add(s);
    data.set(s, plane * k++);
  }
  const mask: Volume<Uint8Array> = { dims: seg.dims, data, affine: seg.affine, datatype: 'uint8' };
  const streamed = await secondPass(seg, await open(bytes), structures, {
    context,
    preview: { window: [-175, 250], organCentroid: centroid },
  });
  const ct = readNifti(bytes);
  const whole = segmentationStatistics(ct, mask, structures, context);
  expect(streamed.statistics).toEqual(whole);
  const png = renderSegmentPreviewPng(ct, mask, structures, {
    focusMm: whole.lesions[0]?.centroidMm,
    window: [-175, 250],
  });
  expect(Buffer.from(streamed.previewPng as Uint8Array).equals(Buffer.from(png))).toBe(true);
  return whole;
}

describe('statistics and preview of a streamed segmentation (second pass over the CT)', () => {
  const base = scene();
  for (const codes of ['RAS', 'LPS', 'ASL', 'SRP']) {
    it(`equal the whole-volume statistics and preview for ${codes} storage`, async () => {
      const vol = codes === 'RAS' ? base : applyReorientation(base, reorientationTo(base.affine, codes));
      expect(axcodes(vol.affine)).toBe(codes);
      const whole = await compare(writeNifti(vol, { gzip: codes !== 'LPS' }));
      // The scene has several lesions: ordering, ids and per-lesion HU are exercised.
      expect(whole.lesions.length).toBeGreaterThan(1);
      expect(whole.structures.every((s) => s.hu !== null)).toBe(true);
    });
  }

  it('equal them for scaled float data, and without lesions (the organ-centroid focus)', async () => {
    const scaled = {
      ...base,
      data: Float32Array.from(base.data, (v) => v * 1.013 + 0.37),
      datatype: 'float32' as const,
    };
    expect((await compare(writeNifti(scaled))).lesions.length).toBeGreaterThan(0);
    // No voxel bright enough for a tumor: the preview centres on the organ.
    const calm = { ...base, data: Int16Array.from(base.data, (v) => Math.min(v, 100)) };
    for (const codes of ['RAS', 'PIL']) {
      const vol = codes === 'RAS' ? calm : applyReorientation(calm, reorientationTo(calm.affine, codes));
      const whole = await compare(writeNifti(vol));
      expect(whole.lesions).toEqual([]);
      expect(whole.organVoxels).toBeGreaterThan(0);
    }
  });

  it.skipIf(!TOTALSEG_CT)('equal them on the real CT sample', async () => {
    const whole = await compare(readFileSync(TOTALSEG_CT as string));
    expect(whole.organVoxels).toBeGreaterThan(0);
  });
});
