/**
 * Gradients tfjs-core does not ship but 3D U-Net training needs.
 *
 * `conv3dTranspose` runs the `Conv3DBackpropInputV2` kernel, which has no registered gradient in
 * tfjs 4.22 on any backend (tfjs-node included), so a decoder with transposed convolutions cannot
 * train without this. The kernel computes dx = conv3d^T(dy, filter); its adjoints are
 * d(dy) = conv3d(ddx, filter) and d(filter) = Conv3DBackpropFilterV2(x = ddx, dy = dy).
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradients; tfjs-layers' bundle registers all of core's (Add, Conv3D, ...).
import '@tensorflow/tfjs-layers';

interface BackpropInputAttrs {
  strides: [number, number, number] | number;
  pad: 'valid' | 'same';
  inputShape: number[];
}

let registered = false;

/** Registers the missing gradients once per process (idempotent). */
export function registerTrainingGradients(): void {
  if (registered) return;
  registered = true;
  if (tf.getGradient('Conv3DBackpropInputV2') !== undefined) return;
  tf.registerGradient({
    kernelName: 'Conv3DBackpropInputV2',
    inputsToSave: ['dy', 'filter'],
    gradFunc: (ddx: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
      const { strides, pad } = attrs as unknown as BackpropInputAttrs;
      const [dy, filter] = saved as [tf.Tensor5D, tf.Tensor5D];
      const g = ddx as tf.Tensor5D;
      return {
        dy: () => tf.conv3d(g, filter, strides, pad),
        filter: () =>
          tf.engine().runKernel('Conv3DBackpropFilterV2', { x: g, dy }, {
            strides,
            pad,
            filterShape: filter.shape,
          } as unknown as tf.NamedAttrMap) as tf.Tensor,
      };
    },
  });
}
