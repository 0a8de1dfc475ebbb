/**
 * What the demo does and at what size. Two presets share one code path: `full` (FreeTumor in
 * miniature on the embedded phantoms, minutes of CPU) and `quick` (CI: the same stages on smaller
 * data with fewer steps, about a minute).
 *
 * Every run has a fixed step count, so a seed gives the same models on any machine; a time guard
 * per run only stops a run (with a warning in the log and the report) when the machine is far
 * slower than the step counts were sized for. The sizes come from measurements on the phantoms
 * (docs/training-recipe.md): at 3 mm a whole abdomen is 120 x 100 x 80 voxels and a 32^3
 * patch (96 mm) holds whole lesions with their surroundings; a U-Net of widths 8-16-32 with the
 * class-balanced crops and the batch Dice + tumor-weighted CE of the recipe finds the phantom
 * lesions within the step counts below (production training: a GPU, 1.5 mm, 96^3).
 */
import type { OrganName } from '../../shared/labels/labelmap.ts';
import type { TypeChoice } from '../../shared/synthesis/tumors.ts';

/**
 * The FreeTumor sequence (trainer/train/sequence.ts) plus its real-only control: the baseline
 * continued for the FreeTumor run's steps without synthetic tumors.
 */
export type DemoRunName = 'baseline' | 'synthesis' | 'freetumor' | 'control';

export interface DemoPlan {
  name: 'full' | 'quick';
  /** Isotropic working spacing in mm (phantoms are generated at it, training resamples to it). */
  spacing: number;
  patch: number;
  model: { baseChannels: number; depth: number };
  /**
   * Phantom cases: labeled (real tumors) for training, labeled held back for checkpoint selection,
   * unlabeled (organ masks only), held out for the evaluation (all with tumors but the last).
   */
  phantoms: {
    labeled: number;
    validation: number;
    unlabeled: number;
    heldOut: number;
    tumorsPerCase: number;
  };
  /** Crops per step (CutMix swaps slabs between them). */
  crops: { segmentation: number; synthesis: number };
  /** Fixed step counts. */
  steps: Record<DemoRunName, number>;
  /** Validate (and keep the best checkpoint) every this many steps of a segmentation run. */
  validateEvery: number;
  /** Seconds per step on an idle 2-core machine, measured; the time guard allows a multiple of it. */
  idleStepSeconds: Record<DemoRunName, number>;
  warmupSteps: number;
  /**
   * Peak learning rates: higher than the reference's (3e-4, 1e-4) because the runs are short.
   * `finetune`: runs that start from another run's weights (the FreeTumor run and its control).
   */
  lr: { segmentation: number; synthesis: number; finetune: number };
  /** Synthetic tumor types during the FreeTumor run and the synthesis training. */
  tumorType: TypeChoice;
  /**
   * Least share of a synthetic tumor's shape inside the organ (segmentation.minInsideOrgan): the
   * phantom's real lesions lie wholly in the liver, and tumors cut by its edge taught FreeTumor the
   * gallbladder (docs/training-recipe.md: false-positive lesions 64 -> 36, all lesions found).
   */
  minInsideOrgan: number;
  /** Times each labeled case appears per epoch (the reference repeats its labeled sets x10). */
  labeledRepeat: number;
  /** Synthetic crops per held-out case for the synthesis evaluation. */
  synthesisEvalPerCase: number;
  /** Worker start-up limit (wrangler dev bundles the Worker, then workerd loads it). */
  workerStartSeconds: number;
}

export const FULL_PLAN: DemoPlan = {
  name: 'full',
  spacing: 3,
  patch: 32,
  model: { baseChannels: 4, depth: 3 },
  phantoms: { labeled: 6, validation: 2, unlabeled: 10, heldOut: 7, tumorsPerCase: 2 },
  crops: { segmentation: 2, synthesis: 1 },
  // The baseline's validation Dice still rose steeply at 1200 steps; at 1800 it is a stronger start
  // and competitor. FreeTumor and its control continue it for 450 steps, which keeps the demo
  // within 15 minutes (docs/training-recipe.md).
  steps: { baseline: 1800, synthesis: 200, freetumor: 450, control: 450 },
  validateEvery: 300,
  idleStepSeconds: { baseline: 0.25, synthesis: 0.45, freetumor: 0.3, control: 0.25 },
  warmupSteps: 20,
  lr: { segmentation: 3e-3, synthesis: 5e-4, finetune: 1e-3 },
  // The phantom lesions have radii of 6-20 mm: large synthetic tumors (36-60 mm) are left out.
  tumorType: ['tiny', 'small', 'medium'],
  minInsideOrgan: 0.9,
  labeledRepeat: 3,
  synthesisEvalPerCase: 4,
  workerStartSeconds: 120,
};

export const QUICK_PLAN: DemoPlan = {
  name: 'quick',
  spacing: 6,
  patch: 16,
  model: { baseChannels: 4, depth: 2 },
  phantoms: { labeled: 3, validation: 1, unlabeled: 2, heldOut: 2, tumorsPerCase: 2 },
  crops: { segmentation: 2, synthesis: 1 },
  steps: { baseline: 40, synthesis: 10, freetumor: 20, control: 20 },
  validateEvery: 20,
  idleStepSeconds: { baseline: 0.05, synthesis: 0.15, freetumor: 0.08, control: 0.05 },
  warmupSteps: 2,
  lr: { segmentation: 5e-3, synthesis: 5e-4, finetune: 2e-3 },
  tumorType: ['tiny', 'small', 'medium'],
  minInsideOrgan: 0.9,
  labeledRepeat: 3,
  synthesisEvalPerCase: 2,
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
  /** Scales every run's time guard (e.g. 3 on a slow or busy machine); step counts never change. */
  timeLimitScale: number;
  /** Where the real CT samples are (../shared/data), null when absent. */
  sharedData: string | null;
  log: (line: string) => void;
}

export function planFor(options: Pick<DemoOptions, 'quick'>): DemoPlan {
  return options.quick ? QUICK_PLAN : FULL_PLAN;
}

/**
 * The time guard of a run: stop (with a warning) past this many seconds. Generous: 4x the idle
 * time of its steps plus a minute, times the user's scale.
 */
export function timeLimitSeconds(plan: DemoPlan, run: DemoRunName, scale: number): number {
  return (4 * plan.steps[run] * plan.idleStepSeconds[run] + 60) * scale;
}
