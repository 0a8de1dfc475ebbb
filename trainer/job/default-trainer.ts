/**
 * The production wiring of the job: training through trainer/train, export through trainer/export,
 * publishing through trainer/publish/r2.ts (model files, then manifests, then latest.json).
 * Heavy modules load on first use, so `freetumor job --help` stays fast.
 */
import { publishModels } from '../publish/r2.ts';
import type { JobDeps } from './run.ts';
import type { S3Store } from './storage.ts';
import type {
  ExportOutcome,
  ExportRequest,
  JobTrainer,
  ModelPublisher,
  TrainOutcome,
  TrainRequest,
} from './trainer.ts';

export function r2Publisher(store: S3Store, prefix: string, log: (message: string) => void): ModelPublisher {
  return {
    async publish(modelsDir: string): Promise<{ keys: string[] }> {
      const result = await publishModels(
        modelsDir,
        { bucket: store.bucket, prefix },
        { client: store.client, log },
      );
      const keys: string[] = [];
      for (const m of Object.values(result.models)) if (m) keys.push(...m.files, m.manifest);
      keys.push(result.latestKey);
      return { keys };
    },
  };
}

export function tfjsTrainer(): JobTrainer {
  return {
    async train(request: TrainRequest): Promise<TrainOutcome> {
      const { trainRun } = await import('./tfjs-training.ts');
      return trainRun(request);
    },
    async export(request: ExportRequest): Promise<ExportOutcome> {
      const { exportRun } = await import('./tfjs-training.ts');
      return exportRun(request);
    },
  };
}

export function defaultJobDeps(store: S3Store, prefix: string, log: (message: string) => void): JobDeps {
  return { trainer: tfjsTrainer(), publisher: r2Publisher(store, prefix, log) };
}
