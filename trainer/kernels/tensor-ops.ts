/**
 * Float32 fast paths for the non-conv ops that dominate a 3D U-Net step once the convolutions
 * are fast: Concat and SplitV (the skip connections and their gradient), Add and Multiply with
 * broadcasting (bias adds, softmax and loss gradients), and Sum over leading or trailing axes
 * (bias gradients). The stock cpu kernels handle broadcasting and leading-axis reductions with
 * per-element index arithmetic or a full transpose. Cases outside these fast paths return null
 * and the caller runs the stock kernel.
 */
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { backend_util, type NamedAttrMap, type TensorInfo, util } from '@tensorflow/tfjs-core';
import { allocOutput } from './buffer-pool.ts';
import { valuesOf } from './conv-plan.ts';
import { addWasm, biasAddWasm, MIN_VALUES, reluWasm } from './elementwise.ts';

const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

export function concatFast(
  backend: MathBackendCPU,
  inputs: TensorInfo[],
  attrs: NamedAttrMap,
): TensorInfo | null {
  if (inputs.length < 2 || inputs.some((t) => t.dtype !== 'float32' || size(t.shape) === 0)) return null;
  const axis = util.parseAxisParam(attrs.axis as number, inputs[0].shape)[0];
  const outShape = backend_util.computeOutShape(
    inputs.map((t) => t.shape),
    axis,
  );
  const outer = size(outShape.slice(0, axis));
  const rowLen = size(outShape.slice(axis));
  const out = allocOutput(backend, outer * rowLen);
  let offset = 0;
  for (const t of inputs) {
    const v = valuesOf(backend, t);
    const block = size(t.shape.slice(axis));
    copyRows(v, block, 0, out, rowLen, offset, block, outer);
    offset += block;
  }
  return backend.makeTensorInfo(outShape, 'float32', out);
}

export function splitVFast(backend: MathBackendCPU, x: TensorInfo, attrs: NamedAttrMap): TensorInfo[] | null {
  if (x.dtype !== 'float32' || size(x.shape) === 0) return null;
  const axis = util.parseAxisParam(attrs.axis as number, x.shape)[0];
  const sizes = backend_util.prepareSplitSize(x, attrs.numOrSizeSplits as number | number[], axis);
  const v = valuesOf(backend, x);
  const outer = size(x.shape.slice(0, axis));
  const inner = size(x.shape.slice(axis + 1));
  const rowLen = x.shape[axis] * inner;
  const outputs: TensorInfo[] = [];
  let offset = 0;
  for (const s of sizes) {
    const block = s * inner;
    const out = allocOutput(backend, outer * block);
    copyRows(v, rowLen, offset, out, block, 0, block, outer);
    const shape = x.shape.slice();
    shape[axis] = s;
    outputs.push(backend.makeTensorInfo(shape, 'float32', out));
    offset += block;
  }
  return outputs;
}

/**
 * Copies `rows` runs of `len` values from src (row stride srcStride, from srcOffset) to dst (row
 * stride dstStride, from dstOffset). Short runs (channel-axis concat of a few channels) copy
 * element by element: a subarray per row costs more than the copy.
 */
function copyRows(
  src: Float32Array,
  srcStride: number,
  srcOffset: number,
  dst: Float32Array,
  dstStride: number,
  dstOffset: number,
  len: number,
  rows: number,
): void {
  if (len >= 256) {
    for (let o = 0; o < rows; o++) {
      const from = o * srcStride + srcOffset;
      dst.set(src.subarray(from, from + len), o * dstStride + dstOffset);
    }
    return;
  }
  for (let o = 0; o < rows; o++) {
    const from = o * srcStride + srcOffset;
    const to = o * dstStride + dstOffset;
    for (let j = 0; j < len; j++) dst[to + j] = src[from + j];
  }
}

/**
 * How an operand of a broadcast maps onto the output's flat index i: 'full' (i), 'tile' (its
 * shape is a suffix of the output's: i % n) or 'repeat' (a prefix: floor(i / (total / n))).
 */
type Broadcast = { kind: 'full' | 'tile' | 'repeat'; n: number };

function broadcastOf(shape: number[], outShape: number[]): Broadcast | null {
  const padded = [...new Array(outShape.length - shape.length).fill(1), ...shape];
  const n = size(shape);
  if (n === size(outShape)) return { kind: 'full', n };
  let first = 0;
  while (first < padded.length && padded[first] === 1) first++;
  if (padded.slice(first).every((d, i) => d === outShape[first + i])) return { kind: 'tile', n };
  let last = padded.length;
  while (last > 0 && padded[last - 1] === 1) last--;
  if (padded.slice(0, last).every((d, i) => d === outShape[i])) return { kind: 'repeat', n };
  return null;
}

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div';

/** Add/Sub/Multiply/RealDiv of float32 tensors where each operand is full, tiled or repeated. */
export function binaryFast(
  backend: MathBackendCPU,
  a: TensorInfo,
  b: TensorInfo,
  op: BinaryOp,
): TensorInfo | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const outShape = backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
  const total = size(outShape);
  const ba = broadcastOf(a.shape, outShape);
  const bb = broadcastOf(b.shape, outShape);
  if (!ba || !bb || total === 0) return null;
  const x = valuesOf(backend, a);
  const y = valuesOf(backend, b);
  const alloc = (n: number) => allocOutput(backend, n);
  if (op === 'add' && total >= MIN_VALUES && ba.kind === 'full') {
    // Bias adds (a per-channel vector) and gradient sums (two full tensors) in wasm.
    if (bb.kind === 'full') return backend.makeTensorInfo(outShape, 'float32', addWasm(x, y, alloc));
    if (bb.kind === 'tile' && bb.n > 1 && bb.n === outShape[outShape.length - 1])
      return backend.makeTensorInfo(outShape, 'float32', biasAddWasm(x, y, alloc));
  }
  const out = allocOutput(backend, total);
  if (ba.kind === 'full' && bb.kind === 'full') binaryLoop(op, out, x, y, total, total);
  else if (ba.kind === 'full' && bb.kind === 'tile') binaryLoop(op, out, x, y, total, bb.n);
  else if (ba.kind === 'tile' && bb.kind === 'full') binaryLoopTiledLeft(op, out, x, y, total, ba.n);
  else if (ba.kind === 'full' && bb.kind === 'repeat') binaryLoopRepeated(op, out, x, y, total, bb.n, false);
  else if (ba.kind === 'repeat' && bb.kind === 'full') binaryLoopRepeated(op, out, y, x, total, ba.n, true);
  else binaryLoop(op, out, expand(x, ba, total), expand(y, bb, total), total, total);
  return backend.makeTensorInfo(outShape, 'float32', out);
}

/**
 * out[i] = x[i] op y[i % n]: a full left operand and a tiled (or scalar, n = 1) right one,
 * without materialising the broadcast. One loop per op, so each stays monomorphic.
 */
function binaryLoop(
  op: BinaryOp,
  out: Float32Array,
  x: Float32Array,
  y: Float32Array,
  total: number,
  n: number,
) {
  if (n === 1) {
    const s = y[0];
    if (op === 'add') for (let i = 0; i < total; i++) out[i] = x[i] + s;
    else if (op === 'sub') for (let i = 0; i < total; i++) out[i] = x[i] - s;
    else if (op === 'mul') for (let i = 0; i < total; i++) out[i] = x[i] * s;
    else for (let i = 0; i < total; i++) out[i] = x[i] / s;
    return;
  }
  for (let base = 0; base < total; base += n) {
    if (op === 'add') for (let j = 0; j < n; j++) out[base + j] = x[base + j] + y[j];
    else if (op === 'sub') for (let j = 0; j < n; j++) out[base + j] = x[base + j] - y[j];
    else if (op === 'mul') for (let j = 0; j < n; j++) out[base + j] = x[base + j] * y[j];
    else for (let j = 0; j < n; j++) out[base + j] = x[base + j] / y[j];
  }
}

/** out[i] = x[i % n] op y[i]: the mirror of binaryLoop (Sub and RealDiv are not symmetric). */
function binaryLoopTiledLeft(
  op: BinaryOp,
  out: Float32Array,
  x: Float32Array,
  y: Float32Array,
  total: number,
  n: number,
) {
  if (n === 1) {
    const s = x[0];
    if (op === 'add') for (let i = 0; i < total; i++) out[i] = s + y[i];
    else if (op === 'sub') for (let i = 0; i < total; i++) out[i] = s - y[i];
    else if (op === 'mul') for (let i = 0; i < total; i++) out[i] = s * y[i];
    else for (let i = 0; i < total; i++) out[i] = s / y[i];
    return;
  }
  for (let base = 0; base < total; base += n) {
    if (op === 'add') for (let j = 0; j < n; j++) out[base + j] = x[j] + y[base + j];
    else if (op === 'sub') for (let j = 0; j < n; j++) out[base + j] = x[j] - y[base + j];
    else if (op === 'mul') for (let j = 0; j < n; j++) out[base + j] = x[j] * y[base + j];
    else for (let j = 0; j < n; j++) out[base + j] = x[j] / y[base + j];
  }
}

/**
 * One operand full, the other repeated (rep[o] over the o-th block of total / n values, e.g. a
 * [.., 1] against a [.., C]); `repeatedLeft` says which side of the op the repeated one is on.
 */
function binaryLoopRepeated(
  op: BinaryOp,
  out: Float32Array,
  full: Float32Array,
  rep: Float32Array,
  total: number,
  n: number,
  repeatedLeft: boolean,
) {
  const inner = total / n;
  for (let o = 0; o < n; o++) {
    const s = rep[o];
    const end = (o + 1) * inner;
    if (op === 'add') for (let i = o * inner; i < end; i++) out[i] = full[i] + s;
    else if (op === 'mul') for (let i = o * inner; i < end; i++) out[i] = full[i] * s;
    else if (op === 'sub' && repeatedLeft) for (let i = o * inner; i < end; i++) out[i] = s - full[i];
    else if (op === 'sub') for (let i = o * inner; i < end; i++) out[i] = full[i] - s;
    else if (repeatedLeft) for (let i = o * inner; i < end; i++) out[i] = s / full[i];
    else for (let i = o * inner; i < end; i++) out[i] = full[i] / s;
  }
}

/** The operand's values laid out over the whole output (a view when it is already full). */
function expand(v: Float32Array, how: Broadcast, total: number): Float32Array {
  if (how.kind === 'full') return v;
  const out = new Float32Array(total);
  if (how.kind === 'tile') {
    for (let base = 0; base < total; base += how.n) out.set(v, base);
  } else {
    const inner = total / how.n;
    for (let o = 0; o < how.n; o++) out.fill(v[o], o * inner, (o + 1) * inner);
  }
  return out;
}

/** Mean over a leading or a trailing block of axes: the Sum fast path divided by the count. */
export function meanFast(backend: MathBackendCPU, x: TensorInfo, attrs: NamedAttrMap): TensorInfo | null {
  const summed = sumFast(backend, x, attrs);
  if (!summed) return null;
  const v = valuesOf(backend, summed);
  const count = size(x.shape) / Math.max(1, v.length);
  for (let i = 0; i < v.length; i++) v[i] /= count;
  return summed;
}

/** Sum over axes that form a leading or a trailing block once size-1 dims are ignored. */
export function sumFast(backend: MathBackendCPU, x: TensorInfo, attrs: NamedAttrMap): TensorInfo | null {
  if (x.dtype !== 'float32' || size(x.shape) === 0) return null;
  const axes = new Set(util.parseAxisParam(attrs.axis as number | number[], x.shape));
  const outShape = attrs.keepDims
    ? x.shape.map((d, i) => (axes.has(i) ? 1 : d))
    : x.shape.filter((_, i) => !axes.has(i));
  const flags = x.shape.map((d, i) => (d === 1 ? null : axes.has(i))).filter((f) => f !== null);
  const firstKept = flags.indexOf(false);
  const leading = firstKept === -1 ? flags.length : firstKept;
  const v = valuesOf(backend, x);
  const total = v.length;
  let out: Float32Array;
  if (flags.slice(leading).every((f) => !f)) {
    // Reduced dims lead: out[j] = sum over rows of x[row * n + j].
    const n = size(x.shape) / size(x.shape.filter((_, i) => axes.has(i)));
    const acc = new Float64Array(n);
    for (let base = 0; base < total; base += n) for (let j = 0; j < n; j++) acc[j] += v[base + j];
    out = Float32Array.from(acc);
  } else {
    const lastKept = flags.lastIndexOf(false);
    if (!flags.slice(lastKept + 1).every((f) => f) || flags.slice(0, lastKept).some((f) => f)) return null;
    // Reduced dims trail: out[i] = sum of the contiguous run x[i * n .. i * n + n).
    const n = size(x.shape.filter((_, i) => axes.has(i)));
    out = new Float32Array(total / n);
    for (let i = 0; i < out.length; i++) {
      let s = 0;
      for (let j = i * n; j < i * n + n; j++) s += v[j];
      out[i] = s;
    }
  }
  return backend.makeTensorInfo(outShape, 'float32', out);
}

/** Relu and Step (the relu gradient) as plain loops; stock calls a closure per element. */
export function unaryFast(
  backend: MathBackendCPU,
  x: TensorInfo,
  op: 'relu' | 'step',
  attrs: NamedAttrMap,
): TensorInfo | null {
  if (x.dtype !== 'float32') return null;
  const v = valuesOf(backend, x);
  if (op === 'relu' && v.length >= MIN_VALUES)
    return backend.makeTensorInfo(
      x.shape,
      'float32',
      reluWasm(v, (n) => allocOutput(backend, n)),
    );
  const out = allocOutput(backend, v.length);
  if (op === 'relu') {
    for (let i = 0; i < v.length; i++) out[i] = Math.max(0, v[i]);
  } else {
    const alpha = (attrs.alpha as number | undefined) ?? 0;
    for (let i = 0; i < v.length; i++) out[i] = v[i] > 0 ? 1 : Number.isNaN(v[i]) ? Number.NaN : alpha;
  }
  return backend.makeTensorInfo(x.shape, 'float32', out);
}

/** Softmax over the last axis in one pass per row (stock chains six kernels). */
export function softmaxFast(
  backend: MathBackendCPU,
  logits: TensorInfo,
  attrs: NamedAttrMap,
): TensorInfo | null {
  const rank = logits.shape.length;
  const dim = attrs.dim as number;
  if (logits.dtype !== 'float32' || rank === 0 || (dim !== -1 && dim !== rank - 1)) return null;
  const v = valuesOf(backend, logits);
  const n = logits.shape[rank - 1];
  const out = allocOutput(backend, v.length);
  for (let base = 0; base < v.length; base += n) {
    let m = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < n; j++) if (v[base + j] > m || Number.isNaN(v[base + j])) m = v[base + j];
    let s = 0;
    for (let j = 0; j < n; j++) {
      const e = Math.fround(Math.exp(Math.fround(v[base + j] - m)));
      out[base + j] = e;
      s += e;
    }
    for (let j = 0; j < n; j++) out[base + j] /= s;
  }
  return backend.makeTensorInfo(logits.shape, 'float32', out);
}
