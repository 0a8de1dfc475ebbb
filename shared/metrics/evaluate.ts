/**
 * One case's evaluation (method §10.8): tumor and organ Dice (tumor-free cases count), NSD at a
 * tolerance, lesion detection and volumes. The CLI's `evaluate` and the trainer's validation call it.
 */
import type { Affine, Dims3 } from '../volume/volume.ts';
import { spacingOf } from '../volume/volume.ts';
import { binaryMask, countNonZero, dice, voxelMl } from './dice.ts';
import { type LesionDetection, lesionDetection } from './lesions.ts';
import { normalizedSurfaceDistance } from './nsd.ts';

export interface CaseEvaluationOptions {
  /** Label of the organ in both masks (the organ region is organ + tumor). Default 1. */
  organLabel?: number;
  /** Label of the tumor in both masks. Default 2. */
  tumorLabel?: number;
  /** NSD tolerance in mm. Default 2. */
  tolerance?: number;
  minLesionMl?: number;
}

export interface RegionScores {
  dice: number;
  nsd: number;
  predictedMl: number;
  trueMl: number;
}

export interface CaseEvaluation {
  tumor: RegionScores;
  organ: RegionScores;
  /** True when the reference has tumor voxels (the reference's Dice average uses only these cases). */
  hasTumor: boolean;
  lesions: LesionDetection;
  tolerance: number;
}

export function evaluateCase(
  pred: ArrayLike<number>,
  truth: ArrayLike<number>,
  dims: Dims3,
  affine: Affine,
  options: CaseEvaluationOptions = {},
): CaseEvaluation {
  const organ = options.organLabel ?? 1;
  const tumor = options.tumorLabel ?? 2;
  const tolerance = options.tolerance ?? 2;
  const spacing = spacingOf(affine);
  const ml = voxelMl(affine);
  const region = (p: Uint8Array, t: Uint8Array): RegionScores => ({
    dice: dice(p, t),
    nsd: normalizedSurfaceDistance(p, t, dims, spacing, tolerance),
    predictedMl: countNonZero(p) * ml,
    trueMl: countNonZero(t) * ml,
  });
  const pt = binaryMask(pred, tumor);
  const tt = binaryMask(truth, tumor);
  return {
    tumor: region(pt, tt),
    organ: region(binaryMask(pred, [organ, tumor]), binaryMask(truth, [organ, tumor])),
    hasTumor: countNonZero(tt) > 0,
    lesions: lesionDetection(pt, tt, dims, affine, { minVolumeMl: options.minLesionMl ?? 0 }),
    tolerance,
  };
}
