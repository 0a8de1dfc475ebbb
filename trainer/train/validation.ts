/**
 * Validation of a segmentor during training, the way it will be deployed: sliding-window
 * prediction at the training grid, argmax, then the post-processing of the inference pipeline
 * (shared/inference: tumor components that touch no organ are dropped), scored with
 * shared/metrics and averaged with its explicit conventions. The best checkpoint is chosen on the
 * tumor Dice over the cases that have a tumor (the reference's rule), so an empty prediction on a
 * tumor-free case cannot raise it.
 */
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { cleanTumors, dropOrganSpecks } from '../../shared/inference/pipeline.ts';
import { argmaxChannels, slidingWindow } from '../../shared/inference/sliding-window.ts';
import { averageCases, type CaseAverages } from '../../shared/metrics/cases.ts';
import { type CaseEvaluation, evaluateCase } from '../../shared/metrics/evaluate.ts';
import { type Dims3, identityAffine, voxelCount } from '../../shared/volume/volume.ts';
import type { TrainingCase } from '../data/case.ts';
import { createTfjsRunner } from '../runners/tfjs.ts';

const ORGAN = 1;
const TUMOR = 2;

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
  return argmaxChannels(r.data, r.channels, voxelCount(r.dims));
}

export interface ValidationOptions {
  patchSize: Dims3;
  /** The model's size multiple (2^(depth-1)). */
  divisor: number;
  /** Millimetres per voxel of the cases (the training grid). */
  spacing: Dims3;
}

export interface ValidationResult {
  averages: CaseAverages;
  cases: Array<{ id: string; evaluation: CaseEvaluation }>;
}

/** Predicts, post-processes as deployed and scores every case (3-class segmentor: 0 bg, 1 organ, 2 tumor). */
export async function evaluateSegmentor(
  model: LayersModel,
  cases: readonly TrainingCase[],
  o: ValidationOptions,
): Promise<ValidationResult> {
  const runner = createTfjsRunner(model);
  const affine = identityAffine(o.spacing);
  const out: ValidationResult['cases'] = [];
  for (const c of cases) {
    const pred = await predictCase(runner, c.image, c.dims, o.patchSize, o.divisor);
    dropOrganSpecks(pred, c.dims, ORGAN);
    cleanTumors(pred, c.dims, affine, { organ: ORGAN, tumor: TUMOR, organConstraint: true, minLesionMl: 0 });
    out.push({
      id: c.id,
      evaluation: evaluateCase(pred, c.label, c.dims, affine, { organLabel: ORGAN, tumorLabel: TUMOR }),
    });
  }
  return { averages: averageCases(out.map((c) => c.evaluation)), cases: out };
}

/** The metrics.jsonl fields of a validation. */
export function validationRecord(a: CaseAverages): Record<string, number> {
  const num = (x: number | null) => (x === null ? Number.NaN : x);
  return {
    val_cases: a.cases,
    val_cases_with_tumor: a.casesWithTumor,
    val_tumor_dice_cases_with_tumor: num(a.tumorDiceCasesWithTumor),
    val_tumor_dice_all_cases: num(a.tumorDiceAllCases),
    val_organ_dice: num(a.organDice),
    val_lesions_detected: a.lesionsDetected,
    val_true_lesions: a.trueLesions,
    val_false_positive_lesions: a.falsePositiveLesions,
  };
}

/**
 * The value the best checkpoint maximises: tumor Dice over cases with a tumor, plus a small share
 * of the organ Dice so that, before any tumor is found, a run still keeps its best organ model.
 */
export function selectionValue(a: CaseAverages): number {
  return (a.tumorDiceCasesWithTumor ?? 0) + 0.01 * (a.organDice ?? 0);
}
