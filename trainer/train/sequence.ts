/**
 * The FreeTumor sequence of runs, the one home of its order (used by `job` and `demo`; the CLI's
 * `train` runs one step at a time): a baseline segmentor on real tumors only, the generator +
 * discriminator trained against it (frozen), then the FreeTumor segmentor with online synthesis and
 * the baseline as quality control. Kept free of tfjs so that importing it is cheap.
 */
import type { RunConfig } from './config.ts';

export type SequenceRun = 'baseline' | 'synthesis' | 'freetumor';

export interface SequenceStep {
  name: SequenceRun;
  kind: RunConfig['kind'];
  /** Run-config fields this step sets on top of the caller's base config. */
  extra: Record<string, unknown>;
}

/**
 * The FreeTumor sequence. `train` trains one step (merging `extra` into its base config) and
 * returns the run folder; later steps name the earlier folders.
 */
export async function runFreeTumorSequence(
  train: (step: SequenceStep) => Promise<string>,
): Promise<Record<SequenceRun, string>> {
  const baseline = await train({
    name: 'baseline',
    kind: 'segmentation',
    extra: { segmentation: { mode: 'baseline' } },
  });
  const synthesis = await train({
    name: 'synthesis',
    kind: 'synthesis',
    extra: { synthesis: { segmentorRun: baseline } },
  });
  const freetumor = await train({
    name: 'freetumor',
    kind: 'segmentation',
    extra: { segmentation: { mode: 'freetumor', synthesisRun: synthesis, qcSegmentorRun: baseline } },
  });
  return { baseline, synthesis, freetumor };
}
