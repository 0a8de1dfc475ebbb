/**
 * The demo's three training runs, in-process through the trainer's own code (the same calls as
 * `freetumor train`): the real-only baseline segmentor, the synthesis GAN (generator +
 * discriminator against the frozen baseline), and the FreeTumor segmentor (real + online synthetic
 * tumors kept by quality control).
 *
 * Each run is sized to its time budget: it first runs a few calibration steps as a run of that
 * length, measures the step time, then resumes the same run folder with the step count that fits
 * (the trainer resumes on the identical trajectory; the calibration steps lie inside the lr warmup,
 * which does not depend on the total). A deadline stops a run early, with a checkpoint, if the
 * machine slows down.
 */
import { join } from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { RunConfigInput } from '../train/config.ts';
import type { DatasetInput, DemoData } from './data.ts';
import { type DemoPlan, stepsForBudget, type TrainingBudget } from './plan.ts';

export type DemoRunName = 'baseline' | 'synthesis' | 'freetumor';

export interface TrainedRun {
  name: DemoRunName;
  dir: string;
  steps: number;
  plannedSteps: number;
  seconds: number;
  secondsPerStep: number;
  stoppedEarly: boolean;
  /** Last logged values (loss, ...). */
  last: Record<string, number>;
  parameters: number;
  cases: number;
  /** The config fields a reader of the report wants (sizes, lr, QC). */
  settings: string;
}

export interface TrainContext {
  plan: DemoPlan;
  data: DemoData;
  runsDir: string;
  cacheDir: string;
  seed: number;
  log: (line: string) => void;
  interrupted: () => boolean;
}

function datasets(data: DemoData): DatasetInput[] {
  return data.datasets.map((d) => ({ ...d }));
}

/** The run config of a demo run with `steps` steps (everything else fixed, so a resume matches). */
export function demoRunConfig(
  name: DemoRunName,
  ctx: Pick<TrainContext, 'plan' | 'data' | 'runsDir' | 'cacheDir' | 'seed'>,
  steps: number,
): RunConfigInput {
  const { plan } = ctx;
  const s = plan.spacing;
  const common = {
    seed: ctx.seed,
    steps,
    patchSize: plan.patch,
    casesPerStep: 1,
    checkpointEvery: 1_000_000,
    validateEvery: 0,
    logEvery: 1,
    data: {
      datasets: datasets(ctx.data),
      spacing: [s, s, s] as [number, number, number],
      cacheDir: ctx.cacheDir,
      validationCases: ctx.data.validationCases,

      augment: true,
      workers: 1,
      prefetch: 2,
    },
    model: { baseChannels: plan.model.baseChannels, depth: plan.model.depth, norm: 'instance' as const },
  };
  if (name === 'synthesis') {
    return {
      ...common,
      kind: 'synthesis',
      cropsPerCase: plan.synthesisCrops,
      optimizer: { lr: plan.lr.synthesis },
      synthesis: {
        segmentorRun: join(ctx.runsDir, 'baseline'),
        advWeight: 0.1,
        tumorType: 'random',
        sampleEvery: plan.name === 'quick' ? 2 : 10,
      },
    };
  }
  return {
    ...common,
    kind: 'segmentation',
    cropsPerCase: plan.segmentationCrops,
    optimizer: { lr: plan.lr.segmentation, warmupSteps: plan.warmupSteps },
    segmentation:
      name === 'baseline'
        ? { mode: 'baseline', cutmix: true }
        : {
            mode: 'freetumor',
            synthesisRun: join(ctx.runsDir, 'synthesis'),
            qcSegmentorRun: join(ctx.runsDir, 'baseline'),
            qc: { policy: 'either', detectionThreshold: 0.7, realismThreshold: 0.5 },
            cutmix: true,
            tumorType: 'random',
          },
  };
}

interface Loaded {
  generator: LayersModel | null;
  discriminator: LayersModel | null;
  segmentor: LayersModel | null;
}

/** Trains one run in `runsDir/<name>` within its budget. */
export async function trainRun(name: DemoRunName, ctx: TrainContext): Promise<TrainedRun> {
  const { parseRunConfig } = await import('../train/config.ts');
  const { prepareData, loadCases } = await import('../data/prepare.ts');
  const { runTraining } = await import('../train/run.ts');
  const { loadRunModel } = await import('../train/load.ts');
  const { parameterCount } = await import('../models/unet.ts');
  const { MetricsLog } = await import('../train/metrics.ts');
  const { runPaths } = await import('../train/run.ts');
  const budget: TrainingBudget = ctx.plan.budgets[name];
  const dir = join(ctx.runsDir, name);

  const first = parseRunConfig({ ...demoRunConfig(name, ctx, ctx.plan.calibrationSteps) });
  const data = await prepareData(first, ctx.cacheDir, (m) => ctx.log(m));
  if (data.train.length === 0) throw new Error('no training cases for this run');
  const loaded: Loaded = { generator: null, discriminator: null, segmentor: null };
  if (name === 'synthesis') {
    loaded.segmentor = (await loadRunModel(join(ctx.runsDir, 'baseline'), 'segmentor')).model;
  } else if (name === 'freetumor') {
    loaded.generator = (await loadRunModel(join(ctx.runsDir, 'synthesis'), 'generator')).model;
    loaded.discriminator = (await loadRunModel(join(ctx.runsDir, 'synthesis'), 'discriminator')).model;
    loaded.segmentor = (await loadRunModel(join(ctx.runsDir, 'baseline'), 'segmentor')).model;
  }
  const validation = await loadCases(data.validation);

  const makeTrainer = async (config: ReturnType<typeof parseRunConfig>) => {
    if (name === 'synthesis') {
      const { createSynthesisTrainer } = await import('../train/synthesis.ts');
      return createSynthesisTrainer(config, {
        segmentor: loaded.segmentor as LayersModel,
        samplesDir: runPaths(dir).samples,
      });
    }
    const { createSegmentationTrainer } = await import('../train/segmentation.ts');
    return createSegmentationTrainer(config, {
      generator: loaded.generator,
      discriminator: loaded.discriminator,
      qcSegmentor: loaded.segmentor,
      validation,
    });
  };

  const t0 = performance.now();
  let stoppedEarly = false;
  // Generous: a run is cut only when the machine is far slower than measured.
  const deadline = () => (performance.now() - t0) / 1000 > budget.seconds * 1.25 + 15;
  const shouldStop = () => {
    if (ctx.interrupted()) return true;
    if (deadline()) {
      stoppedEarly = true;
      return true;
    }
    return false;
  };

  let parameters = 0;
  const calib = await makeTrainer(first);
  try {
    parameters = Object.values(calib.models).reduce((n, m) => n + parameterCount(m.model), 0);
    await runTraining({ dir, config: first, entries: data.train, trainer: calib, shouldStop });
  } finally {
    calib.dispose();
  }
  const elapsed = () => (performance.now() - t0) / 1000;
  let secondsPerStep = measuredStepSeconds(
    new MetricsLog(runPaths(dir).metrics).read(),
    elapsed(),
    ctx.plan.calibrationSteps,
  );
  let done = ctx.plan.calibrationSteps;
  let planned = stepsForBudget(budget, secondsPerStep, done, elapsed());
  ctx.log(
    `${name}: ${secondsPerStep.toFixed(2)} s/step measured over ${done} calibration steps -> ${planned} steps to fit ${budget.seconds.toFixed(0)} s (bounds ${budget.minSteps}-${budget.maxSteps})`,
  );
  let summary = { steps: done, last: {} as Record<string, number> };
  // When the machine gets faster during the run (other work ends), the run is extended once or
  // twice to use its budget; the cosine schedule is stretched to the new length (a warm restart).
  for (let phase = 0; phase < 3 && planned > done && !ctx.interrupted() && !stoppedEarly; phase++) {
    const phaseStart = elapsed();
    const full = parseRunConfig({ ...demoRunConfig(name, ctx, planned) });
    const trainer = await makeTrainer(full);
    try {
      summary = await runTraining({ dir, config: full, entries: data.train, trainer, shouldStop });
    } finally {
      trainer.dispose();
    }
    const stepsRun = summary.steps - done;
    done = summary.steps;
    if (stepsRun > 0) secondsPerStep = (elapsed() - phaseStart) / stepsRun;
    const next = stepsForBudget(budget, secondsPerStep, done, elapsed());
    if (next < done + Math.max(5, Math.round(0.2 * done))) break;
    ctx.log(
      `${name}: the steps ran at ${secondsPerStep.toFixed(2)} s/step; extending to ${next} steps within the budget`,
    );
    planned = next;
  }
  for (const m of Object.values(loaded)) m?.dispose();
  const records = new MetricsLog(runPaths(dir).metrics).read();
  const last = records.length ? numericValues(records[records.length - 1]) : summary.last;
  if (stoppedEarly)
    ctx.log(`${name}: stopped at the time limit after ${summary.steps} steps (checkpoint written)`);
  const p = ctx.plan;
  return {
    name,
    dir,
    steps: records.length ? records[records.length - 1].step : summary.steps,
    plannedSteps: planned,
    seconds: (performance.now() - t0) / 1000,
    secondsPerStep,
    stoppedEarly,
    last,
    parameters,
    cases: data.train.length,
    settings: `${p.spacing} mm, ${p.patch}^3 patches x ${name === 'synthesis' ? p.synthesisCrops : p.segmentationCrops}, U-Net base ${p.model.baseChannels} depth ${p.model.depth}, lr ${name === 'synthesis' ? p.lr.synthesis : p.lr.segmentation}${name === 'freetumor' ? ', QC either (frozen baseline detection > 0.7 or discriminator realism > 0.5)' : ''}`,
  };
}

/**
 * Seconds per step from the calibration: the wall time after the first step (which pays for
 * kernel set-up and the first batches) divided by the remaining steps; at least the mean of the
 * trainer's own step timings.
 */
export function measuredStepSeconds(
  records: ReadonlyArray<Record<string, unknown>>,
  wallSeconds: number,
  steps: number,
): number {
  const times = records
    .map((r) => r.step_seconds)
    .filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (times.length === 0) return wallSeconds / Math.max(1, steps);
  if (times.length === 1) return times[0];
  const later = times.slice(1);
  const mean = later.reduce((a, b) => a + b, 0) / later.length;
  const wall = (wallSeconds - times[0]) / later.length;
  return Math.max(mean, Math.min(wall, mean * 2));
}

function numericValues(r: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(r)) if (typeof v === 'number') out[k] = v;
  return out;
}
