/**
 * Quality control of synthetic tumors (notes §4, §10.7). Two signals per crop:
 * - segmentor detection: the fraction of synthetic voxels the frozen segmentor labels as tumor
 *   (argmax in a tumor class); the reference accepts when it is > 0.7;
 * - discriminator realism: the discriminator's mean p(real tumor) over the synthetic voxels.
 * The acceptance policy combines them; an empty synthetic mask is always rejected.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { channelSum, D_REAL } from './losses.ts';

export type QcPolicy = 'segmentor' | 'discriminator' | 'both' | 'either' | 'none';

export interface QcOptions {
  policy: QcPolicy;
  segmentorThreshold: number;
  discriminatorThreshold: number;
}

export const REFERENCE_QC: QcOptions = {
  policy: 'segmentor',
  segmentorThreshold: 0.7,
  discriminatorThreshold: 0.5,
};

export interface QcSignals {
  /** Synthetic voxels in the crop. */
  fakeVoxels: number;
  /** Fraction detected by the segmentor, or null without a segmentor. */
  detection: number | null;
  /** Discriminator mean p(real) over synthetic voxels, or null without a discriminator. */
  realism: number | null;
}

export function qcAccept(s: QcSignals, o: QcOptions): boolean {
  if (s.fakeVoxels === 0) return false;
  const seg = s.detection !== null && s.detection > o.segmentorThreshold;
  const disc = s.realism !== null && s.realism > o.discriminatorThreshold;
  switch (o.policy) {
    case 'none':
      return true;
    case 'segmentor':
      return seg;
    case 'discriminator':
      return disc;
    case 'both':
      return seg && disc;
    case 'either':
      return seg || disc;
  }
}

/** Tumor classes of a segmentor by its class count: 3 -> [2]; the 7-class abdomen scheme -> [2, 4, 6]. */
export function tumorChannels(classes: number): number[] {
  return classes === 7 ? [2, 4, 6] : [classes - 1];
}

/**
 * Scores synthetic crops: `images` [b, d, h, w, 1] after synthesis, `fakeMask` [b, d, h, w, 1] in {0, 1}.
 * Returns one QcSignals per crop.
 */
export async function scoreSynthetic(
  images: tf.Tensor5D,
  fakeMask: tf.Tensor5D,
  models: { segmentor?: LayersModel | null; discriminator?: LayersModel | null },
): Promise<QcSignals[]> {
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
    fakeVoxels: count,
    detection: d ? d[b] / (count + 1e-6) : null,
    realism: r ? r[b] / (count + 1e-6) : null,
  }));
}
