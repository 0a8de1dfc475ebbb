/**
 * Evaluation of segmentations against the held-out references with shared/metrics (the numbers the
 * CLI's `evaluate` prints), and the local comparison of the baseline and FreeTumor segmentors: each
 * exported int8 model runs through the same pipeline as the edge (shared/inference) on
 * onnxruntime-node.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type OrganName, parseLabelMap, toMergedScheme } from '../../shared/labels/labelmap.ts';
import { averageCases } from '../../shared/metrics/cases.ts';
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
  /** Mean tumor Dice over every case (a false tumor on a tumor-free case scores 0). */
  tumorDiceAllCases: number | null;
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

/** One true lesion and whether each model found it (the report's per-lesion table). */
export interface LesionRow {
  caseId: string;
  /** Index of the lesion in its case (reference components in scan order). */
  lesion: number;
  volumeMl: number;
  /** Model name -> found (a predicted component overlaps it), and that model's Dice on it. */
  found: Record<string, { detected: boolean; dice: number }>;
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
  const a = averageCases(evals.map((e) => e.evaluation));
  return {
    model,
    cases: a.cases,
    casesWithTumor: a.casesWithTumor,
    tumorDice: a.tumorDiceCasesWithTumor,
    tumorDiceAllCases: a.tumorDiceAllCases,
    tumorNsd: a.tumorNsdCasesWithTumor,
    organDice: a.organDice ?? 0,
    organNsd: a.organNsd ?? 0,
    lesionsDetected: a.lesionsDetected,
    trueLesions: a.trueLesions,
    falsePositiveLesions: a.falsePositiveLesions,
    healthyFalseTumorMl: a.tumorFreeCasesPredictedTumorMl,
    seconds,
  };
}

export interface ComparedCase {
  caseId: string;
  image: Volume;
  truth: Volume<Uint8Array>;
  /** Model name -> its mask on the input grid. */
  predictions: Record<string, Volume>;
}

export interface LocalComparison {
  scores: ModelScores[];
  lesions: LesionRow[];
  /** The held-out cases with a tumor (up to 3) with every model's mask, for the side-by-side pictures. */
  examples: ComparedCase[];
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
  const exampleIds = new Set(
    cases
      .filter((c) => c.hasTumor)
      .slice(0, 3)
      .map((c) => c.id),
  );
  const examples = new Map<string, ComparedCase>();
  const lesions = new Map<string, LesionRow>();
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
        const evaluation = scoreCase(result.mask, truth);
        evals.push({ evaluation });
        evaluation.lesions.lesions.forEach((l, i) => {
          const key = `${c.id}/${i}`;
          let row = lesions.get(key);
          if (!row) {
            row = { caseId: c.id, lesion: i + 1, volumeMl: l.volumeMl, found: {} };
            lesions.set(key, row);
          }
          row.found[m.name] = { detected: l.detected, dice: l.dice };
        });
        if (exampleIds.has(c.id)) {
          let ex = examples.get(c.id);
          if (!ex) {
            ex = { caseId: c.id, image, truth, predictions: {} };
            examples.set(c.id, ex);
          }
          ex.predictions[m.name] = result.mask;
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
  return { scores, lesions: [...lesions.values()], examples: [...examples.values()] };
}

/**
 * The names of the compared segmentors (result.json `comparison[].model`): the baseline, the
 * control (the baseline trained on for FreeTumor's steps on real tumors only) and FreeTumor.
 */
export const COMPARED_MODELS = {
  baseline: 'baseline (real tumors only)',
  control: 'control (baseline + the same steps, real tumors only)',
  freetumor: 'FreeTumor (real + synthetic)',
} as const;

/** The demo's targets for the FreeTumor segmentor on held-out phantoms (issue 12). */
export const DEMO_TARGETS = { organDice: 0.85, tumorDice: 0.5, lesionSensitivity: 0.75 };

const f3 = (x: number | null) => (x === null ? '-' : x.toFixed(3));

function line(s: ModelScores): string {
  return `organ Dice ${f3(s.organDice)}, tumor Dice ${f3(s.tumorDice)}, ${s.lesionsDetected}/${s.trueLesions} lesions found, ${s.falsePositiveLesions} false-positive lesion(s)`;
}

/**
 * One line that leads the report: what the FreeTumor segmentor learned on the held-out cases, how
 * it compares with the real-only baseline it started from and with the real-only control trained
 * for the same steps from the same start (what the synthetic tumors add), and which targets it meets.
 * With the per-lesion rows, a difference in lesions found names the lesions and the finder's Dice
 * on each: a lesion "found" by a few voxels reads as such.
 */
export function verdictLine(scores: readonly ModelScores[], lesions: readonly LesionRow[] = []): string {
  const find = (name: string) => scores.find((s) => s.model === name);
  const base = find(COMPARED_MODELS.baseline);
  const control = find(COMPARED_MODELS.control);
  const ft = find(COMPARED_MODELS.freetumor);
  if (!ft) return base ? `Only the baseline was evaluated: ${line(base)}.` : 'No segmentor was evaluated.';
  const sens = ft.trueLesions > 0 ? ft.lesionsDetected / ft.trueLesions : 0;
  const missed = [
    (ft.organDice ?? 0) < DEMO_TARGETS.organDice ? `organ Dice < ${DEMO_TARGETS.organDice}` : null,
    (ft.tumorDice ?? 0) < DEMO_TARGETS.tumorDice ? `tumor Dice < ${DEMO_TARGETS.tumorDice}` : null,
    sens < DEMO_TARGETS.lesionSensitivity ? `lesions found < ${DEMO_TARGETS.lesionSensitivity * 100}%` : null,
  ].filter((x): x is string => x !== null);
  const versus = (other: ModelScores, what: string, short: string) => {
    const dt = (ft.tumorDice ?? 0) - (other.tumorDice ?? 0);
    const dl = ft.lesionsDetected - other.lesionsDetected;
    const better = dt >= 0 && dl >= 0;
    if (!better) missed.push(`FreeTumor < ${short}`);
    const differing = lesions.flatMap((row) => {
      const mine = row.found[ft.model];
      const theirs = row.found[other.model];
      if (!mine || !theirs || mine.detected === theirs.detected) return [];
      const finder = mine.detected ? 'FreeTumor' : `the ${short}`;
      const dice = (mine.detected ? mine : theirs).dice;
      return [
        `${row.caseId} lesion ${row.lesion}, ${row.volumeMl.toFixed(1)} ml, found by ${finder} only, lesion Dice ${dice.toFixed(2)}`,
      ];
    });
    const which = differing.length ? `: ${differing.join('; ')}` : '';
    return `; ${what}: ${line(other)}; FreeTumor ${better ? 'matches or beats' : 'falls behind'} the ${short} (tumor Dice ${dt >= 0 ? '+' : ''}${dt.toFixed(3)}, lesions ${dl >= 0 ? '+' : ''}${dl}${which})`;
  };
  const parts = [
    base ? versus(base, 'baseline (real tumors only)', 'baseline') : '',
    control
      ? versus(control, 'control (the baseline trained on for the same steps, real tumors only)', 'control')
      : '',
  ].join('');
  const targets = missed.length ? `targets missed: ${missed.join(', ')}` : 'all targets met';
  return `FreeTumor segmentor on ${ft.cases} held-out cases: ${line(ft)}${parts}; ${targets}.`;
}
