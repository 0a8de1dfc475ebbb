import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { clip01 } from '../train/synthesis-ops.ts';
import { blur7 } from './blur.ts';
import { gradCheck } from './gradcheck.ts';
import { registerTrainingGradients } from './gradients.ts';
import { GroupNorm3D, InstanceNorm3D } from './norm.ts';
import { buildUNet } from './unet.ts';

const TOL = 2e-2;

function rand(shape: number[], seed: number, lo = -1, hi = 1): tf.Tensor {
  return tf.randomUniform(shape, lo, hi, 'float32', seed);
}

/** A scalar that weights every output element differently, so no gradient cancels out. */
function project(y: tf.Tensor, seed: number): tf.Scalar {
  return tf.sum(tf.mul(y, rand(y.shape, seed))) as tf.Scalar;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  registerTrainingGradients();
});

describe('training gradients against finite differences (cpu)', () => {
  it('conv3d: input and filter', () => {
    const x = rand([1, 5, 5, 5, 2], 1);
    const w = rand([3, 3, 3, 2, 3], 2);
    const r = gradCheck(
      (a, b) => project(tf.conv3d(a as tf.Tensor5D, b as tf.Tensor5D, 1, 'same'), 3),
      [x, w],
    );
    expect(r.maxRelError).toBeLessThan(TOL);
  });

  it('conv3dTranspose (the registered Conv3DBackpropInputV2 gradient): input and filter', () => {
    const x = rand([1, 3, 3, 3, 3], 4);
    const w = rand([2, 2, 2, 2, 3], 5);
    const f = (a: tf.Tensor, b: tf.Tensor) =>
      project(tf.conv3dTranspose(a as tf.Tensor5D, b as tf.Tensor5D, [1, 6, 6, 6, 2], 2, 'same'), 6);
    const r = gradCheck(f, [x, w], { samples: 8 });
    expect(r.maxRelError).toBeLessThan(TOL);
  });

  it('maxPool3d', () => {
    // Distinct, well-separated values so that no finite-difference step crosses a tie.
    const n = 4 * 4 * 4 * 2;
    const vals = new Float32Array(n).map((_, i) => ((i * 37) % n) / 10);
    const x = tf.tensor(vals, [1, 4, 4, 4, 2]);
    const r = gradCheck((a) => project(tf.maxPool3d(a as tf.Tensor5D, 2, 2, 'valid'), 7), [x], {
      h: 1e-2,
      samples: 10,
    });
    expect(r.maxRelError).toBeLessThan(TOL);
  });

  it('concatenate on the channel axis', () => {
    const a = rand([1, 2, 3, 3, 2], 8);
    const b = rand([1, 2, 3, 3, 3], 9);
    const r = gradCheck((p, q) => project(tf.concat([p, q], -1), 10), [a, b]);
    expect(r.maxRelError).toBeLessThan(TOL);
  });

  it('InstanceNorm3D layer: input, gamma and beta', () => {
    const layer = new InstanceNorm3D({});
    layer.build([1, 4, 4, 4, 3]);
    const [gamma, beta] = [rand([3], 11, 0.5, 1.5), rand([3], 12)];
    const x = rand([2, 4, 4, 4, 3], 13, -2, 2);
    const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      layer.setWeights([g, b]);
      return project(layer.apply(a) as tf.Tensor, 14);
    };
    // setWeights copies values, so differentiate through a functional twin instead for gamma/beta.
    const functional = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = tf.moments(a, [1, 2, 3], true);
      const y = tf.add(tf.mul(tf.mul(tf.sub(a, mean), tf.rsqrt(tf.add(variance, 1e-5))), g), b);
      return project(y, 14);
    };
    expect(f(x, gamma, beta).dataSync()[0]).toBeCloseTo(functional(x, gamma, beta).dataSync()[0], 3);
    const r = gradCheck((a) => f(a, gamma, beta), [x], { samples: 10 });
    expect(r.maxRelError).toBeLessThan(TOL);
    const rp = gradCheck(functional, [x, gamma, beta]);
    expect(rp.maxRelError).toBeLessThan(TOL);
  });

  it('GroupNorm3D layer', () => {
    const layer = new GroupNorm3D({ groups: 2 });
    layer.build([1, 3, 3, 3, 4]);
    layer.setWeights([rand([4], 15, 0.5, 1.5), rand([4], 16)]);
    const x = rand([1, 3, 3, 3, 4], 17, -2, 2);
    const r = gradCheck((a) => project(layer.apply(a) as tf.Tensor, 18), [x], { samples: 10 });
    expect(r.maxRelError).toBeLessThan(TOL);
    // Each group is normalised to mean 0, variance 1.
    const y = tf.reshape(layer.apply(x) as tf.Tensor, [27, 2, 2]);
    const beforeAffine = tf.div(
      tf.sub(y, tf.reshape(layer.getWeights()[1], [1, 2, 2])),
      tf.reshape(layer.getWeights()[0], [1, 2, 2]),
    );
    const { mean } = tf.moments(beforeAffine, [0, 2]);
    expect(Math.max(...Array.from(mean.dataSync()).map(Math.abs))).toBeLessThan(1e-4);
  });

  it('blur7 (the generator difference-map smoothing)', () => {
    const x = rand([1, 6, 6, 6, 1], 19);
    const r = gradCheck((a) => project(blur7(a as tf.Tensor5D), 20), [x]);
    expect(r.maxRelError).toBeLessThan(TOL);
    // Normalised kernel: a constant interior stays constant.
    const ones = blur7(tf.ones([1, 9, 9, 9, 1]) as tf.Tensor5D);
    expect(ones.dataSync()[4 * 81 + 4 * 9 + 4]).toBeCloseTo(1, 5);
  });

  it('clip01 (the differentiable clip of synthesized images)', () => {
    // Values kept away from the kinks at 0 and 1.
    const x = tf.tensor([-0.5, 0.2, 0.5, 0.9, 1.4, -0.2, 0.7, 1.1]);
    const r = gradCheck((a) => project(clip01(a), 30), [x], { samples: 8 });
    expect(r.maxRelError).toBeLessThan(TOL);
    expect(Array.from(clip01(x).dataSync())).toEqual(Array.from(tf.clipByValue(x, 0, 1).dataSync()));
  });

  it('a whole tiny U-Net: directional derivative over every trainable weight', () => {
    // ReLU kinks make per-coordinate differences noisy through a whole net, so compare the
    // derivative along one random direction in weight space (all layers at once).
    const net = buildUNet({
      inChannels: 1,
      outChannels: 2,
      baseChannels: 2,
      depth: 2,
      norm: 'group',
      groups: 2,
      head: 'softmax',
      seed: 3,
    });
    const x = rand([1, 8, 8, 8, 1], 21, 0, 1);
    const w = rand([1, 8, 8, 8, 2], 22);
    const loss = () => tf.sum(tf.mul(net.apply(x) as tf.Tensor, w)) as tf.Scalar;
    const vars = net.trainableWeights.map((v) => v.read() as tf.Variable);
    const { grads } = tf.variableGrads(loss, vars);
    const dirs = vars.map((v, i) => rand(v.shape, 100 + i));
    const analytic = vars.reduce(
      (acc, v) => acc + tf.sum(tf.mul(grads[v.name], dirs[vars.indexOf(v)])).dataSync()[0],
      0,
    );
    const base = vars.map((v) => tf.clone(v));
    const at = (t: number) => {
      vars.forEach((v, i) => {
        v.assign(tf.add(base[i], tf.mul(dirs[i], t)));
      });
      return loss().dataSync()[0];
    };
    const h = 2e-4;
    const numeric = (at(h) - at(-h)) / (2 * h);
    vars.forEach((v, i) => {
      v.assign(base[i]);
    });
    expect(Math.abs(analytic - numeric) / Math.abs(numeric)).toBeLessThan(5e-2);
    expect(net.trainableWeights.length).toBe(Object.keys(grads).length);
  });
});
