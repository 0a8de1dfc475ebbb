/**
 * Real model fixtures for the Worker tests: tiny U-Nets built with the trainer's buildUNet (seeded),
 * exported by the project's own ONNX exporter and manifest writer, then laid out as the publisher
 * lays them out in R2 (`models/<role>/<version>/...`, `models/latest.json` last).
 */
import '@tensorflow/tfjs-backend-cpu';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LatestPointer, ModelManifest, ModelRole } from '../../shared/model/manifest.ts';
import { type ManifestFields, writeModelDir } from '../../trainer/export/manifest-writer.ts';
import { encodeModel, exportGraph } from '../../trainer/export/onnx.ts';
import { quantizeWeightsInt8 } from '../../trainer/export/quantize.ts';
import { buildUNet, EDGE_UNET3D_TINY, type UNetConfig } from '../../trainer/models/unet.ts';

export interface ModelFixture {
  role: ModelRole;
  version: string;
  manifest: ModelManifest;
  /** R2 key -> bytes for the version's files (manifest included). */
  objects: Map<string, Uint8Array>;
  /** The fp32 ONNX bytes (for same-model baselines in Node). */
  fp32: Uint8Array;
}

export interface FixtureOptions {
  role?: ModelRole;
  version?: string;
  seed?: number;
  config?: Partial<UNetConfig>;
  spacing?: [number, number, number];
  patchSize?: [number, number, number];
  int8?: boolean;
}

export async function buildModelFixture(options: FixtureOptions = {}): Promise<ModelFixture> {
  await tf.setBackend('cpu');
  tf.env().set('PROD', true);
  const role = options.role ?? 'segmentor';
  const version = options.version ?? 'v1';
  const cfg: UNetConfig = { ...EDGE_UNET3D_TINY, ...options.config, seed: options.seed ?? 1 };
  const model = buildUNet(cfg);
  const graph = exportGraph(model, { description: `edge test ${role}` });
  model.dispose();
  const fp32 = encodeModel(graph.model);
  const int8 = options.int8 ? encodeModel(quantizeWeightsInt8(graph.model).model) : undefined;
  const divisor = 2 ** (cfg.depth - 1);
  const fields: ManifestFields = {
    name: `edge-test-${role}`,
    role,
    version,
    created: '2026-11-28T00:00:00.000Z',
    organs: ['liver'],
    inputs: [{ name: graph.inputName, shape: [1, cfg.inChannels, 'D', 'H', 'W'], dtype: 'float32' }],
    outputs: [{ name: graph.outputName, shape: [1, cfg.outChannels, 'D', 'H', 'W'], dtype: 'float32' }],
    preprocessing: {
      spacing: options.spacing ?? [3, 3, 3],
      window: [-175, 250],
      orientation: 'RAS',
      patchSize: options.patchSize ?? [48, 48, 48],
      overlap: 0.25,
      blending: 'gaussian',
      divisor,
    },
    labels:
      role === 'discriminator'
        ? ['other', 'real_tumor', 'synthetic_tumor']
        : ['background', 'organ', 'tumor'],
    outputActivation: 'softmax',
    metrics: {},
    qualityControl: { detectionThreshold: 0.7, realismThreshold: 0.5, policy: 'segmentor' },
  };
  const dir = await mkdtemp(join(tmpdir(), 'ft-edge-fixture-'));
  try {
    const { manifest } = await writeModelDir(dir, fields, { fp32, int8 });
    const objects = new Map<string, Uint8Array>();
    for (const f of await readdir(join(dir, role))) {
      objects.set(`models/${role}/${version}/${f}`, new Uint8Array(await readFile(join(dir, role, f))));
    }
    return { role, version, manifest, objects, fp32 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function latestPointer(fixtures: ModelFixture[], updated = '2026-11-28T00:00:00.000Z'): LatestPointer {
  const models: Partial<LatestPointer['models']> = {};
  for (const f of fixtures)
    models[f.role] = { version: f.version, manifest: `${f.role}/${f.version}/manifest.json` };
  return { schemaVersion: 1, updated, models: models as LatestPointer['models'] };
}

/** Minimal structural type of an R2 bucket proxy (Miniflare's or the binding). */
export interface PutBucket {
  put(key: string, value: Uint8Array | string): Promise<unknown>;
  delete(keys: string | string[]): Promise<void>;
}

/** Uploads the fixtures' files, then the pointer (last, as the publisher does). */
export async function publish(bucket: PutBucket, fixtures: ModelFixture[]): Promise<void> {
  for (const f of fixtures) {
    // Miniflare's proxy rejects Node Buffers; plain Uint8Arrays pass.
    for (const [key, bytes] of f.objects) await bucket.put(key, new Uint8Array(bytes));
  }
  await bucket.put('models/latest.json', JSON.stringify(latestPointer(fixtures)));
}
