/**
 * Test doubles for the inference pipeline: a manifest factory and runners whose output is known in
 * closed form (identity; class by intensity threshold), so tests can state exact expectations.
 */
import { type ModelManifest, type Preprocessing, parseManifest } from '../model/manifest.ts';
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
