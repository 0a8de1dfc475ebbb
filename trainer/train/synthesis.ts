/**
 * Synthesis training ("TGAN", notes §3 with the fixes of §10): per step a G step then a D step.
 * - G step: x' = clip(x - w_A * blur7(tanh(G(x))[organ]), 0, 1) on plan A; loss
 *   advWeight * (1 - mean pD(real | fake)) + (1 - mean pS(tumor | fake)), S frozen; only G updated.
 * - D step: a fresh, different plan B synthesised with G under no gradient; loss
 *   1/2 [(1 - mean pD(fake | fake)) + (1 - mean pD(real | real tumor))]; only D updated (§10.3).
 * Labels in both steps are the merged scheme (§10.1). Adam lr 1e-4, betas (0, 0.999), no decay.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { ORGANS } from '../../shared/labels/labelmap.ts';
import { voxelCount } from '../../shared/volume/volume.ts';
import type { Batch, BatchSpec } from '../data/batches.ts';
import { streamSeed } from '../data/seeds.ts';
import { buildUNet, discriminatorConfig, generatorConfig, type UNetConfig } from '../models/unet.ts';
import type { RunConfig } from './config.ts';
import { discriminatorLoss, generatorLoss } from './losses.ts';
import { AdamW } from './optim.ts';
import { tumorChannels } from './quality.ts';
import type { Trainer } from './run.ts';
import { samplePng } from './samples.ts';
import { batchShape, labelMask, organSelector, synthesizeWithGenerator } from './synthesis-ops.ts';

const ORGAN = 1;
const REAL = 2;
const SYNTHETIC = 3;

/** Where synthesis-training crops are centred (a case without tumor gives its tumor share to the organ). */
export const SYNTHESIS_CROPS = { tumor: 0.5, organ: 0.5, body: 0, air: 0 };

export interface SynthesisDeps {
  /** The frozen segmentor (from a segmentation run): never updated, gradients flow through it into G. */
  segmentor: LayersModel;
  /** Where PNG samples go (run folder/samples); null = none. */
  samplesDir?: string | null;
}

export function synthesisModelConfigs(config: RunConfig): {
  generator: UNetConfig;
  discriminator: UNetConfig;
} {
  const m = config.model;
  const base = { baseChannels: m.baseChannels, depth: m.depth, norm: m.norm, groups: m.groups };
  return {
    generator: generatorConfig({ ...base, seed: streamSeed(config.seed, 200) }, ORGANS.length),
    discriminator: discriminatorConfig({ ...base, seed: streamSeed(config.seed, 300) }),
  };
}

export function synthesisBatchSpec(config: RunConfig): BatchSpec {
  return {
    seed: config.seed,
    patchSize: config.patchSize,
    casesPerStep: config.casesPerStep,
    cropsPerCase: config.cropsPerCase,
    // The reference: pos 1, neg 0 (always centred on a labeled voxel); here half on a real tumor,
    // so that the discriminator's real-tumor term sees real tumors, and half on the organ.
    crops: SYNTHESIS_CROPS,
    spacing: config.data.spacing,
    augment: config.data.augment,
    synthesis: 'organ',
    plansPerCrop: 2,
    tumorType: config.synthesis.tumorType,
    organs: ORGANS,
  };
}

export function createSynthesisTrainer(config: RunConfig, deps: SynthesisDeps): Trainer {
  const cfgs = synthesisModelConfigs(config);
  const generator = buildUNet(cfgs.generator);
  const discriminator = buildUNet(cfgs.discriminator);
  const segmentor = deps.segmentor;
  segmentor.trainable = false;
  const segTumor = tumorChannels(segmentor.outputs[0].shape[4] as number);
  const gVars = generator.trainableWeights.map((w) => w.read() as tf.Variable);
  const dVars = discriminator.trainableWeights.map((w) => w.read() as tf.Variable);
  const o = config.optimizer;
  const adam = { beta1: o.beta1, beta2: o.beta2, weightDecay: o.weightDecay, amsgrad: o.amsgrad };
  const gOpt = new AdamW(gVars, adam);
  const dOpt = new AdamW(dVars, adam);
  const advWeight = config.synthesis.advWeight;

  async function step(batch: Batch, s: number): Promise<Record<string, number>> {
    const shape = batchShape(batch.size, batch.dims);
    const [planA, planB] = batch.plans;
    const x = tf.tensor5d(batch.images, shape);
    const selector = organSelector(batch.organIndex, ORGANS.length);
    const organ = labelMask(batch.labels, shape, ORGAN);

    // G step.
    const wA = tf.tensor5d(planA.weight, shape);
    const fakeA = labelMask(planA.label, shape, SYNTHETIC);
    let adv: tf.Scalar | null = null;
    let seg: tf.Scalar | null = null;
    let sampleImage: tf.Tensor | null = null;
    const g = tf.variableGrads(() => {
      const xs = synthesizeWithGenerator(generator, x, wA, selector, organ, true);
      const parts = generatorLoss(
        discriminator.apply(xs, { training: true }) as tf.Tensor5D,
        segmentor.apply(xs, { training: false }) as tf.Tensor5D,
        fakeA,
        segTumor,
        advWeight,
      );
      adv = tf.keep(parts.adversarial);
      seg = tf.keep(parts.segmentation);
      if (deps.samplesDir && config.synthesis.sampleEvery > 0 && (s + 1) % config.synthesis.sampleEvery === 0)
        sampleImage = tf.keep(xs);
      return parts.total;
    }, gVars);
    gOpt.apply(g.grads, o.lr);

    // D step on a fresh synthesis (plan B), generator output without gradient.
    const wB = tf.tensor5d(planB.weight, shape);
    const fakeB = labelMask(planB.label, shape, SYNTHETIC);
    const realB = labelMask(planB.label, shape, REAL);
    const xsB = tf.tidy(() => synthesizeWithGenerator(generator, x, wB, selector, organ, false));
    const d = tf.variableGrads(() => {
      const parts = discriminatorLoss(
        discriminator.apply(xsB, { training: true }) as tf.Tensor5D,
        fakeB,
        realB,
      );
      return parts.total;
    }, dVars);
    dOpt.apply(d.grads, o.lr);

    const scalars = [g.value, adv as unknown as tf.Scalar, seg as unknown as tf.Scalar, d.value];
    const [gl, al, sl, dl] = await Promise.all(scalars.map(async (t) => (await t.data())[0]));
    if (sampleImage) await writeSample(batch, sampleImage, s + 1);
    tf.dispose([
      x,
      selector,
      organ,
      wA,
      fakeA,
      wB,
      fakeB,
      realB,
      xsB,
      ...scalars,
      ...Object.values(g.grads),
      ...Object.values(d.grads),
    ]);
    if (sampleImage) (sampleImage as tf.Tensor).dispose();
    return {
      g_loss: gl,
      g_adv: al,
      g_seg: sl,
      d_loss: dl,
      lr: o.lr,
      synthetic: planA.has.reduce((a, b) => a + b, 0),
    };
  }

  async function writeSample(batch: Batch, synthetic: tf.Tensor, done: number): Promise<void> {
    const b = Math.max(0, batch.plans[0].has.indexOf(1));
    const n = voxelCount(batch.dims);
    const all = (await synthetic.data()) as Float32Array;
    const mask = Uint8Array.from(batch.plans[0].label.subarray(b * n, (b + 1) * n), (v) =>
      v === SYNTHETIC ? 1 : 0,
    );
    const png = samplePng(
      batch.images.subarray(b * n, (b + 1) * n),
      all.subarray(b * n, (b + 1) * n),
      mask,
      batch.dims,
    );
    await mkdir(deps.samplesDir as string, { recursive: true });
    await writeFile(join(deps.samplesDir as string, `step-${String(done).padStart(7, '0')}.png`), png);
  }

  return {
    kind: 'synthesis',
    spec: synthesisBatchSpec(config),
    models: {
      generator: { model: generator, config: cfgs.generator },
      discriminator: { model: discriminator, config: cfgs.discriminator },
    },
    optimizers: { generator: gOpt, discriminator: dOpt },
    step,
    dispose() {
      gOpt.dispose();
      dOpt.dispose();
      generator.dispose();
      discriminator.dispose();
    },
  };
}
