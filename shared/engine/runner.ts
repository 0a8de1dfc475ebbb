/**
 * The kernels engine as an OnnxRunner for the shared inference pipeline: the same interface the
 * ONNX Runtime runners implement, so the CLI and the Worker choose an engine in one place. The
 * host (wasm instance, memory, threads) is injected: shared/engine/host.ts makes the one-thread
 * host from a WebAssembly.Module, trainer/kernels/engine-host.ts the Node host with threads.
 */
import type { OnnxRunner, Tensor5 } from '../inference/runner.ts';
import { Engine, type EngineOptions } from './engine.ts';
import type { KernelHost } from './host.ts';
import { readOnnx } from './onnx-reader.ts';
import { planGraph } from './plan.ts';

export interface KernelRunner extends OnnxRunner {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Bytes of the engine's wasm memory (it only grows). */
  memoryBytes(): number;
}

/**
 * Parses and plans the model (throws EngineUnsupported for ops outside the engine's set). Runners on
 * the same host share its memory (one heap); release() returns this model's weights to it.
 */
export function createKernelRunner(
  model: Uint8Array,
  host: KernelHost,
  options: EngineOptions = {},
): KernelRunner {
  const plan = planGraph(readOnnx(model));
  const engine = new Engine(host, plan, options);
  return {
    inputNames: [plan.input],
    outputNames: plan.outputNames,
    memoryBytes: () => engine.memoryBytes,
    async run(inputs: Record<string, Tensor5>): Promise<Record<string, Tensor5>> {
      const names = Object.keys(inputs);
      if (names.length !== 1 || names[0] !== plan.input) {
        throw new RangeError(`the model takes one input named ${plan.input}, got ${names.join(', ')}`);
      }
      const x = inputs[plan.input];
      const out: Record<string, Tensor5> = {};
      for (const [name, t] of engine.run(x.data, x.dims)) out[name] = { dims: t.dims, data: t.data };
      return out;
    },
    async release(): Promise<void> {
      engine.release();
    },
  };
}
