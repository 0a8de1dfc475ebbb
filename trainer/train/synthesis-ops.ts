/**
 * The differentiable intensity path of the method (notes §2.4, §10.2, §10.5):
 *   Dmap = blur7(tanh(G(x))[organ channel] * organ),   x' = clip(x - weight * Dmap, 0, 1)
 * with the generator's channel chosen per crop (one channel per organ). `weight` is the plan's
 * blurred mask x texture (zero outside the organ), so only organ voxels change.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Dims3 } from '../../shared/volume/volume.ts';
import { blur7 } from '../models/blur.ts';

/** [b, d, h, w, 1] shape of a batch of crops with dims [nx, ny, nz]. */
export function batchShape(size: number, dims: Dims3): [number, number, number, number, number] {
  return [size, dims[2], dims[1], dims[0], 1];
}

/** [b, 1, 1, 1, organs] one-hot of each crop's organ channel. */
export function organSelector(organIndex: Int32Array, organs: number): tf.Tensor5D {
  return tf.tidy(
    () =>
      tf.reshape(tf.oneHot(tf.tensor1d(organIndex, 'int32'), organs), [
        organIndex.length,
        1,
        1,
        1,
        organs,
      ]) as tf.Tensor5D,
  );
}

/**
 * The difference map from the generator's output (already tanh), for each crop's organ, masked to
 * the organ's voxels before the blur as the reference (and the edge's generator.ts) do, so that
 * what G says outside the organ does not leak in at the organ's border.
 */
export function differenceMap(
  generatorOut: tf.Tensor5D,
  selector: tf.Tensor5D,
  organMask: tf.Tensor5D,
): tf.Tensor5D {
  return tf.tidy(() =>
    blur7(tf.mul(tf.sum(tf.mul(generatorOut, selector), -1, true), organMask) as tf.Tensor5D),
  );
}

/** x' = clip(x - weight * difference, 0, 1) ("darken", the abdomen composition). */
export function composeDarken(x: tf.Tensor5D, weight: tf.Tensor5D, difference: tf.Tensor): tf.Tensor5D {
  return tf.tidy(() => clip01(tf.sub(x, tf.mul(weight, difference))) as tf.Tensor5D);
}

/**
 * clip(v, 0, 1) as relu(v) - relu(v - 1): the same values and (almost everywhere) the same
 * gradient, but tfjs-webgpu cannot differentiate clipByValue at rank 5 (its gradient uses Where).
 */
export function clip01(v: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.sub(tf.relu(v), tf.relu(tf.sub(v, 1))));
}

/** The generator's difference map for crops x (differentiable under a gradient tape with `training`). */
export function generatorDifference(
  generator: LayersModel,
  x: tf.Tensor5D,
  selector: tf.Tensor5D,
  organMask: tf.Tensor5D,
  training: boolean,
): tf.Tensor5D {
  return tf.tidy(() => differenceMap(generator.apply(x, { training }) as tf.Tensor5D, selector, organMask));
}

/** Synthesis with a generator (differentiable when called under a gradient tape with `training`). */
export function synthesizeWithGenerator(
  generator: LayersModel,
  x: tf.Tensor5D,
  weight: tf.Tensor5D,
  selector: tf.Tensor5D,
  organMask: tf.Tensor5D,
  training: boolean,
): tf.Tensor5D {
  return tf.tidy(() =>
    composeDarken(x, weight, generatorDifference(generator, x, selector, organMask, training)),
  );
}

/** Mask [b, d, h, w, 1] float of voxels whose label equals `value`. */
export function labelMask(
  labels: Uint8Array,
  shape: [number, number, number, number, number],
  value: number,
): tf.Tensor5D {
  const m = new Float32Array(labels.length);
  for (let i = 0; i < labels.length; i++) m[i] = labels[i] === value ? 1 : 0;
  return tf.tensor5d(m, shape);
}
