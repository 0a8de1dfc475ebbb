/**
 * MaxPool3D and MaxPool3DGrad on the cpu backend, channel-innermost loops over NDHWC instead of
 * the stock per-channel scans (and, for the gradient, no second pass over every input voxel).
 * Semantics match the stock kernels: NaN inputs are skipped (a window of only NaN gives -Infinity);
 * the gradient goes to the last maximum of each window in scan order (stock compares with >=).
 */
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import {
  backend_util,
  type KernelFunc,
  type MaxPool3DAttrs,
  type MaxPool3DGradAttrs,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { allocOutput, allocZeroed } from './buffer-pool.ts';
import { valuesOf } from './conv-plan.ts';

type PoolInfo = backend_util.Conv3DInfo;

/**
 * Calls visit(outBase, taps, count) once per output voxel, where taps[0..count) are the input
 * offsets (channel 0) of the window's in-bounds voxels in scan order (depth, height, width).
 */
function forEachWindow(
  info: PoolInfo,
  visit: (outBase: number, taps: Int32Array, count: number) => void,
): void {
  const C = info.inChannels;
  const { inDepth, inHeight, inWidth, outDepth, outHeight, outWidth } = info;
  const taps = new Int32Array(
    info.effectiveFilterDepth * info.effectiveFilterHeight * info.effectiveFilterWidth,
  );
  let outBase = 0;
  for (let b = 0; b < info.batchSize; b++) {
    const xb = b * inDepth * inHeight * inWidth * C;
    for (let od = 0; od < outDepth; od++) {
      const d0 = od * info.strideDepth - info.padInfo.front;
      const dLo = Math.max(0, d0);
      const dHi = Math.min(inDepth, d0 + info.effectiveFilterDepth);
      for (let oh = 0; oh < outHeight; oh++) {
        const h0 = oh * info.strideHeight - info.padInfo.top;
        const hLo = Math.max(0, h0);
        const hHi = Math.min(inHeight, h0 + info.effectiveFilterHeight);
        for (let ow = 0; ow < outWidth; ow++, outBase += C) {
          const w0 = ow * info.strideWidth - info.padInfo.left;
          const wLo = Math.max(0, w0);
          const wHi = Math.min(inWidth, w0 + info.effectiveFilterWidth);
          let count = 0;
          for (let d = dLo; d < dHi; d++) {
            for (let h = hLo; h < hHi; h++) {
              let inBase = xb + ((d * inHeight + h) * inWidth + wLo) * C;
              for (let w = wLo; w < wHi; w++, inBase += C) taps[count++] = inBase;
            }
          }
          visit(outBase, taps, count);
        }
      }
    }
  }
}

export function maxPool3d(x: Float32Array, info: PoolInfo, alloc: (n: number) => Float32Array): Float32Array {
  const C = info.inChannels;
  const y = alloc(info.batchSize * info.outDepth * info.outHeight * info.outWidth * C);
  forEachWindow(info, (o, taps, count) => {
    for (let c = 0; c < C; c++) {
      let m = Number.NEGATIVE_INFINITY;
      for (let t = 0; t < count; t++) {
        const v = x[taps[t] + c];
        if (v > m) m = v;
      }
      y[o + c] = m;
    }
  });
  return y;
}

/** Adds each window's dy to its argmax: the last maximum in scan order, as stock's >= picks. */
export function maxPool3dGrad(
  dy: Float32Array,
  x: Float32Array,
  info: PoolInfo,
  zeros: (n: number) => Float32Array,
): Float32Array {
  const C = info.inChannels;
  const dx = zeros(info.batchSize * info.inDepth * info.inHeight * info.inWidth * C);
  forEachWindow(info, (o, taps, count) => {
    for (let c = 0; c < C; c++) {
      let m = Number.NEGATIVE_INFINITY;
      let at = -1;
      for (let t = 0; t < count; t++) {
        const v = x[taps[t] + c];
        if (v >= m) {
          m = v;
          at = taps[t] + c;
        }
      }
      if (at >= 0) dx[at] += dy[o + c];
    }
  });
  return dx;
}

function poolInfo(shape: number[], attrs: MaxPool3DGradAttrs): PoolInfo {
  return backend_util.computePool3DInfo(
    shape as [number, number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
}

export const maxPool3dKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: TensorInfo };
  const a = attrs as unknown as MaxPool3DAttrs;
  const cpu = backend as MathBackendCPU;
  const info = poolInfo(x.shape, a);
  return cpu.makeTensorInfo(
    info.outShape,
    'float32',
    maxPool3d(valuesOf(cpu, x), info, (n) => allocOutput(cpu, n)),
  ) as TensorInfo;
};

export const maxPool3dGradKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const cpu = backend as MathBackendCPU;
  const info = poolInfo(input.shape, attrs as unknown as MaxPool3DGradAttrs);
  const dx = maxPool3dGrad(valuesOf(cpu, dy), valuesOf(cpu, input), info, (n) => allocZeroed(cpu, n));
  return cpu.makeTensorInfo(input.shape, 'float32', dx) as TensorInfo;
};
