/**
 * The run loop shared by segmentation and synthesis training: resume from the run folder's
 * checkpoint, fetch batches (prefetched off-thread), step, log metrics, checkpoint atomically,
 * validate, keep the best checkpoint. A run folder holds config.json, checkpoint.ckpt, best.ckpt,
 * metrics.jsonl, samples/ and (by default) cache/.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { FreeTumorError } from '../../shared/errors.ts';
import type { Batch, BatchSpec } from '../data/batches.ts';
import { createBatchSource } from '../data/prefetch.ts';
import type { CaseEntry } from '../data/store.ts';
import type { UNetConfig } from '../models/unet.ts';
import { type CheckpointData, loadCheckpoint, type ModelState, saveCheckpoint } from './checkpoint.ts';
import type { RunConfig } from './config.ts';
import { MetricsLog } from './metrics.ts';
import type { AdamW } from './optim.ts';
import { createProgress } from './progress.ts';

export interface RunPaths {
  dir: string;
  config: string;
  checkpoint: string;
  best: string;
  metrics: string;
  samples: string;
}

export function runPaths(dir: string): RunPaths {
  return {
    dir,
    config: join(dir, 'config.json'),
    checkpoint: join(dir, 'checkpoint.ckpt'),
    best: join(dir, 'best.ckpt'),
    metrics: join(dir, 'metrics.jsonl'),
    samples: join(dir, 'samples'),
  };
}

export interface TrainedModel {
  model: LayersModel;
  config: UNetConfig;
}

/** What a training mode provides to the loop. */
export interface Trainer {
  kind: RunConfig['kind'];
  spec: BatchSpec;
  models: Record<string, TrainedModel>;
  optimizers: Record<string, AdamW>;
  step(batch: Batch, step: number): Promise<Record<string, number>>;
  /** Validation metrics; `select` is the value the best checkpoint maximises. */
  validate?(step: number): Promise<{ metrics: Record<string, number>; select: number }>;
  dispose(): void;
}

export interface RunOptions {
  dir: string;
  config: RunConfig;
  entries: readonly CaseEntry[];
  trainer: Trainer;
  /** Stop (as if killed) once this many steps are complete, without a final checkpoint; for tests. */
  stopAt?: number;
  /** Polled after each step: true ends the run early with a checkpoint (Ctrl-C). */
  shouldStop?: () => boolean;
  log?: (message: string) => void;
}

export interface RunSummary {
  kind: RunConfig['kind'];
  steps: number;
  resumedFrom: number | null;
  last: Record<string, number>;
  best: number | null;
  seconds: number;
}

export async function modelState(m: TrainedModel): Promise<ModelState> {
  const weights = await Promise.all(
    m.model.getWeights().map(async (w) => ({ shape: [...w.shape], data: (await w.data()) as Float32Array })),
  );
  return {
    config: m.config,
    weights: weights.map((w) => ({ shape: w.shape, data: Float32Array.from(w.data) })),
  };
}

export function restoreModel(m: LayersModel, s: ModelState): void {
  const current = m.getWeights();
  if (
    current.length !== s.weights.length ||
    current.some((w, i) => w.shape.join() !== s.weights[i].shape.join())
  ) {
    throw new FreeTumorError('invalid_argument', 'checkpoint weights do not match the model architecture');
  }
  const tensors = s.weights.map((w) => tf.tensor(w.data, w.shape));
  m.setWeights(tensors);
  tf.dispose(tensors);
}

async function snapshot(
  t: Trainer,
  step: number,
  config: RunConfig,
  extra: Record<string, unknown>,
): Promise<CheckpointData> {
  const models: Record<string, ModelState> = {};
  for (const [k, m] of Object.entries(t.models)) models[k] = await modelState(m);
  const optimizers: CheckpointData['optimizers'] = {};
  for (const [k, o] of Object.entries(t.optimizers)) optimizers[k] = await o.getState();
  return { kind: t.kind, step, config, models, optimizers, extra };
}

/** The config fields a resumed run may change (extending a run, logging, workers). */
function comparableConfig(c: RunConfig): unknown {
  const { steps: _s, checkpointEvery: _c, logEvery: _l, validateEvery: _v, ...rest } = c;
  return { ...rest, data: { ...rest.data, workers: 0, prefetch: 0 } };
}

export async function runTraining(o: RunOptions): Promise<RunSummary> {
  const log = o.log ?? (() => {});
  const paths = runPaths(o.dir);
  await mkdir(o.dir, { recursive: true });
  const metrics = new MetricsLog(paths.metrics);
  const t = o.trainer;
  let start = 0;
  let resumedFrom: number | null = null;
  let best: number | null = null;
  // What an exported model's manifest reports (trainer/export): the cases it was trained on and
  // the validation metrics of the checkpoint (best.ckpt: those of its step; checkpoint.ckpt: the
  // latest validation).
  let validation: Record<string, number> | null = null;
  const cases = {
    labeled: o.entries.filter((e) => e.labeled).length,
    unlabeled: o.entries.filter((e) => !e.labeled).length,
  };
  const ckpt = await loadCheckpoint(paths.checkpoint);
  if (ckpt) {
    if (ckpt.kind !== t.kind)
      throw new FreeTumorError('invalid_argument', `the run folder holds a ${ckpt.kind} run, not ${t.kind}`);
    if (
      JSON.stringify(comparableConfig(ckpt.config as RunConfig)) !==
      JSON.stringify(comparableConfig(o.config))
    ) {
      throw new FreeTumorError(
        'invalid_argument',
        'the run folder holds a run with a different config; use a new --out folder',
      );
    }
    for (const [k, m] of Object.entries(t.models)) {
      if (!ckpt.models[k]) throw new FreeTumorError('invalid_argument', `checkpoint has no ${k} model`);
      restoreModel(m.model, ckpt.models[k]);
    }
    for (const [k, opt] of Object.entries(t.optimizers)) opt.setState(ckpt.optimizers[k]);
    start = ckpt.step;
    resumedFrom = start;
    best = typeof ckpt.extra.best === 'number' ? ckpt.extra.best : null;
    validation = (ckpt.extra.validation as Record<string, number> | undefined) ?? null;
    metrics.truncateAfter(start);
    log(`resuming from step ${start}`);
  } else {
    metrics.truncateAfter(0);
  }
  await writeFile(paths.config, `${JSON.stringify(o.config, null, 2)}\n`);

  const total = o.config.steps;
  const stopAt = Math.min(total, o.stopAt ?? total);
  const source = await createBatchSource({
    entries: o.entries,
    spec: t.spec,
    workers: o.config.data.workers,
    prefetch: o.config.data.prefetch,
    lastStep: stopAt - 1,
  });
  const progress = createProgress(total, start, t.kind);
  const t0 = performance.now();
  let last: Record<string, number> = {};
  let completed = start;
  try {
    for (let s = start; s < stopAt; s++) {
      // Give the event loop a turn each step: a step is synchronous tfjs work, and without this
      // signal handlers (Ctrl-C, a spot instance's SIGTERM) and timers wait for the next file write.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const batch = await source.next(s);
      const stepStart = performance.now();
      last = await t.step(batch, s);
      last.step_seconds = (performance.now() - stepStart) / 1000;
      const done = s + 1;
      if (done % o.config.logEvery === 0 || done === total) metrics.append(done, last);
      progress.update(done, last);
      const validateNow =
        t.validate && o.config.validateEvery > 0 && (done % o.config.validateEvery === 0 || done === total);
      if (validateNow && t.validate) {
        const v = await t.validate(done);
        metrics.append(done, { ...v.metrics, validation: true });
        validation = { ...v.metrics, step: done };
        if (best === null || v.select > best) {
          best = v.select;
          await saveCheckpoint(paths.best, await snapshot(t, done, o.config, { best, cases, validation }));
        }
      }
      const stopping = o.shouldStop?.() === true;
      if (done % o.config.checkpointEvery === 0 || done === total || stopping) {
        await saveCheckpoint(
          paths.checkpoint,
          await snapshot(t, done, o.config, { best, cases, validation }),
        );
      }
      if (stopping) {
        log(`stopped at step ${done}; run the same command again to resume`);
        completed = done;
        break;
      }
      completed = done;
    }
  } finally {
    progress.stop();
    await source.close();
  }
  return {
    kind: t.kind,
    steps: completed,
    resumedFrom,
    last,
    best,
    seconds: (performance.now() - t0) / 1000,
  };
}
