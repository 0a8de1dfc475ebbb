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
  type ModelFile,
  type ModelManifest,
  type ModelRole,
} from '../shared/model/manifest.ts';
import { leaseRunner, type RunnerLease, releaseRunnersExcept, runnerKey, runnerReady } from './ort.ts';
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
  /** The session cache key (file key and sha256). */
  sessionKey: string;
  /** Ends this request's use of the session (the cron never releases a session in use). */
  release(): void;
}

/** What /health reports per published role. */
export interface ModelState {
  version: string;
  state: 'ready' | 'not_loaded' | 'error';
  /** The error code when state is 'error' (model_integrity, model_unavailable). */
  error?: string;
}

export class ModelRegistry {
  private readonly bucket: R2Bucket;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private pointer: { value: Promise<LatestPointer | null>; at: number } | null = null;
  /** Manifests by R2 key, re-read after ttlMs like the pointer (an overwritten manifest is seen). */
  private readonly manifests = new Map<string, { value: Promise<ModelManifest>; at: number }>();
  /** The last failure per session key (reported by /health until a load succeeds). */
  private readonly failures = new Map<string, string>();

  private readonly maxPatchSide: number;

  constructor(bucket: R2Bucket, prefix: string, ttlMs: number, maxPatchSide = Number.POSITIVE_INFINITY) {
    this.bucket = bucket;
    this.prefix = prefix;
    this.ttlMs = ttlMs;
    this.maxPatchSide = maxPatchSide;
  }

  /**
   * The active pointer, or null when nothing is published yet. "Nothing published" is never cached:
   * a restored latest.json is seen by the next request.
   */
  latest(now = Date.now(), force = false): Promise<LatestPointer | null> {
    if (force || !this.pointer || now - this.pointer.at >= this.ttlMs) {
      const value = this.readLatest();
      const entry = { value, at: now };
      this.pointer = entry;
      const drop = () => {
        if (this.pointer === entry) this.pointer = null;
      };
      // A failed read is retried by the next call instead of being served for ttlMs.
      value.then((p) => p === null && drop(), drop);
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

  private readManifest(key: string, now = Date.now()): Promise<ModelManifest> {
    const cached = this.manifests.get(key);
    if (cached && now - cached.at < this.ttlMs) return cached.value;
    const value = (async () => {
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
    const entry = { value, at: now };
    this.manifests.set(key, entry);
    value.catch(() => {
      if (this.manifests.get(key) === entry) this.manifests.delete(key);
    });
    return value;
  }

  /** The active version's manifest, model file and the session key it maps to. */
  private async resolve(
    role: ModelRole,
  ): Promise<{ manifest: ModelManifest; file: ModelFile; key: string; sessionKey: string }> {
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
    return { manifest, file, key, sessionKey: runnerKey(key, file.sha256) };
  }

  /**
   * The manifest and a ready session for `role` (one per isolate per model file and sha256). The
   * caller must call `release()` when its request is done with the session.
   */
  async model(role: ModelRole): Promise<ActiveModel> {
    const { manifest, file, key, sessionKey } = await this.resolve(role);
    let lease: RunnerLease;
    try {
      lease = await leaseRunner(sessionKey, async () => {
        const obj = await this.bucket.get(key);
        if (!obj)
          throw new FreeTumorError('model_unavailable', `the ${role} model file is missing from the bucket`);
        const bytes = new Uint8Array(await obj.arrayBuffer());
        await verifyModelFile(bytes, file);
        return bytes;
      });
    } catch (e) {
      this.failures.set(sessionKey, (e as { code?: string }).code ?? 'internal');
      throw e;
    }
    this.failures.delete(sessionKey);
    return {
      manifest: fitPatch(manifest, this.maxPatchSide),
      runner: lease.runner,
      key,
      sessionKey,
      release: lease.release,
    };
  }

  /**
   * Each published role's real state, without loading anything: ready (a verified session exists),
   * error (its last load failed: sha256 mismatch, missing file or manifest) or not_loaded.
   */
  async states(): Promise<{ published: boolean; models: Partial<Record<ModelRole, ModelState>> }> {
    const pointer = await this.latest();
    if (!pointer) return { published: false, models: {} };
    const models: Partial<Record<ModelRole, ModelState>> = {};
    for (const role of Object.keys(pointer.models) as ModelRole[]) {
      const version = pointer.models[role]?.version ?? '';
      try {
        const { sessionKey } = await this.resolve(role);
        const failure = this.failures.get(sessionKey);
        if (failure) models[role] = { version, state: 'error', error: failure };
        else models[role] = { version, state: (await runnerReady(sessionKey)) ? 'ready' : 'not_loaded' };
      } catch (e) {
        models[role] = { version, state: 'error', error: (e as { code?: string }).code ?? 'internal' };
      }
    }
    return { published: true, models };
  }

  /**
   * Re-reads the pointer now, creates the sessions of every published role and retires the
   * sessions of versions no longer named (released once no request uses them). Used by the cron
   * handler and admin tooling.
   */
  async refresh(): Promise<{ versions: Partial<Record<ModelRole, string>>; warmed: string[] }> {
    const pointer = await this.latest(Date.now(), true);
    this.manifests.clear();
    const versions: Partial<Record<ModelRole, string>> = {};
    const keep = new Set<string>();
    if (pointer) {
      for (const role of Object.keys(pointer.models) as ModelRole[]) {
        const m = await this.model(role);
        m.release();
        versions[role] = m.manifest.version;
        keep.add(m.sessionKey);
      }
    }
    await releaseRunnersExcept(keep);
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
