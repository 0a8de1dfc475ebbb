/**
 * Segmentation training (notes §5): a 3-class U-Net (background, organ, tumor) with DiceCE,
 * AdamW + warmup-cosine, in two modes:
 * - `baseline`: real tumors only (labeled cases);
 * - `freetumor`: every crop with organ and no real tumor gets an online synthetic tumor (generator
 *   of a synthesis run, or a handcrafted difference), kept only if quality control accepts it
 *   (frozen baseline segmentor and/or discriminator); accepted synthetic voxels become tumor.
 * Then the CutMix slab swap over the batch, as the reference.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { slidingWindow } from '../../shared/inference/sliding-window.ts';
import { ORGANS } from '../../shared/labels/labelmap.ts';
import { dice } from '../../shared/metrics/dice.ts';
import { type Dims3, voxelCount } from '../../shared/volume/volume.ts';
import type { Batch, BatchSpec } from '../data/batches.ts';
import type { TrainingCase } from '../data/case.ts';
import { cutmixSlabs } from '../data/patches.ts';
import { STREAM, stepRng, streamSeed } from '../data/seeds.ts';
import { buildUNet, segmentorConfig, sizeMultiple, type UNetConfig } from '../models/unet.ts';
import { createTfjsRunner } from '../runners/tfjs.ts';
import type { RunConfig } from './config.ts';
import { diceCELoss, oneHotLabels } from './losses.ts';
import { AdamW, warmupCosineLr } from './optim.ts';
import { qcAccept, scoreSynthetic } from './quality.ts';
import type { Trainer } from './run.ts';
import {
  batchShape,
  composeDarken,
  labelMask,
  organSelector,
  synthesizeWithGenerator,
} from './synthesis-ops.ts';

export const SEGMENTATION_CLASSES = 3;
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
    positiveFraction: config.data.positiveFraction,
    augment: config.data.augment,
    synthesis: freetumor ? 'eligible' : 'none',
    plansPerCrop: freetumor ? 1 : 0,
    tumorType: config.segmentation.tumorType,
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
  const useSegmentorQc = qc.policy === 'segmentor' || qc.policy === 'both' || qc.policy === 'either';
  const useDiscriminatorQc = qc.policy === 'discriminator' || qc.policy === 'both' || qc.policy === 'either';

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
    let synthetic: tf.Tensor5D;
    if (deps.generator) {
      const selector = organSelector(batch.organIndex, deps.generator.outputs[0].shape[4] as number);
      synthetic = synthesizeWithGenerator(deps.generator, x, weight, selector, false);
      selector.dispose();
    } else {
      const d = tf.tensor5d(plan.difference, [batch.size, 1, 1, 1, 1]);
      synthetic = composeDarken(x, weight, d);
      d.dispose();
    }
    const fake = labelMask(plan.label, shape, SYNTHETIC);
    const signals = await scoreSynthetic(synthetic, fake, {
      segmentor: useSegmentorQc ? deps.qcSegmentor : null,
      discriminator: useDiscriminatorQc ? deps.discriminator : null,
    });
    const synthData = (await synthetic.data()) as Float32Array;
    tf.dispose([x, weight, synthetic, fake]);
    let count = 0;
    let accepted = 0;
    for (let b = 0; b < batch.size; b++) {
      if (!plan.has[b]) continue;
      count++;
      if (!qcAccept(signals[b], qc)) continue;
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
    const lr = warmupCosineLr(s, { baseLr: opt.lr, warmupSteps: opt.warmupSteps, totalSteps: config.steps });
    const x = tf.tensor5d(images, shape);
    const y = oneHotLabels(labels, [shape[0], shape[1], shape[2], shape[3]], SEGMENTATION_CLASSES);
    let diceTerm: tf.Scalar | null = null;
    let ceTerm: tf.Scalar | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const parts = diceCELoss(model.apply(x, { training: true }) as tf.Tensor5D, y);
      diceTerm = tf.keep(parts.dice);
      ceTerm = tf.keep(parts.ce);
      return parts.total;
    }, variables);
    optimizer.apply(grads, lr);
    const [loss, d, ce] = await Promise.all([
      value.data(),
      (diceTerm as unknown as tf.Scalar).data(),
      (ceTerm as unknown as tf.Scalar).data(),
    ]);
    tf.dispose([
      x,
      y,
      value,
      diceTerm as unknown as tf.Scalar,
      ceTerm as unknown as tf.Scalar,
      ...Object.values(grads),
    ]);
    return {
      loss: loss[0],
      dice_loss: d[0],
      ce_loss: ce[0],
      lr,
      synthetic: synth.synthetic,
      accepted: synth.accepted,
    };
  }

  async function validate(): Promise<{ metrics: Record<string, number>; select: number }> {
    const cases = deps.validation ?? [];
    const runner = createTfjsRunner(model);
    const scores: number[] = [];
    const withTumor: number[] = [];
    for (const c of cases) {
      const pred = await predictCase(runner, c.image, c.dims, config.patchSize, sizeMultiple(modelConfig));
      const truth = Uint8Array.from(c.label, (v) => (v === TUMOR ? 1 : 0));
      const found = Uint8Array.from(pred, (v) => (v === TUMOR ? 1 : 0));
      const score = dice(found, truth);
      scores.push(score);
      if (truth.some((v) => v)) withTumor.push(score);
    }
    const mean = (a: number[]) => (a.length ? a.reduce((p, q) => p + q, 0) / a.length : 0);
    const metrics = {
      val_tumor_dice: mean(scores),
      val_tumor_dice_cases_with_tumor: mean(withTumor),
      val_cases: cases.length,
    };
    return { metrics, select: metrics.val_tumor_dice };
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

/** Sliding-window prediction (gaussian blending, overlap 0.5) and argmax: labels per voxel. */
export async function predictCase(
  runner: ReturnType<typeof createTfjsRunner>,
  image: Float32Array,
  dims: Dims3,
  patchSize: Dims3,
  divisor: number,
): Promise<Uint8Array> {
  const r = await slidingWindow(image, dims, runner, {
    patchSize,
    overlap: 0.5,
    blending: 'gaussian',
    divisor,
    inputName: 'image',
  });
  const n = voxelCount(r.dims);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < r.channels; c++) if (r.data[c * n + i] > r.data[best * n + i]) best = c;
    out[i] = best;
  }
  return out;
}
