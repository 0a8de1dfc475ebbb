/**
 * The job's trainer on TensorFlow.js: trainer/train's run loop with the segmentation or synthesis
 * trainer, models of earlier runs loaded from their run folders, and trainer/export's exporter.
 * Imported lazily by default-trainer.ts (it pulls in tfjs).
 */
import { join } from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { FreeTumorError } from '../../shared/errors.ts';
import type { ModelRole } from '../../shared/model/manifest.ts';
import { selectBackend } from '../backend.ts';
import { loadCases, prepareData } from '../data/prepare.ts';
import { exportRun as exportRunFolder } from '../export/from-run.ts';
import { parseRunConfig } from '../train/config.ts';
import { loadRunModel } from '../train/load.ts';
import { runTraining } from '../train/run.ts';
import { createSegmentationTrainer } from '../train/segmentation.ts';
import { createSynthesisTrainer } from '../train/synthesis.ts';
import type { ExportOutcome, ExportRequest, TrainOutcome, TrainRequest } from './trainer.ts';

export async function trainRun(request: TrainRequest): Promise<TrainOutcome> {
  const backend = await selectBackend(request.backend);
  request.log(`backend: ${backend.name} (${backend.detail})`);
  const config = parseRunConfig(request.config);
  const data = await prepareData(config, config.data.cacheDir ?? join(request.runDir, 'cache'), request.log);
  const loaded: LayersModel[] = [];
  const load = async (dir: string | null, role: ModelRole) => {
    if (!dir) return null;
    const { model } = await loadRunModel(dir, role);
    loaded.push(model);
    return model;
  };
  try {
    let trainer: ReturnType<typeof createSegmentationTrainer>;
    if (config.kind === 'synthesis') {
      const segmentor = await load(config.synthesis.segmentorRun, 'segmentor');
      if (!segmentor)
        throw new FreeTumorError('invalid_argument', 'synthesis training needs synthesis.segmentorRun');
      trainer = createSynthesisTrainer(config, { segmentor, samplesDir: null });
    } else {
      const s = config.segmentation;
      trainer = createSegmentationTrainer(config, {
        generator: await load(s.synthesisRun, 'generator'),
        discriminator: await load(s.synthesisRun, 'discriminator'),
        qcSegmentor: await load(s.qcSegmentorRun, 'segmentor'),
        validation: await loadCases(data.validation),
      });
    }
    // The step loop otherwise runs on promise callbacks only, so timers (checkpoint uploads) and
    // signal handlers (SIGTERM) would wait for the next file write: give the event loop a turn per step.
    const step = trainer.step.bind(trainer);
    trainer.step = async (batch, s) => {
      await new Promise((resolve) => setImmediate(resolve));
      return step(batch, s);
    };
    try {
      const summary = await runTraining({
        dir: request.runDir,
        config,
        entries: data.train,
        trainer,
        log: request.log,
        shouldStop: request.shouldStop,
      });
      return { steps: summary.steps, resumedFrom: summary.resumedFrom };
    } finally {
      trainer.dispose();
    }
  } finally {
    for (const m of loaded) m.dispose();
  }
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
