/**
 * Conv3DBackpropInputV2 on the cpu backend (the input gradient of Conv3D, and the forward pass of
 * Conv3DTranspose): dcol = dy * W^T in wasm, then col2vol scatter-adds dcol into dx. Threads
 * split the output voxels; each scatters into a private dx (receptive fields overlap) and the
 * private copies are summed in parallel at the end.
 */
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import {
  backend_util,
  type Conv3DBackpropInputV2Attrs,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { type ConvGeometry, planConv, splitRows, valuesOf } from './conv-plan.ts';
import { convolve } from './conv3d.ts';
import { convRuntime } from './wasm-runtime.ts';

type Shape5 = [number, number, number, number, number];

export function conv3dInputGrad(
  dy: Float32Array,
  inputShape: Shape5,
  filter: Float32Array,
  filterShape: Shape5,
  strides: Conv3DBackpropInputV2Attrs['strides'],
  pad: Conv3DBackpropInputV2Attrs['pad'],
): Float32Array {
  const info = backend_util.computeConv3DInfo(inputShape, filterShape, strides, 1, pad);
  if (info.strideDepth === 1 && info.strideHeight === 1 && info.strideWidth === 1) {
    return convolve(flippedGeometry(info), dy, flipFilter(filter, filterShape));
  }
  const rt = convRuntime();
  rt.reset();
  const plan = planConv(rt, info);
  const dyPtr = rt.put(dy);
  const wPtr = rt.put(filter);
  const wtp = rt.alloc(rt.exports.filter_panel_floats(plan.geom));
  rt.exports.pack_filter_t(plan.geom, wPtr, wtp);
  const dxLen = inputShape[0] * inputShape[1] * inputShape[2] * inputShape[3] * inputShape[4];
  const scratch = rt.exports.scratch_floats(plan.geom, plan.chunk);
  const parts = plan.ranges.map(() => {
    const dx = rt.alloc(dxLen);
    rt.f32(dx, dxLen).fill(0);
    return { dx, col: rt.alloc(scratch) };
  });
  rt.parallel('conv_input_grad', parts.length, (part) => {
    const [p0, p1] = plan.ranges[part];
    return [plan.geom, dyPtr, wtp, parts[part].dx, parts[part].col, plan.chunk, p0, p1];
  });
  if (parts.length > 1) {
    const slices = splitRows(dxLen, parts.length);
    for (let part = 1; part < parts.length; part++) {
      rt.parallel('add_into', slices.length, (s) => [
        parts[0].dx,
        parts[part].dx,
        slices[s][0],
        slices[s][1],
      ]);
    }
  }
  return rt.f32(parts[0].dx, dxLen).slice();
}

/**
 * With stride 1 the input gradient is a plain conv of dy with the spatially flipped filter,
 * cin and cout swapped, and the padding mirrored (f - 1 - pad): a long-contraction GEMM with
 * no scatter, which is faster than dcol + col2vol.
 */
function flippedGeometry(info: backend_util.Conv3DInfo): ConvGeometry {
  return {
    batchSize: info.batchSize,
    inDepth: info.outDepth,
    inHeight: info.outHeight,
    inWidth: info.outWidth,
    inChannels: info.outChannels,
    outDepth: info.inDepth,
    outHeight: info.inHeight,
    outWidth: info.inWidth,
    outChannels: info.inChannels,
    filterDepth: info.filterDepth,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideDepth: 1,
    strideHeight: 1,
    strideWidth: 1,
    dilationDepth: 1,
    dilationHeight: 1,
    dilationWidth: 1,
    padInfo: {
      front: info.filterDepth - 1 - info.padInfo.front,
      top: info.filterHeight - 1 - info.padInfo.top,
      left: info.filterWidth - 1 - info.padInfo.left,
    },
  };
}

/** [kd,kh,kw,cin,cout] -> reversed taps, [.., cout, cin]. */
function flipFilter(w: Float32Array, [fd, fh, fw, cin, cout]: Shape5): Float32Array {
  const out = new Float32Array(w.length);
  const taps = fd * fh * fw;
  for (let t = 0; t < taps; t++) {
    const src = t * cin * cout;
    const dst = (taps - 1 - t) * cin * cout;
    for (let ci = 0; ci < cin; ci++)
      for (let co = 0; co < cout; co++) out[dst + co * cin + ci] = w[src + ci * cout + co];
  }
  return out;
}

export const conv3dBackpropInputKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, inputShape } = attrs as unknown as Conv3DBackpropInputV2Attrs;
  const cpu = backend as MathBackendCPU;
  const values = conv3dInputGrad(
    valuesOf(cpu, dy),
    inputShape,
    valuesOf(cpu, filter),
    filter.shape as Shape5,
    strides,
    pad,
  );
  return cpu.makeTensorInfo(inputShape, 'float32', values) as TensorInfo;
};
