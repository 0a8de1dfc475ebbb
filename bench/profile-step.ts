/**
 * Where one training step goes: the trainer's real segmentation step (trainer/train/segmentation.ts)
 * with every cpu kernel wrapped to record its wall time and its CPU time (process.cpuUsage: all
 * threads, the kernel worker threads included, so it holds up on a loaded machine). What the step
 * spends outside kernels (tfjs's tape and bookkeeping, the loss scalars, the optimizer's JS, batch
 * upload) is the step minus the kernels. Prints one table, largest CPU time first.
 * Usage: node bench/profile-step.ts SIDE BASE_CHANNELS [DEPTH=2] [stock]
 * (64 8 is the 64^3 c16 step of `npm run bench -- train`, 96 16 the 96^3 c32 one).
 */
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../trainer/backend.ts';
import { benchTrainStep } from './train-step.ts';

const side = Number(process.argv[2] ?? 64);
const base = Number(process.argv[3] ?? 8);
const depth = Number(process.argv[4] ?? 2);
const stock = process.argv[5] === 'stock';
await selectBackend('cpu', { fastCpuKernels: !stock });

interface Cost {
  wall: number;
  cpu: number;
  calls: number;
}
const costs = new Map<string, Cost>();
let recording = false;
let depthNow = 0;
const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
for (const config of tf.getKernelsForBackend('cpu')) {
  const inner = config.kernelFunc;
  tf.unregisterKernel(config.kernelName, 'cpu');
  tf.registerKernel({
    ...config,
    kernelFunc: (args) => {
      // Only the outermost kernel is charged (a few kernels call others).
      if (!recording || depthNow > 0) return inner(args);
      depthNow++;
      const c0 = cpuMs();
      const t0 = performance.now();
      try {
        return inner(args);
      } finally {
        depthNow--;
        const shapes = Object.values(args.inputs)
          .map((t) => (t as tf.TensorInfo).shape.slice(1).join('x'))
          .join(' ');
        const key = config.kernelName.startsWith('Conv3D')
          ? `${config.kernelName} ${shapes}`
          : config.kernelName;
        const e = costs.get(key) ?? { wall: 0, cpu: 0, calls: 0 };
        e.wall += performance.now() - t0;
        e.cpu += cpuMs() - c0;
        e.calls++;
        costs.set(key, e);
      }
    },
  });
}

const trainer = benchTrainStep(side, { baseChannels: base, depth });
for (let s = 0; s < 2; s++) await trainer.step();
recording = true;
const c0 = cpuMs();
const t0 = performance.now();
await trainer.step();
const wall = performance.now() - t0;
const cpu = cpuMs() - c0;
recording = false;
trainer.dispose();

const rows = [...costs].sort((a, b) => b[1].cpu - a[1].cpu);
const kernelCpu = rows.reduce((s, [, v]) => s + v.cpu, 0);
const kernelWall = rows.reduce((s, [, v]) => s + v.wall, 0);
const pct = (v: number) => `${((100 * v) / cpu).toFixed(1)}%`.padStart(6);
const line = (name: string, c: Cost) =>
  `${c.cpu.toFixed(0).padStart(8)} ${pct(c.cpu)} ${c.wall.toFixed(0).padStart(8)} ${String(c.calls).padStart(5)}  ${name}`;
console.log(
  `${side}^3 base ${base} depth ${depth}, ${stock ? 'stock' : 'fast'} kernels: step ${wall.toFixed(0)} ms wall, ` +
    `${cpu.toFixed(0)} ms CPU; load average ${loadavg()[0].toFixed(1)}`,
);
console.log(`  cpu-ms   share  wall-ms calls  kernel`);
for (const [name, c] of rows) if (c.cpu >= cpu / 500) console.log(line(name, c));
console.log(
  line('(outside kernels: tape, loss scalars, optimizer JS, upload)', {
    cpu: cpu - kernelCpu,
    wall: wall - kernelWall,
    calls: 0,
  }),
);
process.exit(0);
