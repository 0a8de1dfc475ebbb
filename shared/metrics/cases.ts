/**
 * Averages of per-case evaluations over a set of cases, under names that say which cases they
 * average over. Two tumor Dice conventions exist and both are kept:
 * - over all cases: a tumor-free case scores 1 when nothing is predicted and 0 for any false
 *   tumor (method §10.8: false positives count);
 * - over the cases with a tumor: the reference's checkpoint metric and the published numbers.
 * Lesion counts are sums over all cases; false-positive lesions on tumor-free cases are included.
 * The trainer's validation, the job's promotion gate and the demo's comparison all use this.
 */
import type { CaseEvaluation } from './evaluate.ts';

export interface CaseAverages {
  cases: number;
  casesWithTumor: number;
  /** Mean tumor Dice over every case (tumor-free cases: 1 if nothing predicted, else 0); null without cases. */
  tumorDiceAllCases: number | null;
  /** Mean tumor Dice over the cases whose reference has a tumor; null when none has. */
  tumorDiceCasesWithTumor: number | null;
  /** Mean tumor NSD over every case, and over the cases with a tumor; null without such cases. */
  tumorNsdAllCases: number | null;
  tumorNsdCasesWithTumor: number | null;
  /** Mean organ (organ + tumor) Dice and NSD over every case; null without cases. */
  organDice: number | null;
  organNsd: number | null;
  trueLesions: number;
  lesionsDetected: number;
  /** lesionsDetected / trueLesions; null without true lesions. */
  lesionSensitivity: number | null;
  /** Predicted lesions that overlap no true lesion, summed over every case. */
  falsePositiveLesions: number;
  /** Predicted tumor volume on the tumor-free cases (ml); null without such cases. */
  tumorFreeCasesPredictedTumorMl: number | null;
}

function mean(xs: readonly number[]): number | null {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

export function averageCases(evals: readonly CaseEvaluation[]): CaseAverages {
  const withTumor = evals.filter((e) => e.hasTumor);
  const tumorFree = evals.filter((e) => !e.hasTumor);
  const trueLesions = evals.reduce((n, e) => n + e.lesions.trueLesions, 0);
  const lesionsDetected = evals.reduce((n, e) => n + e.lesions.detected, 0);
  return {
    cases: evals.length,
    casesWithTumor: withTumor.length,
    tumorDiceAllCases: mean(evals.map((e) => e.tumor.dice)),
    tumorDiceCasesWithTumor: mean(withTumor.map((e) => e.tumor.dice)),
    tumorNsdAllCases: mean(evals.map((e) => e.tumor.nsd)),
    tumorNsdCasesWithTumor: mean(withTumor.map((e) => e.tumor.nsd)),
    organDice: mean(evals.map((e) => e.organ.dice)),
    organNsd: mean(evals.map((e) => e.organ.nsd)),
    trueLesions,
    lesionsDetected,
    lesionSensitivity: trueLesions > 0 ? lesionsDetected / trueLesions : null,
    falsePositiveLesions: evals.reduce((n, e) => n + e.lesions.falsePositives, 0),
    tumorFreeCasesPredictedTumorMl: tumorFree.length
      ? tumorFree.reduce((n, e) => n + e.tumor.predictedMl, 0)
      : null,
  };
}
