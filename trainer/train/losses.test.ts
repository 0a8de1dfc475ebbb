import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../backend.ts';
import { gradCheck } from '../models/gradcheck.ts';
import {
  blobDiceLoss,
  diceCELoss,
  discriminatorLoss,
  generatorLoss,
  oneHotLabels,
  tumorInstances,
} from './losses.ts';
import { AdamW, scheduledLr, warmupCosineLr } from './optim.ts';

const TOL = 2e-2;

function softmaxOf(shape: number[], seed: number): tf.Tensor5D {
  const logits: tf.Tensor = tf.randomNormal(shape, 0, 1, 'float32', seed);
  return tf.softmax(logits) as tf.Tensor5D;
}

function mask(shape: number[], seed: number): tf.Tensor5D {
  return tf.cast(tf.greater(tf.randomUniform(shape, 0, 1, 'float32', seed), 0.6), 'float32') as tf.Tensor5D;
}

beforeAll(async () => {
  await selectBackend('cpu', { fastCpuKernels: false });
});

describe('losses', () => {
  it('DiceCE: near 0 for a perfect one-hot prediction, matches hand-computed values', () => {
    const y = oneHotLabels([0, 1, 2, 2, 1, 0, 0, 2], [1, 2, 2, 2], 3);
    const perfect = diceCELoss(tf.clipByValue(y, 1e-6, 1) as tf.Tensor5D, y);
    expect(perfect.dice.dataSync()[0]).toBeLessThan(1e-4);
    expect(perfect.ce.dataSync()[0]).toBeLessThan(1e-4);
    // Uniform prediction: CE = ln 3; Dice per fg class c with n_c voxels: 1 - (2 n_c/3) / (8/3 + n_c).
    const uniform = diceCELoss(tf.fill([1, 2, 2, 2, 3], 1 / 3) as tf.Tensor5D, y);
    expect(uniform.ce.dataSync()[0]).toBeCloseTo(Math.log(3), 5);
    const d = (nc: number) => 1 - (2 * nc) / 3 / (8 / 3 + nc);
    expect(uniform.dice.dataSync()[0]).toBeCloseTo((d(2) + d(3)) / 2, 5);
  });

  it('DiceCE: batch Dice pools crops, class weights give torch weighted-mean CE', () => {
    // Crop 0 has tumor, crop 1 has none: per-sample tumor Dice of crop 1 is ~0 loss (smooth/smooth)
    // whatever it predicts, the batch Dice counts its false tumor probability.
    const y = oneHotLabels([0, 1, 2, 2, 0, 1, 1, 0], [2, 1, 2, 2], 3);
    const p = tf.tensor5d(
      [
        0.8, 0.1, 0.1, 0.1, 0.8, 0.1, 0.1, 0.2, 0.7, 0.2, 0.2, 0.6, 0.2, 0.2, 0.6, 0.3, 0.4, 0.3, 0.3, 0.4,
        0.3, 0.5, 0.2, 0.3,
      ],
      [2, 1, 2, 2, 3],
    );
    const data = p.dataSync();
    const t = y.dataSync();
    const batchDice = (c: number) => {
      let inter = 0;
      let den = 0;
      for (let v = 0; v < 8; v++) {
        inter += data[3 * v + c] * t[3 * v + c];
        den += data[3 * v + c] + t[3 * v + c];
      }
      return 1 - (2 * inter + 1e-5) / (den + 1e-5);
    };
    const w = [1, 1, 5];
    let num = 0;
    let den = 0;
    for (let v = 0; v < 8; v++) {
      const c = [0, 1, 2].find((k) => t[3 * v + k] === 1) as number;
      num += w[c] * -Math.log(data[3 * v + c] + 1e-7);
      den += w[c];
    }
    const r = diceCELoss(p, y, { dice: 'batch', classWeights: w });
    expect(r.dice.dataSync()[0]).toBeCloseTo((batchDice(1) + batchDice(2)) / 2, 5);
    expect(r.ce.dataSync()[0]).toBeCloseTo(num / den, 5);
    const logits = tf.randomNormal([2, 1, 2, 2, 3], 0, 1, 'float32', 9);
    const g = gradCheck(
      (l) => diceCELoss(tf.softmax(l) as tf.Tensor5D, y, { dice: 'batch', classWeights: w }).total,
      [logits],
      { samples: 10 },
    );
    expect(g.maxRelError).toBeLessThan(TOL);
  });

  it('DiceCE gradient matches finite differences (through the softmax)', () => {
    const y = oneHotLabels([0, 1, 2, 1, 1, 0, 2, 2], [1, 2, 2, 2], 3);
    const logits = tf.randomNormal([1, 2, 2, 2, 3], 0, 1, 'float32', 3);
    const r = gradCheck((l) => diceCELoss(tf.softmax(l) as tf.Tensor5D, y).total, [logits], { samples: 10 });
    expect(r.maxRelError).toBeLessThan(TOL);
  });

  it('blob loss: one instance per tumor component and crop, each scored alone', () => {
    // Two crops of 4 x 1 x 1 voxels (x fastest): crop 0 holds two separate lesions (voxels 0-1 and
    // 3), crop 1 one lesion (voxel 2 of the crop) and organ elsewhere.
    const labels = [2, 2, 0, 2, 1, 1, 2, 1];
    const inst = tumorInstances(labels, 2, [4, 1, 1], 2);
    expect(inst.count).toBe(3);
    expect(inst.crops.map((c) => [c.crop, c.count, Array.from(c.sizes)])).toEqual([
      [0, 2, [2, 1]],
      [1, 1, [1]],
    ]);
    expect(Array.from(inst.crops[0].members)).toEqual([1, 1, 0, 0, 0, 0, 0, 1]);
    const y = oneHotLabels(labels, [2, 1, 1, 4], 3);
    // A perfect prediction scores 0 only because each lesion is scored without the crop's other one
    // (with it, the first lesion's Dice would be 2 * 2 / (3 + 2)).
    const perfect = blobDiceLoss(tf.clipByValue(y, 1e-6, 1) as tf.Tensor5D, 2, inst);
    expect(perfect.dataSync()[0]).toBeLessThan(1e-4);
    // Only the large lesion found: the batch Dice barely moves (3/4 of the tumor voxels are found),
    // the blob loss counts two of three lesions as missed.
    const bigOnly = oneHotLabels([2, 2, 0, 0, 1, 1, 1, 1], [2, 1, 1, 4], 3);
    const p = tf.clipByValue(bigOnly, 1e-6, 1) as tf.Tensor5D;
    expect(blobDiceLoss(p, 2, inst).dataSync()[0]).toBeCloseTo(2 / 3, 4);
    const batchDice = diceCELoss(p, y, { dice: 'batch' }).dice.dataSync()[0];
    expect(batchDice).toBeLessThan(0.5);
    // Only crop 0's small lesion and crop 1's lesion predicted: one of three missed.
    const smallOnly = oneHotLabels([0, 0, 0, 2, 1, 1, 2, 1], [2, 1, 1, 4], 3);
    const q = tf.clipByValue(smallOnly, 1e-6, 1) as tf.Tensor5D;
    expect(blobDiceLoss(q, 2, inst).dataSync()[0]).toBeCloseTo(1 / 3, 4);
    // No tumor in the batch: no instance and no loss.
    const none = tumorInstances([0, 1, 1, 0], 1, [4, 1, 1], 2);
    expect(none.count).toBe(0);
    expect(blobDiceLoss(softmaxOf([1, 1, 1, 4, 3], 3), 2, none).dataSync()[0]).toBe(0);
  });

  it('blob loss gradient matches finite differences (through the softmax)', () => {
    const labels = Array.from({ length: 2 * 27 }, (_, i) =>
      [4, 5, 13, 40, 41].includes(i) ? 2 : i % 3 === 0 ? 1 : 0,
    );
    const inst = tumorInstances(labels, 2, [3, 3, 3], 2);
    expect(inst.count).toBe(2);
    const logits = tf.randomNormal([2, 3, 3, 3, 3], 0, 1, 'float32', 11);
    const r = gradCheck((l) => blobDiceLoss(tf.softmax(l) as tf.Tensor5D, 2, inst), [logits], {
      samples: 10,
    });
    expect(r.maxRelError).toBeLessThan(TOL);
  });

  it('generator and discriminator losses: values and gradients', () => {
    const shape = [2, 3, 3, 3];
    const fake = mask([...shape, 1], 4);
    const real = mask([...shape, 1], 5);
    const pd = softmaxOf([...shape, 3], 6);
    const ps = softmaxOf([...shape, 3], 7);
    const g = generatorLoss(pd, ps, fake, [2], 0.1);
    const recall = (p: tf.Tensor5D, c: number, m: tf.Tensor) =>
      1 -
      tf.sum(tf.mul(tf.slice(p, [0, 0, 0, 0, c], [-1, -1, -1, -1, 1]), m)).dataSync()[0] /
        (tf.sum(m).dataSync()[0] + 1e-6);
    expect(g.adversarial.dataSync()[0]).toBeCloseTo(recall(pd, 1, fake), 5);
    expect(g.segmentation.dataSync()[0]).toBeCloseTo(recall(ps, 2, fake), 5);
    expect(g.total.dataSync()[0]).toBeCloseTo(0.1 * recall(pd, 1, fake) + recall(ps, 2, fake), 5);
    const d = discriminatorLoss(pd, fake, real);
    expect(d.total.dataSync()[0]).toBeCloseTo(0.5 * (recall(pd, 2, fake) + recall(pd, 1, real)), 5);
    // No real tumor in the batch: the real term is the constant 1.
    expect(discriminatorLoss(pd, fake, tf.zerosLike(real) as tf.Tensor5D).real.dataSync()[0]).toBeCloseTo(
      1,
      5,
    );

    const lg = tf.randomNormal([...shape, 3], 0, 1, 'float32', 8);
    const rg = gradCheck((l) => generatorLoss(tf.softmax(l) as tf.Tensor5D, ps, fake, [2]).total, [lg]);
    expect(rg.maxRelError).toBeLessThan(TOL);
    const rd = gradCheck((l) => discriminatorLoss(tf.softmax(l) as tf.Tensor5D, fake, real).total, [lg]);
    expect(rd.maxRelError).toBeLessThan(TOL);
  });
});

describe('optimizer', () => {
  it('AdamW matches a hand-computed decoupled-weight-decay update (torch.optim.AdamW)', () => {
    const p = tf.variable(tf.tensor1d([1, -2]), true, 'p_adamw_test');
    const opt = new AdamW([p], { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1, amsgrad: false });
    const lr = 0.01;
    const grads = [
      [0.5, -1],
      [0.2, 0.3],
    ];
    const expected = [1, -2];
    const m = [0, 0];
    const v = [0, 0];
    grads.forEach((g, t) => {
      opt.apply({ [p.name]: tf.tensor1d(g) }, lr);
      for (let i = 0; i < 2; i++) {
        expected[i] *= 1 - lr * 0.1;
        m[i] = 0.9 * m[i] + 0.1 * g[i];
        v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
        const mh = m[i] / (1 - 0.9 ** (t + 1));
        const vh = v[i] / (1 - 0.999 ** (t + 1));
        expected[i] -= (lr * mh) / (Math.sqrt(vh) + 1e-8);
      }
    });
    const got = p.dataSync();
    expect(got[0]).toBeCloseTo(expected[0], 5);
    expect(got[1]).toBeCloseTo(expected[1], 5);
  });

  it('optimizer state round-trips (resume)', async () => {
    const p = tf.variable(tf.tensor1d([1, 2, 3]), true, 'p_state_test');
    const opt = new AdamW([p], { amsgrad: true });
    opt.apply({ [p.name]: tf.tensor1d([1, -1, 0.5]) }, 0.1);
    const state = await opt.getState();
    const q = tf.variable(tf.tensor1d(Array.from(p.dataSync())), true, 'q_state_test');
    const other = new AdamW([q], { amsgrad: true });
    other.setState(state);
    const g = tf.tensor1d([0.3, 0.2, -0.1]);
    opt.apply({ [p.name]: g }, 0.1);
    other.apply({ [q.name]: g }, 0.1);
    expect(Array.from(q.dataSync())).toEqual(Array.from(p.dataSync()));
  });

  it('warmup-cosine schedule', () => {
    const s = { baseLr: 1, warmupSteps: 10, totalSteps: 110 };
    expect(warmupCosineLr(0, s)).toBe(0);
    expect(warmupCosineLr(5, s)).toBeCloseTo(0.5);
    expect(warmupCosineLr(10, s)).toBeCloseTo(1);
    expect(warmupCosineLr(60, s)).toBeCloseTo(0.5);
    expect(warmupCosineLr(110, s)).toBeCloseTo(0);
  });
});

describe('learning-rate schedules', () => {
  it('warmup, then cosine, linear or constant over the run', () => {
    const s = { baseLr: 1, warmupSteps: 10, totalSteps: 110 };
    expect(scheduledLr(5, { ...s, schedule: 'linear' })).toBeCloseTo(0.5);
    expect(scheduledLr(10, { ...s, schedule: 'linear' })).toBeCloseTo(1);
    expect(scheduledLr(60, { ...s, schedule: 'linear' })).toBeCloseTo(0.5);
    expect(scheduledLr(110, { ...s, schedule: 'linear' })).toBeCloseTo(0);
    expect(scheduledLr(60, { ...s, schedule: 'cosine' })).toBeCloseTo(warmupCosineLr(60, s));
    expect(scheduledLr(100, { ...s, schedule: 'constant' })).toBe(1);
  });
});
