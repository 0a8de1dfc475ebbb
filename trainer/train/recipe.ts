/**
 * The one home of how a run is trained, used by the CLI's `train`, the scheduled `job` and the
 * `demo`: `trainInFolder` goes from a run config to a trained run folder (data preparation and
 * cache, the models of earlier runs the config names, validation cases, the quality-control check,
 * the trainer, the loop). The order of runs is sequence.ts; the recipe's settings are the run
 * config's defaults (config.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { FreeTumorError } from '../../shared/errors.ts';
import { policyUses } from '../../shared/inference/quality.ts';
import type { CaseAverages } from '../../shared/metrics/cases.ts';
import type { TrainingCase } from '../data/case.ts';
import { loadCases, prepareData } from '../data/prepare.ts';
import { parameterCount, sizeMultiple, type UNetConfig } from '../models/unet.ts';
import type { RunConfig } from './config.ts';
import { loadRunModel } from './load.ts';
import { type RunSummary, runPaths, runTraining, type Trainer } from './run.ts';
import { evaluateSegmentor } from './validation.ts';

export interface TrainFolderOptions {
  log?: (message: string) => void;
  /** Polled after each step: true ends the run early with a checkpoint (Ctrl-C, spot notice, time guard). */
  shouldStop?: () => boolean;
  /** Write synthesis-training PNG samples into the run folder (default true). */
  samples?: boolean;
}

/** What a check of the quality-control segmentor on real tumors found. */
export interface QcSegmentorCheck {
  /** Which cases it was run on. */
  on: 'validation' | 'training';
  averages: CaseAverages;
  /** False when it finds fewer than half of the real lesions: QC then rejects most synthetic tumors. */
  detectsRealTumors: boolean;
}

export interface TrainFolderResult {
  summary: RunSummary;
  cases: number;
  validationCases: number;
  parameters: number;
  qcCheck: QcSegmentorCheck | null;
}

/** A QC segmentor must find real tumors, else "detected > 70%" rejects everything: at least half the lesions. */
export const QC_MIN_LESION_SENSITIVITY = 0.5;

/**
 * Runs the QC segmentor on cases with real tumors (validation cases, else up to 3 labeled training
 * cases, which it has seen) with the deployed post-processing.
 */
export async function checkQcSegmentor(
  model: LayersModel,
  modelConfig: UNetConfig,
  config: RunConfig,
  validation: readonly TrainingCase[],
  training: () => Promise<TrainingCase[]>,
): Promise<QcSegmentorCheck | null> {
  const withTumor = (cs: readonly TrainingCase[]) => cs.filter((c) => c.label.includes(2));
  let on: QcSegmentorCheck['on'] = 'validation';
  let cases = withTumor(validation);
  if (cases.length === 0) {
    on = 'training';
    cases = withTumor(await training()).slice(0, 3);
  }
  if (cases.length === 0) return null;
  const r = await evaluateSegmentor(model, cases, {
    patchSize: config.patchSize,
    divisor: sizeMultiple(modelConfig),
    spacing: config.data.spacing,
  });
  const s = r.averages.lesionSensitivity;
  return { on, averages: r.averages, detectsRealTumors: s !== null && s >= QC_MIN_LESION_SENSITIVITY };
}

/**
 * The segmentor a new segmentation run starts from (segmentation.initFrom), checked against the
 * run's architecture before any data is prepared; null when there is none or the run resumes.
 */
async function initialSegmentor(config: RunConfig, dir: string): Promise<LayersModel | null> {
  const from = config.kind === 'segmentation' ? config.segmentation.initFrom : null;
  if (!from || existsSync(runPaths(dir).checkpoint)) return null;
  const { segmentationModelConfig } = await import('./segmentation.ts');
  const { model, config: found } = await loadRunModel(from, 'segmentor');
  // The initialiser seed is no part of the architecture (a run of another seed may start from it).
  const { seed: _a, ...architecture } = found;
  const { seed: _b, ...wanted } = segmentationModelConfig(config);
  if (JSON.stringify(architecture) !== JSON.stringify(wanted)) {
    model.dispose();
    throw new FreeTumorError(
      'invalid_argument',
      'segmentation.initFrom names a run whose segmentor has another architecture (model config)',
    );
  }
  return model;
}

export async function trainInFolder(
  config: RunConfig,
  dir: string,
  o: TrainFolderOptions = {},
): Promise<TrainFolderResult> {
  const log = o.log ?? (() => {});
  const init = await initialSegmentor(config, dir);
  const prepared = async () => {
    const data = await prepareData(config, config.data.cacheDir ?? join(dir, 'cache'), log);
    if (data.train.length === 0) {
      throw new FreeTumorError(
        'invalid_argument',
        'no training cases: check the data sets (the baseline mode uses labeled cases only)',
      );
    }
    return { data, validation: await loadCases(data.validation) };
  };
  const { data, validation } = await prepared().catch((e: unknown) => {
    init?.dispose();
    throw e;
  });
  const loaded: LayersModel[] = init ? [init] : [];
  const configs = new Map<LayersModel, UNetConfig>();
  const load = async (runDir: string, role: 'segmentor' | 'generator' | 'discriminator') => {
    const { model, config: c } = await loadRunModel(runDir, role);
    loaded.push(model);
    configs.set(model, c);
    return model;
  };
  let trainer: Trainer;
  let qcCheck: QcSegmentorCheck | null = null;
  try {
    if (config.kind === 'synthesis') {
      if (!config.synthesis.segmentorRun) {
        throw new FreeTumorError(
          'invalid_argument',
          'synthesis training needs synthesis.segmentorRun: a segmentation run whose segmentor is frozen',
        );
      }
      const { createSynthesisTrainer } = await import('./synthesis.ts');
      trainer = createSynthesisTrainer(config, {
        segmentor: await load(config.synthesis.segmentorRun, 'segmentor'),
        samplesDir: o.samples === false ? null : runPaths(dir).samples,
      });
    } else {
      const s = config.segmentation;
      const freetumor = s.mode === 'freetumor';
      const uses = policyUses(s.qc.policy);
      const synthesisRun = freetumor ? s.synthesisRun : null;
      const generator = synthesisRun ? await load(synthesisRun, 'generator') : null;
      const discriminator =
        synthesisRun && uses.discriminator ? await load(synthesisRun, 'discriminator') : null;
      const qcSegmentor =
        freetumor && s.qcSegmentorRun && uses.segmentor ? await load(s.qcSegmentorRun, 'segmentor') : null;
      if (qcSegmentor) {
        qcCheck = await checkQcSegmentor(
          qcSegmentor,
          configs.get(qcSegmentor) as UNetConfig,
          config,
          validation,
          () => loadCases(data.train.filter((e) => e.labeled).map((e) => e.path)),
        );
        if (!qcCheck) log('quality control: no case with a real tumor to check the QC segmentor on');
        else {
          const a = qcCheck.averages;
          log(
            `quality control: the frozen segmentor finds ${a.lesionsDetected}/${a.trueLesions} real lesions on ${a.cases} ${qcCheck.on} case(s) (tumor Dice ${(a.tumorDiceCasesWithTumor ?? 0).toFixed(3)})`,
          );
          if (!qcCheck.detectsRealTumors) {
            log(
              `warning: the quality-control segmentor detects fewer than ${QC_MIN_LESION_SENSITIVITY * 100}% of real lesions; it will reject most synthetic tumors (train the baseline longer, or use qc.policy discriminator/none)`,
            );
          }
        }
      }
      const { createSegmentationTrainer } = await import('./segmentation.ts');
      trainer = createSegmentationTrainer(config, { generator, discriminator, qcSegmentor, validation });
      if (init) {
        trainer.models.segmentor.model.setWeights(init.getWeights());
        log('segmentor initialised from an earlier run (segmentation.initFrom)');
      }
    }
  } catch (e) {
    for (const m of loaded) m.dispose();
    throw e;
  }
  const parameters = Object.values(trainer.models).reduce((n, m) => n + parameterCount(m.model), 0);
  try {
    const summary = await runTraining({
      dir,
      config,
      entries: data.train,
      trainer,
      log,
      shouldStop: o.shouldStop,
    });
    return { summary, cases: data.train.length, validationCases: validation.length, parameters, qcCheck };
  } finally {
    trainer.dispose();
    for (const m of loaded) m.dispose();
  }
}
