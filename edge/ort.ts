/**
 * onnxruntime-web (wasm) inside workerd, and the per-isolate session cache.
 *
 * workerd cannot compile wasm from bytes and has no script URL, so ORT cannot fetch or compile its
 * binary itself. The shim (docs/findings/edge-workers-onnxruntime.md) hands ORT a sentinel
 * `wasmBinary`, which makes it use the factory embedded in the bundle build, and answers the
 * `WebAssembly.instantiate` call on that sentinel with the module wrangler uploaded precompiled.
 *
 * This file is the one place the Worker creates runners (`createRunner`): another engine (the
 * project's own kernels) plugs in here without touching the routes or the registry.
 */

import ortWasm from 'onnxruntime-web/ort-wasm-simd-threaded.wasm';
import * as ort from 'onnxruntime-web/wasm';
import { EngineUnsupported } from '../shared/engine/plan.ts';
import { createOrtRunner, type OrtModule, type OrtRunner } from '../shared/inference/ort-runner.ts';
import { createKernelsRunner, kernelsMemoryBytes } from './kernels-runner.ts';
import { WORKER_SESSION_OPTIONS } from './ort-options.ts';

const SENTINEL = new ArrayBuffer(8);
let wasmMemory: WebAssembly.Memory | null = null;

type Instantiate = (source: unknown, imports?: WebAssembly.Imports) => Promise<unknown>;
const originalInstantiate = WebAssembly.instantiate.bind(WebAssembly) as Instantiate;

function findMemory(
  imports: WebAssembly.Imports | undefined,
  instance: WebAssembly.Instance,
): WebAssembly.Memory | null {
  for (const ns of Object.values(imports ?? {})) {
    for (const v of Object.values(ns)) if (v instanceof WebAssembly.Memory) return v;
  }
  for (const v of Object.values(instance.exports)) if (v instanceof WebAssembly.Memory) return v;
  return null;
}

function isSentinel(source: unknown): boolean {
  return source === SENTINEL || (ArrayBuffer.isView(source) && source.buffer === SENTINEL);
}

// Why a global patch: ORT exposes no `instantiateWasm` hook through `env.wasm`.
(WebAssembly as unknown as { instantiate: Instantiate }).instantiate = async (source, imports) => {
  if (!isSentinel(source)) return originalInstantiate(source, imports);
  const instance = (await originalInstantiate(ortWasm, imports)) as WebAssembly.Instance;
  wasmMemory = findMemory(imports, instance);
  return { instance, module: ortWasm };
};

ort.env.wasm.numThreads = 1;
ort.env.wasm.proxy = false;
ort.env.wasm.wasmBinary = SENTINEL;
ort.env.logLevel = 'error';

export { ort };

/** Bytes of wasm linear memory: ORT's (it only grows) plus the kernels engines' (kernels-runner.ts). */
export function wasmMemoryBytes(): number {
  return (wasmMemory?.buffer.byteLength ?? 0) + kernelsMemoryBytes();
}

/**
 * The Worker's runner for a model file, the one place a runner is made: the kernels engine
 * (kernels-runner.ts, about 3x faster than onnxruntime-web here: `npm run bench -- infer`), or
 * onnxruntime-web for a model with ops the engine does not run.
 */
export async function createRunner(bytes: Uint8Array): Promise<OrtRunner> {
  try {
    return await createKernelsRunner(bytes);
  } catch (e) {
    if (!(e instanceof EngineUnsupported)) throw e;
  }
  return createOrtRunner(ort as unknown as OrtModule, bytes, WORKER_SESSION_OPTIONS);
}

interface Entry {
  runner: Promise<OrtRunner>;
  /** Requests using the session now. */
  refs: number;
  /** Replaced: released as soon as no request uses it. */
  retired: boolean;
}

const runners = new Map<string, Entry>();

/** The cache key of a model file: its R2 key and its sha256 (an overwritten file is a new session). */
export function runnerKey(fileKey: string, sha256: string): string {
  return `${fileKey}#${sha256}`;
}

/** A session in use; `release()` ends this use (the session itself stays cached). */
export interface RunnerLease {
  runner: OrtRunner;
  release(): void;
}

/**
 * One session per model file and sha256 per isolate, counted while in use. Concurrent first requests
 * share the same promise; a rejected creation is dropped so the next request tries again instead of
 * caching the failure.
 */
export async function leaseRunner(key: string, load: () => Promise<Uint8Array>): Promise<RunnerLease> {
  let e = runners.get(key);
  if (!e) {
    const runner = load().then(createRunner);
    const entry: Entry = { runner, refs: 0, retired: false };
    runners.set(key, entry);
    runner.catch(() => {
      if (runners.get(key) === entry) runners.delete(key);
    });
    e = entry;
  }
  const entry = e;
  entry.refs++;
  let runner: OrtRunner;
  try {
    runner = await entry.runner;
  } catch (err) {
    entry.refs--;
    throw err;
  }
  let released = false;
  return {
    runner,
    release() {
      if (released) return;
      released = true;
      entry.refs--;
      if (entry.refs === 0 && entry.retired) void dispose(entry);
    },
  };
}

async function dispose(entry: Entry): Promise<void> {
  try {
    await (await entry.runner).release?.();
  } catch {
    // A session that never came up has nothing to release.
  }
}

/**
 * Retires every cached session whose key is not in `keep` (a replaced version or an overwritten
 * file): it leaves the cache now and is released once no request uses it.
 */
export async function releaseRunnersExcept(keep: Set<string>): Promise<void> {
  for (const [key, entry] of runners) {
    if (keep.has(key)) continue;
    runners.delete(key);
    entry.retired = true;
    if (entry.refs === 0) await dispose(entry);
  }
}

export function cachedRunnerKeys(): string[] {
  return [...runners.keys()];
}

/** Whether a session for `key` is made and ready (no load is started). */
export async function runnerReady(key: string): Promise<boolean> {
  const e = runners.get(key);
  if (!e) return false;
  try {
    await e.runner;
    return true;
  } catch {
    return false;
  }
}
