/**
 * Profiles one segmentation training step (the trainer's real step) by kernel.
 * Usage: node bench/profile-step.ts SIDE BASE [DEPTH] [stock]
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../trainer/backend.ts';
import type { Batch } from '../trainer/data/batches.ts';
import { parseRunConfig } from '../trainer/train/config.ts';
import { createSegmentationTrainer } from '../trainer/train/segmentation.ts';

const side = Number(process.argv[2] ?? 64);
const base = Number(process.argv[3] ?? 8);
const depth = Number(process.argv[4] ?? 2);
const stock = process.argv[5] === 'stock';
await selectBackend('cpu', { fastCpuKernels: !stock });
const config = parseRunConfig({
  kind: 'segmentation',
  steps: 1000,
  patchSize: side,
  casesPerStep: 1,
  cropsPerCase: 1,
  data: { datasets: [{ name: 'bench', format: 'msd', path: '-', organ: 'liver' }], workers: 0 },
  model: { baseChannels: base, depth, norm: 'instance' },
  segmentation: { cutmix: false },
});
const trainer = createSegmentationTrainer(config);
const n = side ** 3;
const images = new Float32Array(n);
const labels = new Uint8Array(n);
for (let i = 0; i < n; i++) {
  images[i] = ((i * 2654435761) >>> 0) / 4294967296;
  labels[i] = images[i] > 0.7 ? 2 : images[i] > 0.4 ? 1 : 0;
}
const batch: Batch = {
  step: 0,
  size: 1,
  dims: [side, side, side],
  images,
  labels,
  organIndex: new Int32Array(1),
  caseIds: ['b'],
  plans: [],
};
for (let s = 0; s < 2; s++) await trainer.step(batch, s);
const t0 = performance.now();
const c0 = process.cpuUsage();
await trainer.step(batch, 2);
const wall = performance.now() - t0;
const cu = process.cpuUsage(c0);
const t1 = performance.now();
const info = await tf.profile(async () => {
  await trainer.step(batch, 3);
});
const profWall = performance.now() - t1;
const by = new Map<string, { ms: number; n: number; mb: number }>();
let total = 0;
for (const k of info.kernels) {
  const ms = Number(await k.kernelTimeMs);
  total += ms;
  const key = [
    'Conv3D',
    'Conv3DBackpropFilterV2',
    'Conv3DBackpropInputV2',
    'Add',
    'Multiply',
    'Sum',
    'Relu',
    'Step',
  ].includes(k.name)
    ? `${k.name} ${JSON.stringify(k.inputShapes.map((s) => s?.slice(1)))}`
    : k.name;
  const e = by.get(key) ?? { ms: 0, n: 0, mb: 0 };
  e.ms += ms;
  e.n++;
  e.mb += k.bytesAdded / 1e6;
  by.set(key, e);
}
const byName = new Map<string, number>();
for (const k of info.kernels) byName.set(k.name, (byName.get(k.name) ?? 0) + Number(await k.kernelTimeMs));
console.log(
  `side ${side} base ${base} depth ${depth} ${stock ? 'stock' : 'fast'}: step ${wall.toFixed(0)} ms (cpu ${((cu.user + cu.system) / 1000).toFixed(0)} ms); profiled step ${profWall.toFixed(0)} ms, kernels ${total.toFixed(0)} ms, outside kernels ${(profWall - total).toFixed(0)} ms, ${info.kernels.length} kernel calls`,
);
for (const [k, v] of [...byName].sort((a, b) => b[1] - a[1]).slice(0, 25))
  console.log(`  ${v.toFixed(1).padStart(8)} ms  ${k}`);
console.log('detail:');
for (const [k, v] of [...by].sort((a, b) => b[1].ms - a[1].ms).slice(0, 40))
  console.log(`  ${v.ms.toFixed(1).padStart(8)} ms ${String(v.n).padStart(4)}x  ${k}`);
trainer.dispose();
