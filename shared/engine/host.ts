/**
 * The wasm kernels (shared/engine/wasm, built from conv3d.c + ops.c) as the engine sees them: the
 * exported functions, the linear memory, and a `parallel` that runs one function over several
 * parts at once. This file creates the one-thread host from an injected WebAssembly.Module (the
 * Worker imports kernels-st.wasm as a module; workerd cannot compile bytes at run time). The Node
 * host with worker threads lives in trainer/kernels/engine-host.ts. No Node or Workers API here.
 */
import { LimitError } from '../errors.ts';

/** The exported C functions; pointers and sizes are byte offsets and int32 counts. */
export interface KernelExports {
  pack_filter(geom: number, w: number, wp: number): void;
  pack_filter_t(geom: number, w: number, wtp: number): void;
  pack_b(src: number, L: number, cols: number, strideL: number, strideCol: number, out: number): void;
  packed_b_floats(L: number, cols: number): number;
  conv_forward(
    geom: number,
    x: number,
    x2: number,
    wp: number,
    bias: number,
    y: number,
    col: number,
    chunk: number,
    p0: number,
    p1: number,
    flags: number,
  ): void;
  conv_transpose_forward(
    geom: number,
    x: number,
    wp: number,
    bias: number,
    y: number,
    tmp: number,
    chunk: number,
    p0: number,
    p1: number,
    flags: number,
  ): void;
  conv_filter_grad(
    geom: number,
    x: number,
    dy: number,
    dw: number,
    col: number,
    dyp: number,
    chunk: number,
    p0: number,
    p1: number,
  ): void;
  conv_input_grad(
    geom: number,
    dy: number,
    wtp: number,
    dx: number,
    col: number,
    chunk: number,
    p0: number,
    p1: number,
  ): void;
  add_into(dst: number, src: number, i0: number, i1: number): void;
  scratch_floats(geom: number, chunk: number): number;
  filter_panel_floats(geom: number): number;
  chan_moments(x: number, C: number, v0: number, v1: number, shift: number, sum: number, sq: number): void;
  chan_affine(
    x: number,
    y: number,
    C: number,
    v0: number,
    v1: number,
    scale: number,
    shift: number,
    relu: number,
  ): void;
  norm_grad_moments(
    dy: number,
    x: number,
    C: number,
    v0: number,
    v1: number,
    mu: number,
    s1: number,
    s2: number,
  ): void;
  norm_grad_apply(
    dy: number,
    x: number,
    dx: number,
    C: number,
    v0: number,
    v1: number,
    a: number,
    b: number,
    mu: number,
    k: number,
  ): void;
  relu_forward(x: number, y: number, i0: number, i1: number): void;
  relu_grad(dy: number, x: number, dx: number, i0: number, i1: number): void;
  bias_add(x: number, y: number, C: number, v0: number, v1: number, bias: number): void;
  chan_sum(x: number, C: number, v0: number, v1: number, out: number): void;
  max_pool(geom: number, x: number, y: number, p0: number, p1: number): void;
  wino_scratch_floats(geom: number, chunk: number): number;
  wino_grad_scratch_floats(geom: number, chunk: number): number;
  wino_filter_grad(
    geom: number,
    x: number,
    dy: number,
    du: number,
    scratch: number,
    chunk: number,
    t0: number,
    t1: number,
  ): void;
  wino_forward(
    geom: number,
    x: number,
    x2: number,
    up: number,
    bias: number,
    y: number,
    scratch: number,
    chunk: number,
    t0: number,
    t1: number,
    flags: number,
  ): void;
}

export type KernelName = keyof KernelExports;

/** The functions worker threads may be asked to run (indices are shared with the workers). */
export const PARALLEL_FUNCTIONS: readonly KernelName[] = [
  'pack_filter',
  'pack_filter_t',
  'conv_forward',
  'conv_transpose_forward',
  'conv_filter_grad',
  'conv_input_grad',
  'add_into',
  'chan_moments',
  'chan_affine',
  'norm_grad_moments',
  'norm_grad_apply',
  'relu_forward',
  'relu_grad',
  'bias_add',
  'chan_sum',
  'max_pool',
  'wino_forward',
  'wino_filter_grad',
];

export interface KernelHost {
  readonly exports: KernelExports;
  readonly memory: WebAssembly.Memory;
  /** Threads a call can be split over, the caller included. */
  readonly threads: number;
  /** Calls `name` once per part with argsOf(part), all parts at once; returns when all are done. */
  parallel(name: KernelName, parts: number, argsOf: (part: number) => number[]): void;
}

/** Bytes below this belong to the module (its 64 KiB shadow stack); the heap starts here. */
export const HEAP_START = 1 << 20;
const PAGE = 65536;

/**
 * A one-thread host: the module on a plain (not shared) memory. Accepts kernels-st.wasm; the
 * threaded kernels.wasm needs shared memory and the Node host.
 */
export async function createSingleThreadHost(module: WebAssembly.Module): Promise<KernelHost> {
  const memory = new WebAssembly.Memory({ initial: HEAP_START / PAGE + 1 });
  // Given a Module, instantiate resolves to the Instance (no compilation at run time).
  const instance = (await WebAssembly.instantiate(module, {
    env: { memory },
  })) as unknown as WebAssembly.Instance;
  // The instance's exports are exactly the C functions KernelExports lists.
  const exports = instance.exports as unknown as KernelExports;
  return {
    exports,
    memory,
    threads: 1,
    parallel(name, parts, argsOf) {
      const fn = exports[name] as (...args: number[]) => void;
      for (let part = 0; part < parts; part++) fn(...argsOf(part));
    },
  };
}

/**
 * A first-fit allocator over the host's memory from HEAP_START, with coalescing on free: the
 * engine keeps weights for the session and frees each activation after its last use. Blocks are
 * 64-byte aligned (a cache line). The memory grows on demand and never shrinks (wasm cannot).
 */
export class Heap {
  readonly limitBytes: number;
  private readonly memory: WebAssembly.Memory;
  private top = HEAP_START;
  /** Free blocks [offset, bytes], sorted by offset. */
  private free: Array<[number, number]> = [];
  private readonly sizes = new Map<number, number>();

  constructor(memory: WebAssembly.Memory, limitBytes: number) {
    this.memory = memory;
    this.limitBytes = limitBytes;
  }

  /** Bytes from the heap's start to its highest block end (what the memory must hold). */
  get highWater(): number {
    return this.top;
  }

  /** Allocates `floats` float32 (or `floats` * 4 bytes of anything); returns the byte offset. */
  alloc(floats: number): number {
    const bytes = Math.max(64, Math.ceil((floats * 4) / 64) * 64);
    for (let i = 0; i < this.free.length; i++) {
      const [off, size] = this.free[i];
      if (size < bytes) continue;
      if (size === bytes) this.free.splice(i, 1);
      else this.free[i] = [off + bytes, size - bytes];
      this.sizes.set(off, bytes);
      return off;
    }
    const off = this.top;
    const end = off + bytes;
    if (end > this.limitBytes) {
      throw new LimitError('kernels engine working memory in bytes', this.limitBytes, end);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.top = end;
    this.sizes.set(off, bytes);
    return off;
  }

  release(off: number): void {
    const bytes = this.sizes.get(off);
    if (bytes === undefined) throw new Error(`engine heap: ${off} is not an allocated block`);
    this.sizes.delete(off);
    let i = 0;
    while (i < this.free.length && this.free[i][0] < off) i++;
    this.free.splice(i, 0, [off, bytes]);
    // Merge with the next block, then with the previous one.
    if (i + 1 < this.free.length && this.free[i][0] + this.free[i][1] === this.free[i + 1][0]) {
      this.free[i][1] += this.free[i + 1][1];
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1][0] + this.free[i - 1][1] === this.free[i][0]) {
      this.free[i - 1][1] += this.free[i][1];
      this.free.splice(i, 1);
      i--;
    }
    // A free block at the top goes back to the untouched region.
    const last = this.free[this.free.length - 1];
    if (last && last[0] + last[1] === this.top) {
      this.top = last[0];
      this.free.pop();
    }
  }

  f32(off: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, off, length);
  }

  f64(off: number, length: number): Float64Array {
    return new Float64Array(this.memory.buffer, off, length);
  }

  i32(off: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, off, length);
  }

  /** Copies values into a new block. */
  put(values: ArrayLike<number>): number {
    const off = this.alloc(values.length);
    this.f32(off, values.length).set(values);
    return off;
  }
}
