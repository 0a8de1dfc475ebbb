/**
 * What the job needs from the training and export code, as one small interface: the job is the
 * orchestration (data in, gate, publish, resume) and stays the same whichever way models are
 * trained. The production implementation is in default-trainer.ts.
 */
import type { ModelManifest } from '../../shared/model/manifest.ts';
import type { BackendName } from '../backend.ts';

export type TrainKind = 'segmentation' | 'synthesis';

export interface TrainRequest {
  kind: TrainKind;
  /** A raw run config (trainer/train/config.ts), validated by the trainer. */
  config: Record<string, unknown>;
  /** The run folder; holding a checkpoint means "resume from it". */
  runDir: string;
  backend: BackendName;
  log: (message: string) => void;
  /** Polled after each step: true ends the run early with a checkpoint (spot reclaim notice). */
  shouldStop: () => boolean;
}

export interface TrainOutcome {
  steps: number;
  /** The step the run resumed from, or null for a fresh run. */
  resumedFrom: number | null;
}

export interface ExportRequest {
  /** The segmentation run folder. */
  runDir: string;
  /** Written as `<outDir>/<role>/manifest.json` + ONNX files. */
  outDir: string;
  version: string;
  /** Also write int8 weights (what the edge serves). */
  quantize: boolean;
  /** The synthesis run folder, when one was trained (its generator/discriminator are exported too). */
  synthesisRunDir?: string;
  /** Names of the data the model was trained on (for the manifest). */
  datasets: string[];
}

export interface ExportOutcome {
  /** `<outDir>/segmentor`. */
  segmentorDir: string;
  manifest: ModelManifest;
}

export interface JobTrainer {
  train(request: TrainRequest): Promise<TrainOutcome>;
  export(request: ExportRequest): Promise<ExportOutcome>;
}

/** Uploads an exported model folder (every role in it) and moves `latest.json` to it, last. */
export interface ModelPublisher {
  publish(modelsDir: string, version: string): Promise<{ keys: string[] }>;
}
