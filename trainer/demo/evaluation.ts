/**
 * Evaluation of segmentations against the held-out references with shared/metrics (the numbers the
 * CLI's `evaluate` prints), and the local comparison of the baseline and FreeTumor segmentors: each
 * exported int8 model runs through the same pipeline as the edge (shared/inference) on
 * onnxruntime-node.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type OrganName, parseLabelMap, toMergedScheme } from '../../shared/labels/labelmap.ts';
import { type CaseEvaluation, evaluateCase } from '../../shared/metrics/evaluate.ts';
import { readNifti } from '../../shared/volume/nifti.ts';
import type { Volume } from '../../shared/volume/volume.ts';
import type { DemoCase } from './data.ts';

export interface ModelScores {
  model: string;
  cases: number;
  casesWithTumor: number;
  /** Mean tumor Dice over the cases whose reference has a tumor (the reference's convention). */
  tumorDice: number | null;
  tumorNsd: number | null;
  organDice: number;
  organNsd: number;
  lesionsDetected: number;
  trueLesions: number;
  falsePositiveLesions: number;
  /** Predicted tumor volume on the tumor-free cases (false positives), ml; null without such cases. */
  healthyFalseTumorMl: number | null;
  seconds: number;
}

/** The reference of a case in the model's classes: 0 background, 1 organ, 2 tumor. */
export async function readReference(c: DemoCase, organ: OrganName): Promise<Volume<Uint8Array>> {
  const label = readNifti(new Uint8Array(await readFile(c.label)));
  const merged = toMergedScheme(label.data, parseLabelMap(c.labelMap), organ);
  return { ...label, data: merged, datatype: 'uint8' };
}

export function scoreCase(pred: Volume, truth: Volume<Uint8Array>): CaseEvaluation {
  if (pred.dims.join() !== truth.dims.join()) throw new Error('prediction and reference grids differ');
  return evaluateCase(pred.data, truth.data, truth.dims, truth.affine, {
    organLabel: 1,
    tumorLabel: 2,
    tolerance: 2,
  });
}

export function summarize(
  model: string,
  evals: Array<{ evaluation: CaseEvaluation }>,
  seconds: number,
): ModelScores {
  const withTumor = evals.filter((e) => e.evaluation.hasTumor);
  const healthy = evals.filter((e) => !e.evaluation.hasTumor);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  return {
    model,
    cases: evals.length,
    casesWithTumor: withTumor.length,
    tumorDice: mean(withTumor.map((e) => e.evaluation.tumor.dice)),
    tumorNsd: mean(withTumor.map((e) => e.evaluation.tumor.nsd)),
    organDice: mean(evals.map((e) => e.evaluation.organ.dice)) ?? 0,
    organNsd: mean(evals.map((e) => e.evaluation.organ.nsd)) ?? 0,
    lesionsDetected: evals.reduce((n, e) => n + e.evaluation.lesions.detected, 0),
    trueLesions: evals.reduce((n, e) => n + e.evaluation.lesions.trueLesions, 0),
    falsePositiveLesions: evals.reduce((n, e) => n + e.evaluation.lesions.falsePositives, 0),
    healthyFalseTumorMl: healthy.length
      ? healthy.reduce((n, e) => n + e.evaluation.tumor.predictedMl, 0)
      : null,
    seconds,
  };
}

export interface LocalComparison {
  scores: ModelScores[];
  /** The FreeTumor model's mask of the first case with a tumor (for the overlay picture). */
  example: {
    caseId: string;
    image: Volume;
    truth: Volume<Uint8Array>;
    predictions: Record<string, Volume>;
  } | null;
}

/** Segments every held-out case with each model folder's int8 segmentor and scores it. */
export async function compareSegmentors(
  models: Array<{ name: string; dir: string }>,
  cases: readonly DemoCase[],
  organ: OrganName,
  log: (m: string) => void,
): Promise<LocalComparison> {
  const { openLocalModel } = await import('../runners/local-model.ts');
  const { segmentVolume } = await import('../../shared/inference/pipeline.ts');
  const scores: ModelScores[] = [];
  const exampleCase = cases.find((c) => c.hasTumor) ?? cases[0];
  let example: LocalComparison['example'] = null;
  const images = new Map<string, Volume>();
  const truths = new Map<string, Volume<Uint8Array>>();
  for (const c of cases) {
    images.set(c.id, readNifti(new Uint8Array(await readFile(c.image))));
    truths.set(c.id, await readReference(c, organ));
  }
  for (const m of models) {
    const model = await openLocalModel(join(m.dir), 'segmentor', { precision: 'int8' });
    if (!model) throw new Error(`no segmentor in the ${m.name} model folder`);
    const t0 = performance.now();
    const evals: Array<{ evaluation: CaseEvaluation }> = [];
    try {
      for (const c of cases) {
        const image = images.get(c.id) as Volume;
        const truth = truths.get(c.id) as Volume<Uint8Array>;
        const result = await segmentVolume(image, model.manifest, model.runner, { organ });
        evals.push({ evaluation: scoreCase(result.mask, truth) });
        if (c === exampleCase) {
          example ??= { caseId: c.id, image, truth, predictions: {} };
          example.predictions[m.name] = result.mask;
        }
      }
    } finally {
      await model.runner.release?.();
    }
    const s = summarize(m.name, evals, (performance.now() - t0) / 1000);
    log(
      `${m.name}: organ Dice ${s.organDice.toFixed(3)}, tumor Dice ${s.tumorDice === null ? '-' : s.tumorDice.toFixed(3)}, lesions ${s.lesionsDetected}/${s.trueLesions} (${s.falsePositiveLesions} false positive) on ${s.cases} cases`,
    );
    scores.push(s);
  }
  return { scores, example };
}
