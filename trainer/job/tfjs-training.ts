/**
 * The job's trainer on TensorFlow.js: trainer/train's recipe (trainInFolder) and trainer/export's
 * exporter.
 * Imported lazily by default-trainer.ts (it pulls in tfjs).
 */
import { join } from 'node:path';
import { FreeTumorError } from '../../shared/errors.ts';
import { selectBackend } from '../backend.ts';
import { exportRun as exportRunFolder } from '../export/from-run.ts';
import { parseRunConfig } from '../train/config.ts';
import { trainInFolder } from '../train/recipe.ts';
import type { ExportOutcome, ExportRequest, TrainOutcome, TrainRequest } from './trainer.ts';

export async function trainRun(request: TrainRequest): Promise<TrainOutcome> {
  const backend = await selectBackend(request.backend);
  request.log(`backend: ${backend.name} (${backend.detail})`);
  const config = parseRunConfig(request.config);
  // The step loop otherwise runs on promise callbacks only, so timers (checkpoint uploads) and
  // signal handlers (SIGTERM) would wait for the next file write: runTraining yields to the event
  // loop once per step.
  const r = await trainInFolder(config, request.runDir, {
    log: request.log,
    shouldStop: request.shouldStop,
    samples: false,
  });
  return { steps: r.summary.steps, resumedFrom: r.summary.resumedFrom };
}

export async function exportRun(request: ExportRequest): Promise<ExportOutcome> {
  const common = {
    version: request.version,
    quantize: request.quantize ? ('int8' as const) : ('none' as const),
  };
  const [segmentor] = await exportRunFolder(request.runDir, request.outDir, {
    ...common,
    roles: ['segmentor'],
  });
  if (!segmentor) throw new FreeTumorError('not_found', 'the segmentation run exported no segmentor');
  if (request.synthesisRunDir) {
    await exportRunFolder(request.synthesisRunDir, request.outDir, {
      ...common,
      roles: ['generator', 'discriminator'],
    });
  }
  return { segmentorDir: join(request.outDir, 'segmentor'), manifest: segmentor.manifest };
}
