/**
 * The kernels engine (shared/engine) in Node: the threaded build of the wasm kernels on its own
 * shared memory, with worker threads splitting each conv, norm and pooling call.
 */
import { availableParallelism } from 'node:os';
import type { EngineOptions } from '../../shared/engine/engine.ts';
import { createKernelRunner, type KernelRunner } from '../../shared/engine/runner.ts';
import { ThreadedHost } from './wasm-runtime.ts';

export interface EngineRunnerOptions extends EngineOptions {
  /** Threads per call, the caller included; default: every core, at most 4. */
  threads?: number;
}

export function createEngineRunner(model: Uint8Array, options: EngineRunnerOptions = {}): KernelRunner {
  const host = new ThreadedHost(options.threads ?? Math.min(4, availableParallelism()));
  try {
    const runner = createKernelRunner(model, host, options);
    return {
      ...runner,
      release: async () => {
        await runner.release?.();
        await host.terminate();
      },
    };
  } catch (e) {
    void host.terminate();
    throw e;
  }
}
