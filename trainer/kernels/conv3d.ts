/**
 * Conv3D forward on the cpu backend, split across threads: Winograd F(2x2x2, 3x3x3) for 3x3x3 stride-1
 * convs with at least 8 channels in and out (shared/engine/winograd.ts), else vol2col + SIMD SGEMM in
 * wasm. Handles every stride, dilation and padding tfjs's computeConv3DInfo accepts.
 */
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { backend_util, type Conv3DAttrs, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { packWinogradFilter, planWinograd, winogradApplies } from '../../shared/engine/winograd.ts';
import { allocOutput } from './buffer-pool.ts';
import { type ConvGeometry, planConv, valuesOf } from './conv-plan.ts';
import { convRuntime } from './wasm-runtime.ts';

type Shape5 = [number, number, number, number, number];

export function conv3dForward(
  x: Float32Array,
  xShape: Shape5,
  filter: Float32Array,
  filterShape: Shape5,
  strides: Conv3DAttrs['strides'],
  pad: Conv3DAttrs['pad'],
  dilations: Conv3DAttrs['dilations'],
  alloc: Alloc = (n) => new Float32Array(n),
): { values: Float32Array; shape: Shape5 } {
  const info = backend_util.computeConv3DInfo(xShape, filterShape, strides, dilations, pad);
  return { values: convolve(info, x, filter, alloc), shape: info.outShape as Shape5 };
}

/** Makes a kernel's output array (the buffer pool's allocOutput inside kernels). */
export type Alloc = (n: number) => Float32Array;

/** Copies wasm memory into a fresh output. */
export function copyOut(view: Float32Array, alloc: Alloc): Float32Array {
  const out = alloc(view.length);
  out.set(view);
  return out;
}

/** Runs the conv `geometry` describes on x with a [kd,kh,kw,cin,cout] filter; returns y (NDHWC). */
export function convolve(
  geometry: ConvGeometry,
  x: Float32Array,
  filter: Float32Array,
  alloc: Alloc = (n) => new Float32Array(n),
): Float32Array {
  const rt = convRuntime();
  rt.reset();
  const plan = planConv(rt, geometry);
  const xPtr = rt.put(x);
  const yLen = plan.rows * plan.outC;
  const y = rt.alloc(yLen);
  const kernel = [geometry.filterDepth, geometry.filterHeight, geometry.filterWidth] as const;
  const strides = [geometry.strideDepth, geometry.strideHeight, geometry.strideWidth] as const;
  const dilations = [geometry.dilationDepth, geometry.dilationHeight, geometry.dilationWidth] as const;
  if (winogradApplies(kernel, strides, dilations, geometry.inChannels, geometry.outChannels)) {
    const up = packWinogradFilter(rt.exports, rt, filter, geometry.inChannels, geometry.outChannels);
    const wino = planWinograd(
      geometry.batchSize,
      [geometry.outDepth, geometry.outHeight, geometry.outWidth],
      geometry.inChannels,
      geometry.outChannels,
      plan.ranges.length,
    );
    const scratch = wino.ranges.map(() => rt.alloc(wino.scratchFloats));
    rt.parallel('wino_forward', wino.ranges.length, (part) => [
      plan.geom,
      xPtr,
      0,
      up,
      0,
      y,
      scratch[part],
      wino.chunk,
      wino.ranges[part][0],
      wino.ranges[part][1],
      0,
    ]);
    return copyOut(rt.f32(y, yLen), alloc);
  }
  const wPtr = rt.put(filter);
  const wp = rt.alloc(rt.exports.filter_panel_floats(plan.geom));
  rt.exports.pack_filter(plan.geom, wPtr, wp);
  const scratch = rt.exports.scratch_floats(plan.geom, plan.chunk);
  const cols = plan.ranges.map(() => rt.alloc(scratch));
  rt.parallel('conv_forward', plan.ranges.length, (part) => {
    const [p0, p1] = plan.ranges[part];
    return [plan.geom, xPtr, 0, wp, 0, y, cols[part], plan.chunk, p0, p1, 0];
  });
  return copyOut(rt.f32(y, yLen), alloc);
}

export const conv3dKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, filter } = inputs as { x: TensorInfo; filter: TensorInfo };
  const { strides, pad, dilations } = attrs as unknown as Conv3DAttrs;
  const cpu = backend as MathBackendCPU;
  const out = conv3dForward(
    valuesOf(cpu, x),
    x.shape as Shape5,
    valuesOf(cpu, filter),
    filter.shape as Shape5,
    strides,
    pad,
    dilations,
    (n) => allocOutput(cpu, n),
  );
  return cpu.makeTensorInfo(out.shape, 'float32', out.values) as TensorInfo;
};
