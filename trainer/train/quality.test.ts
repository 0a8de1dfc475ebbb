import * as tf from '@tensorflow/tfjs-core';
import { input, type LayersModel, layers, model } from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { acceptSynthetic, REFERENCE_QUALITY_RULE } from '../../shared/inference/quality.ts';
import { Rng } from '../../shared/random.ts';
import { planSynthesis } from '../../shared/synthesis/index.ts';
import type { Dims3 } from '../../shared/volume/volume.ts';
import { selectBackend } from '../backend.ts';
import { cropStart, extractPatch, sampleCenter } from '../data/patches.ts';
import { phantomCase } from '../data/phantom-cases.ts';
import { cropQualitySignals } from './quality.ts';
import { batchShape, composeDarken, labelMask } from './synthesis-ops.ts';

/**
 * A hand-set voxel classifier: softmax over [0, 0, k * (t - x)] on channel `hot`, i.e. it calls a
 * voxel "tumor" (segmentor channel 2) or "real tumor" (discriminator channel 1) where x < t.
 */
function darkVoxelDetector(hot: number, threshold: number, k = 60): LayersModel {
  const x = input({ shape: [null, null, null, 1] });
  const conv = layers.conv3d({ filters: 3, kernelSize: 1, padding: 'same' });
  const y = layers.activation({ activation: 'softmax' }).apply(conv.apply(x)) as ReturnType<typeof input>;
  const m = model({ inputs: x, outputs: y });
  const w = [0, 0, 0];
  const b = [0, 0, 0];
  w[hot] = -k;
  b[hot] = k * threshold;
  conv.setWeights([tf.tensor5d(w, [1, 1, 1, 1, 3]), tf.tensor1d(b)]);
  return m;
}

const DIMS: Dims3 = [16, 16, 16];
let image: Float32Array;
let plan: ReturnType<typeof planSynthesis>;

beforeAll(async () => {
  await selectBackend('cpu');
  const c = phantomCase({ seed: 11, size: [24, 24, 20], spacing: 12, labeled: false });
  const rng = new Rng(5);
  const p = extractPatch(
    c.image,
    c.label,
    c.dims,
    cropStart(
      sampleCenter(c.image, c.label, c.dims, { tumor: 0, organ: 1, body: 0, air: 0 }, rng),
      c.dims,
      DIMS,
    ),
    DIMS,
  );
  image = p.image;
  plan = planSynthesis(
    { image: p.image, label: p.label, dims: DIMS, spacing: [12, 12, 12] },
    { type: 'large', count: 1, organ: 'liver' },
    rng,
  );
});

async function signalsFor(difference: number, models: Parameters<typeof cropQualitySignals>[2]) {
  const shape = batchShape(1, DIMS);
  const x = tf.tensor5d(image, shape);
  const w = tf.tensor5d(plan.weight, shape);
  const xs = composeDarken(x, w, tf.scalar(difference));
  const fake = labelMask(plan.label, shape, 3);
  const [s] = await cropQualitySignals(xs, fake, models);
  tf.dispose([x, w, xs, fake]);
  return s;
}

describe('quality control of synthetic tumors', () => {
  it('the segmentor rule accepts a tumor the segmentor sees and rejects one it cannot see', async () => {
    expect(plan.label.filter((v) => v === 3).length).toBeGreaterThan(20);
    const segmentor = darkVoxelDetector(2, 0.45);
    const visible = await signalsFor(0.9, { segmentor });
    const invisible = await signalsFor(0.02, { segmentor });
    expect(visible.detection).toBeGreaterThan(0.7);
    expect(acceptSynthetic(visible, REFERENCE_QUALITY_RULE)).toBe(true);
    expect(invisible.detection).toBeLessThan(0.1);
    expect(acceptSynthetic(invisible, REFERENCE_QUALITY_RULE)).toBe(false);
  });

  it('the discriminator rule uses the mean p(real tumor) over synthetic voxels', async () => {
    const discriminator = darkVoxelDetector(1, 0.45);
    const policy = { ...REFERENCE_QUALITY_RULE, policy: 'discriminator' as const };
    const realistic = await signalsFor(0.9, { discriminator });
    const faint = await signalsFor(0.02, { discriminator });
    expect(realistic.realism).toBeGreaterThan(0.5);
    expect(acceptSynthetic(realistic, policy)).toBe(true);
    expect(acceptSynthetic(faint, policy)).toBe(false);
    expect(realistic.detection).toBeNull();
  });

  it('combines the signals per policy and always rejects an empty synthetic mask', () => {
    const s = { syntheticVoxels: 10, detection: 0.8, realism: 0.2 };
    expect(acceptSynthetic(s, { ...REFERENCE_QUALITY_RULE, policy: 'both' })).toBe(false);
    expect(acceptSynthetic(s, { ...REFERENCE_QUALITY_RULE, policy: 'either' })).toBe(true);
    expect(acceptSynthetic({ ...s, syntheticVoxels: 0 }, { ...REFERENCE_QUALITY_RULE, policy: 'none' })).toBe(
      false,
    );
  });
});
