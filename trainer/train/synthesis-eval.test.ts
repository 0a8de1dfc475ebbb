import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { REFERENCE_QUALITY_RULE } from '../../shared/inference/quality.ts';
import type { Dims3 } from '../../shared/volume/volume.ts';
import { selectBackend } from '../backend.ts';
import { phantomCase } from '../data/phantom-cases.ts';
import { buildUNet, discriminatorConfig, generatorConfig, segmentorConfig } from '../models/unet.ts';
import { evaluateSynthesis, rocAuc, spread } from './synthesis-eval.ts';
import { differenceMap } from './synthesis-ops.ts';

beforeAll(async () => {
  await selectBackend('cpu');
});

describe('synthesis measurements', () => {
  it('spread and ROC AUC', () => {
    expect(spread([4, 1, 3, 2])).toEqual({ n: 4, median: 2.5, q1: 1.75, q3: 3.25 });
    expect(spread([])).toEqual({ n: 0, median: null, q1: null, q3: null });
    expect(rocAuc([0.9, 0.8], [0.1, 0.2])).toBe(1);
    expect(rocAuc([0.1], [0.9])).toBe(0);
    expect(rocAuc([0.5, 0.7], [0.5, 0.6])).toBe(0.625);
    expect(rocAuc([], [1])).toBeNull();
  });

  it('the generator map is masked to the organ before the blur: nothing leaks in from outside', () => {
    const dims: Dims3 = [12, 12, 12];
    const shape = [1, 12, 12, 12, 1] as const;
    const organ = new Float32Array(12 ** 3);
    for (let k = 0; k < 12; k++)
      for (let j = 0; j < 12; j++) for (let i = 0; i < 6; i++) organ[i + 12 * (j + 12 * k)] = 1;
    // G says "darken by 1" outside the organ only.
    const g = tf.tensor5d(
      Float32Array.from(organ, (o) => 1 - o),
      [...shape.slice(0, 4), 1] as [number, number, number, number, number],
    );
    const d = differenceMap(g, tf.ones([1, 1, 1, 1, 1]) as tf.Tensor5D, tf.tensor5d(organ, [...shape]));
    const values = d.dataSync();
    expect(Math.max(...values)).toBe(0);
    tf.dispose([g, d]);
    expect(dims[0]).toBe(12);
  });

  it('measures real lesions, handcrafted and generator-made tumors on a phantom case', async () => {
    const c = phantomCase({ seed: 5, size: 'default', spacing: 4, tumors: 2 });
    const base = { baseChannels: 2, depth: 2, norm: 'instance' as const, seed: 1 };
    const generator = buildUNet(generatorConfig(base, 3));
    const discriminator = buildUNet(discriminatorConfig(base));
    const segmentor = buildUNet(segmentorConfig(base, 3));
    const m = await evaluateSynthesis(generator, discriminator, [c], {
      patchSize: [16, 16, 16],
      spacing: [4, 4, 4],
      window: [-175, 250],
      organIndex: 0,
      organChannels: 3,
      tumorType: 'large',
      perCase: 3,
      seed: 2,
      qc: { rule: REFERENCE_QUALITY_RULE, segmentor },
    });
    expect(m.contrastHu.real.n).toBe(2);
    // Phantom lesions are hypodense: the organ is brighter than the lesion.
    expect(m.contrastHu.real.median).toBeGreaterThan(10);
    expect(m.contrastHu.handcrafted.n).toBe(3);
    expect(m.contrastHu.handcrafted.median).toBeGreaterThan(0);
    expect(m.contrastHu.generator.n).toBe(3);
    expect(m.discriminatorAuc).toBeGreaterThanOrEqual(0);
    expect(m.discriminatorAuc).toBeLessThanOrEqual(1);
    expect(m.qcAcceptance).toBeGreaterThanOrEqual(0);
    tf.dispose([generator, discriminator, segmentor].flatMap((x) => x.getWeights()));
  });
});
