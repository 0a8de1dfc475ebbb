/**
 * One `train` benchmark configuration in its own process, so that its peak RSS is its own: the
 * trainer's real segmentation step (trainer/train/segmentation.ts: U-Net with instance norm, DiceCE,
 * AdamW) on one crop, with the fast or the stock cpu kernels. Prints one JSON line: median wall and
 * CPU time per step (ms) and the process's peak RSS (MB).
 * Usage: node bench/train-child.ts '{"side":64,"baseChannels":8,"depth":2,"kernels":"fast","reps":3,"warmup":2}'
 */

import { selectBackend } from '../trainer/backend.ts';
import { benchTrainStep } from './train-step.ts';

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
const { step: trainStep, dispose } = benchTrainStep(job.side, {
  baseChannels: job.baseChannels,
  depth: job.depth,
});
for (let i = 0; i < job.warmup; i++) await trainStep();
const wall: number[] = [];
const cpu: number[] = [];
for (let i = 0; i < job.reps; i++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await trainStep();
  wall.push(performance.now() - t0);
  const c = process.cpuUsage(c0);
  cpu.push((c.user + c.system) / 1000);
}
dispose();
const median = (v: number[]) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
process.stdout.write(
  `${JSON.stringify({ medianMs: median(wall), cpuMs: median(cpu), times: wall, maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`,
);
process.exit(0);
