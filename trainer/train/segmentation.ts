/**
 * Segmentation training (notes §5): a 3-class U-Net (background, organ, tumor) with DiceCE (Dice
 * per crop or over the batch, tumor-weighted CE), AdamW with a warmup and a schedule, in two modes:
 * - `baseline`: real tumors only (labeled cases);
 * - `freetumor`: every crop with organ and no real tumor gets an online synthetic tumor (generator
 *   of a synthesis run, or a handcrafted difference), kept only if quality control accepts it
 *   (frozen baseline segmentor and/or discriminator); accepted synthetic voxels become tumor.
 * Then the CutMix slab swap over the batch, as the reference.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { acceptSynthetic, policyUses } from '../../shared/inference/quality.ts';
import { ORGANS } from '../../shared/labels/labelmap.ts';
import { voxelCount } from '../../shared/volume/volume.ts';
import type { Batch, BatchSpec } from '../data/batches.ts';
import type { TrainingCase } from '../data/case.ts';
import { cutmixSlabs } from '../data/patches.ts';
import { STREAM, stepRng, streamSeed } from '../data/seeds.ts';
import { buildUNet, segmentorConfig, sizeMultiple, type UNetConfig } from '../models/unet.ts';
import type { RunConfig } from './config.ts';
import { blobDiceLoss, diceCELoss, oneHotLabels, tumorInstances } from './losses.ts';
import { AdamW, scheduledLr } from './optim.ts';
import { cropQualitySignals } from './quality.ts';
import type { Trainer } from './run.ts';
import { batchShape, composeDarken, generatorDifference, labelMask, organSelector } from './synthesis-ops.ts';
import { evaluateSegmentor, selectionValue, validationRecord } from './validation.ts';

export const SEGMENTATION_CLASSES = 3;
const ORGAN = 1;
const TUMOR = 2;
const SYNTHETIC = 3;

export interface SegmentationDeps {
  /** Generator of a synthesis run (tanh, one channel per organ); null = handcrafted difference. */
  generator?: LayersModel | null;
  /** Discriminator of a synthesis run, for the realism signal of quality control. */
  discriminator?: LayersModel | null;
  /** Frozen baseline segmentor for quality control. */
  qcSegmentor?: LayersModel | null;
  /** Held-out cases for sliding-window validation. */
  validation?: readonly TrainingCase[];
}

export function segmentationModelConfig(config: RunConfig): UNetConfig {
  const m = config.model;
  return segmentorConfig(
    {
      baseChannels: m.baseChannels,
      depth: m.depth,
      norm: m.norm,
      groups: m.groups,
      seed: streamSeed(config.seed, 100),
    },
    SEGMENTATION_CLASSES,
  );
}

export function segmentationBatchSpec(config: RunConfig): BatchSpec {
  const freetumor = config.segmentation.mode === 'freetumor';
  return {
    seed: config.seed,
    patchSize: config.patchSize,
    casesPerStep: config.casesPerStep,
    cropsPerCase: config.cropsPerCase,
    crops: config.data.crops,
    spacing: config.data.spacing,
    augment: config.data.augment,
    synthesis: freetumor ? 'eligible' : 'none',
    plansPerCrop: freetumor ? 1 : 0,
    tumorType: config.segmentation.tumorType,
    minInsideOrgan: config.segmentation.minInsideOrgan,
    contrast: config.segmentation.syntheticContrast,
    organs: ORGANS,
  };
}

export function createSegmentationTrainer(config: RunConfig, deps: SegmentationDeps = {}): Trainer {
  const modelConfig = segmentationModelConfig(config);
  const model = buildUNet(modelConfig);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const opt = config.optimizer;
  const optimizer = new AdamW(variables, {
    beta1: opt.beta1,
    beta2: opt.beta2,
    weightDecay: opt.weightDecay,
    amsgrad: opt.amsgrad,
  });
  const qc = config.segmentation.qc;
  // `either` uses whichever models are given; `none` computes no signal.
  const uses = policyUses(qc.policy);
  const lossOptions = {
    dice: config.segmentation.loss.dice,
    classWeights: [1, 1, config.segmentation.loss.tumorWeight],
  };
  const blobWeight = config.segmentation.loss.blobWeight;

  /** Online synthesis + quality control on the eligible crops; edits images/labels in place. */
  async function synthesize(
    batch: Batch,
    images: Float32Array,
    labels: Uint8Array,
  ): Promise<{ synthetic: number; accepted: number }> {
    const plan = batch.plans[0];
    if (!plan?.has.some((h) => h)) return { synthetic: 0, accepted: 0 };
    const shape = batchShape(batch.size, batch.dims);
    const n = voxelCount(batch.dims);
    const x = tf.tensor5d(images, shape);
    const weight = tf.tensor5d(plan.weight, shape);
    let difference: tf.Tensor;
    if (deps.generator) {
      const selector = organSelector(batch.organIndex, deps.generator.outputs[0].shape[4] as number);
      const organ = labelMask(labels, shape, ORGAN);
      difference = generatorDifference(deps.generator, x, selector, organ, false);
      tf.dispose([selector, organ]);
    } else {
      difference = tf.tensor5d(plan.difference, [batch.size, 1, 1, 1, 1]);
    }
    const synthetic = composeDarken(x, weight, difference);
    const fake = labelMask(plan.label, shape, SYNTHETIC);
    // Quality control judges the tumor as drawn; the contrast factor applies to accepted ones
    // only, so that tumors fainter than the QC segmentor can see still reach training.
    const signals = await cropQualitySignals(synthetic, fake, {
      segmentor: uses.segmentor ? deps.qcSegmentor : null,
      discriminator: uses.discriminator ? deps.discriminator : null,
    });
    const contrast = plan.contrast.subarray(0, batch.size);
    const trained = contrast.every((c) => c === 1)
      ? synthetic
      : tf.tidy(() =>
          composeDarken(x, tf.mul(weight, tf.tensor5d(contrast, [batch.size, 1, 1, 1, 1])), difference),
        );
    const synthData = (await trained.data()) as Float32Array;
    tf.dispose([x, weight, difference, synthetic, trained, fake]);
    let count = 0;
    let accepted = 0;
    for (let b = 0; b < batch.size; b++) {
      if (!plan.has[b]) continue;
      count++;
      if (!acceptSynthetic(signals[b], qc)) continue;
      accepted++;
      images.set(synthData.subarray(b * n, (b + 1) * n), b * n);
      for (let i = b * n; i < (b + 1) * n; i++)
        labels[i] = plan.label[i] === SYNTHETIC ? TUMOR : plan.label[i];
    }
    return { synthetic: count, accepted };
  }

  async function step(batch: Batch, s: number): Promise<Record<string, number>> {
    let images = batch.images;
    let labels = batch.labels;
    const synth =
      config.segmentation.mode === 'freetumor'
        ? await synthesize(batch, images, labels)
        : { synthetic: 0, accepted: 0 };
    if (config.segmentation.cutmix && batch.size > 1) {
      ({ images, labels } = cutmixSlabs(
        images,
        labels,
        batch.size,
        batch.dims,
        stepRng(config.seed, STREAM.cutmix, s),
      ));
    }
    const shape = batchShape(batch.size, batch.dims);
    const lr = scheduledLr(s, {
      baseLr: opt.lr,
      warmupSteps: opt.warmupSteps,
      totalSteps: config.steps,
      schedule: opt.schedule,
    });
    const x = tf.tensor5d(images, shape);
    const y = oneHotLabels(labels, [shape[0], shape[1], shape[2], shape[3]], SEGMENTATION_CLASSES);
    // The instances are taken from the labels as trained (after synthesis and CutMix).
    const instances = blobWeight > 0 ? tumorInstances(labels, batch.size, batch.dims, TUMOR) : null;
    let diceTerm: tf.Scalar | null = null;
    let ceTerm: tf.Scalar | null = null;
    let blobTerm: tf.Scalar | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const probs = model.apply(x, { training: true }) as tf.Tensor5D;
      const parts = diceCELoss(probs, y, lossOptions);
      diceTerm = tf.keep(parts.dice);
      ceTerm = tf.keep(parts.ce);
      if (!instances) return parts.total;
      blobTerm = tf.keep(blobDiceLoss(probs, TUMOR, instances));
      return tf.add(parts.total, tf.mul(blobTerm, blobWeight)) as tf.Scalar;
    }, variables);
    optimizer.apply(grads, lr);
    const terms = [value, diceTerm, ceTerm, blobTerm] as Array<tf.Scalar | null>;
    const [loss, d, ce, blob] = await Promise.all(terms.map((t) => t?.data()));
    tf.dispose([x, y, ...terms.filter((t): t is tf.Scalar => t !== null), ...Object.values(grads)]);
    return {
      loss: (loss as Float32Array)[0],
      dice_loss: (d as Float32Array)[0],
      ce_loss: (ce as Float32Array)[0],
      ...(blob ? { blob_loss: blob[0] } : {}),
      lr,
      synthetic: synth.synthetic,
      accepted: synth.accepted,
    };
  }

  async function validate(): Promise<{ metrics: Record<string, number>; select: number }> {
    const r = await evaluateSegmentor(model, deps.validation ?? [], {
      patchSize: config.patchSize,
      divisor: sizeMultiple(modelConfig),
      spacing: config.data.spacing,
    });
    return { metrics: validationRecord(r.averages), select: selectionValue(r.averages) };
  }

  return {
    kind: 'segmentation',
    spec: segmentationBatchSpec(config),
    models: { segmentor: { model, config: modelConfig } },
    optimizers: { segmentor: optimizer },
    step,
    validate: deps.validation?.length ? validate : undefined,
    dispose() {
      optimizer.dispose();
      model.dispose();
    },
  };
}
