/**
 * The conv3d wasm module (wasm/conv3d.c, built by wasm/build.sh) on one shared memory, plus a
 * small pool of worker threads that run the same exported functions on the same memory.
 *
 * Kernels are synchronous in tfjs, so dispatch is too: the calling thread posts a job into a
 * shared control block, runs its own part, then blocks in Atomics.wait until the workers are
 * done. Node allows Atomics.wait on the main thread. Buffers live in one bump arena that is reset
 * at the start of every kernel call (kernels never nest); the memory only grows.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { LimitError } from '../../shared/errors.ts';

export interface ConvExports {
  pack_filter(geom: number, w: number, wp: number): void;
  pack_filter_t(geom: number, w: number, wtp: number): void;
  conv_forward(
    geom: number,
    x: number,
    wp: number,
    y: number,
    col: number,
    chunk: number,
    p0: number,
    p1: number,
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
}

export type ConvExportName = keyof ConvExports;

const PAGE = 65536;
/** The module's shadow stack (64 KiB, unused by the kernels) and nothing else lives below this. */
const ARENA_START = 1 << 20;
const MAX_PAGES = 65536;
/** Control block per worker: state, function id, argument count, then the arguments. */
const SLOT_INTS = 16;
const IDLE = 0;
const POSTED = 1;
const DONE = 2;
const FAILED = 3;

const FUNCTIONS: ConvExportName[] = [
  'pack_filter',
  'pack_filter_t',
  'conv_forward',
  'conv_filter_grad',
  'conv_input_grad',
  'add_into',
];

/** Runs in each worker (as an eval'd script, so it needs no TypeScript loader). */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control, slot, names } = workerData;
const instance = new WebAssembly.Instance(module, { env: { memory } });
const ctrl = new Int32Array(control);
const base = slot * ${SLOT_INTS};
for (;;) {
  let state;
  while ((state = Atomics.load(ctrl, base)) !== ${POSTED}) Atomics.wait(ctrl, base, state);
  const fn = instance.exports[names[ctrl[base + 1]]];
  const n = ctrl[base + 2];
  const args = [];
  for (let i = 0; i < n; i++) args.push(ctrl[base + 3 + i]);
  let outcome = ${DONE};
  try {
    fn(...args);
  } catch {
    outcome = ${FAILED};
  }
  Atomics.store(ctrl, base, outcome);
  Atomics.notify(ctrl, base);
}
`;

export class ConvRuntime {
  readonly exports: ConvExports;
  readonly memory: WebAssembly.Memory;
  /** Threads that run parts of a call, the caller included. */
  readonly threads: number;
  private readonly module: WebAssembly.Module;
  private readonly control: Int32Array;
  private readonly workers: Worker[] = [];
  private top = ARENA_START;

  constructor(threads: number) {
    const bytes = readFileSync(new URL('./wasm/conv3d.wasm', import.meta.url));
    this.module = new WebAssembly.Module(bytes);
    this.memory = new WebAssembly.Memory({ initial: 256, maximum: MAX_PAGES, shared: true });
    const instance = new WebAssembly.Instance(this.module, { env: { memory: this.memory } });
    // The instance's exports are exactly the C functions that ConvExports lists.
    this.exports = instance.exports as unknown as ConvExports;
    this.threads = Math.max(1, Math.floor(threads));
    this.control = new Int32Array(new SharedArrayBuffer(4 * SLOT_INTS * this.threads));
    for (let slot = 1; slot < this.threads; slot++) {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: {
          module: this.module,
          memory: this.memory,
          control: this.control.buffer,
          slot,
          names: FUNCTIONS,
        },
      });
      worker.unref();
      this.workers.push(worker);
    }
  }

  /** Starts a new kernel call: everything allocated by the previous one is released. */
  reset(): void {
    this.top = ARENA_START;
  }

  /** Allocates `floats` float32 values (16-byte aligned) and returns the byte offset. */
  alloc(floats: number): number {
    const offset = this.top;
    const end = offset + Math.ceil((floats * 4) / 16) * 16;
    if (end > MAX_PAGES * PAGE) {
      throw new LimitError('conv3d kernel working memory in bytes (wasm32 limit)', MAX_PAGES * PAGE, end);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.top = end;
    return offset;
  }

  f32(offset: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, offset, length);
  }

  i32(offset: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, offset, length);
  }

  /** Copies `values` into a fresh arena allocation and returns its offset. */
  put(values: ArrayLike<number>): number {
    const offset = this.alloc(values.length);
    this.f32(offset, values.length).set(values);
    return offset;
  }

  /**
   * Calls `name` once per part with `argsOf(part)`; part 0 runs here, the others on workers,
   * all at the same time. Returns when every part has finished.
   */
  parallel(name: ConvExportName, parts: number, argsOf: (part: number) => number[]): void {
    const fnId = FUNCTIONS.indexOf(name);
    const posted: number[] = [];
    for (let part = 1; part < parts; part++) {
      const args = argsOf(part);
      const base = part * SLOT_INTS;
      this.control[base + 1] = fnId;
      this.control[base + 2] = args.length;
      for (let i = 0; i < args.length; i++) this.control[base + 3 + i] = args[i];
      Atomics.store(this.control, base, POSTED);
      Atomics.notify(this.control, base);
      posted.push(base);
    }
    const fn = this.exports[name] as (...args: number[]) => void;
    let failed = false;
    try {
      fn(...argsOf(0));
    } finally {
      // Even when this thread's part throws, the workers must finish before the arena is reused.
      for (const base of posted) {
        let state = Atomics.load(this.control, base);
        while (state === POSTED) {
          Atomics.wait(this.control, base, POSTED);
          state = Atomics.load(this.control, base);
        }
        failed ||= state === FAILED;
        Atomics.store(this.control, base, IDLE);
        Atomics.notify(this.control, base);
      }
    }
    if (failed) throw new Error(`conv3d kernels: ${name} failed on a worker thread`);
  }
}

let runtime: ConvRuntime | null = null;

/** Threads used by default: every core, capped at 4 (the kernels are memory-bound beyond that). */
export function defaultThreads(): number {
  const fromEnv = Number(process.env.FREETUMOR_KERNEL_THREADS);
  if (Number.isInteger(fromEnv) && fromEnv >= 1) return fromEnv;
  return Math.min(4, availableParallelism());
}

export function convRuntime(): ConvRuntime {
  runtime ??= new ConvRuntime(defaultThreads());
  return runtime;
}
