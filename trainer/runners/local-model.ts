/**
 * Opens an exported model folder for the CLI: finds the manifest (`DIR/manifest.json` or
 * `DIR/<role>/manifest.json`), verifies the model file's sha256 (shared/model/load.ts) and only then
 * makes a runner on the chosen engine (engine.ts: the kernels engine or onnxruntime-node).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FreeTumorError } from '../../shared/errors.ts';
import { loadModel, type Precision } from '../../shared/model/load.ts';
import type { ModelManifest, ModelRole } from '../../shared/model/manifest.ts';
import { createLocalRunner, type EngineChoice, type EngineName, type LocalRunner } from './engine.ts';

export interface LocalModel {
  manifest: ModelManifest;
  precision: Precision;
  runner: LocalRunner;
  /** The engine the runner runs on (after `auto` and any fallback). */
  engine: EngineName;
}

/** The folder holding the role's manifest.json, or null when neither layout has one. */
async function manifestDir(dir: string, role: ModelRole): Promise<{ root: string; json: unknown } | null> {
  for (const root of [join(dir, role), dir]) {
    let text: string;
    try {
      text = await readFile(join(root, 'manifest.json'), 'utf8');
    } catch {
      continue;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new FreeTumorError('model_integrity', 'model manifest is not valid JSON');
    }
    if ((json as { role?: unknown }).role === role) return { root, json };
  }
  return null;
}

export async function openLocalModel(
  dir: string,
  role: ModelRole,
  options: { precision?: Precision; threads?: number; engine?: EngineChoice; required?: boolean } = {},
): Promise<LocalModel | null> {
  const found = await manifestDir(dir, role);
  if (!found) {
    if (options.required === false) return null;
    throw new FreeTumorError('model_unavailable', `no ${role} manifest.json in the model folder`);
  }
  const loaded = await loadModel(
    found.json,
    async (path) => {
      try {
        return new Uint8Array(await readFile(join(found.root, path)));
      } catch {
        throw new FreeTumorError(
          'model_unavailable',
          `the ${role} model file named by its manifest is missing`,
        );
      }
    },
    options.precision ?? 'int8',
  );
  const { runner, engine } = await createLocalRunner(loaded.bytes, {
    engine: options.engine,
    threads: options.threads,
  });
  return { manifest: loaded.manifest, precision: loaded.file.precision, runner, engine };
}
