/**
 * Whether synthesis works, measured on held-out cases (issue 12 item 3):
 * - the discriminator separates real from synthetic tumors: ROC AUC of its mean p(real tumor) over
 *   the lesion voxels, real lesions (positives) against generator-made synthetic tumors (negatives);
 * - the generator moves synthetic tumors toward real ones: the HU contrast (organ mean minus lesion
 *   mean, in the same crop) of real lesions, of handcrafted synthetic tumors (a scalar difference
 *   U(0.2, 0.7)) and of generator-made ones, as median and interquartile range;
 * - how often quality control accepts them (the one rule of shared/inference/quality.ts).
 * Crops have the training patch size; real ones are centred on each real lesion, synthetic ones on
 * organ voxels of crops without a real tumor, with tumors planned as in training.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { acceptSynthetic, type QualityRule } from '../../shared/inference/quality.ts';
import { connectedComponents } from '../../shared/labels/components.ts';
import { Rng } from '../../shared/random.ts';
import { drawDifference } from '../../shared/synthesis/compose.ts';
import { planSynthesis } from '../../shared/synthesis/plan.ts';
import { type Dims3, voxelCount } from '../../shared/volume/volume.ts';
import type { TrainingCase } from '../data/case.ts';
import { classIndices, cropStart, extractPatch, type Patch, unravel } from '../data/patches.ts';
import type { TumorTypeChoice } from '../data/synthesis-planner.ts';
import { channelSum, D_REAL } from './losses.ts';
import { cropQualitySignals } from './quality.ts';
import {
  batchShape,
  composeDarken,
  labelMask,
  organSelector,
  synthesizeWithGenerator,
} from './synthesis-ops.ts';

export interface Spread {
  n: number;
  median: number | null;
  q1: number | null;
  q3: number | null;
}

export interface SynthesisEvaluation {
  /** ROC AUC of D's realism, real lesions vs generator-made tumors; null without both kinds. */
  discriminatorAuc: number | null;
  realism: { real: Spread; generator: Spread };
  /** Organ mean minus lesion mean, HU. */
  contrastHu: { real: Spread; handcrafted: Spread; generator: Spread };
  /** Fraction of generator-made tumors the QC rule accepts; null without a QC model. */
  qcAcceptance: number | null;
  /** Same for the handcrafted ones. */
  qcAcceptanceHandcrafted: number | null;
}

export interface SynthesisEvalOptions {
  patchSize: Dims3;
  spacing: Dims3;
  /** HU window of the windowed images ([0, 1] = [lo, hi]). */
  window: [number, number];
  organIndex: number;
  organChannels: number;
  tumorType: TumorTypeChoice;
  /** Synthetic crops per case. */
  perCase: number;
  seed: number;
  qc?: { rule: QualityRule; segmentor: LayersModel | null };
}

export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { n: 0, median: null, q1: null, q3: null };
  const s = [...values].sort((a, b) => a - b);
  const q = (p: number) => {
    const x = p * (s.length - 1);
    const lo = Math.floor(x);
    return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (x - lo);
  };
  return { n: s.length, median: q(0.5), q1: q(0.25), q3: q(0.75) };
}

/** ROC AUC as the Mann-Whitney probability that a positive scores above a negative (ties 1/2). */
export function rocAuc(positives: readonly number[], negatives: readonly number[]): number | null {
  if (positives.length === 0 || negatives.length === 0) return null;
  let wins = 0;
  for (const p of positives) for (const n of negatives) wins += p > n ? 1 : p === n ? 0.5 : 0;
  return wins / (positives.length * negatives.length);
}

/** Organ mean minus lesion mean in HU over one crop (organ = label 1 voxels outside the lesion). */
function contrast(
  image: Float32Array,
  organ: (v: number) => boolean,
  lesion: Uint8Array,
  window: [number, number],
): number | null {
  let so = 0;
  let no = 0;
  let sl = 0;
  let nl = 0;
  for (let v = 0; v < image.length; v++) {
    if (lesion[v]) {
      sl += image[v];
      nl++;
    } else if (organ(v)) {
      so += image[v];
      no++;
    }
  }
  if (nl === 0 || no === 0) return null;
  return (so / no - sl / nl) * (window[1] - window[0]);
}

function centreOf(indices: number[], dims: Dims3): Dims3 {
  const [nx, ny] = dims;
  let si = 0;
  let sj = 0;
  let sk = 0;
  for (const v of indices) {
    si += v % nx;
    sj += Math.floor(v / nx) % ny;
    sk += Math.floor(v / (nx * ny));
  }
  const n = indices.length;
  return [Math.round(si / n), Math.round(sj / n), Math.round(sk / n)];
}

async function meanRealism(
  d: LayersModel,
  image: Float32Array,
  mask: Uint8Array,
  dims: Dims3,
): Promise<number> {
  const shape = batchShape(1, dims);
  const r = tf.tidy(() => {
    const p = channelSum(d.predict(tf.tensor5d(image, shape)) as tf.Tensor5D, [D_REAL]);
    const m = tf.tensor5d(Float32Array.from(mask), shape);
    return tf.div(tf.sum(tf.mul(p, m)), tf.add(tf.sum(m), 1e-6));
  });
  const v = (await r.data())[0];
  r.dispose();
  return v;
}

export async function evaluateSynthesis(
  generator: LayersModel,
  discriminator: LayersModel,
  cases: readonly TrainingCase[],
  o: SynthesisEvalOptions,
): Promise<SynthesisEvaluation> {
  const rng = new Rng(o.seed);
  const realScores: number[] = [];
  const realContrast: number[] = [];
  const genScores: number[] = [];
  const genContrast: number[] = [];
  const handContrast: number[] = [];
  let qcSeen = 0;
  let qcAccepted = 0;
  let qcAcceptedHand = 0;
  const n = voxelCount(o.patchSize);
  const shape = batchShape(1, o.patchSize);
  for (const c of cases) {
    // Real lesions: one crop centred on each.
    const tumor = Uint8Array.from(c.label, (v) => (v === 2 ? 1 : 0));
    const cc = connectedComponents(tumor, c.dims, 26);
    const members: number[][] = Array.from({ length: cc.count }, () => []);
    for (let v = 0; v < tumor.length; v++) if (cc.labels[v] > 0) members[cc.labels[v] - 1].push(v);
    for (let id = 0; id < cc.count; id++) {
      const centre = centreOf(members[id], c.dims);
      const start = cropStart(centre, c.dims, o.patchSize);
      const p = extractPatch(c.image, c.label, c.dims, start, o.patchSize);
      // Only this lesion's voxels (another lesion in the crop is neither organ nor this lesion).
      const own = extractPatch(
        c.image,
        Uint8Array.from(cc.labels, (l) => (l === id + 1 ? 1 : 0)),
        c.dims,
        start,
        o.patchSize,
      ).label;
      const hu = contrast(p.image, (v) => p.label[v] === 1, own, o.window);
      if (hu !== null) realContrast.push(hu);
      realScores.push(await meanRealism(discriminator, p.image, own, o.patchSize));
    }
    // Synthetic tumors: crops centred on organ voxels, without a real tumor in the crop.
    const organ = classIndices(c.label).organ;
    if (organ.length === 0) continue;
    let made = 0;
    for (let attempt = 0; attempt < o.perCase * 8 && made < o.perCase; attempt++) {
      const centre = unravel(organ[rng.int(0, organ.length - 1)], c.dims);
      const p: Patch = extractPatch(
        c.image,
        c.label,
        c.dims,
        cropStart(centre, c.dims, o.patchSize),
        o.patchSize,
      );
      if (p.label.includes(2)) continue;
      const plan = planSynthesis(
        { image: p.image, label: p.label, dims: o.patchSize, spacing: o.spacing },
        { type: o.tumorType, count: 1 },
        rng,
      );
      const fake = Uint8Array.from(plan.label, (l) => (l === 3 ? 1 : 0));
      if (!fake.includes(1)) continue;
      made++;
      const difference = drawDifference(rng);
      const x = tf.tensor5d(p.image, shape);
      const w = tf.tensor5d(plan.weight, shape);
      const organMask = labelMask(p.label, shape, 1);
      const selector = organSelector(Int32Array.of(o.organIndex), o.organChannels);
      const hand = tf.tidy(() => composeDarken(x, w, tf.scalar(difference)));
      const gen = synthesizeWithGenerator(generator, x, w, selector, organMask, false);
      const handImage = (await hand.data()) as Float32Array;
      const genImage = (await gen.data()) as Float32Array;
      const isOrgan = (v2: number) => p.label[v2] === 1;
      const hc = contrast(handImage, isOrgan, fake, o.window);
      const gc = contrast(genImage, isOrgan, fake, o.window);
      if (hc !== null) handContrast.push(hc);
      if (gc !== null) genContrast.push(gc);
      genScores.push(await meanRealism(discriminator, genImage, fake, o.patchSize));
      if (o.qc) {
        const fakeT = labelMask(plan.label, shape, 3);
        const useS = o.qc.segmentor;
        const [sg] = await cropQualitySignals(gen, fakeT, { segmentor: useS, discriminator });
        const [sh] = await cropQualitySignals(hand, fakeT, { segmentor: useS, discriminator });
        qcSeen++;
        if (acceptSynthetic(sg, o.qc.rule)) qcAccepted++;
        if (acceptSynthetic(sh, o.qc.rule)) qcAcceptedHand++;
        fakeT.dispose();
      }
      tf.dispose([x, w, organMask, selector, hand, gen]);
      if (handImage.length !== n) throw new Error('internal: crop size');
    }
  }
  return {
    discriminatorAuc: rocAuc(realScores, genScores),
    realism: { real: spread(realScores), generator: spread(genScores) },
    contrastHu: {
      real: spread(realContrast),
      handcrafted: spread(handContrast),
      generator: spread(genContrast),
    },
    qcAcceptance: o.qc && qcSeen > 0 ? qcAccepted / qcSeen : null,
    qcAcceptanceHandcrafted: o.qc && qcSeen > 0 ? qcAcceptedHand / qcSeen : null,
  };
}
