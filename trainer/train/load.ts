/** Loading trained networks from a run folder (best checkpoint if there is one, else the latest). */
import { existsSync } from 'node:fs';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { FreeTumorError } from '../../shared/errors.ts';
import { buildUNet, type UNetConfig } from '../models/unet.ts';
import { loadCheckpoint } from './checkpoint.ts';
import { restoreModel, runPaths } from './run.ts';

export type ModelRole = 'segmentor' | 'generator' | 'discriminator';

export async function loadRunModel(
  runDir: string,
  role: ModelRole,
): Promise<{ model: LayersModel; config: UNetConfig; step: number }> {
  const paths = runPaths(runDir);
  const path = existsSync(paths.best) ? paths.best : paths.checkpoint;
  const ckpt = await loadCheckpoint(path);
  if (!ckpt) throw new FreeTumorError('not_found', `run folder has no checkpoint (looking for the ${role})`);
  const state = ckpt.models[role];
  if (!state)
    throw new FreeTumorError(
      'invalid_argument',
      `the ${ckpt.kind} run has no ${role} (it has ${Object.keys(ckpt.models).join(', ')})`,
    );
  const model = buildUNet(state.config);
  restoreModel(model, state);
  return { model, config: state.config, step: ckpt.step };
}
