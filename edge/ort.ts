/**
 * onnxruntime-web (wasm) inside workerd, and the per-isolate session cache.
 *
 * workerd cannot compile wasm from bytes and has no script URL, so ORT cannot fetch or compile its
 * binary itself. The shim (docs/findings/edge-workers-onnxruntime.md) hands ORT a sentinel
 * `wasmBinary`, which makes it use the factory embedded in the bundle build, and answers the
 * `WebAssembly.instantiate` call on that sentinel with the module wrangler uploaded precompiled.
 */

import ortWasm from 'onnxruntime-web/ort-wasm-simd-threaded.wasm';
import * as ort from 'onnxruntime-web/wasm';
import { EngineUnsupported } from '../shared/engine/plan.ts';
import { createOrtRunner, type OrtModule, type OrtRunner } from '../shared/inference/ort-runner.ts';
import { createKernelsRunner, kernelsMemoryBytes } from './kernels-runner.ts';

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
 * The Worker's runner for a model file: the kernels engine (about 3x faster than onnxruntime-web here,
 * `npm run bench -- infer`), or onnxruntime-web for a model with ops the engine does not run.
 */
async function createRunner(bytes: Uint8Array): Promise<OrtRunner> {
  try {
    return await createKernelsRunner(bytes);
  } catch (e) {
    if (!(e instanceof EngineUnsupported)) throw e;
  }
  return createOrtRunner(ort as unknown as OrtModule, bytes, { executionProviders: ['wasm'] });
}

const runners = new Map<string, Promise<OrtRunner>>();

/**
 * One session per model key per isolate. Concurrent first requests share the same promise; a
 * rejected creation is dropped so the next request tries again instead of caching the failure.
 */
export function cachedRunner(key: string, load: () => Promise<Uint8Array>): Promise<OrtRunner> {
  let p = runners.get(key);
  if (!p) {
    p = load().then(createRunner);
    runners.set(key, p);
    p.catch(() => {
      if (runners.get(key) === p) runners.delete(key);
    });
  }
  return p;
}

/** Releases every cached session whose key is not in `keep` (an older model version). */
export async function releaseRunnersExcept(keep: Set<string>): Promise<void> {
  for (const [key, p] of runners) {
    if (keep.has(key)) continue;
    runners.delete(key);
    try {
      await (await p).release?.();
    } catch {
      // A session that never came up has nothing to release.
    }
  }
}

export function cachedRunnerKeys(): string[] {
  return [...runners.keys()];
}
