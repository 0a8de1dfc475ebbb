import { describe, expect, it } from 'vitest';
import { applyAffine } from '../geometry/affine.ts';
import { applyReorientation, axcodes, reorientationTo } from '../geometry/orientation.ts';
import { readNifti, writeNifti } from '../volume/nifti.ts';
import { NiftiSliceReader, streamOfBytes } from '../volume/nifti-slices.ts';
import type { Volume } from '../volume/volume.ts';
import { segmentVolume } from './pipeline.ts';
import { segmentSliceStream } from './stream-segment.ts';
import { positionalRunner, scene, testManifest } from './test-helpers.ts';

const SPECK = [-26, -27, 16];

/** The scene with an organ-bright speck far from the organ ball (below a tenth of its size). */
function speckled(): Volume<Int16Array> {
  const v = scene();
  const [nx, ny, nz] = v.dims;
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++) {
        const p = applyAffine(v.affine, [i, j, k]);
        if (Math.hypot(p[0] - SPECK[0], p[1] - SPECK[1], p[2] - SPECK[2]) < 4)
          v.data[i + nx * (j + ny * k)] = 100;
      }
  return v;
}

const manifest = testManifest({ spacing: [3, 3, 3], patchSize: [16, 16, 16], overlap: 0.25, divisor: 4 });

async function streamed(bytes: Uint8Array, options = {}) {
  const reader = await NiftiSliceReader.open(streamOfBytes(bytes, 4099));
  const seg = await segmentSliceStream(reader, manifest, positionalRunner(), options);
  const [nx, ny, nz] = seg.dims;
  const mask = new Uint8Array(nx * ny * nz);
  let k = 0;
  for (const slice of seg.slices()) mask.set(slice, nx * ny * k++);
  return { seg, mask };
}

describe('segmentSliceStream', () => {
  const base = scene();
  for (const codes of ['RAS', 'LPS', 'LPI', 'ASL', 'SRP', 'IPL']) {
    it(`gives the whole-volume mask, lesions and counts for ${codes} storage`, async () => {
      const vol = codes === 'RAS' ? base : applyReorientation(base, reorientationTo(base.affine, codes));
      expect(axcodes(vol.affine)).toBe(codes);
      const bytes = writeNifti(vol, { gzip: codes !== 'LPS' });
      // The whole-volume reference reads the same file (the header stores the affine as float32).
      const whole = await segmentVolume(readNifti(bytes), manifest, positionalRunner(), {});
      const { seg, mask } = await streamed(bytes);
      expect(seg.dims).toEqual(vol.dims);
      expect(seg.modelDims.slice().sort()).toEqual(whole.modelDims.slice().sort());
      let same = 0;
      for (let i = 0; i < mask.length; i++) if (mask[i] === whole.mask.data[i]) same++;
      // RAS and LPS store along +z: the windows add up in the same order, so the mask is identical.
      // Other storage orders sum overlapping windows in another order (float rounding only).
      if (codes === 'RAS' || codes === 'LPS') expect(same).toBe(mask.length);
      else expect(same / mask.length).toBeGreaterThan(0.9995);
      const classes = new Set(whole.mask.data);
      expect(classes.has(1) && classes.has(2)).toBe(true);
      const counts = seg.classVoxels();
      expect(counts[2]).toBe(whole.mask.data.filter((v) => v === 2).length);
      if (codes === 'RAS' || codes === 'LPS') expect(seg.lesions()).toEqual(whole.lesions);
      else expect(seg.lesions().length).toBe(whole.lesions.length);
    });
  }

  it('applies the organ constraint and the minimum lesion size as the whole-volume clean-up', async () => {
    for (const opts of [
      { organConstraint: false },
      { minLesionMl: 0.5 },
      { minLesionMl: 0.05, organConstraint: false },
    ]) {
      const bytes = writeNifti(base);
      const whole = await segmentVolume(readNifti(bytes), manifest, positionalRunner(), opts);
      const { seg, mask } = await streamed(bytes, opts);
      expect(Buffer.from(mask).equals(Buffer.from(whole.mask.data))).toBe(true);
      expect(seg.lesions()).toEqual(whole.lesions);
    }
  });

  it('drops organ specks below a tenth of the organ with the constraint, keeps them without', async () => {
    const base = speckled();
    const bytes = writeNifti(base);
    const near = (mask: Uint8Array) => {
      let organ = 0;
      const [nx, ny, nz] = base.dims;
      for (let k = 0; k < nz; k++)
        for (let j = 0; j < ny; j++)
          for (let i = 0; i < nx; i++) {
            const p = applyAffine(base.affine, [i, j, k]);
            if (Math.hypot(p[0] - SPECK[0], p[1] - SPECK[1], p[2] - SPECK[2]) < 4)
              organ += mask[i + nx * (j + ny * k)] === 1 ? 1 : 0;
          }
      return organ;
    };
    const raw = await segmentVolume(readNifti(bytes), manifest, positionalRunner(), {
      organConstraint: false,
    });
    expect(near(raw.mask.data)).toBeGreaterThan(10);
    const clean = await segmentVolume(readNifti(bytes), manifest, positionalRunner(), {});
    expect(near(clean.mask.data)).toBe(0);
    // The organ ball itself stays.
    expect(clean.mask.data.filter((v) => v === 1).length).toBeGreaterThan(1000);
    const { mask } = await streamed(bytes);
    expect(Buffer.from(mask).equals(Buffer.from(clean.mask.data))).toBe(true);
  });

  it('handles a volume thinner than one patch and scaled data', async () => {
    const thin = scene([30, 20, 3]);
    const scaled = {
      ...thin,
      data: Float32Array.from(thin.data, (v) => v * 0.5 - 10),
      datatype: 'float32' as const,
    };
    const whole = await segmentVolume(scaled, manifest, positionalRunner(), {});
    const { mask } = await streamed(writeNifti(scaled));
    expect(Buffer.from(mask).equals(Buffer.from(whole.mask.data))).toBe(true);
  });

  it('refuses a band that would not fit the memory budget, naming the limit', async () => {
    const reader = await NiftiSliceReader.open(streamOfBytes(writeNifti(base)));
    const err = await segmentSliceStream(reader, manifest, positionalRunner(), { maxBandBytes: 1000 }).catch(
      (e) => e,
    );
    expect(err.code).toBe('too_large');
    expect(err.message).toMatch(/sliding-window band bytes/);
  });
});
