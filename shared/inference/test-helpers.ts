/**
 * Test doubles for the inference pipeline: a manifest factory and runners whose output is known in
 * closed form (identity; class by intensity threshold), so tests can state exact expectations.
 */

import { applyAffine } from '../geometry/affine.ts';
import { type ModelManifest, type Preprocessing, parseManifest } from '../model/manifest.ts';
import { type Dims3, makeVolume, type Volume } from '../volume/volume.ts';
import type { OnnxRunner, Tensor5 } from './runner.ts';

export function testManifest(
  pre: Partial<Preprocessing> = {},
  labels = ['background', 'organ', 'tumor'],
): ModelManifest {
  return parseManifest({
    schemaVersion: 1,
    name: 'test',
    role: 'segmentor',
    version: '0',
    created: '2026-01-01T00:00:00Z',
    organs: ['liver'],
    files: [{ path: 'model.fp32.onnx', sha256: '0'.repeat(64), bytes: 1, precision: 'fp32' }],
    inputs: [{ name: 'input', shape: ['N', 1, 'D', 'H', 'W'], dtype: 'float32' }],
    outputs: [{ name: 'output', shape: ['N', labels.length, 'D', 'H', 'W'], dtype: 'float32' }],
    preprocessing: {
      spacing: [1.5, 1.5, 1.5],
      window: [-175, 250],
      orientation: 'RAS',
      patchSize: [32, 32, 32],
      overlap: 0.5,
      blending: 'gaussian',
      divisor: 8,
      ...pre,
    },
    labels,
    outputActivation: 'softmax',
  });
}

/** Returns its input as the single output channel. */
export function identityRunner(calls?: { batches: number[] }): OnnxRunner {
  return {
    async run(inputs) {
      const x = Object.values(inputs)[0];
      calls?.batches.push(x.dims[0]);
      return { output: { dims: [...x.dims] as Tensor5['dims'], data: x.data.slice() } };
    },
  };
}

/**
 * Three-class "model" on windowed intensity: tumor above `tumor`, organ above `organ`, else
 * background; probabilities 0.8 for the chosen class and 0.1 for the others.
 */
export function thresholdRunner(organ: number, tumor: number): OnnxRunner {
  return {
    async run(inputs) {
      const x = Object.values(inputs)[0];
      const [n, , d, h, w] = x.dims;
      const pv = d * h * w;
      const out = new Float32Array(n * 3 * pv);
      for (let b = 0; b < n; b++) {
        for (let v = 0; v < pv; v++) {
          const val = x.data[b * pv + v];
          const cls = val > tumor ? 2 : val > organ ? 1 : 0;
          for (let c = 0; c < 3; c++) out[(b * 3 + c) * pv + v] = c === cls ? 0.8 : 0.1;
        }
      }
      return { output: { dims: [n, 3, d, h, w], data: out } };
    },
  };
}

/**
 * A "model" whose probabilities depend on the intensity and on the position inside the patch, so
 * that overlapping windows disagree and the blending and its order matter (as with a real net).
 */
export function positionalRunner(): OnnxRunner {
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
export function scene(dims: Dims3 = [46, 40, 30]): Volume<Int16Array> {
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
