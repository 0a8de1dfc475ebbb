/**
 * One AdamW update of one variable as one kernel (cpu backend): p, m, v (and amsgrad's vmax) in, the
 * new values out, in a single pass where the composed update (trainer/train/optim.ts) runs a dozen
 * element-wise kernels and tensors per variable. Every operation rounds to float32 as the composed
 * ops do, so both give the same bits.
 */
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { valuesOf } from './conv-plan.ts';

export const ADAMW_KERNEL = 'FreeTumorAdamW';

export interface AdamWAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  /** 1 - beta1^t and 1 - beta2^t. */
  bc1: number;
  bc2: number;
}

const f = Math.fround;

/** Inputs {p, g, m, v[, vmax]}, attrs AdamWAttrs -> [p, m, v(, vmax)]. */
export const adamwKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { p, g, m, v, vmax } = inputs as Record<string, TensorInfo | undefined> as Record<string, TensorInfo>;
  const a = attrs as unknown as AdamWAttrs;
  const P = valuesOf(cpu, p);
  const Gr = valuesOf(cpu, g);
  const M = valuesOf(cpu, m);
  const V = valuesOf(cpu, v);
  const X = vmax ? valuesOf(cpu, vmax) : null;
  const n = P.length;
  const p2 = new Float32Array(n);
  const m2 = new Float32Array(n);
  const v2 = new Float32Array(n);
  const x2 = X ? new Float32Array(n) : null;
  const b1 = f(a.beta1);
  const c1 = f(1 - a.beta1);
  const b2 = f(a.beta2);
  const c2 = f(1 - a.beta2);
  const decay = f(1 - a.lr * a.weightDecay);
  const bc1 = f(a.bc1);
  const bc2 = f(a.bc2);
  const eps = f(a.epsilon);
  const lr = f(a.lr);
  for (let i = 0; i < n; i++) {
    const gi = Gr[i];
    const mi = f(f(M[i] * b1) + f(gi * c1));
    const vi = f(f(V[i] * b2) + f(f(gi * gi) * c2));
    let used = vi;
    if (X && x2) {
      used = Math.max(X[i], vi);
      x2[i] = used;
    }
    const decayed = a.weightDecay > 0 ? f(P[i] * decay) : P[i];
    const update = f(f(mi / bc1) / f(f(Math.sqrt(f(used / bc2))) + eps));
    p2[i] = f(decayed - f(update * lr));
    m2[i] = mi;
    v2[i] = vi;
  }
  const out = [p2, m2, v2, ...(x2 ? [x2] : [])].map((values) =>
    cpu.makeTensorInfo(p.shape, 'float32', values),
  );
  return out as TensorInfo[];
};

/** Whether the active backend has the fused update (the cpu backend with the fast kernels). */
export function fusedAdamWActive(): boolean {
  return tf.getKernel(ADAMW_KERNEL, tf.getBackend()) !== undefined;
}
