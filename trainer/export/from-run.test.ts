/**
 * The manifest of an exported run: the case counts and the validation metrics that the run
 * recorded in the exported checkpoint (best.ckpt's own step, not the last one).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUNet, type UNetConfig } from '../models/unet.ts';
import { type CheckpointData, saveCheckpoint } from '../train/checkpoint.ts';
import { runConfigSchema } from '../train/config.ts';
import { exportRun } from './from-run.ts';

const dir = mkdtempSync(join(tmpdir(), 'ft-export-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const unet: UNetConfig = {
  inChannels: 1,
  outChannels: 3,
  baseChannels: 2,
  depth: 2,
  norm: 'instance',
  head: 'softmax',
  seed: 3,
};

async function checkpoint(step: number, extra: Record<string, unknown>): Promise<CheckpointData> {
  const net = buildUNet(unet);
  const weights = net
    .getWeights()
    .map((w) => ({ shape: [...w.shape], data: Float32Array.from(w.dataSync()) }));
  net.dispose();
  const config = runConfigSchema.parse({
    kind: 'segmentation',
    steps: 10,
    patchSize: 16,
    data: { datasets: [{ name: 'p', format: 'msd', path: '/none', organ: 'liver' }], spacing: [5, 5, 5] },
    model: { baseChannels: 2, depth: 2, norm: 'instance' },
  });
  return {
    kind: 'segmentation',
    step,
    config,
    models: { segmentor: { config: unet, weights } },
    optimizers: {},
    extra,
  };
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  const cases = { labeled: 3, unlabeled: 12 };
  await saveCheckpoint(
    join(dir, 'best.ckpt'),
    await checkpoint(4, {
      best: 0.41,
      cases,
      validation: { val_tumor_dice: 0.41, val_organ_dice: 0.9, step: 4 },
    }),
  );
  await saveCheckpoint(
    join(dir, 'checkpoint.ckpt'),
    await checkpoint(10, {
      best: 0.41,
      cases,
      validation: { val_tumor_dice: 0.3, val_organ_dice: 0.91, step: 8 },
    }),
  );
});

describe('exportRun manifests', () => {
  it('carry the training case counts and the exported checkpoint validation metrics', async () => {
    const [best] = await exportRun(dir, join(dir, 'out-best'), { quantize: 'none', version: 'b' });
    expect(best.manifest.training?.cases).toEqual({ labeled: 3, unlabeled: 12 });
    expect(best.manifest.training?.steps).toBe(4);
    expect(best.manifest.metrics).toEqual({
      val_tumor_dice: 0.41,
      val_organ_dice: 0.9,
      validationStep: 4,
      validationSelect: 0.41,
    });
    const [last] = await exportRun(dir, join(dir, 'out-last'), {
      quantize: 'none',
      version: 'l',
      checkpoint: 'last',
    });
    expect(last.manifest.training?.steps).toBe(10);
    expect(last.manifest.metrics).toMatchObject({ val_tumor_dice: 0.3, validationStep: 8 });
  });
});
