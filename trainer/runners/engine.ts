/**
 * Which inference engine the CLI runs an exported model on: onnxruntime-node (native kernels), or
 * the kernels engine (shared/engine: this project's wasm SIMD kernels, worker threads in Node).
 * `auto` takes the kernels engine, the faster of the two in `npm run bench -- infer` on this
 * project's U-Nets with two threads, and falls back to onnxruntime-node for a model whose ops the
 * engine does not cover. The choice is reported, so a user can see which engine ran.
 */
import { EngineUnsupported } from '../../shared/engine/plan.ts';
import type { OnnxRunner } from '../../shared/inference/runner.ts';
import { createEngineRunner } from '../kernels/engine-runner.ts';
import type { EngineChoice, EngineName } from './engine-choice.ts';
import { createNodeRunner } from './onnxruntime-node.ts';

export { ENGINE_CHOICES, type EngineChoice, type EngineName } from './engine-choice.ts';

export interface LocalRunner extends OnnxRunner {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
}

export interface RunnerOptions {
  engine?: EngineChoice;
  /** Threads per inference call; default: the engine's (every core, at most 4 for kernels). */
  threads?: number;
}

export async function createLocalRunner(
  model: Uint8Array,
  options: RunnerOptions = {},
): Promise<{ runner: LocalRunner; engine: EngineName }> {
  const choice = options.engine ?? 'auto';
  if (choice !== 'ort') {
    try {
      return { runner: createEngineRunner(model, { threads: options.threads }), engine: 'kernels' };
    } catch (e) {
      if (choice === 'kernels' || !(e instanceof EngineUnsupported)) throw e;
    }
  }
  return { runner: await createNodeRunner(model, { threads: options.threads }), engine: 'ort' };
}
