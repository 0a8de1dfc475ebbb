import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { releaseBackend, selectBackend } from '../backend.ts';
import type { Batch } from '../data/batches.ts';
import { parseRunConfig } from './config.ts';
import { createSegmentationTrainer } from './segmentation.ts';

/**
 * The webgpu backend (Dawn) against cpu on one segmentation step. Runs where Dawn finds an adapter
 * (a GPU, or Mesa's llvmpipe through OpenGL ES with libegl1/libgles2 installed); skipped elsewhere.
 */
async function webgpuAvailable(): Promise<boolean> {
  try {
    await selectBackend('webgpu');
    return true;
  } catch {
    return false;
  }
}

const available = await webgpuAvailable();

async function oneStep(): Promise<Record<string, number>> {
  const config = parseRunConfig({
    kind: 'segmentation',
    seed: 4,
    steps: 10,
    patchSize: 8,
    casesPerStep: 1,
    cropsPerCase: 1,
    data: { datasets: [{ name: 't', format: 'msd', path: '-', organ: 'liver' }], workers: 0 },
    model: { baseChannels: 2, depth: 2 },
    segmentation: { cutmix: false },
  });
  const trainer = createSegmentationTrainer(config);
  const n = 512;
  const images = Float32Array.from({ length: n }, (_, i) => ((i * 37) % 101) / 100);
  const labels = Uint8Array.from(images, (v) => (v > 0.7 ? 2 : v > 0.4 ? 1 : 0));
  const batch: Batch = {
    step: 0,
    size: 1,
    dims: [8, 8, 8],
    images,
    labels,
    organIndex: new Int32Array(1),
    caseIds: ['t'],
    plans: [],
  };
  await trainer.step(batch, 0);
  const second = await trainer.step(batch, 1);
  trainer.dispose();
  return second;
}

describe.skipIf(!available)('webgpu backend', () => {
  it('a training step matches the cpu backend', async () => {
    await selectBackend('webgpu');
    expect(tf.getBackend()).toBe('webgpu');
    const gpu = await oneStep();
    await selectBackend('cpu');
    const cpu = await oneStep();
    releaseBackend();
    expect(gpu.loss).toBeCloseTo(cpu.loss, 4);
    expect(gpu.dice_loss).toBeCloseTo(cpu.dice_loss, 4);
  });
});
