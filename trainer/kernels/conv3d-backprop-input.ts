/**
 * Conv3DBackpropInputV2 on the cpu backend (the input gradient of Conv3D, and the forward pass of
 * Conv3DTranspose): dcol = dy * W^T in wasm, then col2vol scatter-adds dcol into dx. Threads
 * split the output voxels; each scatters into a private dx (receptive fields overlap) and the
 * private copies are summed in parallel at the end. Two cases skip the scatter: stride 1 (a conv
 * with the flipped filter) and kernel == stride without padding (one GEMM and a plain scatter).
 */
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import {
  backend_util,
  type Conv3DBackpropInputV2Attrs,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { allocOutput } from './buffer-pool.ts';
import {
  CHUNK_BYTES,
  type ConvGeometry,
  MIN_PARALLEL_MACS,
  planConv,
  splitRows,
  valuesOf,
} from './conv-plan.ts';
import { type Alloc, convolve, copyOut } from './conv3d.ts';
import { convRuntime } from './wasm-runtime.ts';

type Shape5 = [number, number, number, number, number];

export function conv3dInputGrad(
  dy: Float32Array,
  inputShape: Shape5,
  filter: Float32Array,
  filterShape: Shape5,
  strides: Conv3DBackpropInputV2Attrs['strides'],
  pad: Conv3DBackpropInputV2Attrs['pad'],
  alloc: Alloc = (n) => new Float32Array(n),
): Float32Array {
  const info = backend_util.computeConv3DInfo(inputShape, filterShape, strides, 1, pad);
  if (info.strideDepth === 1 && info.strideHeight === 1 && info.strideWidth === 1) {
    return convolve(flippedGeometry(info), dy, flipFilter(filter, filterShape), alloc);
  }
  if (isUpsampling(info)) return upsample(info, dy, filter, alloc);
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
  return copyOut(rt.f32(parts[0].dx, dxLen), alloc);
}

/**
 * Kernel == stride, no padding, and the input an exact multiple of the output (the U-Net's
 * transposed conv): every output voxel owns one kernel-sized block of dx, so dx is one GEMM per
 * chunk of dy rows and a scatter, with no overlap to add up and no private copy per thread.
 */
function isUpsampling(info: backend_util.Conv3DInfo): boolean {
  return (
    info.filterDepth === info.strideDepth &&
    info.filterHeight === info.strideHeight &&
    info.filterWidth === info.strideWidth &&
    info.padInfo.front === 0 &&
    info.padInfo.top === 0 &&
    info.padInfo.left === 0 &&
    info.inDepth === info.outDepth * info.strideDepth &&
    info.inHeight === info.outHeight * info.strideHeight &&
    info.inWidth === info.outWidth * info.strideWidth &&
    info.dilationDepth === 1 &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1
  );
}

function upsample(
  info: backend_util.Conv3DInfo,
  dy: Float32Array,
  filter: Float32Array,
  alloc: Alloc,
): Float32Array {
  const rt = convRuntime();
  rt.reset();
  const cin = info.inChannels;
  const cout = info.outChannels;
  const taps = info.filterDepth * info.filterHeight * info.filterWidth;
  // The transposed conv's input is dy (cout channels, low resolution), its output dx (cin channels).
  const geom = rt.alloc(22);
  rt.i32(geom, 22).set([
    info.batchSize,
    info.outDepth,
    info.outHeight,
    info.outWidth,
    cout,
    info.inDepth,
    info.inHeight,
    info.inWidth,
    cin,
    info.filterDepth,
    info.filterHeight,
    info.filterWidth,
    info.strideDepth,
    info.strideHeight,
    info.strideWidth,
    1,
    1,
    1,
    0,
    0,
    0,
    0,
  ]);
  const dyPtr = rt.put(dy);
  const wPtr = rt.put(filter);
  // B[co][tap * cin + ci] = W[tap][ci][co]: element (t, j) at w[t + j * cout].
  const panel = rt.alloc(rt.exports.packed_b_floats(cout, taps * cin));
  rt.exports.pack_b(wPtr, cout, taps * cin, 1, cout, panel);
  const rows = info.batchSize * info.outDepth * info.outHeight * info.outWidth;
  const dxLen = rows * taps * cin;
  const dx = rt.alloc(dxLen);
  const tn = taps * cin;
  const chunk = Math.max(16, Math.min(4096, Math.floor(CHUNK_BYTES / (4 * Math.max(tn, cout)) / 4) * 4));
  const macs = rows * tn * cout;
  const parts = macs < MIN_PARALLEL_MACS ? 1 : Math.max(1, Math.min(rt.threads, Math.floor(rows / 64)));
  const ranges = splitRows(rows, parts);
  const tmps = ranges.map(() => rt.alloc(chunk * tn));
  rt.parallel('conv_transpose_forward', parts, (p) => [
    geom,
    dyPtr,
    panel,
    0,
    dx,
    tmps[p],
    chunk,
    ranges[p][0],
    ranges[p][1],
    0,
  ]);
  return copyOut(rt.f32(dx, dxLen), alloc);
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
    (n) => allocOutput(cpu, n),
  );
  return cpu.makeTensorInfo(inputShape, 'float32', values) as TensorInfo;
};
