/**
 * Conv3DBackpropFilterV2 on the cpu backend: dW = vol2col(x)^T * dy in wasm. Each thread sums
 * its share of output voxels into a private dW; the partial sums are added at the end.
 */
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import {
  backend_util,
  type Conv3DBackpropFilterV2Attrs,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { planConv, valuesOf } from './conv-plan.ts';
import { convRuntime } from './wasm-runtime.ts';

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
