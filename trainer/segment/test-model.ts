/**
 * A tiny untrained segmentor (2-level U-Net, 2 base channels) exported through the real CLI, for the
 * segment command's tests: what matters there is the plumbing around the pipeline, not the masks'
 * quality. Export goes through `freetumor export` so the manifest and files are the real ones.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { buildUNet, type UNetConfig } from '../models/unet.ts';
import { saveCheckpoint } from '../train/checkpoint.ts';
import { runConfigSchema } from '../train/config.ts';

export const BIN = join(import.meta.dirname, '../../bin/freetumor.js');

export async function exportTinySegmentor(dir: string, spacing: number, seed = 3): Promise<string> {
  await tf.setBackend('cpu');
  const config = runConfigSchema.parse({
    kind: 'segmentation',
    steps: 1,
    patchSize: 16,
    data: {
      datasets: [{ name: 'phantom', format: 'msd', path: '/none', organ: 'liver' }],
      spacing: [spacing, spacing, spacing],
    },
    model: { baseChannels: 2, depth: 2, norm: 'instance' },
  });
  const unet: UNetConfig = {
    inChannels: 1,
    outChannels: 3,
    baseChannels: 2,
    depth: 2,
    norm: 'instance',
    head: 'softmax',
    seed,
  };
  const net = buildUNet(unet);
  const weights = net
    .getWeights()
    .map((w) => ({ shape: [...w.shape], data: Float32Array.from(w.dataSync()) }));
  net.dispose();
  const run = join(dir, 'run');
  await saveCheckpoint(join(run, 'checkpoint.ckpt'), {
    kind: 'segmentation',
    step: 1,
    config,
    models: { segmentor: { config: unet, weights } },
    optimizers: {},
    extra: {},
  });
  const models = join(dir, 'models');
  const r = spawnSync(
    process.execPath,
    [BIN, 'export', '--run', run, '--out', models, '--version', 'v1', '--overlap', '0.25'],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(`export failed: ${r.stderr}`);
  return models;
}
