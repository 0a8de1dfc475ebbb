import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { input, type LayersModel, layers, model } from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../backend.ts';
import { phantomCase, writeCases } from '../data/phantom-cases.ts';
import type { CaseEntry } from '../data/store.ts';
import { loadCheckpoint } from './checkpoint.ts';
import { parseRunConfig } from './config.ts';
import { MetricsLog } from './metrics.ts';
import { runPaths, runTraining } from './run.ts';
import { createSynthesisTrainer } from './synthesis.ts';

/** A frozen "segmentor" that calls voxels darker than 0.45 tumor (channel 2). */
function darkSegmentor(): LayersModel {
  const x = input({ shape: [null, null, null, 1] });
  const conv = layers.conv3d({ filters: 3, kernelSize: 1, padding: 'same' });
  const y = layers.activation({ activation: 'softmax' }).apply(conv.apply(x)) as ReturnType<typeof input>;
  const m = model({ inputs: x, outputs: y });
  conv.setWeights([tf.tensor5d([0, 0, -20], [1, 1, 1, 1, 3]), tf.tensor1d([0, 0, 9])]);
  return m;
}

let dir: string;
let entries: CaseEntry[];

beforeAll(async () => {
  await selectBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'ft-syn-'));
  const cases = [
    phantomCase({ seed: 21, size: [24, 24, 20], spacing: 12, tumors: 1 }),
    phantomCase({ seed: 22, size: [24, 24, 20], spacing: 12, labeled: false }),
  ];
  entries = await writeCases(join(dir, 'cases'), cases);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('synthesis training (G + D + frozen segmentor, cpu)', () => {
  it('G learns to make tumors the frozen segmentor detects; D and G update, S stays frozen; PNG samples', async () => {
    const cfg = parseRunConfig({
      kind: 'synthesis',
      seed: 3,
      steps: 8,
      patchSize: 16,
      casesPerStep: 1,
      cropsPerCase: 2,
      checkpointEvery: 8,
      data: {
        datasets: [{ name: 'phantom', format: 'msd', path: '-', organ: 'liver' }],
        workers: 0,
        augment: false,
        spacing: [12, 12, 12],
      },
      model: { baseChannels: 4, depth: 2 },
      optimizer: { lr: 3e-3 },
      synthesis: { sampleEvery: 4, tumorType: 'large' },
    });
    expect(cfg.optimizer.beta1).toBe(0);
    const segmentor = darkSegmentor();
    const before = segmentor.getWeights().map((w) => Array.from(w.dataSync()));
    const run = join(dir, 'syn');
    const trainer = createSynthesisTrainer(cfg, { segmentor, samplesDir: runPaths(run).samples });
    const g0 = Array.from(trainer.models.generator.model.getWeights()[0].dataSync());
    const d0 = Array.from(trainer.models.discriminator.model.getWeights()[0].dataSync());
    const tensorsBefore = tf.memory().numTensors;
    await runTraining({ dir: run, config: cfg, entries, trainer });
    expect(tf.memory().numTensors).toBe(tensorsBefore);

    const rows = new MetricsLog(runPaths(run).metrics).read();
    expect(rows).toHaveLength(8);
    for (const r of rows)
      for (const k of ['g_loss', 'g_adv', 'g_seg', 'd_loss']) expect(Number.isFinite(r[k])).toBe(true);
    const seg = rows.map((r) => r.g_seg as number);
    expect((seg[6] + seg[7]) / 2).toBeLessThan((seg[0] + seg[1]) / 2);

    expect(Array.from(trainer.models.generator.model.getWeights()[0].dataSync())).not.toEqual(g0);
    expect(Array.from(trainer.models.discriminator.model.getWeights()[0].dataSync())).not.toEqual(d0);
    expect(segmentor.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before);

    const ckpt = await loadCheckpoint(runPaths(run).checkpoint);
    expect(Object.keys(ckpt?.models ?? {}).sort()).toEqual(['discriminator', 'generator']);
    expect(ckpt?.models.generator.config.outChannels).toBe(3);
    expect(ckpt?.models.generator.config.head).toBe('tanh');
    const samples = await readdir(runPaths(run).samples);
    expect(samples.sort()).toEqual(['step-0000004.png', 'step-0000008.png']);
    expect(existsSync(join(runPaths(run).samples, samples[0]))).toBe(true);
    trainer.dispose();
  });
});
