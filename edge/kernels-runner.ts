/**
 * The kernels engine (shared/engine) in the Worker: the one-thread build of the project's wasm SIMD
 * kernels, imported as a precompiled module (workerd cannot compile wasm from bytes), on a plain
 * memory of its own per model. It runs the exported U-Nets about 3x faster than onnxruntime-web's wasm
 * build (`npm run bench -- infer`: kernels-st against ort-web). A model with ops outside the engine's
 * set throws EngineUnsupported, and the caller falls back to onnxruntime-web.
 */

import { createSingleThreadHost } from '../shared/engine/host.ts';
import { createKernelRunner, type KernelRunner } from '../shared/engine/runner.ts';
import kernelsWasm from '../shared/engine/wasm/kernels-st.wasm';

const live = new Set<KernelRunner>();

export async function createKernelsRunner(model: Uint8Array): Promise<KernelRunner> {
  const runner = createKernelRunner(model, await createSingleThreadHost(kernelsWasm));
  live.add(runner);
  return {
    ...runner,
    release: async () => {
      live.delete(runner);
    },
  };
}

/** Bytes of the engines' wasm memories (each only grows until its runner is released). */
export function kernelsMemoryBytes(): number {
  let bytes = 0;
  for (const r of live) bytes += r.memoryBytes();
  return bytes;
}
