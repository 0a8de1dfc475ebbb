/**
 * OnnxRunner over ONNX Runtime. onnxruntime-node (CLI) and onnxruntime-web (Worker, and Node tests)
 * expose the same InferenceSession/Tensor API, so the caller passes in whichever module it loaded and
 * this file imports neither: shared/ stays free of Node and of a particular runtime build.
 */
import type { OnnxRunner, Tensor5 } from './runner.ts';

/** The slice of the `ort` module this runner uses (structural, satisfied by both packages). */
export interface OrtModule {
  InferenceSession: { create(model: Uint8Array, options?: OrtSessionOptions): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
}

export interface OrtSessionOptions {
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  executionProviders?: string[];
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  enableCpuMemArena?: boolean;
  enableMemPattern?: boolean;
  executionMode?: 'sequential' | 'parallel';
  /** Fixes symbolic input dims (e.g. the patch size) so shapes are planned once. */
  freeDimensionOverrides?: Record<string, number>;
}

export interface OrtTensor {
  readonly dims: readonly number[];
  readonly data: unknown;
  readonly type: string;
  dispose?(): void;
}

export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

export interface OrtRunner extends OnnxRunner {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
}

export async function createOrtRunner(
  ort: OrtModule,
  model: Uint8Array,
  options: OrtSessionOptions = {},
): Promise<OrtRunner> {
  const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', ...options });
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(inputs: Record<string, Tensor5>): Promise<Record<string, Tensor5>> {
      const feeds: Record<string, OrtTensor> = {};
      for (const [name, t] of Object.entries(inputs)) feeds[name] = new ort.Tensor('float32', t.data, t.dims);
      const results = await session.run(feeds);
      const out: Record<string, Tensor5> = {};
      for (const [name, t] of Object.entries(results)) {
        if (t.type !== 'float32' || t.dims.length !== 5) {
          throw new Error(
            `model output ${name} is ${t.type} of rank ${t.dims.length}, expected float32 rank 5`,
          );
        }
        out[name] = { dims: [...t.dims] as Tensor5['dims'], data: t.data as Float32Array };
      }
      return out;
    },
    release: () => session.release(),
  };
}
