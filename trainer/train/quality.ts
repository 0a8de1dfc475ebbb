/**
 * The signals of quality control (notes §4, §10.7) on a batch of synthetic crops, as tfjs tensors:
 * - detection: the fraction of synthetic voxels the frozen segmentor labels as tumor (argmax in a
 *   tumor class);
 * - realism: the discriminator's mean p(real tumor) over the synthetic voxels.
 * Whether a crop is kept is decided by the one accept rule, shared/inference/quality.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { QualitySignals } from '../../shared/inference/quality.ts';
import { channelSum, D_REAL } from './losses.ts';

/** Tumor classes of a segmentor by its class count: 3 -> [2]; the 7-class abdomen scheme -> [2, 4, 6]. */
export function tumorChannels(classes: number): number[] {
  return classes === 7 ? [2, 4, 6] : [classes - 1];
}

/**
 * Signals per crop: `images` [b, d, h, w, 1] after synthesis, `fakeMask` [b, d, h, w, 1] in {0, 1}.
 * A signal whose model is not given is null.
 */
export async function cropQualitySignals(
  images: tf.Tensor5D,
  fakeMask: tf.Tensor5D,
  models: { segmentor?: LayersModel | null; discriminator?: LayersModel | null },
): Promise<QualitySignals[]> {
  const perCrop = (t: tf.Tensor) => tf.sum(t, [1, 2, 3, 4]);
  const fake = tf.tidy(() => perCrop(fakeMask));
  const segmentor = models.segmentor;
  const detected = segmentor
    ? tf.tidy(() => {
        const probs = segmentor.predict(images) as tf.Tensor5D;
        const arg = tf.argMax(probs, -1);
        const isTumor = tumorChannels(probs.shape[4])
          .map((c) => tf.cast(tf.equal(arg, c), 'float32'))
          .reduce((a, b) => tf.add(a, b));
        return perCrop(tf.mul(tf.expandDims(isTumor, -1), fakeMask));
      })
    : null;
  const discriminator = models.discriminator;
  const real = discriminator
    ? tf.tidy(() => {
        const pd = discriminator.predict(images) as tf.Tensor5D;
        return perCrop(tf.mul(channelSum(pd, [D_REAL]), fakeMask));
      })
    : null;
  const f = (await fake.data()) as Float32Array;
  const d = detected ? ((await detected.data()) as Float32Array) : null;
  const r = real ? ((await real.data()) as Float32Array) : null;
  tf.dispose([fake, detected, real].filter((t): t is tf.Tensor => t !== null));
  return Array.from(f, (count, b) => ({
    syntheticVoxels: count,
    detection: d ? d[b] / (count + 1e-6) : null,
    realism: r ? r[b] / (count + 1e-6) : null,
  }));
}
