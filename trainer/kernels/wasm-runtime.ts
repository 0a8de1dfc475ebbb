/**
 * The wasm kernels (shared/engine/wasm: conv3d.c + ops.c, built by build.sh) on one shared memory,
 * plus a small pool of worker threads that run the same exported functions on the same memory.
 * The trainer's tfjs kernels use one such runtime (ConvRuntime, below); the ONNX engine in Node
 * makes its own host on its own memory with the same pool (engine-host.ts).
 *
 * Kernels are synchronous in tfjs, so dispatch is too: the calling thread posts a job into a
 * shared control block, runs its own part, then blocks in Atomics.wait until the workers are
 * done. Node allows Atomics.wait on the main thread. ConvRuntime's buffers live in one bump arena
 * that is reset at the start of every kernel call (kernels never nest); the memory only grows.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import {
  HEAP_START,
  type KernelExports,
  type KernelHost,
  type KernelName,
  PARALLEL_FUNCTIONS,
} from '../../shared/engine/host.ts';
import { LimitError } from '../../shared/errors.ts';

export type ConvExports = KernelExports;
export type ConvExportName = KernelName;

const PAGE = 65536;
/** The module's shadow stack (64 KiB, unused by the kernels) and nothing else lives below this. */
const ARENA_START = HEAP_START;
const MAX_PAGES = 65536;
/** Control block per worker: state, function id, argument count, then the arguments. */
const SLOT_INTS = 16;
const IDLE = 0;
const POSTED = 1;
const DONE = 2;
const FAILED = 3;

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

let compiled: WebAssembly.Module | null = null;

/** The threaded build (shared memory), compiled once per process. */
export function kernelModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(
    readFileSync(new URL('../../shared/engine/wasm/kernels.wasm', import.meta.url)),
  );
  return compiled;
}

/** A fresh shared memory with the kernels instantiated on it, and worker threads on the same memory. */
export class ThreadedHost implements KernelHost {
  readonly exports: KernelExports;
  readonly memory: WebAssembly.Memory;
  /** Threads that run parts of a call, the caller included. */
  readonly threads: number;
  private readonly control: Int32Array;
  private readonly workers: Worker[] = [];

  constructor(threads: number) {
    const module = kernelModule();
    this.memory = new WebAssembly.Memory({
      initial: ARENA_START / PAGE + 1,
      maximum: MAX_PAGES,
      shared: true,
    });
    const instance = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    // The instance's exports are exactly the C functions that KernelExports lists.
    this.exports = instance.exports as unknown as KernelExports;
    this.threads = Math.max(1, Math.floor(threads));
    this.control = new Int32Array(new SharedArrayBuffer(4 * SLOT_INTS * this.threads));
    for (let slot = 1; slot < this.threads; slot++) {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: {
          module,
          memory: this.memory,
          control: this.control.buffer,
          slot,
          names: PARALLEL_FUNCTIONS,
        },
      });
      worker.unref();
      this.workers.push(worker);
    }
  }

  /**
   * Calls `name` once per part with `argsOf(part)`; part 0 runs here, the others on workers,
   * all at the same time. Returns when every part has finished.
   */
  parallel(name: KernelName, parts: number, argsOf: (part: number) => number[]): void {
    if (parts > this.threads) throw new Error(`kernels: ${parts} parts for ${this.threads} threads`);
    const fnId = PARALLEL_FUNCTIONS.indexOf(name);
    if (fnId < 0 && parts > 1) throw new Error(`kernels: ${name} cannot run on worker threads`);
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
      // Even when this thread's part throws, the workers must finish before buffers are reused.
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
    if (failed) throw new Error(`kernels: ${name} failed on a worker thread`);
  }

  /** Ends the worker threads (they are unref'd, so a process exits without this). */
  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** The trainer's tfjs kernels' runtime: a threaded host plus a bump arena reset per kernel call. */
export class ConvRuntime {
  readonly host: ThreadedHost;
  readonly exports: KernelExports;
  readonly memory: WebAssembly.Memory;
  readonly threads: number;
  private top = ARENA_START;

  constructor(threads: number) {
    this.host = new ThreadedHost(threads);
    this.exports = this.host.exports;
    this.memory = this.host.memory;
    this.threads = this.host.threads;
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

  f64(offset: number, length: number): Float64Array {
    return new Float64Array(this.memory.buffer, offset, length);
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

  parallel(name: ConvExportName, parts: number, argsOf: (part: number) => number[]): void {
    this.host.parallel(name, parts, argsOf);
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
