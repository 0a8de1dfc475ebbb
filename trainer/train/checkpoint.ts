/**
 * Checkpoints: everything needed to continue a run on the same trajectory after a kill — model
 * weights, optimiser state, the step (which is also the data sampler's and the random streams'
 * state, see data/seeds.ts) and the resolved config. One file, written to a temporary name and
 * renamed, so a kill never leaves a half-written checkpoint.
 * Layout: "FTCKPT01" + uint32 header length + JSON header + float32 blobs at 4-byte offsets.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FreeTumorError } from '../../shared/errors.ts';
import type { UNetConfig } from '../models/unet.ts';
import type { OptimizerState } from './optim.ts';

export interface ModelState {
  config: UNetConfig;
  /** In LayersModel.getWeights() order. */
  weights: { shape: number[]; data: Float32Array }[];
}

export interface CheckpointData {
  kind: 'segmentation' | 'synthesis';
  /** Completed steps. */
  step: number;
  config: unknown;
  models: Record<string, ModelState>;
  optimizers: Record<string, OptimizerState>;
  extra: Record<string, unknown>;
}

const MAGIC = 'FTCKPT01';

interface BlobRef {
  offset: number;
  length: number;
}

export function encodeCheckpoint(c: CheckpointData): Uint8Array {
  const blobs: Float32Array[] = [];
  const ref = (a: Float32Array): BlobRef => {
    blobs.push(a);
    return { offset: -1, length: a.length };
  };
  const header = {
    kind: c.kind,
    step: c.step,
    config: c.config,
    extra: c.extra,
    models: Object.fromEntries(
      Object.entries(c.models).map(([k, m]) => [
        k,
        { config: m.config, weights: m.weights.map((w) => ({ shape: w.shape, blob: ref(w.data) })) },
      ]),
    ),
    optimizers: Object.fromEntries(
      Object.entries(c.optimizers).map(([k, o]) => [
        k,
        { step: o.step, slots: o.slots.map((s) => s.map(ref)) },
      ]),
    ),
  };
  // Offsets are indices into the blob area in float32 units, assigned in push order.
  let at = 0;
  const refs: BlobRef[] = [];
  const collect = (v: unknown): void => {
    if (v && typeof v === 'object') {
      if ('offset' in v && 'length' in v && (v as BlobRef).offset === -1) refs.push(v as BlobRef);
      else for (const x of Object.values(v)) collect(x);
    }
  };
  collect(header.models);
  collect(header.optimizers);
  refs.forEach((r, i) => {
    r.offset = at;
    at += blobs[i].length;
  });
  const json = new TextEncoder().encode(JSON.stringify(header));
  const dataStart = Math.ceil((12 + json.length) / 4) * 4;
  const out = new Uint8Array(dataStart + 4 * at);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  const floats = new Float32Array(out.buffer, dataStart, at);
  refs.forEach((r, i) => {
    floats.set(blobs[i], r.offset);
  });
  return out;
}

export function decodeCheckpoint(bytes: Uint8Array): CheckpointData {
  const corrupt = (why: string) => new FreeTumorError('invalid_argument', `checkpoint is corrupt (${why})`);
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC)
    throw corrupt('not a FreeTumor checkpoint');
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  if (12 + len > bytes.length) throw corrupt('truncated header');
  const h = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + len)));
  const dataStart = Math.ceil((12 + len) / 4) * 4;
  const aligned = new Uint8Array(bytes.length - dataStart);
  aligned.set(bytes.subarray(dataStart));
  const floats = new Float32Array(aligned.buffer);
  const blob = (r: BlobRef) => {
    if (r.offset + r.length > floats.length) throw corrupt('truncated data');
    return floats.slice(r.offset, r.offset + r.length);
  };
  const models: Record<string, ModelState> = {};
  for (const [k, m] of Object.entries(
    h.models as Record<string, { config: UNetConfig; weights: { shape: number[]; blob: BlobRef }[] }>,
  )) {
    models[k] = { config: m.config, weights: m.weights.map((w) => ({ shape: w.shape, data: blob(w.blob) })) };
  }
  const optimizers: Record<string, OptimizerState> = {};
  for (const [k, o] of Object.entries(h.optimizers as Record<string, { step: number; slots: BlobRef[][] }>)) {
    optimizers[k] = { step: o.step, slots: o.slots.map((s) => s.map(blob)) };
  }
  return { kind: h.kind, step: h.step, config: h.config, models, optimizers, extra: h.extra ?? {} };
}

/** Atomic write: temp file in the same folder, then rename over the target. */
export async function saveCheckpoint(path: string, c: CheckpointData): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, encodeCheckpoint(c));
  await rename(tmp, path);
}

export async function loadCheckpoint(path: string): Promise<CheckpointData | null> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return decodeCheckpoint(bytes);
}
