/**
 * Output buffers for the fast kernels, recycled once tfjs disposes their tensor. A fresh 100 MB
 * Float32Array costs more to touch (page faults, zeroing by the kernel) than most element-wise kernels
 * cost to compute, and a 96^3 training step allocates gigabytes of them. A buffer goes back to the pool
 * only when it is certainly unreachable:
 * - the pool issued it (buffers from stock kernels or user data are never taken);
 * - no live tensor holds it or a view of it (every values array that enters the cpu backend through
 *   write or move is counted per ArrayBuffer, and uncounted when its data is deleted);
 * - it was never handed out of the backend: engine.read/readSync (Tensor.data, dataSync) and moveData
 *   (backend switches) mark the buffer as exposed for good, since the caller may keep the array.
 * install() hooks one cpu backend and its engine; uninstall() puts the originals back.
 */
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type * as tf from '@tensorflow/tfjs-core';
import { engine as tfEngine } from '@tensorflow/tfjs-core';

/** Below this many floats a fresh array is cheap; only larger ones are pooled. */
const MIN_FLOATS = 1 << 18;
/** Free bytes the pool keeps at most; the oldest free buffers are dropped past it. */
const MAX_FREE_BYTES = 2 * 1024 ** 3;

const issued = new WeakSet<ArrayBufferLike>();
const exposed = new WeakSet<ArrayBufferLike>();
const users = new WeakMap<ArrayBufferLike, number>();
const free = new Map<number, Float32Array[]>();
/** Free buffers in the order they were freed (for eviction). */
const order: Float32Array[] = [];
let freeBytes = 0;

/**
 * An array of n floats with arbitrary contents (the caller writes every element), for an output of a
 * kernel running on `backend`. Pooling starts with the first call (enablePooling) and ends with
 * uninstallBufferPool.
 */
export function allocOutput(backend: MathBackendCPU, n: number): Float32Array {
  if (n < MIN_FLOATS || !enabled) return new Float32Array(n);
  if (installed?.backend !== backend) installBufferPool(backend, tfEngine());
  const list = free.get(n);
  const reused = list?.pop();
  if (reused) {
    freeBytes -= reused.byteLength;
    order.splice(order.indexOf(reused), 1);
    return reused;
  }
  const out = new Float32Array(n);
  issued.add(out.buffer);
  return out;
}

/** An array of n zeros. */
export function allocZeroed(backend: MathBackendCPU, n: number): Float32Array {
  const out = allocOutput(backend, n);
  if (n >= MIN_FLOATS) out.fill(0);
  return out;
}

function bufferOf(values: unknown): ArrayBufferLike | null {
  return ArrayBuffer.isView(values) ? values.buffer : null;
}

function release(values: unknown): void {
  const buffer = bufferOf(values);
  if (!buffer) return;
  const left = (users.get(buffer) ?? 1) - 1;
  users.set(buffer, left);
  if (left > 0 || !issued.has(buffer) || exposed.has(buffer)) return;
  const array = values as Float32Array;
  if (!(array instanceof Float32Array) || array.byteOffset !== 0 || array.byteLength !== buffer.byteLength)
    return;
  const list = free.get(array.length) ?? [];
  list.push(array);
  free.set(array.length, list);
  order.push(array);
  freeBytes += array.byteLength;
  while (freeBytes > MAX_FREE_BYTES && order.length > 0) {
    const old = order.shift()!;
    const same = free.get(old.length)!;
    same.splice(same.indexOf(old), 1);
    freeBytes -= old.byteLength;
  }
}

function count(values: unknown): void {
  const buffer = bufferOf(values);
  if (buffer) users.set(buffer, (users.get(buffer) ?? 0) + 1);
}

type Backend = MathBackendCPU & {
  data: { get(id: object): { values?: unknown } | undefined; has(id: object): boolean };
};
type Engine = ReturnType<typeof tf.engine> & {
  moveData(backend: unknown, dataId: object): void;
};

let installed: { backend: Backend; engine: Engine; restore: () => void } | null = null;
let enabled = false;

/** Lets allocOutput pool (registerFastCpuKernels); the hooks go in at the first pooled allocation. */
export function enablePooling(): void {
  enabled = true;
}

function expose(backend: Backend, dataId: object): void {
  const buffer = bufferOf(backend.data.has(dataId) ? backend.data.get(dataId)?.values : null);
  if (buffer) exposed.add(buffer);
}

/** Hooks `backend` (the cpu backend) and `engine`; idempotent for the same pair. */
function installBufferPool(backend: MathBackendCPU, engine: ReturnType<typeof tf.engine>): void {
  if (installed?.backend === backend) return;
  installed?.restore();
  free.clear();
  order.length = 0;
  freeBytes = 0;
  const b = backend as Backend;
  const e = engine as Engine;
  const original = {
    write: b.write,
    move: b.move,
    disposeData: b.disposeData,
    readSync: e.readSync,
    read: e.read,
    moveData: e.moveData,
  };
  b.write = function (values, shape, dtype) {
    count(values);
    return original.write.call(this, values, shape, dtype);
  };
  b.move = function (dataId, values, shape, dtype, refCount) {
    count(values);
    original.move.call(this, dataId, values, shape, dtype, refCount);
  };
  b.disposeData = function (dataId, force) {
    const values = this.data.has(dataId) ? (this as Backend).data.get(dataId)?.values : undefined;
    const done = original.disposeData.call(this, dataId, force);
    if (values !== undefined && !this.data.has(dataId)) release(values);
    return done;
  };
  e.readSync = function (dataId) {
    expose(b, dataId);
    return original.readSync.call(this, dataId);
  };
  e.read = function (dataId) {
    expose(b, dataId);
    return original.read.call(this, dataId);
  };
  e.moveData = function (backendOf, dataId) {
    expose(b, dataId);
    return original.moveData.call(this, backendOf, dataId);
  };
  installed = {
    backend: b,
    engine: e,
    restore: () => {
      b.write = original.write;
      b.move = original.move;
      b.disposeData = original.disposeData;
      e.readSync = original.readSync;
      e.read = original.read;
      e.moveData = original.moveData;
    },
  };
}

/** Puts the backend's and engine's own methods back, empties the pool and stops pooling. */
export function uninstallBufferPool(): void {
  enabled = false;
  installed?.restore();
  installed = null;
  free.clear();
  order.length = 0;
  freeBytes = 0;
}

/** Bytes of free buffers the pool holds (for tests and diagnostics). */
export function pooledBytes(): number {
  return freeBytes;
}
