/**
 * The FreeTumor sequence of runs, the one home of its order (used by `job` and `demo`; the CLI's
 * `train` runs one step at a time): a baseline segmentor on real tumors only, the generator +
 * discriminator trained against it (frozen), then the FreeTumor segmentor with online synthesis and
 * the baseline as quality control. The FreeTumor segmentor starts from the baseline's weights
 * (segmentation.initFrom; the reference starts from a self-supervised init): on the phantoms, trained
 * from scratch at equal steps it fell behind the baseline (docs/training-recipe.md). Kept free of
 * tfjs so that importing it is cheap.
 */
import type { RunConfig } from './config.ts';

export type SequenceRun = 'baseline' | 'synthesis' | 'freetumor';

export interface SequenceStep<N extends string = SequenceRun> {
  name: N;
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
    extra: {
      segmentation: {
        mode: 'freetumor',
        synthesisRun: synthesis,
        qcSegmentorRun: baseline,
        initFrom: baseline,
      },
    },
  });
  return { baseline, synthesis, freetumor };
}

/**
 * The real-only control of the FreeTumor run: the same start (the baseline's weights) and the same
 * training, without synthetic tumors. What FreeTumor gains over it is what the synthetic tumors
 * add, apart from the extra steps (the demo trains it beside the sequence).
 */
export function realOnlyControl(baseline: string): SequenceStep<'control'> {
  return {
    name: 'control',
    kind: 'segmentation',
    extra: { segmentation: { mode: 'baseline', initFrom: baseline } },
  };
}
