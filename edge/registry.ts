/**
 * The published models, read from R2: `<prefix>/latest.json` names the active version of each role,
 * its manifest names the files and their sha256. Bytes are verified before a session is made, and the
 * pointer is re-read at most every `ttlMs`, so a newly published version is served without a redeploy
 * (sessions of replaced versions are released).
 */
import type { R2Bucket } from '@cloudflare/workers-types';
import { z } from 'zod';
import { FreeTumorError } from '../shared/errors.ts';
import type { OrtRunner } from '../shared/inference/ort-runner.ts';
import { pickModelFile, readManifest, verifyModelFile } from '../shared/model/load.ts';
import {
  type LatestPointer,
  latestPointerSchema,
  MODEL_ROLES,
  type ModelManifest,
  type ModelRole,
} from '../shared/model/manifest.ts';
import { cachedRunner, releaseRunnersExcept } from './ort.ts';
import { fitPatch } from './patch.ts';

/**
 * zod 4 makes a record keyed by an enum exhaustive, so the shared schema would reject a pointer that
 * names only some roles (a segmentor-only deployment); each role is optional here.
 */
const pointerSchema = latestPointerSchema.extend({
  models: z.partialRecord(z.enum(MODEL_ROLES), z.object({ version: z.string(), manifest: z.string() })),
});

export interface ActiveModel {
  manifest: ModelManifest;
  runner: OrtRunner;
  /** The R2 key of the model file the session was made from. */
  key: string;
}

export class ModelRegistry {
  private readonly bucket: R2Bucket;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private pointer: { value: Promise<LatestPointer | null>; at: number } | null = null;
  private readonly manifests = new Map<string, Promise<ModelManifest>>();

  private readonly maxPatchSide: number;

  constructor(bucket: R2Bucket, prefix: string, ttlMs: number, maxPatchSide = Number.POSITIVE_INFINITY) {
    this.bucket = bucket;
    this.prefix = prefix;
    this.ttlMs = ttlMs;
    this.maxPatchSide = maxPatchSide;
  }

  /** The active pointer, or null when nothing is published yet. */
  latest(now = Date.now(), force = false): Promise<LatestPointer | null> {
    if (force || !this.pointer || now - this.pointer.at >= this.ttlMs) {
      const value = this.readLatest();
      this.pointer = { value, at: now };
      // A failed read is retried by the next call instead of being served for ttlMs.
      value.catch(() => {
        if (this.pointer?.value === value) this.pointer = null;
      });
    }
    return this.pointer.value;
  }

  private async readLatest(): Promise<LatestPointer | null> {
    const obj = await this.bucket.get(`${this.prefix}/latest.json`);
    if (!obj) return null;
    let json: unknown;
    try {
      json = JSON.parse(await obj.text());
    } catch {
      throw new FreeTumorError('model_integrity', 'models/latest.json is not valid JSON');
    }
    const parsed = pointerSchema.safeParse(json);
    if (!parsed.success)
      throw new FreeTumorError('model_integrity', 'models/latest.json does not match its schema');
    return parsed.data as LatestPointer;
  }

  manifestKey(pointer: LatestPointer, role: ModelRole): string | null {
    const entry = pointer.models[role];
    return entry ? `${this.prefix}/${entry.manifest.replace(/^\/+/, '')}` : null;
  }

  /** The active manifest of `role`; 503 when nothing of that role is published. */
  async manifest(role: ModelRole): Promise<ModelManifest> {
    const pointer = await this.latest();
    if (!pointer) throw new FreeTumorError('model_unavailable', 'no models are published yet');
    const key = this.manifestKey(pointer, role);
    if (!key) throw new FreeTumorError('model_unavailable', `no ${role} model is published yet`);
    return this.readManifest(key);
  }

  private readManifest(key: string): Promise<ModelManifest> {
    let p = this.manifests.get(key);
    if (!p) {
      p = (async () => {
        const obj = await this.bucket.get(key);
        if (!obj)
          throw new FreeTumorError('model_unavailable', 'the published manifest is missing from the bucket');
        let json: unknown;
        try {
          json = JSON.parse(await obj.text());
        } catch {
          throw new FreeTumorError('model_integrity', 'the published manifest is not valid JSON');
        }
        return readManifest(json);
      })();
      this.manifests.set(key, p);
      p.catch(() => {
        if (this.manifests.get(key) === p) this.manifests.delete(key);
      });
    }
    return p;
  }

  /** The manifest and a ready session for `role` (created once per isolate per model file). */
  async model(role: ModelRole): Promise<ActiveModel> {
    const pointer = await this.latest();
    if (!pointer) throw new FreeTumorError('model_unavailable', 'no models are published yet');
    const manifestKey = this.manifestKey(pointer, role);
    if (!manifestKey) throw new FreeTumorError('model_unavailable', `no ${role} model is published yet`);
    const manifest = await this.readManifest(manifestKey);
    const file = pickModelFile(manifest, 'int8');
    if (file.path.includes('..') || file.path.startsWith('/')) {
      throw new FreeTumorError('model_integrity', 'model file path must stay inside the model folder');
    }
    const key = `${manifestKey.slice(0, manifestKey.lastIndexOf('/') + 1)}${file.path.replace(/^\.?\//, '')}`;
    const runner = await cachedRunner(key, async () => {
      const obj = await this.bucket.get(key);
      if (!obj)
        throw new FreeTumorError('model_unavailable', `the ${role} model file is missing from the bucket`);
      const bytes = new Uint8Array(await obj.arrayBuffer());
      await verifyModelFile(bytes, file);
      return bytes;
    });
    return { manifest: fitPatch(manifest, this.maxPatchSide), runner, key };
  }

  /**
   * Re-reads the pointer now, creates the sessions of every published role and releases the
   * sessions of versions no longer named. Used by the cron handler and admin tooling.
   */
  async refresh(): Promise<{ versions: Partial<Record<ModelRole, string>>; warmed: string[] }> {
    const pointer = await this.latest(Date.now(), true);
    const versions: Partial<Record<ModelRole, string>> = {};
    const keep = new Set<string>();
    if (pointer) {
      for (const role of Object.keys(pointer.models) as ModelRole[]) {
        const m = await this.model(role);
        versions[role] = m.manifest.version;
        keep.add(m.key);
      }
    }
    await releaseRunnersExcept(keep);
    for (const key of this.manifests.keys()) {
      if (!pointer || !Object.values(pointer.models).some((e) => key.endsWith(e.manifest)))
        this.manifests.delete(key);
    }
    return { versions, warmed: [...keep] };
  }
}

let shared: { registry: ModelRegistry; id: string } | null = null;

/** One registry per isolate (per bucket prefix, TTL and patch cap), so caches survive across requests. */
export function registryFor(
  bucket: R2Bucket,
  prefix: string,
  ttlMs: number,
  maxPatchSide: number,
): ModelRegistry {
  const id = `${prefix}|${ttlMs}|${maxPatchSide}`;
  if (!shared || shared.id !== id)
    shared = { registry: new ModelRegistry(bucket, prefix, ttlMs, maxPatchSide), id };
  return shared.registry;
}
