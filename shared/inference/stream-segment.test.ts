import { describe, expect, it } from 'vitest';
import { applyAffine } from '../geometry/affine.ts';
import { applyReorientation, axcodes, reorientationTo } from '../geometry/orientation.ts';
import { readNifti, writeNifti } from '../volume/nifti.ts';
import { NiftiSliceReader, streamOfBytes } from '../volume/nifti-slices.ts';
import { type Dims3, makeVolume, type Volume } from '../volume/volume.ts';
import { segmentVolume } from './pipeline.ts';
import type { OnnxRunner, Tensor5 } from './runner.ts';
import { segmentSliceStream } from './stream-segment.ts';
import { testManifest } from './test-helpers.ts';

/**
 * A "model" whose probabilities depend on the intensity and on the position inside the patch, so
 * that overlapping windows disagree and the blending and its order matter (as with a real net).
 */
function positionalRunner(): OnnxRunner {
  return {
    async run(inputs) {
      const x = Object.values(inputs)[0];
      const [n, , d, h, w] = x.dims;
      const pv = d * h * w;
      const out = new Float32Array(n * 3 * pv);
      for (let b = 0; b < n; b++) {
        let v = 0;
        for (let z = 0; z < d; z++)
          for (let y = 0; y < h; y++)
            for (let xx = 0; xx < w; xx++, v++) {
              const val = x.data[b * pv + v];
              const bias = 0.04 * Math.sin(xx * 0.7 + y * 0.3 + z * 0.5);
              const logits = [0.55 - val, val - 0.47 + bias, 4 * (val - 0.75) - bias];
              const m = Math.max(...logits);
              const e = logits.map((l) => Math.exp(8 * (l - m)));
              const s = e[0] + e[1] + e[2];
              for (let c = 0; c < 3; c++) out[(b * 3 + c) * pv + v] = e[c] / s;
            }
      }
      return { output: { dims: [n, 3, d, h, w] as Tensor5['dims'], data: out } };
    },
  };
}

/** An organ ball with a tumor inside it and a tumor-bright blob outside it, on an anisotropic grid. */
function scene(dims: Dims3 = [46, 40, 30]): Volume<Int16Array> {
  const affine = Float64Array.of(1.6, 0, 0, -36, 0, 1.9, 0, -38, 0, 0, 2.5, 5, 0, 0, 0, 1);
  const ct = new Int16Array(dims[0] * dims[1] * dims[2]);
  for (let k = 0; k < dims[2]; k++)
    for (let j = 0; j < dims[1]; j++)
      for (let i = 0; i < dims[0]; i++) {
        const p = applyAffine(affine, [i, j, k]);
        const v = i + dims[0] * (j + dims[1] * k);
        let hu = -60 + ((i * 7 + j * 13 + k * 5) % 17) * 3;
        if (Math.hypot(p[0], p[1], p[2] - 40) < 22) hu = 95 + ((i + j) % 5) * 4;
        if (Math.hypot(p[0] - 5, p[1] - 4, p[2] - 42) < 7) hu = 210;
        if (Math.hypot(p[0] - 28, p[1] - 26, p[2] - 40) < 4) hu = 215;
        if (Math.hypot(p[0] + 12, p[1] - 9, p[2] - 30) < 2.2) hu = 205;
        ct[v] = hu;
      }
  return makeVolume(dims, ct, affine, 'int16');
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
