/**
 * The kernels engine (shared/engine) in the Worker: the one-thread build of the project's wasm SIMD
 * kernels, imported as a precompiled module (workerd cannot compile wasm from bytes). One host per
 * isolate: every model's engine shares its memory, so the segmentor's and the discriminator's
 * activations reuse the same bytes (requests run one at a time) and the memory, which only grows,
 * holds one run's working set plus the weights. It runs the exported U-Nets about 3x faster than
 * onnxruntime-web's wasm build (`npm run bench -- infer`: kernels-st against ort-web). A model with ops
 * outside the engine's set throws EngineUnsupported, and the caller falls back to onnxruntime-web.
 */

import { createSingleThreadHost, type KernelHost } from '../shared/engine/host.ts';
import { createKernelRunner, type KernelRunner } from '../shared/engine/runner.ts';
import kernelsWasm from '../shared/engine/wasm/kernels-st.wasm';

let pending: Promise<KernelHost> | null = null;
let ready: KernelHost | null = null;

export async function createKernelsRunner(model: Uint8Array): Promise<KernelRunner> {
  pending ??= createSingleThreadHost(kernelsWasm).then((h) => {
    ready = h;
    return h;
  });
  return createKernelRunner(model, await pending);
}

/** Bytes of the engines' shared wasm memory (it only grows), or 0 before the first model. */
export function kernelsMemoryBytes(): number {
  return ready?.memory.buffer.byteLength ?? 0;
}
