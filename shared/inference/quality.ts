/**
 * Quality of a synthetic tumor (method §4 and §10.7). Two signals over the synthetic voxels:
 * - detection: the fraction the segmentor labels tumor (the reference's rule: accept above 0.7);
 * - realism: the discriminator's mean probability of "real tumor" (the arXiv paper's wording).
 *
 * This module is the one home of the accept rule (`acceptSynthetic`): the trainer's online quality
 * control (per crop, on tfjs tensors), the CLI's `score`, the edge's /v1/score and offline synthesis
 * all decide with it, under one set of threshold names.
 *
 * `scoreSynthetic` computes both signals on a whole volume at each model's own grid, with the
 * synthetic mask resampled linearly onto it and used as voxel weights, so a tumor smaller than a
 * model voxel still counts.
 */
import { FreeTumorError } from '../errors.ts';
import { affinesClose } from '../geometry/affine.ts';
import { toCanonical } from '../geometry/orientation.ts';
import { resampleToSpacing } from '../geometry/resample.ts';
import type { ModelManifest } from '../model/manifest.ts';
import { makeVolume, type Volume, voxelCount } from '../volume/volume.ts';
import { classIds, predictProbabilities, preprocess } from './pipeline.ts';
import type { OnnxRunner } from './runner.ts';
import { argmaxChannels } from './sliding-window.ts';

/** Which signal accepts a synthetic tumor (scoring a volume needs at least one model). */
export type QualityPolicy = 'segmentor' | 'discriminator' | 'both' | 'either';
/** The policies of the rule: `none` accepts every non-empty synthetic tumor (no quality control). */
export type QualityRulePolicy = QualityPolicy | 'none';
export const QUALITY_RULE_POLICIES: readonly QualityRulePolicy[] = [
  'segmentor',
  'discriminator',
  'both',
  'either',
  'none',
];

export interface QualityRule {
  policy: QualityRulePolicy;
  /** Accept when more than this fraction of the synthetic voxels is detected as tumor (reference 0.7). */
  detectionThreshold: number;
  /** Accept when the discriminator's mean p(real tumor) over the synthetic voxels exceeds this. */
  realismThreshold: number;
}

/** The reference's rule: the frozen segmentor detects more than 70% of the synthetic voxels. */
export const REFERENCE_QUALITY_RULE: QualityRule = {
  policy: 'segmentor',
  detectionThreshold: 0.7,
  realismThreshold: 0.5,
};

export interface QualitySignals {
  syntheticVoxels: number;
  /** Fraction of synthetic voxels detected as tumor; null without a segmentor. */
  detection: number | null;
  /** Mean discriminator p(real tumor) over synthetic voxels; null without a discriminator. */
  realism: number | null;
}

/** The accept rule. An empty synthetic mask (the tumor fell outside the organ) is always rejected. */
export function acceptSynthetic(s: QualitySignals, rule: QualityRule): boolean {
  if (s.syntheticVoxels <= 0) return false;
  const passS = s.detection !== null && s.detection > rule.detectionThreshold;
  const passD = s.realism !== null && s.realism > rule.realismThreshold;
  switch (rule.policy) {
    case 'none':
      return true;
    case 'segmentor':
      return passS;
    case 'discriminator':
      return passD;
    case 'both':
      return passS && passD;
    case 'either':
      return passS || passD;
  }
}

/**
 * Which models a policy needs: `both` needs both; `either` needs at least one (see policyUses).
 */
export function policyNeeds(policy: QualityRulePolicy): { segmentor: boolean; discriminator: boolean } {
  return {
    segmentor: policy === 'segmentor' || policy === 'both',
    discriminator: policy === 'discriminator' || policy === 'both',
  };
}

/**
 * Which models a policy decides with: those it needs, and for `either` both (the trainer loads
 * and configures both; a rule with one of them missing decides on the other).
 */
export function policyUses(policy: QualityRulePolicy): { segmentor: boolean; discriminator: boolean } {
  const needs = policyNeeds(policy);
  const either = policy === 'either';
  return { segmentor: needs.segmentor || either, discriminator: needs.discriminator || either };
}

export interface ScoringModel {
  manifest: ModelManifest;
  runner: OnnxRunner;
}

export interface ScoreOptions {
  segmentor?: ScoringModel;
  discriminator?: ScoringModel;
  /** Label value of the synthetic tumor. Default: 3 (merged scheme) when present, else 2. */
  syntheticLabel?: number;
  policy?: QualityPolicy;
  detectionThreshold?: number;
  realismThreshold?: number;
  batchSize?: number;
}

export interface QualityScore {
  realism: number | null;
  detection: number | null;
  accepted: boolean;
  threshold: { detection: number; realism: number };
  policy: QualityPolicy;
  syntheticVoxels: number;
}

export async function scoreSynthetic(
  image: Volume,
  label: Volume,
  options: ScoreOptions,
): Promise<QualityScore> {
  if (image.dims.some((d, a) => d !== label.dims[a]) || !affinesClose(image.affine, label.affine, 1e-3)) {
    throw new FreeTumorError('invalid_geometry', 'image and label are not on the same grid');
  }
  const qc = options.segmentor?.manifest.qualityControl ?? options.discriminator?.manifest.qualityControl;
  const policy = options.policy ?? qc?.policy ?? (options.segmentor ? 'segmentor' : 'discriminator');
  const threshold = {
    detection: options.detectionThreshold ?? qc?.detectionThreshold ?? 0.7,
    realism: options.realismThreshold ?? qc?.realismThreshold ?? 0.5,
  };
  const needs = policyNeeds(policy);
  if ((needs.segmentor && !options.segmentor) || (needs.discriminator && !options.discriminator)) {
    throw new FreeTumorError('invalid_argument', `quality policy ${policy} needs the model(s) it names`);
  }
  if (!options.segmentor && !options.discriminator) {
    throw new FreeTumorError('invalid_argument', 'scoring needs a segmentor or a discriminator');
  }
  const synthetic = syntheticMask(label, options.syntheticLabel);
  let syntheticVoxels = 0;
  for (const v of synthetic) syntheticVoxels += v;
  const maskVolume = makeVolume(label.dims, synthetic, label.affine, 'uint8');

  let detection: number | null = null;
  let realism: number | null = null;
  if (options.segmentor && syntheticVoxels > 0) {
    const { manifest, runner } = options.segmentor;
    const prep = preprocess(image, manifest.preprocessing);
    const probs = await predictProbabilities(prep, manifest, runner, options);
    const n = voxelCount(prep.model.dims);
    const labels = argmaxChannels(probs.data, probs.channels, n);
    const tumorClasses = manifest.labels.map((name, i) => i > 0 && /tumou?r|lesion/i.test(name));
    if (!tumorClasses.includes(true)) {
      const t = classIds(manifest.labels).tumor;
      if (t !== null) tumorClasses[t] = true;
    }
    const w = weightsAt(maskVolume, manifest);
    detection = weightedMean(w, (v) => (tumorClasses[labels[v]] ? 1 : 0));
  }
  if (options.discriminator && syntheticVoxels > 0) {
    const { manifest, runner } = options.discriminator;
    const prep = preprocess(image, manifest.preprocessing);
    const probs = await predictProbabilities(prep, manifest, runner, options);
    const n = voxelCount(prep.model.dims);
    let real = manifest.labels.findIndex((name) => /real/i.test(name));
    if (real < 0) real = 1;
    const w = weightsAt(maskVolume, manifest);
    realism = weightedMean(w, (v) => probs.data[real * n + v]);
  }
  if (syntheticVoxels === 0) {
    detection = options.segmentor ? 0 : null;
    realism = options.discriminator ? 0 : null;
  }
  const accepted = acceptSynthetic(
    { syntheticVoxels, detection, realism },
    { policy, detectionThreshold: threshold.detection, realismThreshold: threshold.realism },
  );
  return { realism, detection, accepted, threshold, policy, syntheticVoxels };
}

function syntheticMask(label: Volume, syntheticLabel?: number): Uint8Array {
  let target = syntheticLabel;
  if (target === undefined) {
    target = 2;
    for (const v of label.data) {
      if (v === 3) {
        target = 3;
        break;
      }
    }
  }
  const out = new Uint8Array(label.data.length);
  for (let v = 0; v < out.length; v++) if (label.data[v] === target) out[v] = 1;
  return out;
}

/** The synthetic mask on a model's grid as fractional weights (same geometry steps as preprocess). */
function weightsAt(mask: Volume<Uint8Array>, manifest: ModelManifest): Float32Array {
  const asFloat = makeVolume(mask.dims, Float32Array.from(mask.data), mask.affine, 'float32');
  const canonical = toCanonical(asFloat).volume;
  return resampleToSpacing(canonical, manifest.preprocessing.spacing, 'linear').data as Float32Array;
}

function weightedMean(w: Float32Array, value: (v: number) => number): number {
  let sum = 0;
  let total = 0;
  for (let v = 0; v < w.length; v++) {
    if (w[v] <= 0) continue;
    sum += w[v] * value(v);
    total += w[v];
  }
  return total > 0 ? sum / total : 0;
}
