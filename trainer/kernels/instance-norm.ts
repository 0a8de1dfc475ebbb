/**
 * Fused instance and group normalisation for the cpu backend (NDHWC, statistics per sample and
 * group of channels over D, H, W; instance norm is one channel per group): the forward pass and
 * its gradient as one kernel each, where the composed tf ops (moments, sub, rsqrt, mul, add and
 * their gradients) run some thirty full-volume kernels per layer. trainer/models/norm.ts uses them
 * through tf.customGrad when they are registered for the active backend, and falls back to the
 * composition otherwise. Sums accumulate in float64.
 */
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { valuesOf } from './conv-plan.ts';

/** Kernel names; trainer/models/norm.ts calls them by these names. */
export const INSTANCE_NORM_KERNEL = 'FreeTumorInstanceNorm3D';
export const INSTANCE_NORM_GRAD_KERNEL = 'FreeTumorInstanceNorm3DGrad';

type KernelArgs = Parameters<KernelFunc>[0];

interface Layout {
  /** Samples. */
  n: number;
  /** Voxels per sample. */
  m: number;
  /** Channels. */
  c: number;
  groups: number;
  /** Channels per group. */
  cg: number;
}

function layoutOf(shape: number[], groups: number): Layout {
  if (shape.length !== 5)
    throw new Error(`instance norm expects a rank-5 NDHWC tensor, got rank ${shape.length}`);
  const [n, d, h, w, c] = shape;
  if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0)
    throw new Error(`instance norm: ${c} channels are not divisible into ${groups} groups`);
  return { n, m: d * h * w, c, groups, cg: c / groups };
}

/**
 * Inputs {x, gamma [C], beta [C]}, attrs epsilon and groups -> [y, mean [N, G], rstd [N, G]]
 * with y = (x - mean) rstd gamma + beta.
 */
export function instanceNormKernel(args: KernelArgs): TensorInfo[] {
  const backend = args.backend as MathBackendCPU;
  const { x, gamma, beta } = args.inputs as unknown as Record<string, TensorInfo>;
  const epsilon = args.attrs?.epsilon as number;
  const { n, m, c, groups, cg } = layoutOf(x.shape, args.attrs?.groups as number);
  const xv = valuesOf(backend, x);
  const g = valuesOf(backend, gamma);
  const b = valuesOf(backend, beta);
  const y = new Float32Array(xv.length);
  const meanOut = new Float32Array(n * groups);
  const rstdOut = new Float32Array(n * groups);
  const sum = new Float64Array(c);
  const sumSq = new Float64Array(c);
  const shiftBy = new Float64Array(c);
  const scale = new Float64Array(c);
  const shift = new Float64Array(c);
  const count = m * cg;
  for (let s = 0; s < n; s++) {
    const start = s * m * c;
    const end = start + m * c;
    // One pass for both moments, shifted per channel by the first voxel so that they do not cancel.
    for (let k = 0; k < c; k++) shiftBy[k] = xv[start + k];
    sum.fill(0);
    sumSq.fill(0);
    for (let i = start; i < end; i += c)
      for (let k = 0; k < c; k++) {
        const d = xv[i + k] - shiftBy[k];
        sum[k] += d;
        sumSq[k] += d * d;
      }
    for (let j = 0; j < groups; j++) {
      let total = 0;
      for (let k = j * cg; k < (j + 1) * cg; k++) total += sum[k] + m * shiftBy[k];
      const mean = total / count;
      // sum over the group of (x - mean)^2, with x - mean = (x - shift) + (shift - mean).
      let squares = 0;
      for (let k = j * cg; k < (j + 1) * cg; k++) {
        const delta = shiftBy[k] - mean;
        squares += sumSq[k] + 2 * delta * sum[k] + m * delta * delta;
      }
      const rstd = 1 / Math.sqrt(Math.max(0, squares / count) + epsilon);
      meanOut[s * groups + j] = mean;
      rstdOut[s * groups + j] = rstd;
      for (let k = j * cg; k < (j + 1) * cg; k++) {
        scale[k] = rstd * g[k];
        shift[k] = b[k] - mean * scale[k];
      }
    }
    for (let i = start; i < end; i += c)
      for (let k = 0; k < c; k++) y[i + k] = xv[i + k] * scale[k] + shift[k];
  }
  return [
    backend.makeTensorInfo(x.shape, 'float32', y),
    backend.makeTensorInfo([n, groups], 'float32', meanOut),
    backend.makeTensorInfo([n, groups], 'float32', rstdOut),
  ];
}

/**
 * Inputs {dy, x, gamma, mean, rstd} (as the forward returned them), attr groups ->
 * [dx, dgamma, dbeta]. With xhat = (x - mean) rstd over the M voxels and channels of a group:
 * dbeta = sum dy, dgamma = sum dy xhat per channel, and
 * dx = rstd (gamma dy - sum(gamma dy) / M - xhat sum(gamma dy xhat) / M) per sample and group.
 */
export function instanceNormGradKernel(args: KernelArgs): TensorInfo[] {
  const backend = args.backend as MathBackendCPU;
  const { dy, x, gamma, mean, rstd } = args.inputs as unknown as Record<string, TensorInfo>;
  const { n, m, c, groups, cg } = layoutOf(x.shape, args.attrs?.groups as number);
  const dyv = valuesOf(backend, dy);
  const xv = valuesOf(backend, x);
  const g = valuesOf(backend, gamma);
  const mv = valuesOf(backend, mean);
  const rv = valuesOf(backend, rstd);
  const dx = new Float32Array(xv.length);
  const dgamma = new Float64Array(c);
  const dbeta = new Float64Array(c);
  const s1 = new Float64Array(c);
  const s2 = new Float64Array(c);
  const mu = new Float64Array(c);
  const r = new Float64Array(c);
  const a = new Float64Array(c);
  const b = new Float64Array(c);
  const count = m * cg;
  for (let s = 0; s < n; s++) {
    const start = s * m * c;
    const end = start + m * c;
    for (let k = 0; k < c; k++) {
      const j = s * groups + Math.floor(k / cg);
      mu[k] = mv[j];
      r[k] = rv[j];
    }
    s1.fill(0);
    s2.fill(0);
    for (let i = start; i < end; i += c)
      for (let k = 0; k < c; k++) {
        const d = dyv[i + k];
        s1[k] += d;
        s2[k] += d * (xv[i + k] - mu[k]) * r[k];
      }
    for (let k = 0; k < c; k++) {
      dbeta[k] += s1[k];
      dgamma[k] += s2[k];
    }
    // dx = a dy + b (x - mean) - s1, per channel: a = gamma rstd, b = -rstd^2 B / M, s1 = rstd A / M,
    // with A = sum(gamma dy) and B = sum(gamma dy xhat) over the group.
    for (let j = 0; j < groups; j++) {
      let sumA = 0;
      let sumB = 0;
      for (let k = j * cg; k < (j + 1) * cg; k++) {
        sumA += g[k] * s1[k];
        sumB += g[k] * s2[k];
      }
      for (let k = j * cg; k < (j + 1) * cg; k++) {
        a[k] = g[k] * r[k];
        b[k] = (-r[k] * r[k] * sumB) / count;
        s1[k] = (r[k] * sumA) / count;
      }
    }
    for (let i = start; i < end; i += c)
      for (let k = 0; k < c; k++) dx[i + k] = a[k] * dyv[i + k] + b[k] * (xv[i + k] - mu[k]) - s1[k];
  }
  return [
    backend.makeTensorInfo(x.shape, 'float32', dx),
    backend.makeTensorInfo([c], 'float32', Float32Array.from(dgamma)),
    backend.makeTensorInfo([c], 'float32', Float32Array.from(dbeta)),
  ];
}
