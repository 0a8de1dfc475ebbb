/**
 * ORT session options of the Worker, apart from edge/ort.ts so that Node (the bench) can read them
 * without the wasm import. Chosen from the `npm run bench -- edge` rows "ORT-web 24^3 window, ...":
 * all graph optimizations, the CPU memory arena off (its chunks stay in the wasm heap, which only
 * grows), sequential execution (one thread).
 */
import type { OrtSessionOptions } from '../shared/inference/ort-runner.ts';

export const WORKER_SESSION_OPTIONS: OrtSessionOptions = {
  executionProviders: ['wasm'],
  graphOptimizationLevel: 'all',
  enableCpuMemArena: false,
  executionMode: 'sequential',
};
