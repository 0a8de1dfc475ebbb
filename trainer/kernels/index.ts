/**
 * Fast kernels for tfjs's cpu backend: 3D convolutions (forward and both gradients) in wasm SIMD
 * across threads, 3D max pooling, float32 fast paths for Concat, SplitV, Add, Multiply and Sum,
 * and fused instance/group normalisation (forward and gradient), kernels tfjs does not have, that
 * trainer/models/norm.ts uses when they are registered, the ReLU gradient as one pass, and the
 * AdamW update of one variable as one kernel (trainer/train/optim.ts uses it when registered).
 * registerFastCpuKernels() swaps them in for the stock ones; restoreStockCpuKernels() puts the
 * stock ones back (benchmarks, parity tests). Both are idempotent and cheap: the wasm module and
 * the worker threads start on the first conv call.
 */
// The stock kernels must be registered before they can be saved and swapped.
import '@tensorflow/tfjs-backend-cpu';
// tfjs-layers registers tfjs-core's gradients, which must exist before one is overridden here.
import '@tensorflow/tfjs-layers';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import {
  type GradConfig,
  getGradient,
  getKernel,
  type KernelConfig,
  type KernelFunc,
  registerGradient,
  registerKernel,
  type TensorInfo,
  unregisterKernel,
} from '@tensorflow/tfjs-core';
import { ADAMW_KERNEL, adamwKernel } from './adamw.ts';
import { enablePooling, uninstallBufferPool } from './buffer-pool.ts';
import { conv3dKernel } from './conv3d.ts';
import { conv3dBackpropFilterKernel } from './conv3d-backprop-filter.ts';
import { conv3dBackpropInputKernel } from './conv3d-backprop-input.ts';
import {
  INSTANCE_NORM_GRAD_KERNEL,
  INSTANCE_NORM_KERNEL,
  instanceNormGradKernel,
  instanceNormKernel,
} from './instance-norm.ts';
import { maxPool3dGradKernel, maxPool3dKernel } from './maxpool3d.ts';
import { RELU_GRAD_KERNEL, reluGradConfig, reluGradKernel } from './relu-grad.ts';
import {
  binaryFast,
  concatFast,
  meanFast,
  softmaxFast,
  splitVFast,
  sumFast,
  unaryFast,
} from './tensor-ops.ts';

const BACKEND = 'cpu';

type KernelArgs = Parameters<KernelFunc>[0];
/** A fast kernel returns null for the calls it does not handle; the stock kernel runs those. */
type FastKernel = (args: KernelArgs) => TensorInfo | TensorInfo[] | null;

const float32Only =
  (kernel: KernelFunc): FastKernel =>
  (args) =>
    Object.values(args.inputs).every((t) => t?.dtype === 'float32') ? kernel(args) : null;

/**
 * Stock MaxPool3DGrad encodes window positions with the window height where the width belongs,
 * so for windows whose height and width differ it routes gradients differently from MaxPool3D;
 * those calls keep the stock kernel so results stay identical to stock tfjs.
 */
const cubicWindowOnly =
  (kernel: KernelFunc): FastKernel =>
  (args) => {
    const size = args.attrs?.filterSize as number | number[];
    return typeof size === 'number' || size[1] === size[2] ? float32Only(kernel)(args) : null;
  };

const cpuOf = (args: KernelArgs) => args.backend as MathBackendCPU;
const inputsOf = (args: KernelArgs) => args.inputs as unknown as Record<string, TensorInfo>;

const FAST: Array<{ name: string; kernel: FastKernel }> = [
  { name: 'Conv3D', kernel: float32Only(conv3dKernel) },
  { name: 'Conv3DBackpropFilterV2', kernel: float32Only(conv3dBackpropFilterKernel) },
  { name: 'Conv3DBackpropInputV2', kernel: float32Only(conv3dBackpropInputKernel) },
  { name: 'MaxPool3D', kernel: float32Only(maxPool3dKernel) },
  { name: 'MaxPool3DGrad', kernel: cubicWindowOnly(maxPool3dGradKernel) },
  {
    name: 'Concat',
    kernel: (args) => concatFast(cpuOf(args), Object.values(args.inputs) as TensorInfo[], args.attrs ?? {}),
  },
  { name: 'SplitV', kernel: (args) => splitVFast(cpuOf(args), inputsOf(args).x, args.attrs ?? {}) },
  { name: 'Add', kernel: (args) => binaryFast(cpuOf(args), inputsOf(args).a, inputsOf(args).b, 'add') },
  { name: 'Sub', kernel: (args) => binaryFast(cpuOf(args), inputsOf(args).a, inputsOf(args).b, 'sub') },
  { name: 'Multiply', kernel: (args) => binaryFast(cpuOf(args), inputsOf(args).a, inputsOf(args).b, 'mul') },
  { name: 'RealDiv', kernel: (args) => binaryFast(cpuOf(args), inputsOf(args).a, inputsOf(args).b, 'div') },
  { name: 'Sum', kernel: (args) => sumFast(cpuOf(args), inputsOf(args).x, args.attrs ?? {}) },
  { name: 'Mean', kernel: (args) => meanFast(cpuOf(args), inputsOf(args).x, args.attrs ?? {}) },
  { name: 'Relu', kernel: (args) => unaryFast(cpuOf(args), inputsOf(args).x, 'relu', args.attrs ?? {}) },
  { name: 'Step', kernel: (args) => unaryFast(cpuOf(args), inputsOf(args).x, 'step', args.attrs ?? {}) },
  { name: 'Softmax', kernel: (args) => softmaxFast(cpuOf(args), inputsOf(args).logits, args.attrs ?? {}) },
];

/** Kernels tfjs does not have (fused ops the models call by name when they are registered). */
const ADDED: KernelConfig[] = [
  { kernelName: INSTANCE_NORM_KERNEL, backendName: BACKEND, kernelFunc: instanceNormKernel },
  { kernelName: INSTANCE_NORM_GRAD_KERNEL, backendName: BACKEND, kernelFunc: instanceNormGradKernel },
  { kernelName: RELU_GRAD_KERNEL, backendName: BACKEND, kernelFunc: reluGradKernel },
  { kernelName: ADAMW_KERNEL, backendName: BACKEND, kernelFunc: adamwKernel },
];

/** The stock configs, saved the first time the fast ones go in. */
const stock = new Map<string, KernelConfig>();
let stockReluGrad: GradConfig | undefined;
let fastActive = false;

export function registerFastCpuKernels(): void {
  if (fastActive) return;
  for (const { name, kernel } of FAST) {
    const original = stock.get(name) ?? getKernel(name, BACKEND);
    if (!original) continue;
    stock.set(name, original);
    const fallback = original.kernelFunc;
    unregisterKernel(name, BACKEND);
    registerKernel({ ...original, kernelFunc: (args) => kernel(args) ?? fallback(args) });
  }
  for (const config of ADDED) if (!getKernel(config.kernelName, BACKEND)) registerKernel(config);
  enablePooling();
  stockReluGrad ??= getGradient('Relu');
  registerGradient(reluGradConfig(stockReluGrad));
  fastActive = true;
}

export function restoreStockCpuKernels(): void {
  if (!fastActive) return;
  for (const [name, config] of stock) {
    unregisterKernel(name, BACKEND);
    registerKernel(config);
  }
  for (const config of ADDED)
    if (getKernel(config.kernelName, BACKEND)) unregisterKernel(config.kernelName, BACKEND);
  if (stockReluGrad) registerGradient(stockReluGrad);
  uninstallBufferPool();
  fastActive = false;
}

export function fastCpuKernelsActive(): boolean {
  return fastActive;
}
