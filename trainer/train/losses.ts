/**
 * Losses of the method (notes §3, §5) on NDHWC tensors of softmax probabilities.
 * Masks are [n, d, h, w, 1] floats in {0, 1}, pooled over the whole batch as in the reference.
 */
import * as tf from '@tensorflow/tfjs-core';
import { connectedComponents } from '../../shared/labels/components.ts';
import type { Dims3 } from '../../shared/volume/volume.ts';

const MASK_EPS = 1e-6;
const DICE_SMOOTH = 1e-5;
const LOG_EPS = 1e-7;

/**
 * One-hot [n, d, h, w, classes] float32 of integer labels given as a JS array (x fastest per crop),
 * built on the host: tfjs-webgpu's int32 -> float32 cast is lazy and a later rank-5 transpose of
 * its result compiles to invalid WGSL, so the trainer never puts integer tensors on the device.
 */
export function oneHotLabels(
  labels: ArrayLike<number>,
  shape: [number, number, number, number],
  classes: number,
): tf.Tensor5D {
  const out = new Float32Array(labels.length * classes);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (c >= 0 && c < classes) out[i * classes + c] = 1;
  }
  return tf.tensor5d(out, [...shape, classes]);
}

export interface DiceCEParts {
  total: tf.Scalar;
  dice: tf.Scalar;
  ce: tf.Scalar;
}

export interface DiceCEOptions {
  /**
   * `sample`: Dice per crop and class, averaged (MONAI's default); `batch`: one Dice per class over
   * the whole batch, so a tumor that is in one crop of the batch is not averaged away by the others.
   */
  dice?: 'sample' | 'batch';
  /** Cross-entropy weight per class (torch's weighted mean: sum w_y * -log p_y / sum w_y); default all 1. */
  classWeights?: readonly number[];
}

/**
 * MONAI DiceCELoss(include_background=False, to_onehot_y=True, softmax=True) on probabilities:
 * Dice per foreground class (smooth 1e-5 in numerator and denominator) per sample or over the
 * batch, averaged, plus the voxel cross-entropy over all classes (MONAI's CE ignores
 * include_background), optionally class-weighted.
 */
export function diceCELoss(
  probs: tf.Tensor5D,
  target: tf.Tensor5D,
  options: DiceCEOptions = {},
): DiceCEParts {
  return tf.tidy(() => {
    const classes = probs.shape[4];
    // [n, classes] per sample, or [1, classes] over the batch; the background column is dropped at
    // rank 2, because slicing rank-5 tensors differentiates through Pad, which tfjs-webgpu cannot
    // compile at rank 5.
    const batch = options.dice === 'batch';
    const axes = batch ? [0, 1, 2, 3] : [1, 2, 3];
    const shape2 = (t: tf.Tensor) => (batch ? tf.reshape(t, [1, classes]) : t);
    const inter = shape2(tf.sum(tf.mul(probs, target), axes));
    const denom = shape2(tf.add(tf.sum(probs, axes), tf.sum(target, axes)));
    const perClass = tf.sub(1, tf.div(tf.add(tf.mul(inter, 2), DICE_SMOOTH), tf.add(denom, DICE_SMOOTH)));
    const dice = tf.mean(tf.slice(perClass, [0, 1], [-1, classes - 1])) as tf.Scalar;
    const logp = tf.mul(target, tf.log(tf.add(probs, LOG_EPS)));
    let ce: tf.Scalar;
    const w = options.classWeights;
    if (w?.some((x) => x !== 1)) {
      if (w.length !== classes)
        throw new Error(`classWeights has ${w.length} entries for ${classes} classes`);
      const weights = tf.tensor5d(Float32Array.from(w), [1, 1, 1, 1, classes]);
      const voxelWeight = tf.sum(tf.mul(target, weights), -1);
      const weighted = tf.sum(tf.mul(logp, weights), -1);
      ce = tf.neg(tf.div(tf.sum(weighted), tf.add(tf.sum(voxelWeight), 1e-8))) as tf.Scalar;
    } else {
      ce = tf.neg(tf.mean(tf.sum(logp, -1))) as tf.Scalar;
    }
    return { total: tf.add(dice, ce) as tf.Scalar, dice, ce };
  });
}

/**
 * The tumor instances of a batch for the blob loss (Kofler et al. 2023, "blob loss: instance
 * imbalance aware loss functions for semantic segmentation"): each 26-connected tumor component
 * of each crop. Each instance is scored over its own crop with the crop's other instances masked
 * out, as if it were the crop's only lesion; that region's predicted sum is the crop's sum minus
 * the other instances' sums, so only the instances' own voxels are kept (rows over their crop,
 * crop-major as the labels).
 */
export interface TumorInstances {
  /** Voxels per crop. */
  voxels: number;
  count: number;
  /** Crops with at least one instance: `members` is [instances, voxels], 1 on each instance. */
  crops: Array<{ crop: number; count: number; members: Float32Array; sizes: Float32Array }>;
}

export function tumorInstances(
  labels: ArrayLike<number>,
  batch: number,
  dims: Dims3,
  tumor: number,
): TumorInstances {
  const n = dims[0] * dims[1] * dims[2];
  if (labels.length !== batch * n)
    throw new Error(`labels hold ${labels.length} voxels, the batch ${batch * n}`);
  const crops: TumorInstances['crops'] = [];
  for (let b = 0; b < batch; b++) {
    const mask = new Uint8Array(n);
    for (let i = 0; i < n; i++) mask[i] = labels[b * n + i] === tumor ? 1 : 0;
    const cc = connectedComponents(mask, dims, 26);
    if (cc.count === 0) continue;
    const members = new Float32Array(cc.count * n);
    for (let i = 0; i < n; i++) if (cc.labels[i] > 0) members[(cc.labels[i] - 1) * n + i] = 1;
    crops.push({ crop: b, count: cc.count, members, sizes: Float32Array.from(cc.sizes) });
  }
  return { voxels: n, count: crops.reduce((k, c) => k + c.count, 0), crops };
}

/**
 * The blob loss's instance term: the mean over instances of 1 - Dice of the tumor probability with
 * the instance, each over its own region (smooth as the Dice above). Batch Dice lets a 30 ml lesion
 * outweigh a 2 ml one 15 to 1; here each counts once. Zero when the batch has no tumor.
 */
export function blobDiceLoss(probs: tf.Tensor5D, tumor: number, inst: TumorInstances): tf.Scalar {
  return tf.tidy(() => {
    if (inst.count === 0) return tf.scalar(0);
    const [batch, , , , classes] = probs.shape;
    if (probs.size / classes / batch !== inst.voxels)
      throw new Error(
        `the instances' crops hold ${inst.voxels} voxels, the probabilities' ${probs.size / classes / batch}`,
      );
    const p = tf.reshape(channel(probs, tumor), [batch, inst.voxels]);
    const losses = inst.crops.map(({ crop, count, members, sizes }) => {
      const pc = tf.reshape(tf.slice(p, [crop, 0], [1, inst.voxels]), [inst.voxels, 1]);
      const own = tf.matMul(tf.tensor2d(members, [count, inst.voxels]), pc);
      // The region of an instance: its crop without the crop's other instances.
      const region = tf.add(tf.sub(tf.sum(pc), tf.sum(own)), own);
      const size = tf.tensor2d(sizes, [count, 1]);
      const dice = tf.div(tf.add(tf.mul(own, 2), DICE_SMOOTH), tf.add(tf.add(region, size), DICE_SMOOTH));
      return tf.sub(1, dice);
    });
    return tf.mean(tf.concat(losses, 0)) as tf.Scalar;
  });
}

/** 1 - (sum of prob over mask) / |mask|: the reference's linear "probability recall" on a mask. */
export function maskedRecallLoss(prob: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.tidy(
    () => tf.sub(1, tf.div(tf.sum(tf.mul(prob, mask)), tf.add(tf.sum(mask), MASK_EPS))) as tf.Scalar,
  );
}

/** Discriminator channels (voxel-wise softmax). */
export const D_BACKGROUND = 0;
export const D_REAL = 1;
export const D_FAKE = 2;

/** Sum of the given channels, keeping the channel axis, as a product with a [1, 1, 1, 1, C] multi-hot mask (see above). */
export function channelSum(x: tf.Tensor5D, channels: readonly number[]): tf.Tensor5D {
  return tf.tidy(() => {
    const c = x.shape[4];
    const mask = new Float32Array(c);
    for (const ch of channels) mask[ch] = 1;
    return tf.sum(tf.mul(x, tf.tensor5d(mask, [1, 1, 1, 1, c])), -1, true) as tf.Tensor5D;
  });
}

function channel(x: tf.Tensor5D, c: number): tf.Tensor5D {
  return channelSum(x, [c]);
}

export interface GeneratorLossParts {
  total: tf.Scalar;
  adversarial: tf.Scalar;
  segmentation: tf.Scalar;
}

/**
 * L_G = advWeight * (1 - mean pD(real | fake voxels)) + (1 - mean pS(tumor | fake voxels)).
 * `fakeMask` = [label == 3] in the merged scheme (§10.1). advWeight 0.1 for the abdomen.
 */
export function generatorLoss(
  dProbs: tf.Tensor5D,
  sProbs: tf.Tensor5D,
  fakeMask: tf.Tensor5D,
  segTumorChannels: readonly number[],
  advWeight = 0.1,
): GeneratorLossParts {
  return tf.tidy(() => {
    const adversarial = maskedRecallLoss(channel(dProbs, D_REAL), fakeMask);
    const segmentation = maskedRecallLoss(channelSum(sProbs, segTumorChannels), fakeMask);
    return {
      total: tf.add(tf.mul(adversarial, advWeight), segmentation) as tf.Scalar,
      adversarial,
      segmentation,
    };
  });
}

export interface DiscriminatorLossParts {
  total: tf.Scalar;
  fake: tf.Scalar;
  real: tf.Scalar;
}

/**
 * L_D = 1/2 [(1 - mean pD(fake | fake voxels)) + (1 - mean pD(real | real tumor voxels))], on a
 * fresh synthesis made without gradients into G. With no real tumor in the batch the real term is
 * the constant 1, as in the reference. Only D's parameters are updated with it (§10.3).
 */
export function discriminatorLoss(
  dProbs: tf.Tensor5D,
  fakeMask: tf.Tensor5D,
  realMask: tf.Tensor5D,
): DiscriminatorLossParts {
  return tf.tidy(() => {
    const fake = maskedRecallLoss(channel(dProbs, D_FAKE), fakeMask);
    const real = maskedRecallLoss(channel(dProbs, D_REAL), realMask);
    return { total: tf.mul(tf.add(fake, real), 0.5) as tf.Scalar, fake, real };
  });
}
