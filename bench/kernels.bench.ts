/**
 * `npm run bench -- kernels`: the fast cpu kernels of trainer/kernels against tfjs's stock cpu
 * kernels, measured in the same run: each 3D kernel on representative shapes, a training step of
 * the tiny 3D U-Net of docs/findings/tfjs-training-and-onnx-export.md (32^3 c8 and 64^3 c16),
 * and the reference UNet3D forward pass at 96^3 (fast kernels only; stock would take many minutes).
 * With --quick the 64^3 c16 stock step (about 150 s) is skipped. Training and the reference
 * forward also report CPU time (all threads), since wall time on a shared machine includes waiting.
 */
import '@tensorflow/tfjs-backend-cpu';
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import {
  type LayersModel,
  layers,
  model as makeModel,
  type SymbolicTensor,
  input as symbolicInput,
} from '@tensorflow/tfjs-layers';
import { registerFastCpuKernels, restoreStockCpuKernels } from '../trainer/kernels/index.ts';
import { registerTrainingGradients } from '../trainer/models/gradients.ts';
import { type BenchContext, type BenchResult, result, timeMedian } from './harness.ts';

const GROUP = 'kernels';
const STOCK = 'tfjs stock cpu kernels';

type Shape5 = [number, number, number, number, number];

/** The spike's tiny 3D U-Net: two convs, pool, conv, transposed conv, concat, conv, 1x1 head. */
export function tinyUNet(c: number): LayersModel {
  const x = symbolicInput({ shape: [null, null, null, 1] });
  const conv = (ch: number, k = 3) =>
    layers.conv3d({ filters: ch, kernelSize: k, padding: 'same', activation: k === 1 ? 'linear' : 'relu' });
  const skip = conv(c).apply(conv(c).apply(x)) as SymbolicTensor;
  const down = conv(2 * c).apply(layers.maxPooling3d({ poolSize: 2 }).apply(skip)) as SymbolicTensor;
  const up = layers
    .conv3dTranspose({ filters: c, kernelSize: 2, strides: 2, padding: 'same', activation: 'relu' })
    .apply(down) as SymbolicTensor;
  const merged = layers.concatenate().apply([up, skip]) as SymbolicTensor;
  const logits = conv(2, 1).apply(conv(c).apply(merged)) as SymbolicTensor;
  return makeModel({ inputs: x, outputs: layers.softmax({ axis: -1 }).apply(logits) as SymbolicTensor });
}

/** Returns a function that runs one Adam step of voxel cross-entropy on a fixed random batch. */
export function trainStep(net: LayersModel, size: number): () => void {
  const x = tf.randomUniform([1, size, size, size, 1], 0, 1, 'float32', 7);
  const labels = tf.oneHot(tf.reshape(tf.cast(tf.greater(x, 0.5), 'int32'), [1, size, size, size]), 2);
  const optimizer = tf.train.adam(1e-3);
  return () => {
    const loss = optimizer.minimize(() => {
      const p = net.apply(x) as tf.Tensor;
      return tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.log(tf.add(p, 1e-7))), -1)));
    }, true);
    loss?.dataSync();
    loss?.dispose();
  };
}

function kernelCall(name: string, shape: Shape5, cout: number, k: number, stride: number): () => void {
  const [n, d, h, w, cin] = shape;
  const x = tf.randomNormal(shape, 0, 1, 'float32', 1) as tf.Tensor5D;
  const filter = tf.randomNormal([k, k, k, cin, cout], 0, 0.1, 'float32', 2) as tf.Tensor5D;
  const out: Shape5 = [n, Math.ceil(d / stride), Math.ceil(h / stride), Math.ceil(w / stride), cout];
  const dy = tf.randomNormal(out, 0, 1, 'float32', 3) as tf.Tensor5D;
  const run = (): tf.Tensor => {
    if (name === 'Conv3D') return tf.conv3d(x, filter, stride, 'same');
    if (name === 'Conv3DBackpropFilterV2') {
      return tf.engine().runKernel(name, { x, dy }, {
        strides: stride,
        pad: 'same',
        filterShape: filter.shape,
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
    }
    if (name === 'Conv3DBackpropInputV2') {
      return tf.engine().runKernel(name, { dy, filter }, {
        strides: stride,
        pad: 'same',
        inputShape: shape,
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
    }
    if (name === 'MaxPool3D') return tf.maxPool3d(x, 2, 2, 'valid');
    return tf.grad((a: tf.Tensor) => tf.sum(tf.maxPool3d(a as tf.Tensor5D, 2, 2, 'valid')))(x);
  };
  return () => {
    const t = run();
    t.dataSync();
    t.dispose();
  };
}

const KERNEL_CASES: Array<{ name: string; shape: Shape5; cout: number; k: number; stride: number }> = [
  { name: 'Conv3D', shape: [1, 32, 32, 32, 16], cout: 16, k: 3, stride: 1 },
  { name: 'Conv3DBackpropFilterV2', shape: [1, 32, 32, 32, 16], cout: 16, k: 3, stride: 1 },
  { name: 'Conv3DBackpropInputV2', shape: [1, 32, 32, 32, 16], cout: 16, k: 3, stride: 1 },
  { name: 'Conv3D', shape: [1, 32, 32, 32, 1], cout: 16, k: 3, stride: 1 },
  // Where vol2col stopped paying: a 96-channel decoder input (Winograd now).
  { name: 'Conv3D', shape: [1, 32, 32, 32, 96], cout: 32, k: 3, stride: 1 },
  { name: 'Conv3DBackpropFilterV2', shape: [1, 32, 32, 32, 96], cout: 32, k: 3, stride: 1 },
  { name: 'Conv3DBackpropInputV2', shape: [1, 64, 64, 64, 16], cout: 32, k: 2, stride: 2 },
  { name: 'MaxPool3D', shape: [1, 64, 64, 64, 16], cout: 16, k: 2, stride: 2 },
  { name: 'MaxPool3DGrad', shape: [1, 64, 64, 64, 16], cout: 16, k: 2, stride: 2 },
];

async function* runKernels(ctx: BenchContext): AsyncGenerator<BenchResult> {
  const reps = ctx.quick ? 1 : 3;
  for (const c of KERNEL_CASES) {
    const label = `${c.name} ${c.shape.slice(1, 4).join('x')} c${c.shape[4]}->${c.cout} k${c.k} s${c.stride}`;
    const fn = kernelCall(c.name, c.shape, c.cout, c.k, c.stride);
    restoreStockCpuKernels();
    const stock = await timeMedian(fn, reps, 0);
    registerFastCpuKernels();
    const fast = await timeMedian(fn, reps, 1);
    ctx.log(`  ${label}: stock ${stock.toFixed(1)} ms, fast ${fast.toFixed(1)} ms`);
    yield result(GROUP, label, fast, 'ms', stock, STOCK);
  }
}

/**
 * Median wall time and median CPU time (this process, all threads) in ms. On a shared machine
 * the wall time also counts waiting for a core; the CPU time is what the work itself costs.
 */
function measure(fn: () => void, reps: number, warmup: number): { wall: number; cpu: number } {
  for (let i = 0; i < warmup; i++) fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const median = (v: number[]) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
  return { wall: median(wall), cpu: median(cpu) };
}

const seconds = (ms: number) => (ms / 1000).toFixed(3);

async function* runTraining(ctx: BenchContext): AsyncGenerator<BenchResult> {
  const cases = [
    { size: 32, c: 8, stockSteps: 2 },
    { size: 64, c: 16, stockSteps: ctx.quick ? 0 : 1 },
  ];
  for (const { size, c, stockSteps } of cases) {
    const label = `tiny U-Net train step ${size}^3 c${c}`;
    const step = trainStep(tinyUNet(c), size);
    let stock: { wall: number; cpu: number } | null = null;
    if (stockSteps > 0) {
      restoreStockCpuKernels();
      // One 64^3 stock step takes minutes; its first step costs about the same as later ones.
      stock = measure(step, stockSteps, size > 32 ? 0 : 1);
    }
    registerFastCpuKernels();
    const fast = measure(step, ctx.quick ? 2 : 5, 1);
    ctx.log(
      `  ${label}: stock ${stock ? `${seconds(stock.wall)} s (cpu ${seconds(stock.cpu)} s)` : 'skipped'}, ` +
        `fast ${seconds(fast.wall)} s (cpu ${seconds(fast.cpu)} s), load average ${loadavg()[0].toFixed(1)}`,
    );
    yield result(GROUP, label, fast.wall / 1000, 's', stock ? stock.wall / 1000 : null, STOCK);
    yield result(
      GROUP,
      `${label}, CPU time`,
      fast.cpu / 1000,
      'cpu-s',
      stock ? stock.cpu / 1000 : null,
      STOCK,
    );
  }
}

async function* runReference(ctx: BenchContext): AsyncGenerator<BenchResult> {
  const { buildUNet, REFERENCE_UNET3D } = await import('../trainer/models/unet.ts');
  registerFastCpuKernels();
  const net = buildUNet(REFERENCE_UNET3D);
  const x = tf.randomUniform([1, 96, 96, 96, 1], 0, 1, 'float32', 9);
  const fast = measure(
    () => {
      const y = net.predict(x) as tf.Tensor;
      y.dataSync();
      y.dispose();
    },
    // About 1.6 TFLOP per pass: one timed pass, after one warm-up pass unless --quick.
    1,
    ctx.quick ? 0 : 1,
  );
  ctx.log(
    `  reference UNet3D forward 96^3: fast ${seconds(fast.wall)} s (cpu ${seconds(fast.cpu)} s), ` +
      `load average ${loadavg()[0].toFixed(1)}`,
  );
  yield result(GROUP, 'reference UNet3D forward 96^3 (fast only)', fast.wall / 1000, 's');
  yield result(GROUP, 'reference UNet3D forward 96^3 (fast only), CPU time', fast.cpu / 1000, 'cpu-s');
}

export async function* run(ctx: BenchContext): AsyncGenerator<BenchResult> {
  tf.env().set('PROD', true);
  registerTrainingGradients();
  await tf.setBackend('cpu');
  yield* runKernels(ctx);
  yield* runTraining(ctx);
  yield* runReference(ctx);
  registerFastCpuKernels();
}
