/**
 * Conv3DBackpropFilterV2 on the cpu backend: dW = vol2col(x)^T * dy in wasm, or for 3x3x3 stride-1
 * convs with >= 8 channels in and out the Winograd F(2x2x2, 3x3x3) form (64 GEMMs over tiles). Each
 * thread sums its share into a private dW (or dU); the partial sums are added at the end.
 */
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import {
  backend_util,
  type Conv3DBackpropFilterV2Attrs,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import {
  FILTER_GRAD_CHUNK_BYTES,
  planWinograd,
  winogradApplies,
  winogradFilterGrad,
} from '../../shared/engine/winograd.ts';
import { type ConvPlan, planConv, valuesOf } from './conv-plan.ts';
import { type ConvRuntime, convRuntime } from './wasm-runtime.ts';

type Shape5 = [number, number, number, number, number];

export function conv3dFilterGrad(
  x: Float32Array,
  xShape: Shape5,
  dy: Float32Array,
  filterShape: Shape5,
  strides: Conv3DBackpropFilterV2Attrs['strides'],
  pad: Conv3DBackpropFilterV2Attrs['pad'],
): Float32Array {
  const info = backend_util.computeConv3DInfo(xShape, filterShape, strides, 1, pad);
  const rt = convRuntime();
  rt.reset();
  const plan = planConv(rt, info);
  const kernel = [info.filterDepth, info.filterHeight, info.filterWidth] as const;
  const stride = [info.strideDepth, info.strideHeight, info.strideWidth] as const;
  if (winogradApplies(kernel, stride, [1, 1, 1], info.inChannels, info.outChannels)) {
    return winogradGrad(rt, plan, info, x, dy);
  }
  const xPtr = rt.put(x);
  const dyPtr = rt.put(dy);
  const dwLen = plan.patch * plan.outC;
  const scratch = rt.exports.scratch_floats(plan.geom, plan.chunk);
  const parts = plan.ranges.map(() => {
    const dw = rt.alloc(dwLen);
    rt.f32(dw, dwLen).fill(0);
    const col = rt.alloc(scratch);
    // The packed dy chunk sits after the col chunk inside the same scratch block.
    return { dw, col, dyp: col + 4 * plan.chunk * plan.patch };
  });
  rt.parallel('conv_filter_grad', parts.length, (part) => {
    const [p0, p1] = plan.ranges[part];
    const { dw, col, dyp } = parts[part];
    return [plan.geom, xPtr, dyPtr, dw, col, dyp, plan.chunk, p0, p1];
  });
  for (let part = 1; part < parts.length; part++) rt.exports.add_into(parts[0].dw, parts[part].dw, 0, dwLen);
  return rt.f32(parts[0].dw, dwLen).slice();
}

/** dW through Winograd F(2x2x2, 3x3x3): per-thread dU in the transformed domain, then G^T dU G. */
function winogradGrad(
  rt: ConvRuntime,
  plan: ConvPlan,
  info: backend_util.Conv3DInfo,
  x: Float32Array,
  dy: Float32Array,
): Float32Array {
  const cin = info.inChannels;
  const cout = info.outChannels;
  const xPtr = rt.put(x);
  const dyPtr = rt.put(dy);
  const wino = planWinograd(
    info.batchSize,
    [info.outDepth, info.outHeight, info.outWidth],
    cin,
    cout,
    plan.ranges.length,
    FILTER_GRAD_CHUNK_BYTES,
  );
  const duLen = 64 * cin * cout;
  const parts = wino.ranges.map(() => {
    const du = rt.alloc(duLen);
    rt.f32(du, duLen).fill(0);
    return { du, scratch: rt.alloc(rt.exports.wino_grad_scratch_floats(plan.geom, wino.chunk)) };
  });
  rt.parallel('wino_filter_grad', parts.length, (p) => [
    plan.geom,
    xPtr,
    dyPtr,
    parts[p].du,
    parts[p].scratch,
    wino.chunk,
    wino.ranges[p][0],
    wino.ranges[p][1],
  ]);
  const du = new Float64Array(duLen);
  for (const part of parts) {
    const v = rt.f32(part.du, duLen);
    for (let i = 0; i < duLen; i++) du[i] += v[i];
  }
  return winogradFilterGrad(du, cin, cout);
}

export const conv3dBackpropFilterKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, filterShape } = attrs as unknown as Conv3DBackpropFilterV2Attrs;
  const cpu = backend as MathBackendCPU;
  const values = conv3dFilterGrad(
    valuesOf(cpu, x),
    x.shape as Shape5,
    valuesOf(cpu, dy),
    filterShape,
    strides,
    pad,
  );
  return cpu.makeTensorInfo(filterShape, 'float32', values) as TensorInfo;
};
