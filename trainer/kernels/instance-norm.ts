/**
 * Fused instance and group normalisation for the cpu backend (NDHWC, statistics per sample and
 * group of channels over D, H, W; instance norm is one channel per group): the forward pass and
 * its gradient as one kernel each, where the composed tf ops (moments, sub, rsqrt, mul, add and
 * their gradients) run some thirty full-volume kernels per layer. trainer/models/norm.ts uses them
 * through tf.customGrad when they are registered for the active backend, and falls back to the
 * composition otherwise. The moments and the per-voxel maps run in wasm (shared/engine/wasm/ops.c)
 * across the kernel threads; partial sums are float32 over short runs of voxels, added in float64.
 */
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { splitRange } from '../../shared/engine/engine.ts';
import { groupStatistics } from '../../shared/engine/norm-math.ts';
import { allocOutput } from './buffer-pool.ts';
import { valuesOf } from './conv-plan.ts';
import { copyOut } from './conv3d.ts';
import { type ConvRuntime, convRuntime } from './wasm-runtime.ts';

/** Below this many values a norm call runs on one thread. */
const MIN_PARALLEL_VALUES = 1 << 17;

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

/** Voxel ranges of one sample for the threads: one range when the work is small. */
function voxelRanges(rt: ConvRuntime, m: number, c: number): Array<[number, number]> {
  const parts = m * c < MIN_PARALLEL_VALUES ? 1 : Math.max(1, Math.min(rt.threads, Math.floor(m / 256)));
  return splitRange(m, parts);
}

/** Adds up the per-thread float64 sums (2 x C per part, from `slots`) into two arrays. */
function gatherSums(rt: ConvRuntime, slots: number, parts: number, c: number): [Float64Array, Float64Array] {
  const a = new Float64Array(c);
  const b = new Float64Array(c);
  for (let p = 0; p < parts; p++) {
    const slot = rt.f64(slots + p * 16 * c, 2 * c);
    for (let k = 0; k < c; k++) {
      a[k] += slot[k];
      b[k] += slot[c + k];
    }
  }
  return [a, b];
}

/**
 * Inputs {x, gamma [C], beta [C]}, attrs epsilon and groups -> [y, mean [N, G], rstd [N, G]]
 * with y = (x - mean) rstd gamma + beta. Moments and the affine map run in wasm on the threads.
 */
export function instanceNormKernel(args: KernelArgs): TensorInfo[] {
  const backend = args.backend as MathBackendCPU;
  const { x, gamma, beta } = args.inputs as unknown as Record<string, TensorInfo>;
  const epsilon = args.attrs?.epsilon as number;
  const { n, m, c, groups, cg } = layoutOf(x.shape, args.attrs?.groups as number);
  const g = valuesOf(backend, gamma);
  const b = valuesOf(backend, beta);
  const meanOut = new Float32Array(n * groups);
  const rstdOut = new Float32Array(n * groups);
  const rt = convRuntime();
  rt.reset();
  const xPtr = rt.put(valuesOf(backend, x));
  const yPtr = rt.alloc(n * m * c);
  const ranges = voxelRanges(rt, m, c);
  const slots = rt.alloc(ranges.length * 4 * c);
  const shiftPtr = rt.alloc(c);
  const scalePtr = rt.alloc(c);
  const offsetPtr = rt.alloc(c);
  for (let s = 0; s < n; s++) {
    const base = xPtr + s * m * c * 4;
    const shift = Float64Array.from(rt.f32(base, c));
    rt.f32(shiftPtr, c).set(shift);
    rt.f64(slots, ranges.length * 2 * c).fill(0);
    rt.parallel('chan_moments', ranges.length, (p) => [
      base,
      c,
      ranges[p][0],
      ranges[p][1],
      shiftPtr,
      slots + p * 16 * c,
      slots + p * 16 * c + 8 * c,
    ]);
    const [sum, sq] = gatherSums(rt, slots, ranges.length, c);
    const { mean, rstd } = groupStatistics(sum, sq, shift, m, groups, epsilon);
    const scale = rt.f32(scalePtr, c);
    const offset = rt.f32(offsetPtr, c);
    for (let j = 0; j < groups; j++) {
      meanOut[s * groups + j] = mean[j];
      rstdOut[s * groups + j] = rstd[j];
      for (let k = j * cg; k < (j + 1) * cg; k++) {
        scale[k] = rstd[j] * g[k];
        offset[k] = b[k] - mean[j] * scale[k];
      }
    }
    rt.parallel('chan_affine', ranges.length, (p) => [
      base,
      yPtr + s * m * c * 4,
      c,
      ranges[p][0],
      ranges[p][1],
      scalePtr,
      offsetPtr,
      0,
    ]);
  }
  return [
    backend.makeTensorInfo(
      x.shape,
      'float32',
      copyOut(rt.f32(yPtr, n * m * c), (k) => allocOutput(backend, k)),
    ),
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
  const g = valuesOf(backend, gamma);
  const mv = valuesOf(backend, mean);
  const rv = valuesOf(backend, rstd);
  const dgamma = new Float64Array(c);
  const dbeta = new Float64Array(c);
  const count = m * cg;
  const rt = convRuntime();
  rt.reset();
  const dyPtr = rt.put(valuesOf(backend, dy));
  const xPtr = rt.put(valuesOf(backend, x));
  const dxPtr = rt.alloc(n * m * c);
  const ranges = voxelRanges(rt, m, c);
  const slots = rt.alloc(ranges.length * 4 * c);
  const muPtr = rt.alloc(c);
  const aPtr = rt.alloc(c);
  const bPtr = rt.alloc(c);
  const kPtr = rt.alloc(c);
  const r = new Float64Array(c);
  for (let s = 0; s < n; s++) {
    const at = s * m * c * 4;
    const mu = rt.f32(muPtr, c);
    for (let k = 0; k < c; k++) {
      const j = s * groups + Math.floor(k / cg);
      mu[k] = mv[j];
      r[k] = rv[j];
    }
    rt.f64(slots, ranges.length * 2 * c).fill(0);
    rt.parallel('norm_grad_moments', ranges.length, (p) => [
      dyPtr + at,
      xPtr + at,
      c,
      ranges[p][0],
      ranges[p][1],
      muPtr,
      slots + p * 16 * c,
      slots + p * 16 * c + 8 * c,
    ]);
    // s2 = sum dy (x - mu); times rstd it is sum dy xhat.
    const [s1, s2] = gatherSums(rt, slots, ranges.length, c);
    for (let k = 0; k < c; k++) {
      s2[k] *= r[k];
      dbeta[k] += s1[k];
      dgamma[k] += s2[k];
    }
    // dx = a dy + b (x - mean) - k, per channel: a = gamma rstd, b = -rstd^2 B / M, k = rstd A / M,
    // with A = sum(gamma dy) and B = sum(gamma dy xhat) over the group.
    const a = rt.f32(aPtr, c);
    const b = rt.f32(bPtr, c);
    const kk = rt.f32(kPtr, c);
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
        kk[k] = (r[k] * sumA) / count;
      }
    }
    rt.parallel('norm_grad_apply', ranges.length, (p) => [
      dyPtr + at,
      xPtr + at,
      dxPtr + at,
      c,
      ranges[p][0],
      ranges[p][1],
      aPtr,
      bPtr,
      muPtr,
      kPtr,
    ]);
  }
  return [
    backend.makeTensorInfo(
      x.shape,
      'float32',
      copyOut(rt.f32(dxPtr, n * m * c), (k) => allocOutput(backend, k)),
    ),
    backend.makeTensorInfo([c], 'float32', Float32Array.from(dgamma)),
    backend.makeTensorInfo([c], 'float32', Float32Array.from(dbeta)),
  ];
}
