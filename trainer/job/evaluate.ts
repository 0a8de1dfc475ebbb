/**
 * Validation of an exported segmentor on the held-out cases, through the same pipeline the edge
 * serves (shared/inference: preprocessing from the manifest, sliding window, back to the input
 * grid) and the shared metrics, so that the number that gates promotion is the number users get.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { classIds, segmentVolume } from '../../shared/inference/pipeline.ts';
import { type OrganName, parseLabelMap, toMergedScheme } from '../../shared/labels/labelmap.ts';
import { averageCases } from '../../shared/metrics/cases.ts';
import { type CaseEvaluation, evaluateCase } from '../../shared/metrics/evaluate.ts';
import { loadModel } from '../../shared/model/load.ts';
import type { ModelManifest } from '../../shared/model/manifest.ts';
import { readNifti } from '../../shared/volume/nifti.ts';
import { createNodeRunner } from '../runners/onnxruntime-node.ts';
import type { PromotionMetric } from './data-manifest.ts';

export interface LocalCase {
  id: string;
  imagePath: string;
  labelPath: string;
}

export type ValidationMetrics = Record<PromotionMetric, number> & { validationCases: number };

/**
 * Scores the model in `roleDir` (manifest.json + ONNX files) on the cases. Tumor Dice averages over
 * every case, tumor-free ones included (method §10.8); `tumorDiceWithTumor` is the reference's
 * average over cases with tumor only.
 */
export async function evaluateModel(
  roleDir: string,
  cases: readonly LocalCase[],
  organ: OrganName,
  labelMapText: string,
): Promise<ValidationMetrics> {
  const manifestJson: unknown = JSON.parse(await readFile(join(roleDir, 'manifest.json'), 'utf8'));
  // fp32 for validation: the gate should judge the weights, int8 error is checked by the exporter.
  const model = await loadModel(
    manifestJson,
    async (path) => new Uint8Array(await readFile(join(roleDir, path))),
    'fp32',
  );
  const runner = await createNodeRunner(model.bytes);
  const map = parseLabelMap(labelMapText);
  const ids = classIds(model.manifest.labels);
  const evaluations: CaseEvaluation[] = [];
  for (const c of cases) {
    const image = readNifti(new Uint8Array(await readFile(c.imagePath)));
    const label = readNifti(new Uint8Array(await readFile(c.labelPath)));
    const truth = toMergedScheme(label.data, map, organ);
    const result = await segmentVolume(image, model.manifest as ModelManifest, runner, { organ });
    // Scored in the merged scheme (1 organ, 2 tumor) whatever class ids the model's labels use.
    evaluations.push(evaluateCase(toMerged(result.mask.data, ids), truth, image.dims, image.affine));
  }
  // The shared case averages (shared/metrics/cases.ts), under the gate's metric names.
  const a = averageCases(evaluations);
  return {
    tumorDice: a.tumorDiceAllCases ?? 0,
    tumorDiceWithTumor: a.tumorDiceCasesWithTumor ?? 0,
    organDice: a.organDice ?? 0,
    tumorNsd: a.tumorNsdAllCases ?? 0,
    lesionSensitivity: a.lesionSensitivity ?? 0,
    validationCases: cases.length,
  };
}

/** Prediction class ids -> merged ids (1 organ, 2 tumor, 0 else). */
function toMerged(pred: Uint8Array, ids: { organ: number | null; tumor: number | null }): Uint8Array {
  const out = new Uint8Array(pred.length);
  for (let i = 0; i < pred.length; i++) {
    if (pred[i] === ids.tumor) out[i] = 2;
    else if (pred[i] === ids.organ) out[i] = 1;
  }
  return out;
}
