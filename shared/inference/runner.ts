/**
 * The ONNX runner the inference pipeline is given. One implementation per runtime:
 * onnxruntime-node in the CLI, onnxruntime-web (wasm) in the Worker, tfjs in parity tests.
 * The pipeline never asks which one it has.
 */
export interface Tensor5 {
  /** NCDHW. */
  dims: [number, number, number, number, number];
  data: Float32Array;
}

export interface OnnxRunner {
  /** Runs the model on one input; returns the named outputs (NCDHW float32). */
  run(inputs: Record<string, Tensor5>): Promise<Record<string, Tensor5>>;
  /** Frees native memory (no-op where the runtime has none to free). */
  release?(): Promise<void>;
}
