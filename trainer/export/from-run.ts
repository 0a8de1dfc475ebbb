/**
 * Exports the models of a training run folder (trainer/train/run.ts: config.json, best.ckpt,
 * checkpoint.ckpt) as `<out>/<role>/{manifest.json, model.fp32.onnx, model.int8.onnx}`. The manifest
 * takes its preprocessing from the run's resolved config, so inference repeats what training saw.
 */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { FreeTumorError } from '../../shared/errors.ts';
import { ORGANS } from '../../shared/labels/organs.ts';
import { MODEL_ROLES, type ModelManifest, type ModelRole } from '../../shared/model/manifest.ts';
import { buildUNet, sizeMultiple } from '../models/unet.ts';
import { type CheckpointData, loadCheckpoint } from '../train/checkpoint.ts';
import type { RunConfig } from '../train/config.ts';
import { restoreModel, runPaths } from '../train/run.ts';
import { type ManifestFields, writeModelDir } from './manifest-writer.ts';
import { encodeModel, exportGraph } from './onnx.ts';
import { quantizeWeightsInt8 } from './quantize.ts';

export interface ExportRunOptions {
  quantize?: 'int8' | 'none';
  roles?: ModelRole[];
  /** Which checkpoint: the best validated one when present (default), or the last. */
  checkpoint?: 'best' | 'last';
  version?: string;
  /** Sliding-window overlap written into the manifest. Default 0.5. */
  overlap?: number;
  log?: (message: string) => void;
}

export interface ExportedModel {
  role: ModelRole;
  manifestPath: string;
  manifest: ModelManifest;
}

const LABELS: Record<ModelRole, (organs: string[]) => string[]> = {
  segmentor: () => ['background', 'organ', 'tumor'],
  discriminator: () => ['background', 'real tumor', 'synthetic tumor'],
  generator: (organs) => organs,
};

export async function exportRun(
  runDir: string,
  outDir: string,
  options: ExportRunOptions = {},
): Promise<ExportedModel[]> {
  const paths = runPaths(runDir);
  const which = options.checkpoint ?? 'best';
  const ckpt: CheckpointData | null =
    (which === 'best' ? await loadCheckpoint(paths.best) : null) ?? (await loadCheckpoint(paths.checkpoint));
  if (!ckpt)
    throw new FreeTumorError('not_found', 'the run folder has no checkpoint (best.ckpt or checkpoint.ckpt)');
  const config = ckpt.config as RunConfig;
  const organs = [...new Set(config.data.datasets.map((d) => d.organ))];
  const version = options.version ?? defaultVersion(ckpt.step);
  if (!/^[0-9A-Za-z._-]+$/.test(version)) {
    throw new FreeTumorError('invalid_argument', 'version may hold letters, digits, dot, dash, underscore');
  }
  const roles = Object.keys(ckpt.models).filter(
    (k): k is ModelRole =>
      (MODEL_ROLES as readonly string[]).includes(k) &&
      (!options.roles || options.roles.includes(k as ModelRole)),
  );
  if (roles.length === 0)
    throw new FreeTumorError('invalid_argument', 'the checkpoint holds none of the requested roles');
  await tf.setBackend('cpu');
  const exported: ExportedModel[] = [];
  for (const role of roles) {
    const state = ckpt.models[role];
    const net = buildUNet(state.config);
    restoreModel(net, state);
    const graph = exportGraph(net, { description: `freetumor ${role}` });
    net.dispose();
    if (graph.outputActivation === 'linear') {
      throw new FreeTumorError(
        'invalid_argument',
        `the ${role} ends without softmax/tanh/sigmoid; manifests need one`,
      );
    }
    const fp32 = encodeModel(graph.model);
    const int8 =
      options.quantize === 'none' ? undefined : encodeModel(quantizeWeightsInt8(graph.model).model);
    const qc = config.segmentation?.qc;
    const labels = LABELS[role](role === 'generator' ? ORGANS.slice(0, graph.outChannels) : organs);
    const fields: ManifestFields = {
      name: `freetumor-${role}-${organs.join('-')}`,
      role,
      version,
      created: new Date().toISOString(),
      organs: organs as ManifestFields['organs'],
      inputs: [{ name: graph.inputName, shape: ['N', graph.inChannels, 'D', 'H', 'W'], dtype: 'float32' }],
      outputs: [{ name: graph.outputName, shape: ['N', graph.outChannels, 'D', 'H', 'W'], dtype: 'float32' }],
      preprocessing: {
        spacing: config.data.spacing,
        window: config.data.window,
        orientation: 'RAS',
        patchSize: config.patchSize,
        overlap: options.overlap ?? 0.5,
        blending: 'gaussian',
        divisor: sizeMultiple(state.config),
      },
      labels,
      outputActivation: graph.outputActivation,
      training: {
        mode: config.kind === 'segmentation' ? config.segmentation.mode : 'synthesis',
        steps: ckpt.step,
        cases: trainingCases(ckpt, options.log),
        datasets: config.data.datasets.map((d) => d.name),
        architecture: { ...state.config },
      },
      metrics: validationMetrics(ckpt),
      ...(qc && qc.policy !== 'none' && role !== 'generator'
        ? {
            qualityControl: {
              detectionThreshold: qc.segmentorThreshold,
              realismThreshold: qc.discriminatorThreshold,
              policy: qc.policy,
            },
          }
        : {}),
    };
    const { path, manifest } = await writeModelDir(outDir, fields, { fp32, int8 });
    options.log?.(
      `export: ${role} ${version}: fp32 ${fp32.byteLength} bytes${int8 ? `, int8 ${int8.byteLength} bytes` : ''}`,
    );
    exported.push({ role, manifestPath: path, manifest });
  }
  return exported;
}

/** The training cases the run recorded in its checkpoint (older checkpoints have none: 0, said in the log). */
function trainingCases(
  ckpt: CheckpointData,
  log?: (m: string) => void,
): { labeled: number; unlabeled: number } {
  const c = ckpt.extra.cases as { labeled?: unknown; unlabeled?: unknown } | undefined;
  if (c && Number.isInteger(c.labeled) && Number.isInteger(c.unlabeled)) {
    return { labeled: c.labeled as number, unlabeled: c.unlabeled as number };
  }
  log?.('export: the checkpoint predates recorded case counts; the manifest says 0');
  return { labeled: 0, unlabeled: 0 };
}

/**
 * The validation metrics of the exported checkpoint (for best.ckpt those of its own step), as
 * recorded by the run: val_* values, `validationStep`, and `validationSelect` (what the best
 * checkpoint maximises). Empty when the run never validated.
 */
function validationMetrics(ckpt: CheckpointData): Record<string, number> {
  const out: Record<string, number> = {};
  const v = ckpt.extra.validation as Record<string, unknown> | null | undefined;
  for (const [k, x] of Object.entries(v ?? {})) {
    if (typeof x !== 'number' || !Number.isFinite(x)) continue;
    out[k === 'step' ? 'validationStep' : k] = x;
  }
  if (typeof ckpt.extra.best === 'number') out.validationSelect = ckpt.extra.best;
  return out;
}

function defaultVersion(step: number): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `${t}-s${step}`;
}
