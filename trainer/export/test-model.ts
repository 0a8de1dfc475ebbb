/**
 * A tiny two-level 3D U-Net with every layer kind the exporter supports (conv, norm, pool, transposed
 * conv, concat, softmax), seeded, for exporter and runtime tests and the `infer` benchmark. The
 * production nets come from trainer/models/unet.ts; this one stays small enough for CI.
 */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import {
  initializers,
  input,
  type LayersModel,
  layers,
  model,
  type SymbolicTensor,
} from '@tensorflow/tfjs-layers';
import { HU_WINDOW } from '../../shared/intensity/window.ts';
import type { Preprocessing } from '../../shared/model/manifest.ts';
import { registerTrainingGradients } from '../models/gradients.ts';
import { GroupNorm3D, InstanceNorm3D } from '../models/norm.ts';
import type { ManifestFields } from './manifest-writer.ts';

export interface TinyUNetOptions {
  channels?: number;
  outChannels?: number;
  norm?: 'instance' | 'group' | 'none';
  head?: 'softmax' | 'tanh' | 'sigmoid';
  seed?: number;
}

export function tinyUNet(options: TinyUNetOptions = {}): LayersModel {
  const c = options.channels ?? 4;
  const seed = options.seed ?? 1;
  const norm = options.norm ?? 'instance';
  let n = 0;
  const init = () => initializers.heNormal({ seed: seed * 100 + n++ });
  const conv = (x: SymbolicTensor, filters: number, name: string, act = 'relu') => {
    let y = layers
      .conv3d({
        filters,
        kernelSize: 3,
        padding: 'same',
        kernelInitializer: init(),
        biasInitializer: initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: seed * 100 + n++ }),
        name,
      })
      .apply(x) as SymbolicTensor;
    if (norm === 'instance') y = new InstanceNorm3D({}).apply(y) as SymbolicTensor;
    if (norm === 'group') y = new GroupNorm3D({ groups: 2 }).apply(y) as SymbolicTensor;
    return layers.activation({ activation: act as 'relu' }).apply(y) as SymbolicTensor;
  };
  const x = input({ shape: [null, null, null, 1], name: 'image' });
  const e0 = conv(x, c, 'enc0');
  const p0 = layers.maxPooling3d({ poolSize: 2, strides: 2 }).apply(e0) as SymbolicTensor;
  const e1 = conv(p0, 2 * c, 'enc1');
  const up = layers
    .conv3dTranspose({
      filters: c,
      kernelSize: 2,
      strides: 2,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: init(),
      name: 'up0',
    })
    .apply(e1) as SymbolicTensor;
  const cat = layers.concatenate({ axis: -1 }).apply([up, e0]) as SymbolicTensor;
  const d0 = conv(cat, c, 'dec0');
  const logits = layers
    .conv3d({ filters: options.outChannels ?? 3, kernelSize: 1, kernelInitializer: init(), name: 'head' })
    .apply(d0) as SymbolicTensor;
  const head = options.head ?? 'softmax';
  const out =
    head === 'softmax'
      ? (layers.softmax({ axis: -1 }).apply(logits) as SymbolicTensor)
      : (layers.activation({ activation: head }).apply(logits) as SymbolicTensor);
  return model({ inputs: x, outputs: out, name: 'tiny_unet' });
}

/**
 * A seeded blob volume and its 3-class label (0 background, 1 bright blob, 2 dim blob), values in
 * [0, 1], in the [D, H, W] (x fastest) layout of a Volume.
 */
export function blobCase(
  dims: [number, number, number],
  seed: number,
): { image: Float32Array; label: Uint8Array } {
  const [w, h, d] = dims;
  let s = seed >>> 0 || 1;
  const rand = () => {
    // xorshift32: enough for test data, no dependency on shared/random's stream.
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  const blobs = Array.from({ length: 6 }, (_, i) => ({
    c: [rand() * w, rand() * h, rand() * d],
    r: 2.5 + rand() * Math.min(w, h, d) * 0.2,
    cls: 1 + (i % 2),
  }));
  const image = new Float32Array(w * h * d);
  const label = new Uint8Array(w * h * d);
  for (let z = 0; z < d; z++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const p = x + w * (y + h * z);
        let cls = 0;
        for (const b of blobs) if (Math.hypot(x - b.c[0], y - b.c[1], z - b.c[2]) < b.r) cls = b.cls;
        const base = cls === 0 ? 0.15 : cls === 1 ? 0.85 : 0.45;
        image[p] = Math.min(1, Math.max(0, base + 0.06 * (rand() - 0.5)));
        label[p] = cls;
      }
  return { image, label };
}

/** Fits the model to blob cases for a few Adam steps (cross-entropy), so its argmax is confident. */
export function trainOnBlobs(net: LayersModel, steps: number, side = 16, seed = 1): number {
  registerTrainingGradients();
  const optimizer = tf.train.adam(0.01);
  let loss = Number.NaN;
  for (let step = 0; step < steps; step++) {
    const { image, label } = blobCase([side, side, side], seed + step);
    const value = tf.tidy(() => {
      const x = tf.tensor5d(image, [1, side, side, side, 1]);
      const y = tf.reshape(tf.oneHot(tf.tensor1d(label, 'int32'), 3), [1, side, side, side, 3]);
      return optimizer.minimize(() => {
        const p = net.apply(x, { training: true }) as tf.Tensor;
        return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.log(tf.add(p, 1e-7))), -1))) as tf.Scalar;
      }, true) as tf.Scalar;
    });
    loss = value.dataSync()[0];
    value.dispose();
  }
  optimizer.dispose();
  return loss;
}

/**
 * Manifest fields of a test segmentor (1.5 mm, the FreeTumor window, 3 softmax classes); tests
 * override what they exercise (role, version, patch size, activation...).
 */
export function testManifestFields(
  overrides: Partial<Omit<ManifestFields, 'preprocessing'>> & { preprocessing?: Partial<Preprocessing> } = {},
): ManifestFields {
  const { preprocessing, ...rest } = overrides;
  return {
    name: 'test-segmentor',
    role: 'segmentor',
    version: '1',
    created: '2026-01-01T00:00:00Z',
    organs: ['liver'],
    inputs: [{ name: 'input', shape: ['N', 1, 'D', 'H', 'W'], dtype: 'float32' }],
    outputs: [{ name: 'output', shape: ['N', 3, 'D', 'H', 'W'], dtype: 'float32' }],
    labels: ['background', 'organ', 'tumor'],
    outputActivation: 'softmax',
    metrics: {},
    ...rest,
    preprocessing: {
      spacing: [1.5, 1.5, 1.5],
      window: [HU_WINDOW[0], HU_WINDOW[1]],
      orientation: 'RAS',
      patchSize: [16, 16, 16],
      overlap: 0.5,
      blending: 'gaussian',
      divisor: 2,
      ...preprocessing,
    },
  };
}
