/**
 * OnnxRunner over a tfjs LayersModel: the reference the ONNX parity tests compare against, and a way
 * to run a model that has not been exported. Converts NCDHW <-> the model's NDHWC.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { OnnxRunner, Tensor5 } from '../../shared/inference/runner.ts';

export function createTfjsRunner(model: LayersModel, outputName = 'output'): OnnxRunner {
  return {
    async run(inputs: Record<string, Tensor5>): Promise<Record<string, Tensor5>> {
      const entries = Object.values(inputs);
      if (entries.length !== 1) throw new Error(`tfjs runner takes one input, got ${entries.length}`);
      const x = entries[0];
      const y = tf.tidy(() => {
        const ndhwc = tf.transpose(tf.tensor5d(x.data, x.dims), [0, 2, 3, 4, 1]);
        const out = model.predict(ndhwc) as tf.Tensor;
        return tf.transpose(out, [0, 4, 1, 2, 3]);
      });
      const data = (await y.data()) as Float32Array;
      const dims = y.shape as Tensor5['dims'];
      y.dispose();
      return { [outputName]: { dims, data } };
    },
  };
}
