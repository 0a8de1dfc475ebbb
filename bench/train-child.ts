/**
 * One `train` benchmark configuration in its own process, so that its peak RSS is its own: the
 * trainer's real segmentation step (trainer/train/segmentation.ts: U-Net with instance norm, DiceCE,
 * AdamW) on one crop, with the fast or the stock cpu kernels. Prints one JSON line: median wall and
 * CPU time per step (ms) and the process's peak RSS (MB).
 * Usage: node bench/train-child.ts '{"side":64,"baseChannels":8,"depth":2,"kernels":"fast","reps":3,"warmup":2}'
 */

import { selectBackend } from '../trainer/backend.ts';
import type { Batch } from '../trainer/data/batches.ts';
import { parseRunConfig } from '../trainer/train/config.ts';
import { createSegmentationTrainer } from '../trainer/train/segmentation.ts';

export interface TrainJob {
  side: number;
  baseChannels: number;
  depth: number;
  kernels: 'fast' | 'stock';
  reps: number;
  warmup: number;
}

const job = JSON.parse(process.argv[2]) as TrainJob;
await selectBackend('cpu', { fastCpuKernels: job.kernels === 'fast' });
const config = parseRunConfig({
  kind: 'segmentation',
  steps: 1000,
  patchSize: job.side,
  casesPerStep: 1,
  cropsPerCase: 1,
  data: { datasets: [{ name: 'bench', format: 'msd', path: '-', organ: 'liver' }], workers: 0 },
  model: { baseChannels: job.baseChannels, depth: job.depth, norm: 'instance' },
  segmentation: { cutmix: false },
});
const trainer = createSegmentationTrainer(config);
const n = job.side ** 3;
const images = new Float32Array(n);
const labels = new Uint8Array(n);
for (let i = 0; i < n; i++) {
  images[i] = ((i * 2654435761) >>> 0) / 4294967296;
  labels[i] = images[i] > 0.7 ? 2 : images[i] > 0.4 ? 1 : 0;
}
const batch: Batch = {
  step: 0,
  size: 1,
  dims: [job.side, job.side, job.side],
  images,
  labels,
  organIndex: new Int32Array(1),
  caseIds: ['bench'],
  plans: [],
};
let step = 0;
for (let i = 0; i < job.warmup; i++) await trainer.step(batch, step++);
const wall: number[] = [];
const cpu: number[] = [];
for (let i = 0; i < job.reps; i++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await trainer.step(batch, step++);
  wall.push(performance.now() - t0);
  const c = process.cpuUsage(c0);
  cpu.push((c.user + c.system) / 1000);
}
trainer.dispose();
const median = (v: number[]) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
process.stdout.write(
  `${JSON.stringify({ medianMs: median(wall), cpuMs: median(cpu), times: wall, maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`,
);
process.exit(0);
