/**
 * The ReLU gradient in one pass. tfjs's gradient is dy * cast(step(x)): two full-volume kernels and
 * an extra tensor per ReLU of the U-Net. registerFastCpuKernels() puts in a gradient that calls this
 * kernel where the active backend has it (the cpu backend with the fast kernels) and the stock
 * formula everywhere else, so other backends are unaffected.
 */
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { GradConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { allocOutput } from './buffer-pool.ts';
import { valuesOf } from './conv-plan.ts';
import { MIN_VALUES, reluGradWasm } from './elementwise.ts';

export const RELU_GRAD_KERNEL = 'FreeTumorReluGrad';

/** Inputs {dy, x} -> dx = dy where x > 0, 0 where x <= 0, NaN where x is NaN (as dy * step(x)). */
export const reluGradKernel: KernelFunc = ({ inputs, backend }) => {
  const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
  const cpu = backend as MathBackendCPU;
  const g = valuesOf(cpu, dy);
  const v = valuesOf(cpu, x);
  if (v.length >= MIN_VALUES) {
    return cpu.makeTensorInfo(
      x.shape,
      'float32',
      reluGradWasm(g, v, (n) => allocOutput(cpu, n)),
    ) as TensorInfo;
  }
  const out = allocOutput(cpu, v.length);
  for (let i = 0; i < v.length; i++) {
    const xi = v[i];
    out[i] = xi > 0 ? g[i] : Number.isNaN(xi) ? Number.NaN : 0 * g[i];
  }
  return cpu.makeTensorInfo(x.shape, 'float32', out) as TensorInfo;
};

/** The Relu gradient: the fused kernel on a backend that has it, else `fallback` (the stock config). */
export function reluGradConfig(fallback: GradConfig | undefined): GradConfig {
  return {
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const grad = dy as tf.Tensor;
      const fused =
        grad.dtype === 'float32' &&
        x.dtype === 'float32' &&
        grad.size === x.size &&
        tf.getKernel(RELU_GRAD_KERNEL, tf.getBackend()) !== undefined;
      if (!fused && fallback) return fallback.gradFunc(dy, saved, attrs);
      return { x: () => tf.engine().runKernel(RELU_GRAD_KERNEL, { dy: grad, x }) as tf.Tensor };
    },
  };
}
