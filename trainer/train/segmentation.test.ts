import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { input, type LayersModel, layers, model } from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../backend.ts';
import { phantomCase, writeCases } from '../data/phantom-cases.ts';
import { createBatchSource } from '../data/prefetch.ts';
import type { CaseEntry } from '../data/store.ts';
import { buildUNet, generatorConfig } from '../models/unet.ts';
import { loadCheckpoint } from './checkpoint.ts';
import { parseRunConfig, type RunConfigInput } from './config.ts';
import { MetricsLog } from './metrics.ts';
import { runPaths, runTraining } from './run.ts';
import { createSegmentationTrainer } from './segmentation.ts';

/** Softmax over [0, 0, k (t - x)] on channel `hot`: "tumor" where the voxel is darker than t. */
function darkVoxelModel(hot: number, threshold: number, k = 60): LayersModel {
  const x = input({ shape: [null, null, null, 1] });
  const conv = layers.conv3d({ filters: 3, kernelSize: 1, padding: 'same' });
  const y = layers.activation({ activation: 'softmax' }).apply(conv.apply(x)) as ReturnType<typeof input>;
  const m = model({ inputs: x, outputs: y });
  const w = [0, 0, 0];
  const b = [0, 0, 0];
  w[hot] = -k;
  b[hot] = k * threshold;
  conv.setWeights([tf.tensor5d(w, [1, 1, 1, 1, 3]), tf.tensor1d(b)]);
  return m;
}

let dir: string;
let entries: CaseEntry[];

function config(over: Partial<RunConfigInput> = {}) {
  return parseRunConfig({
    kind: 'segmentation',
    seed: 7,
    steps: 12,
    patchSize: 16,
    casesPerStep: 1,
    cropsPerCase: 2,
    checkpointEvery: 4,
    data: {
      datasets: [{ name: 'phantom', format: 'msd', path: '-', organ: 'liver' }],
      workers: 0,
      spacing: [12, 12, 12],
      crops: { tumor: 1, organ: 1, body: 0 },
    },
    model: { baseChannels: 4, depth: 2, norm: 'instance' },
    optimizer: { lr: 1e-2, warmupSteps: 2 },
    ...over,
  });
}

beforeAll(async () => {
  await selectBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'ft-seg-'));
  const cases = [1, 2, 3].map((seed) => phantomCase({ seed, size: [24, 24, 20], spacing: 12, tumors: 1 }));
  entries = await writeCases(join(dir, 'cases'), cases);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function weightsOf(path: string): Promise<Float32Array[]> {
  const c = await loadCheckpoint(path);
  if (!c) throw new Error('no checkpoint');
  return c.models.segmentor.weights.map((w) => w.data);
}

/** Trains `cfg` into run folder `name`, checks that no tensor leaked, and returns the metrics rows. */
async function trainRows(cfg: ReturnType<typeof config>, name: string) {
  const trainer = createSegmentationTrainer(cfg);
  const run = join(dir, name);
  const tensorsBefore = tf.memory().numTensors;
  await runTraining({ dir: run, config: cfg, entries, trainer });
  // No tensor leaks per step.
  expect(tf.memory().numTensors).toBe(tensorsBefore);
  trainer.dispose();
  return new MetricsLog(runPaths(run).metrics).read();
}

describe('segmentation training (cpu, tiny U-Net on phantoms)', () => {
  it('baseline mode: the DiceCE loss goes down', async () => {
    const cfg = config({ steps: 16, checkpointEvery: 16, segmentation: { mode: 'baseline', cutmix: false } });
    const losses = (await trainRows(cfg, 'loss')).map((r) => r.loss as number);
    expect(losses).toHaveLength(16);
    const first = (losses[0] + losses[1] + losses[2]) / 3;
    const last = (losses[13] + losses[14] + losses[15]) / 3;
    expect(last).toBeLessThan(first * 0.8);
    expect(losses.every(Number.isFinite)).toBe(true);
  });

  it('the blob loss term is trained and logged when weighted, absent when not', async () => {
    const cfg = config({
      steps: 4,
      checkpointEvery: 4,
      segmentation: { mode: 'baseline', loss: { blobWeight: 1 } },
    });
    const rows = await trainRows(cfg, 'blob');
    // Every crop is centred on a tumor or organ voxel of a phantom with a tumor, so most steps hold one.
    const blob = rows.map((r) => r.blob_loss as number);
    expect(blob.every((b) => Number.isFinite(b) && b >= 0 && b <= 1)).toBe(true);
    expect(blob.some((b) => b > 0)).toBe(true);
    // The total is the DiceCE plus the weighted blob term.
    for (const r of rows)
      expect(r.loss as number).toBeCloseTo(
        (r.dice_loss as number) + (r.ce_loss as number) + (r.blob_loss as number),
        4,
      );
    const plain = new MetricsLog(runPaths(join(dir, 'loss')).metrics).read();
    expect(plain.every((r) => r.blob_loss === undefined)).toBe(true);
  });

  it('resume after a kill continues the same trajectory (identical weights and losses)', async () => {
    const cfg = config({ steps: 6, checkpointEvery: 2 });
    const straight = join(dir, 'straight');
    const t1 = createSegmentationTrainer(cfg);
    await runTraining({ dir: straight, config: cfg, entries, trainer: t1 });
    t1.dispose();

    const killed = join(dir, 'killed');
    const t2 = createSegmentationTrainer(cfg);
    // Killed after step 3: the last checkpoint is at step 2, the log already has step 3.
    await runTraining({ dir: killed, config: cfg, entries, trainer: t2, stopAt: 3 });
    t2.dispose();
    expect(new MetricsLog(runPaths(killed).metrics).read()).toHaveLength(3);
    const t3 = createSegmentationTrainer(cfg);
    const summary = await runTraining({ dir: killed, config: cfg, entries, trainer: t3 });
    t3.dispose();
    expect(summary.resumedFrom).toBe(2);

    const a = await weightsOf(runPaths(straight).checkpoint);
    const b = await weightsOf(runPaths(killed).checkpoint);
    expect(b.length).toBe(a.length);
    a.forEach((w, i) => {
      expect(Array.from(b[i])).toEqual(Array.from(w));
    });
    const la = new MetricsLog(runPaths(straight).metrics).read().map((r) => r.loss);
    const lb = new MetricsLog(runPaths(killed).metrics).read().map((r) => r.loss);
    expect(lb).toEqual(la);
  });

  it('refuses to resume a run folder with a different config', async () => {
    const cfg = config({ steps: 2, checkpointEvery: 1 });
    const run = join(dir, 'mismatch');
    const t = createSegmentationTrainer(cfg);
    await runTraining({ dir: run, config: cfg, entries, trainer: t });
    t.dispose();
    const other = config({ steps: 2, seed: 8 });
    const t2 = createSegmentationTrainer(other);
    await expect(runTraining({ dir: run, config: other, entries, trainer: t2 })).rejects.toThrow(
      /different config/,
    );
    t2.dispose();
  });

  it('freetumor mode: synthesizes on eligible crops only and QC decides which synthetic tumors are kept', async () => {
    // Organ-only cases (the "unlabeled" part): every crop with liver is eligible.
    const healthy = [4, 5].map((seed) =>
      phantomCase({ seed, size: [24, 24, 20], spacing: 12, labeled: false }),
    );
    const unlabeled = await writeCases(join(dir, 'healthy'), healthy);
    const freetumor = (qc: object) =>
      config({
        steps: 2,
        checkpointEvery: 2,
        segmentation: { mode: 'freetumor', qcSegmentorRun: '-', synthesisRun: '-', qc, tumorType: 'large' },
      });

    // Policy 'none' accepts every synthetic tumor that landed in the organ (handcrafted difference).
    const accepting = createSegmentationTrainer(freetumor({ policy: 'none' }));
    await runTraining({
      dir: join(dir, 'ft-none'),
      config: freetumor({ policy: 'none' }),
      entries: unlabeled,
      trainer: accepting,
    });
    accepting.dispose();
    const rows = new MetricsLog(runPaths(join(dir, 'ft-none')).metrics).read();
    const synthetic = rows.reduce((n, r) => n + (r.synthetic as number), 0);
    expect(synthetic).toBe(4);
    expect(rows.reduce((n, r) => n + (r.accepted as number), 0)).toBe(synthetic);

    // A fresh generator (tanh near 0: faint tumors) with a frozen segmentor that cannot see them: all rejected.
    const generator = buildUNet(generatorConfig({ baseChannels: 2, depth: 2, seed: 1 }));
    const blind = darkVoxelModel(2, 0.05);
    const cfg = freetumor({ policy: 'both' });
    const rejecting = createSegmentationTrainer(cfg, {
      generator,
      qcSegmentor: blind,
      discriminator: darkVoxelModel(1, 0.05),
    });
    const tensorsBefore = tf.memory().numTensors;
    await runTraining({ dir: join(dir, 'ft-both'), config: cfg, entries: unlabeled, trainer: rejecting });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    rejecting.dispose();
    const rejected = new MetricsLog(runPaths(join(dir, 'ft-both')).metrics).read();
    expect(rejected.reduce((n, r) => n + (r.synthetic as number), 0)).toBe(4);
    expect(rejected.reduce((n, r) => n + (r.accepted as number), 0)).toBe(0);
  });

  it("syntheticContrast scales an accepted synthetic tumor's intensity change", async () => {
    const healthy = [4, 5].map((seed) =>
      phantomCase({ seed, size: [24, 24, 20], spacing: 12, labeled: false }),
    );
    const unlabeled = await writeCases(join(dir, 'contrast'), healthy);
    const trainedImages = async (syntheticContrast: [number, number]) => {
      const cfg = config({
        segmentation: {
          mode: 'freetumor',
          qcSegmentorRun: '-',
          synthesisRun: '-',
          qc: { policy: 'none' },
          tumorType: 'large',
          cutmix: false,
          syntheticContrast,
        },
      });
      const trainer = createSegmentationTrainer(cfg);
      const source = await createBatchSource({
        entries: unlabeled,
        spec: trainer.spec,
        workers: 0,
        prefetch: 1,
        lastStep: 0,
      });
      const batch = await source.next(0);
      await source.close();
      const before = batch.images.slice();
      await trainer.step(batch, 0);
      trainer.dispose();
      return { before, after: batch.images, has: batch.plans[0].has, contrast: batch.plans[0].contrast };
    };
    const full = await trainedImages([1, 1]);
    const half = await trainedImages([0.5, 0.5]);
    expect(Array.from(half.contrast)).toEqual(Array.from(half.has, (h) => (h ? 0.5 : 1)));
    expect(half.before).toEqual(full.before);
    let changed = 0;
    for (let i = 0; i < full.before.length; i++) {
      const d = full.before[i] - full.after[i];
      // Where the full-contrast tumor was not clipped at 0, the half one darkens by exactly half.
      if (d === 0 || full.after[i] === 0) continue;
      changed++;
      expect(half.before[i] - half.after[i]).toBeCloseTo(d / 2, 5);
    }
    expect(changed).toBeGreaterThan(20);
  });

  it('validates by sliding window and keeps the best checkpoint', async () => {
    const cfg = config({ steps: 2, checkpointEvery: 2, validateEvery: 2 });
    const validation = [phantomCase({ seed: 9, size: [24, 24, 20], spacing: 12, tumors: 1 })];
    const trainer = createSegmentationTrainer(cfg, { validation });
    const run = join(dir, 'val');
    const summary = await runTraining({ dir: run, config: cfg, entries, trainer });
    trainer.dispose();
    const v = new MetricsLog(runPaths(run).metrics).read().find((r) => r.validation);
    expect(v?.val_cases).toBe(1);
    expect(v?.val_cases_with_tumor).toBe(1);
    expect(v?.val_true_lesions).toBe(1);
    const tumorDice = v?.val_tumor_dice_cases_with_tumor as number;
    expect(tumorDice).toBeGreaterThanOrEqual(0);
    expect(summary.best).toBeCloseTo(tumorDice + 0.01 * (v?.val_organ_dice as number), 10);
    expect(await loadCheckpoint(runPaths(run).best)).not.toBeNull();
  });
});
