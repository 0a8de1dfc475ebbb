/**
 * The demo's training: the FreeTumor sequence of trainer/train/sequence.ts, each run through the
 * recipe's trainInFolder with the run config below (the recipe's defaults plus the demo's sizes),
 * for its fixed number of steps. A time guard per run stops it early (checkpoint written) and says
 * so, when the machine is far slower than the plan assumes; the step counts never depend on time.
 */
import { join } from 'node:path';
import type { QualityRule } from '../../shared/inference/quality.ts';
import { mergeConfig, parseRunConfig, type RunConfigInput } from '../train/config.ts';
import { MetricsLog } from '../train/metrics.ts';
import { type QcSegmentorCheck, trainInFolder } from '../train/recipe.ts';
import { runPaths } from '../train/run.ts';
import type { SequenceStep } from '../train/sequence.ts';
import type { DatasetInput, DemoData } from './data.ts';
import { type DemoPlan, type DemoRunName, timeLimitSeconds } from './plan.ts';

export type { DemoRunName } from './plan.ts';

export interface TrainedRun {
  name: DemoRunName;
  dir: string;
  steps: number;
  plannedSteps: number;
  seconds: number;
  secondsPerStep: number;
  /** True when the time guard stopped the run before its planned steps. */
  stoppedEarly: boolean;
  timeLimitSeconds: number;
  /** Last logged training values (loss, ...). */
  last: Record<string, number>;
  /** Best validation score (segmentation runs with validation cases), else null. */
  best: number | null;
  parameters: number;
  cases: number;
  validationCases: number;
  /** The config fields a reader of the report wants (sizes, lr, loss, QC). */
  settings: string;
  qcCheck: QcSegmentorCheck | null;
}

export interface TrainContext {
  plan: DemoPlan;
  data: DemoData;
  runsDir: string;
  cacheDir: string;
  seed: number;
  timeLimitScale: number;
  log: (line: string) => void;
  interrupted: () => boolean;
}

/** The quality-control rule of the FreeTumor run: the reference's (frozen baseline detects > 70%). */
export const DEMO_QC: QualityRule = { policy: 'segmentor', detectionThreshold: 0.7, realismThreshold: 0.5 };

function datasets(data: DemoData, labeledRepeat: number): DatasetInput[] {
  return data.datasets.map((d) => ({ ...d, repeat: labeledRepeat }));
}

/** The run config of a demo run: the demo's sizes on top of the recipe's defaults, plus the sequence's fields. */
export function demoRunConfig(
  name: DemoRunName,
  ctx: Pick<TrainContext, 'plan' | 'data' | 'cacheDir' | 'seed'>,
  extra: Record<string, unknown>,
): RunConfigInput {
  const { plan } = ctx;
  const s = plan.spacing;
  const steps = plan.steps[name];
  const common = {
    seed: ctx.seed,
    steps,
    patchSize: plan.patch,
    casesPerStep: 1,
    checkpointEvery: steps,
    logEvery: 1,
    data: {
      datasets: datasets(ctx.data, plan.labeledRepeat),
      spacing: [s, s, s],
      cacheDir: ctx.cacheDir,
      validationCases: ctx.data.validationCases,
      augment: true,
      workers: 1,
      prefetch: 2,
    },
    model: { baseChannels: plan.model.baseChannels, depth: plan.model.depth, norm: 'instance' },
  };
  // A run that starts from another's weights (the sequence's initFrom) continues at the lower rate.
  const continues = typeof (extra.segmentation as { initFrom?: unknown } | undefined)?.initFrom === 'string';
  const own: Record<string, unknown> =
    name === 'synthesis'
      ? {
          ...common,
          kind: 'synthesis',
          cropsPerCase: plan.crops.synthesis,
          validateEvery: 0,
          optimizer: { lr: plan.lr.synthesis },
          synthesis: {
            advWeight: 0.1,
            tumorType: plan.tumorType,
            sampleEvery: Math.max(1, Math.floor(steps / 4)),
          },
        }
      : {
          ...common,
          kind: 'segmentation',
          cropsPerCase: plan.crops.segmentation,
          validateEvery: ctx.data.selectCheckpoints ? plan.validateEvery : 0,
          optimizer: {
            lr: continues ? plan.lr.finetune : plan.lr.segmentation,
            warmupSteps: plan.warmupSteps,
            schedule: 'linear',
          },
          segmentation: {
            qc: DEMO_QC,
            cutmix: true,
            tumorType: plan.tumorType,
            minInsideOrgan: plan.minInsideOrgan,
          },
        };
  return mergeConfig(own, extra) as RunConfigInput;
}

/** Trains one step of the sequence in `runsDir/<name>`. */
export async function trainDemoRun(step: SequenceStep<DemoRunName>, ctx: TrainContext): Promise<TrainedRun> {
  const name = step.name;
  const dir = join(ctx.runsDir, name);
  const config = parseRunConfig(demoRunConfig(name, ctx, step.extra));
  const limit = timeLimitSeconds(ctx.plan, name, ctx.timeLimitScale);
  const t0 = performance.now();
  let stoppedEarly = false;
  const shouldStop = () => {
    if (ctx.interrupted()) return true;
    if ((performance.now() - t0) / 1000 > limit) {
      stoppedEarly = true;
      return true;
    }
    return false;
  };
  const r = await trainInFolder(config, dir, { log: ctx.log, shouldStop });
  const seconds = (performance.now() - t0) / 1000;
  if (stoppedEarly) {
    ctx.log(
      `warning: ${name} stopped by its time guard (${limit.toFixed(0)} s) after ${r.summary.steps} of ${config.steps} steps; the machine is much slower than the plan assumes (--time-limit-scale raises the guard)`,
    );
  }
  const records = new MetricsLog(runPaths(dir).metrics).read().filter((x) => x.validation !== true);
  const times = records.map((x) => x.step_seconds).filter((v): v is number => typeof v === 'number');
  const p = ctx.plan;
  const c = config;
  const settings =
    name === 'synthesis'
      ? `${p.spacing} mm, ${p.patch}^3 x ${c.cropsPerCase}, U-Net base ${p.model.baseChannels} depth ${p.model.depth}, Adam lr ${c.optimizer.lr} betas (0, 0.999), adversarial weight ${c.synthesis.advWeight}, tumor types ${[c.synthesis.tumorType].flat().join('/')}`
      : `${p.spacing} mm, ${p.patch}^3 x ${c.cropsPerCase}, U-Net base ${p.model.baseChannels} depth ${p.model.depth}, crops tumor/organ/body ${[c.data.crops.tumor, c.data.crops.organ, c.data.crops.body].map((x) => x.toFixed(2)).join('/')}, ${c.segmentation.loss.dice} Dice + CE (tumor weight ${c.segmentation.loss.tumorWeight}), AdamW lr ${c.optimizer.lr} ${c.optimizer.schedule}${c.segmentation.initFrom ? ", from the baseline's weights" : ''}` +
        (name === 'freetumor'
          ? `, QC ${c.segmentation.qc.policy} (detection > ${c.segmentation.qc.detectionThreshold})`
          : '');
  return {
    name,
    dir,
    steps: r.summary.steps,
    plannedSteps: config.steps,
    seconds,
    secondsPerStep: times.length ? times.reduce((a, b) => a + b, 0) / times.length : 0,
    stoppedEarly,
    timeLimitSeconds: limit,
    last: r.summary.last,
    best: r.summary.best,
    parameters: r.parameters,
    cases: r.cases,
    validationCases: r.validationCases,
    settings,
    qcCheck: r.qcCheck,
  };
}
