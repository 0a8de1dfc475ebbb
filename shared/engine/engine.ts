/**
 * Runs a planned ONNX graph (plan.ts) on the wasm kernels. Activations are channels-last
 * (NDHWC) in the host's memory; the NCDHW input and outputs are converted at the edges (for a
 * one-channel input that is a plain copy). Each activation is freed after its last reader, and
 * norm, ReLU and element-wise ops write over their input when nothing else reads it, so the
 * working set is the live activations plus one conv's vol2col chunks. Weights are packed into
 * GEMM panels once, when the engine is made.
 */
import { HEAP_START, Heap, type KernelHost } from './host.ts';
import { groupStatistics } from './norm-math.ts';
import type { ConvOp, ConvTransposeOp, NormOp, Op, Padding, Plan, PoolOp, Triple } from './plan.ts';
import { reads } from './plan.ts';
import { packWinogradFilter, planWinograd, winogradApplies } from './winograd.ts';

/** [N, D, H, W, C]. */
type Dims5 = [number, number, number, number, number];

interface Value {
  off: number;
  dims: Dims5;
}

export interface EngineOptions {
  /** Upper bound on the engine's wasm memory in bytes (weights + activations + scratch). */
  maxBytes?: number;
  /** Called after each op with its wall time (profiling). */
  onOp?: (op: Op, dims: readonly number[], ms: number) => void;
}

/** Bytes of one vol2col chunk: about half of a core's L2, so the chunk and the panels stay cached. */
const CHUNK_BYTES = 512 * 1024;
/** Below this many multiply-adds (or element visits) a call runs on one thread. */
const MIN_PARALLEL_WORK = 4e6;
const GEOM_INTS = 22;
const WASM32_MAX = 2 ** 32;

const taps = (k: Triple) => k[0] * k[1] * k[2];
const voxels = (d: Dims5) => d[0] * d[1] * d[2] * d[3];
const size = (d: Dims5) => voxels(d) * d[4];

/**
 * One heap per wasm memory: engines on the same host (a Worker's segmentor and discriminator) share
 * it, so their activations reuse the same bytes between runs instead of each growing a memory that
 * never shrinks. The first engine on a host sets the limit.
 */
const heaps = new WeakMap<WebAssembly.Memory, Heap>();

function heapOf(host: KernelHost, maxBytes: number | undefined): Heap {
  let heap = heaps.get(host.memory);
  if (!heap) {
    heap = new Heap(host.memory, Math.min(maxBytes ?? WASM32_MAX, WASM32_MAX));
    heaps.set(host.memory, heap);
  }
  return heap;
}

/** Splits [0, n) into `parts` near-equal ranges whose inner bounds are multiples of 4. */
export function splitRange(n: number, parts: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  let start = 0;
  for (let part = 0; part < parts; part++) {
    const end = part === parts - 1 ? n : Math.min(n, Math.round((n * (part + 1)) / parts / 4) * 4);
    ranges.push([start, end]);
    start = end;
  }
  return ranges;
}

/** Output size and front padding of each spatial axis (ONNX semantics for auto_pad and pads). */
export function resolvePads(
  input: Triple,
  kernel: Triple,
  strides: Triple,
  dilations: Triple,
  pads: Padding,
): { out: Triple; front: Triple } {
  const out: Triple = [0, 0, 0];
  const front: Triple = [0, 0, 0];
  for (let a = 0; a < 3; a++) {
    const extent = (kernel[a] - 1) * dilations[a] + 1;
    if (pads.mode === 'NOTSET') {
      out[a] = Math.floor((input[a] + pads.begin[a] + pads.end[a] - extent) / strides[a]) + 1;
      front[a] = pads.begin[a];
    } else {
      out[a] = Math.ceil(input[a] / strides[a]);
      const total = Math.max(0, (out[a] - 1) * strides[a] + extent - input[a]);
      front[a] = pads.mode === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2);
    }
    if (out[a] < 1)
      throw new RangeError(`the input is smaller than a ${kernel.join('x')} window on axis ${a}`);
  }
  return { out, front };
}

interface Packed {
  panel: number;
  bias: number;
  /** The panels are Winograd-transformed (winograd.ts). */
  winograd: boolean;
}

export class Engine {
  readonly plan: Plan;
  private readonly host: KernelHost;
  private readonly heap: Heap;
  private readonly packed = new Map<Op, Packed>();
  private readonly onOp: EngineOptions['onOp'];
  private released = false;

  constructor(host: KernelHost, plan: Plan, options: EngineOptions = {}) {
    this.host = host;
    this.plan = plan;
    this.onOp = options.onOp;
    this.heap = heapOf(host, options.maxBytes);
    const arena = {
      alloc: (f: number) => this.heap.alloc(f),
      put: (v: ArrayLike<number>) => this.heap.put(v),
      release: (o: number) => this.heap.release(o),
    };
    for (const op of plan.ops) {
      if (op.kind === 'conv' && winogradApplies(op.kernel, op.strides, op.dilations, op.cin, op.cout)) {
        const panel = packWinogradFilter(host.exports, arena, op.weight, op.cin, op.cout);
        this.packed.set(op, { panel, bias: op.bias ? this.heap.put(op.bias) : 0, winograd: true });
      } else if (op.kind === 'conv') this.pack(op, op.weight, taps(op.kernel) * op.cin, op.cout, op.bias);
      if (op.kind === 'convTranspose') this.pack(op, op.weight, op.cin, taps(op.kernel) * op.cout, op.bias);
    }
  }

  /** Bytes of wasm memory in use (the memory itself only grows). */
  get memoryBytes(): number {
    return this.host.memory.buffer.byteLength;
  }

  /** Bytes below the heap's current top: weights plus whatever a run left allocated (nothing). */
  get heapBytes(): number {
    return this.heap.highWater - HEAP_START;
  }

  /** Gives the packed weights back to the host's heap (the engine cannot run afterwards). */
  release(): void {
    this.released = true;
    for (const { panel, bias } of this.packed.values()) {
      this.heap.release(panel);
      if (bias) this.heap.release(bias);
    }
    this.packed.clear();
  }

  private pack(op: Op, weight: Float32Array, rows: number, cols: number, bias: Float32Array | null): void {
    const { exports } = this.host;
    const src = this.heap.put(weight);
    const panel = this.heap.alloc(exports.packed_b_floats(rows, cols));
    exports.pack_b(src, rows, cols, cols, 1, panel);
    this.heap.release(src);
    this.packed.set(op, { panel, bias: bias ? this.heap.put(bias) : 0, winograd: false });
  }

  /**
   * Runs the graph on one NCDHW float32 input; returns each graph output (NCDHW float32) by name.
   * Every activation is released before it returns, also when a kernel throws.
   */
  run(data: Float32Array, dims: Dims5): Map<string, { dims: Dims5; data: Float32Array }> {
    if (this.released) throw new Error('engine: run after release');
    const [n, c, d, h, w] = dims;
    if (this.plan.inChannels !== null && c !== this.plan.inChannels) {
      throw new RangeError(`the model takes ${this.plan.inChannels} input channels, got ${c}`);
    }
    if (data.length !== n * c * d * h * w) throw new RangeError('input data does not match its dims');
    const uses = new Map<string, number>();
    for (const op of this.plan.ops) for (const x of reads(op)) uses.set(x, (uses.get(x) ?? 0) + 1);
    for (const o of this.plan.outputs) uses.set(o, (uses.get(o) ?? 0) + 1);
    const values = new Map<string, Value>();
    const live = new Set<number>();
    const alloc = (floats: number) => {
      const off = this.heap.alloc(floats);
      live.add(off);
      return off;
    };
    const release = (off: number) => {
      live.delete(off);
      this.heap.release(off);
    };
    try {
      const input: Value = { off: alloc(data.length), dims: [n, d, h, w, c] };
      this.toChannelsLast(data, input);
      values.set(this.plan.input, input);
      for (const op of this.plan.ops) {
        const ins = reads(op).map((name) => {
          const v = values.get(name);
          if (!v) throw new Error(`engine: value ${name} is not computed yet`);
          return v;
        });
        // Ops that may write over their input do so when this op is its last reader.
        const lastReader = (name: string) => uses.get(name) === 1 && !this.plan.outputs.includes(name);
        const t0 = this.onOp ? performance.now() : 0;
        const out = this.exec(op, ins, lastReader(reads(op)[0]), alloc);
        this.onOp?.(op, out.dims, performance.now() - t0);
        values.set(op.out, out);
        for (const name of reads(op)) {
          const left = (uses.get(name) ?? 0) - 1;
          uses.set(name, left);
          const v = values.get(name)!;
          if (left === 0 && v.off !== out.off) release(v.off);
          if (left === 0) values.delete(name);
        }
      }
      const results = new Map<string, { dims: Dims5; data: Float32Array }>();
      this.plan.outputs.forEach((name, i) => {
        const v = values.get(name);
        if (!v) throw new Error(`engine: output ${name} was not computed`);
        const [on, od, oh, ow, oc] = v.dims;
        results.set(this.plan.outputNames[i], { dims: [on, oc, od, oh, ow], data: this.toChannelsFirst(v) });
      });
      return results;
    } finally {
      for (const off of live) this.heap.release(off);
    }
  }

  private exec(op: Op, ins: Value[], inPlace: boolean, alloc: (floats: number) => number): Value {
    switch (op.kind) {
      case 'conv':
        return this.conv(op, ins[0], ins[1] ?? null, alloc);
      case 'convTranspose':
        return this.convTranspose(op, ins[0], alloc);
      case 'norm':
        return this.norm(op, ins[0], inPlace ? ins[0].off : alloc(size(ins[0].dims)));
      case 'maxPool':
        return this.maxPool(op, ins[0], alloc);
      case 'relu': {
        const x = ins[0];
        const y = inPlace ? x.off : alloc(size(x.dims));
        const ranges = this.ranges(size(x.dims), size(x.dims));
        this.host.parallel('relu_forward', ranges.length, (p) => [x.off, y, ranges[p][0], ranges[p][1]]);
        return { off: y, dims: x.dims };
      }
      case 'affine': {
        const x = ins[0];
        const y = inPlace ? x.off : alloc(size(x.dims));
        const c = x.dims[4];
        const scale = this.scratch(op.scale ?? new Float32Array(c).fill(1), c, 'Mul');
        const shift = this.scratch(op.shift ?? new Float32Array(c), c, 'Add');
        const ranges = this.ranges(voxels(x.dims), size(x.dims));
        this.host.parallel('chan_affine', ranges.length, (p) => [
          x.off,
          y,
          c,
          ranges[p][0],
          ranges[p][1],
          scale,
          shift,
          0,
        ]);
        this.heap.release(scale);
        this.heap.release(shift);
        return { off: y, dims: x.dims };
      }
      case 'concat':
        return this.concat(ins, alloc);
      case 'softmax':
      case 'sigmoid':
      case 'tanh': {
        const x = ins[0];
        const y = inPlace ? x.off : alloc(size(x.dims));
        pointwise(op.kind, this.heap.f32(x.off, size(x.dims)), this.heap.f32(y, size(x.dims)), x.dims[4]);
        return { off: y, dims: x.dims };
      }
    }
  }

  /** Ranges for `n` items with `work` units in all: one per thread when the work is worth it. */
  private ranges(n: number, work: number): Array<[number, number]> {
    const parts = work < MIN_PARALLEL_WORK ? 1 : Math.max(1, Math.min(this.host.threads, Math.floor(n / 64)));
    return splitRange(n, parts);
  }

  private scratch(values: Float32Array, c: number, what: string): number {
    if (values.length !== c) throw new RangeError(`${what} has ${values.length} values for ${c} channels`);
    return this.heap.put(values);
  }

  private geometry(ints: number[]): number {
    const off = this.heap.alloc(GEOM_INTS);
    this.heap.i32(off, GEOM_INTS).set(ints);
    return off;
  }

  private conv(op: ConvOp, x: Value, x2: Value | null, alloc: (floats: number) => number): Value {
    const [n, d, h, w, c1] = x.dims;
    const c2 = x2 ? x2.dims[4] : 0;
    if (x2 && (x2.dims[0] !== n || x2.dims[1] !== d || x2.dims[2] !== h || x2.dims[3] !== w)) {
      throw new RangeError('Concat of tensors with different spatial sizes');
    }
    if (c1 + c2 !== op.cin) throw new RangeError(`Conv expects ${op.cin} input channels, got ${c1 + c2}`);
    const { out, front } = resolvePads([d, h, w], op.kernel, op.strides, op.dilations, op.pads);
    const dims: Dims5 = [n, out[0], out[1], out[2], op.cout];
    const rows = voxels(dims);
    const K = taps(op.kernel) * op.cin;
    const y = alloc(rows * op.cout);
    const geom = this.geometry([
      n,
      d,
      h,
      w,
      c1,
      ...out,
      op.cout,
      ...op.kernel,
      ...op.strides,
      ...op.dilations,
      ...front,
      c2,
    ]);
    const { panel, bias, winograd } = this.packed.get(op)!;
    if (winograd) {
      const parts = this.ranges(rows, rows * K * op.cout).length;
      const plan = planWinograd(n, out, op.cin, op.cout, parts);
      const scratch = plan.ranges.map(() => this.heap.alloc(plan.scratchFloats));
      try {
        this.host.parallel('wino_forward', plan.ranges.length, (p) => [
          geom,
          x.off,
          x2?.off ?? 0,
          panel,
          bias,
          y,
          scratch[p],
          plan.chunk,
          plan.ranges[p][0],
          plan.ranges[p][1],
          op.relu ? 1 : 0,
        ]);
      } finally {
        for (const s of scratch) this.heap.release(s);
        this.heap.release(geom);
      }
      return { off: y, dims };
    }
    const chunk = Math.max(64, Math.min(4096, Math.floor(CHUNK_BYTES / (4 * K) / 4) * 4));
    const ranges = this.ranges(rows, rows * K * op.cout);
    const cols = ranges.map(() => this.heap.alloc(chunk * K));
    try {
      this.host.parallel('conv_forward', ranges.length, (p) => [
        geom,
        x.off,
        x2?.off ?? 0,
        panel,
        bias,
        y,
        cols[p],
        chunk,
        ranges[p][0],
        ranges[p][1],
        op.relu ? 1 : 0,
      ]);
    } finally {
      for (const col of cols) this.heap.release(col);
      this.heap.release(geom);
    }
    return { off: y, dims };
  }

  private convTranspose(op: ConvTransposeOp, x: Value, alloc: (floats: number) => number): Value {
    const [n, d, h, w, c] = x.dims;
    if (c !== op.cin) throw new RangeError(`ConvTranspose expects ${op.cin} input channels, got ${c}`);
    const k = op.kernel;
    const dims: Dims5 = [n, d * k[0], h * k[1], w * k[2], op.cout];
    const rows = voxels(x.dims);
    const tn = taps(k) * op.cout;
    const y = alloc(size(dims));
    const geom = this.geometry([
      n,
      d,
      h,
      w,
      c,
      ...(dims.slice(1, 4) as Triple),
      op.cout,
      ...k,
      ...k,
      1,
      1,
      1,
      0,
      0,
      0,
      0,
    ]);
    const chunk = Math.max(16, Math.min(4096, Math.floor(CHUNK_BYTES / (4 * Math.max(tn, c)) / 4) * 4));
    const ranges = this.ranges(rows, rows * c * tn);
    const tmps = ranges.map(() => this.heap.alloc(chunk * tn));
    const { panel, bias } = this.packed.get(op)!;
    try {
      this.host.parallel('conv_transpose_forward', ranges.length, (p) => [
        geom,
        x.off,
        panel,
        bias,
        y,
        tmps[p],
        chunk,
        ranges[p][0],
        ranges[p][1],
        op.relu ? 1 : 0,
      ]);
    } finally {
      for (const t of tmps) this.heap.release(t);
      this.heap.release(geom);
    }
    return { off: y, dims };
  }

  /** Instance or group norm (+ ReLU) per sample: moments over voxel ranges, then the affine map. */
  private norm(op: NormOp, x: Value, y: number): Value {
    const [n, d, h, w, c] = x.dims;
    const groups = op.groups ?? c;
    if (op.scale.length !== c || c % groups !== 0) {
      throw new RangeError(`InstanceNormalization has ${op.scale.length} scales for ${c} channels`);
    }
    const m = d * h * w;
    const ranges = this.ranges(m, m * c);
    const parts = ranges.length;
    const slots = this.heap.alloc(parts * 4 * c);
    const shiftOff = this.heap.alloc(c);
    const scaleOff = this.heap.alloc(c);
    const offsetOff = this.heap.alloc(c);
    try {
      for (let s = 0; s < n; s++) {
        const base = x.off + s * m * c * 4;
        const out = y + s * m * c * 4;
        const shift = Float64Array.from(this.heap.f32(base, c));
        this.heap.f32(shiftOff, c).set(shift);
        this.heap.f64(slots, parts * 2 * c).fill(0);
        this.host.parallel('chan_moments', parts, (p) => [
          base,
          c,
          ranges[p][0],
          ranges[p][1],
          shiftOff,
          slots + p * 16 * c,
          slots + p * 16 * c + 8 * c,
        ]);
        const sum = new Float64Array(c);
        const sq = new Float64Array(c);
        for (let p = 0; p < parts; p++) {
          const slot = this.heap.f64(slots + p * 16 * c, 2 * c);
          for (let k = 0; k < c; k++) {
            sum[k] += slot[k];
            sq[k] += slot[c + k];
          }
        }
        const { mean, rstd } = groupStatistics(sum, sq, shift, m, groups, op.epsilon);
        const scale = this.heap.f32(scaleOff, c);
        const offset = this.heap.f32(offsetOff, c);
        const cg = c / groups;
        for (let k = 0; k < c; k++) {
          const g = Math.floor(k / cg);
          scale[k] = rstd[g] * op.scale[k];
          offset[k] = op.bias[k] - mean[g] * scale[k];
        }
        this.host.parallel('chan_affine', parts, (p) => [
          base,
          out,
          c,
          ranges[p][0],
          ranges[p][1],
          scaleOff,
          offsetOff,
          op.relu ? 1 : 0,
        ]);
      }
    } finally {
      this.heap.release(slots);
      this.heap.release(shiftOff);
      this.heap.release(scaleOff);
      this.heap.release(offsetOff);
    }
    return { off: y, dims: x.dims };
  }

  private maxPool(op: PoolOp, x: Value, alloc: (floats: number) => number): Value {
    const [n, d, h, w, c] = x.dims;
    const { out, front } = resolvePads([d, h, w], op.kernel, op.strides, [1, 1, 1], op.pads);
    const dims: Dims5 = [n, out[0], out[1], out[2], c];
    const y = alloc(size(dims));
    const geom = this.geometry([n, d, h, w, c, ...out, c, ...op.kernel, ...op.strides, 1, 1, 1, ...front, 0]);
    const rows = voxels(dims);
    const ranges = this.ranges(rows, rows * c * taps(op.kernel));
    try {
      this.host.parallel('max_pool', ranges.length, (p) => [geom, x.off, y, ranges[p][0], ranges[p][1]]);
    } finally {
      this.heap.release(geom);
    }
    return { off: y, dims };
  }

  private concat(ins: Value[], alloc: (floats: number) => number): Value {
    const [n, d, h, w] = ins[0].dims;
    for (const v of ins) {
      if (v.dims[0] !== n || v.dims[1] !== d || v.dims[2] !== h || v.dims[3] !== w) {
        throw new RangeError('Concat of tensors with different spatial sizes');
      }
    }
    const c = ins.reduce((s, v) => s + v.dims[4], 0);
    const dims: Dims5 = [n, d, h, w, c];
    const y = alloc(size(dims));
    const out = this.heap.f32(y, size(dims));
    const vox = voxels(dims);
    let at = 0;
    for (const v of ins) {
      const ci = v.dims[4];
      const src = this.heap.f32(v.off, size(v.dims));
      for (let i = 0; i < vox; i++) out.set(src.subarray(i * ci, (i + 1) * ci), i * c + at);
      at += ci;
    }
    return { off: y, dims };
  }

  private toChannelsLast(data: Float32Array, v: Value): void {
    const dst = this.heap.f32(v.off, data.length);
    const c = v.dims[4];
    if (c === 1) {
      dst.set(data);
      return;
    }
    const per = data.length / (v.dims[0] * c);
    for (let b = 0; b < v.dims[0]; b++)
      for (let ch = 0; ch < c; ch++) {
        const src = (b * c + ch) * per;
        for (let i = 0; i < per; i++) dst[(b * per + i) * c + ch] = data[src + i];
      }
  }

  private toChannelsFirst(v: Value): Float32Array {
    const src = this.heap.f32(v.off, size(v.dims));
    const c = v.dims[4];
    if (c === 1) return src.slice();
    const out = new Float32Array(src.length);
    const per = src.length / (v.dims[0] * c);
    for (let b = 0; b < v.dims[0]; b++) {
      const base = b * per * c;
      for (let ch = 0; ch < c; ch++) {
        const o = (b * c + ch) * per;
        for (let i = 0; i < per; i++) out[o + i] = src[base + i * c + ch];
      }
    }
    return out;
  }
}

/** Softmax over channels (the last axis here), sigmoid and tanh, in float32 like ONNX Runtime. */
function pointwise(kind: 'softmax' | 'sigmoid' | 'tanh', x: Float32Array, y: Float32Array, c: number): void {
  if (kind === 'sigmoid') {
    for (let i = 0; i < x.length; i++) y[i] = 1 / (1 + Math.exp(-x[i]));
    return;
  }
  if (kind === 'tanh') {
    for (let i = 0; i < x.length; i++) y[i] = Math.tanh(x[i]);
    return;
  }
  for (let base = 0; base < x.length; base += c) {
    let m = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < c; j++) if (x[base + j] > m) m = x[base + j];
    let s = 0;
    for (let j = 0; j < c; j++) {
      const e = Math.exp(x[base + j] - m);
      y[base + j] = e;
      s += e;
    }
    for (let j = 0; j < c; j++) y[base + j] /= s;
  }
}
