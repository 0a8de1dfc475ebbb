/**
 * The CLI's runner: onnxruntime-node (native CPU kernels, 2.5-5x faster than the wasm build in Node).
 * Loaded lazily so commands that do not infer start fast.
 */
import { createOrtRunner, type OrtModule, type OrtRunner } from '../../shared/inference/ort-runner.ts';

export interface NodeRunnerOptions {
  /** Intra-op threads; default: the runtime's choice (all cores). */
  threads?: number;
}

export async function createNodeRunner(
  model: Uint8Array,
  options: NodeRunnerOptions = {},
): Promise<OrtRunner> {
  const ort = (await import('onnxruntime-node')) as unknown as OrtModule;
  return createOrtRunner(ort, model, {
    executionProviders: ['cpu'],
    ...(options.threads ? { intraOpNumThreads: options.threads, interOpNumThreads: 1 } : {}),
  });
}

/** onnxruntime-web's wasm build in Node (the Worker's runtime), for parity tests and benchmarks. */
export async function createWebRunner(
  model: Uint8Array,
  options: NodeRunnerOptions = {},
): Promise<OrtRunner> {
  const mod = await import('onnxruntime-web');
  mod.env.wasm.numThreads = options.threads ?? 1;
  return createOrtRunner(mod as unknown as OrtModule, model, { executionProviders: ['wasm'] });
}
