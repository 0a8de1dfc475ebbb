/**
 * What the demo does and at what size. Two presets share one code path: `full` (the product on a
 * 2-core machine in about 8 minutes) and `quick` (CI: the same stages on smaller data with fewer
 * steps, about a minute on an idle 2-core machine).
 *
 * Why these sizes: tfjs trains on the CPU here (docs/findings/tfjs-training-and-onnx-export.md: the
 * reference net at 96^3 would take minutes per step). A 3 mm grid puts a whole abdomen in
 * 120 x 100 x 80 voxels, so a 24^3 patch (72 mm) holds a large part of the liver and whole lesions;
 * a step of a U-Net with 8-16-32 channels on two such crops took 0.15 s on an idle 2-core machine
 * (1-3 s when it was shared), so each run gets a few hundred steps. The step count is sized from a
 * measured step time to each run's time budget. The models learn the organ and start on tumors: a
 * demonstration of the pipeline, not a clinical model (production training runs on a GPU at 1.5 mm
 * and 96^3).
 */
import type { OrganName } from '../../shared/labels/labelmap.ts';

export interface TrainingBudget {
  /** Wall-clock seconds the stage may spend training (the step count is sized to fit). */
  seconds: number;
  minSteps: number;
  maxSteps: number;
}

export interface DemoPlan {
  name: 'full' | 'quick';
  /** Isotropic working spacing in mm (phantoms are generated at it, training resamples to it). */
  spacing: number;
  patch: number;
  model: { baseChannels: number; depth: number };
  /** Phantom cases: with real tumors (labeled), organs only (unlabeled), held out for evaluation. */
  phantoms: { labeled: number; unlabeled: number; heldOut: number; tumorsPerCase: number };
  /** Crops per segmentation step (CutMix swaps slabs between them) and per synthesis step. */
  segmentationCrops: number;
  synthesisCrops: number;
  budgets: { baseline: TrainingBudget; synthesis: TrainingBudget; freetumor: TrainingBudget };
  /** Steps run before the step time is measured (they stay part of the run). */
  calibrationSteps: number;
  warmupSteps: number;
  /** Fraction of crops centred on an organ or tumor voxel; the rest show the model everything else. */
  positiveFraction: number;
  /** Peak learning rates: higher than the reference's (3e-4, 1e-4) because the runs are a few hundred steps. */
  lr: { segmentation: number; synthesis: number };
  /** Worker start-up limit (wrangler dev bundles the Worker, then workerd loads it). */
  workerStartSeconds: number;
}

export const FULL_PLAN: DemoPlan = {
  name: 'full',
  spacing: 3,
  patch: 24,
  model: { baseChannels: 4, depth: 3 },
  phantoms: { labeled: 6, unlabeled: 6, heldOut: 3, tumorsPerCase: 2 },
  segmentationCrops: 2,
  synthesisCrops: 1,
  budgets: {
    baseline: { seconds: 150, minSteps: 8, maxSteps: 800 },
    synthesis: { seconds: 120, minSteps: 6, maxSteps: 600 },
    freetumor: { seconds: 180, minSteps: 8, maxSteps: 800 },
  },
  calibrationSteps: 3,
  warmupSteps: 4,
  positiveFraction: 0.4,
  lr: { segmentation: 5e-3, synthesis: 5e-4 },
  workerStartSeconds: 120,
};

export const QUICK_PLAN: DemoPlan = {
  name: 'quick',
  spacing: 6,
  patch: 16,
  model: { baseChannels: 4, depth: 2 },
  phantoms: { labeled: 3, unlabeled: 2, heldOut: 2, tumorsPerCase: 2 },
  segmentationCrops: 2,
  synthesisCrops: 1,
  budgets: {
    baseline: { seconds: 12, minSteps: 4, maxSteps: 300 },
    synthesis: { seconds: 12, minSteps: 4, maxSteps: 200 },
    freetumor: { seconds: 15, minSteps: 4, maxSteps: 300 },
  },
  calibrationSteps: 2,
  warmupSteps: 2,
  positiveFraction: 0.4,
  lr: { segmentation: 5e-3, synthesis: 5e-4 },
  workerStartSeconds: 120,
};

export interface DemoOptions {
  /** Output folder (default demo-out): data/, runs/, models/, r2/, report/. */
  out: string;
  quick: boolean;
  /** A user's NIfTI data set (nnU-Net/MSD layout) instead of phantoms; null = phantoms. */
  data: string | null;
  /** Label map of the user's data set (see shared/labels), default `freetumor` (MSD liver: 1 liver, 2 tumor). */
  labelMap: string;
  organ: OrganName;
  /** Start the local Worker and call it (off: everything else still runs). */
  edge: boolean;
  seed: number;
  /** Scales every training budget (e.g. 0.5 on a slow machine). */
  budgetScale: number;
  /** Where the real CT samples are (../shared/data), null when absent. */
  sharedData: string | null;
  log: (line: string) => void;
}

export function planFor(options: Pick<DemoOptions, 'quick' | 'budgetScale'>): DemoPlan {
  const base = options.quick ? QUICK_PLAN : FULL_PLAN;
  const scale = (b: TrainingBudget): TrainingBudget => ({ ...b, seconds: b.seconds * options.budgetScale });
  return {
    ...base,
    budgets: {
      baseline: scale(base.budgets.baseline),
      synthesis: scale(base.budgets.synthesis),
      freetumor: scale(base.budgets.freetumor),
    },
  };
}

/** Total steps that fit what is left of the budget at the measured step time, within the budget's bounds. */
export function stepsForBudget(
  budget: TrainingBudget,
  secondsPerStep: number,
  done: number,
  elapsedSeconds: number,
): number {
  const remaining = Math.max(0, budget.seconds - elapsedSeconds);
  const more = secondsPerStep > 0 ? Math.floor(remaining / secondsPerStep) : budget.maxSteps;
  return Math.min(budget.maxSteps, Math.max(budget.minSteps, done + more));
}
