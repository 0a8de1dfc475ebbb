/**
 * The Worker's bindings (wrangler.toml) and secrets. Limits and CORS come in as string vars so an
 * operator can change them without a rebuild; `readConfig` turns them into numbers once per request.
 */
import type { R2Bucket, RateLimit } from '@cloudflare/workers-types';
import type { BatchEnv } from './jobs/batch.ts';

export interface Env extends BatchEnv {
  /** R2 bucket holding `models/latest.json` and `models/<role>/<version>/...`. */
  MODELS: R2Bucket;
  /** Workers rate limiting binding (per API key); absent -> an in-isolate limiter is used. */
  RATE_LIMITER?: RateLimit;
  /** Secret: comma-separated lower-case hex SHA-256 hashes of the accepted API keys. */
  API_KEY_HASHES?: string;
  /** Secret: hashes of keys that may also call admin routes. */
  ADMIN_KEY_HASHES?: string;
  /** Comma-separated origins allowed by CORS, or "*"; empty -> no CORS headers. */
  CORS_ORIGINS?: string;
  /** Compressed (on-the-wire) bytes of one request body. */
  MAX_BODY_BYTES?: string;
  /** Storage slices (dim[3]) of a streamed CT. */
  MAX_SLICES?: string;
  /** Voxels per side of a slice (dim[1], dim[2]). */
  MAX_INPLANE?: string;
  /** Bytes of the band of model slabs the streaming segmentation keeps (model grid x patch). */
  MAX_BAND_BYTES?: string;
  /**
   * Bytes of a part held in memory: the label of /v1/synthesize (compressed; re-read for each pass),
   * an image part sent before its label; and the voxel bytes of a volume read whole.
   */
  MAX_DECOMPRESSED_BYTES?: string;
  /** Voxels of a volume read whole. */
  MAX_VOXELS?: string;
  /** Working-grid voxels /v1/synthesize plans on (the organ's box) and keeps (the tumors' region). */
  MAX_SYNTHESIS_VOXELS?: string;
  /** A body that sends no byte for this long is abandoned (408). */
  BODY_IDLE_TIMEOUT_MS?: string;
  /** Longest wait in the one-at-a-time queue before 503 with Retry-After. */
  QUEUE_WAIT_MS?: string;
  /** Requests that may wait in the queue (their bodies are not read while they wait). */
  MAX_QUEUED?: string;
  /** Largest sliding-window side the Worker runs (ORT's wasm memory grows with the patch, never shrinks). */
  MAX_PATCH_SIDE?: string;
  /** Seconds between re-reads of models/latest.json (a new version is served within this time). */
  LATEST_TTL_SECONDS?: string;
  /** Requests per minute per key for the in-isolate fallback limiter. */
  RATE_LIMIT_PER_MINUTE?: string;
  /** Key prefix of the published models in the bucket. */
  MODEL_PREFIX?: string;
}

export interface EdgeConfig {
  maxBodyBytes: number;
  maxSlices: number;
  maxInPlane: number;
  maxBandBytes: number;
  maxDecompressedBytes: number;
  maxVoxels: number;
  maxSynthesisVoxels: number;
  bodyIdleTimeoutMs: number;
  queueWaitMs: number;
  maxQueued: number;
  maxPatchSide: number;
  latestTtlMs: number;
  rateLimitPerMinute: number;
  modelPrefix: string;
  corsOrigins: string[];
}

/**
 * Defaults sized for the 128 MB isolate. CTs stream (a few slices and one band of model slabs in
 * memory), so a body is bounded by its compressed size and its slice count, not by memory; what is
 * still read whole (a label map for /v1/synthesize, the crop /v1/score scores) is bounded by voxels.
 */
export const DEFAULT_CONFIG: EdgeConfig = {
  maxBodyBytes: 200 * 1000 * 1000,
  maxSlices: 2048,
  maxInPlane: 1024,
  maxBandBytes: 48 * 1024 * 1024,
  maxDecompressedBytes: 48 * 1024 * 1024,
  maxVoxels: 8_000_000,
  // About 11 bytes per voxel while planning, 14 on the region: 44-56 MB at the limit.
  maxSynthesisVoxels: 4_000_000,
  bodyIdleTimeoutMs: 30_000,
  queueWaitMs: 120_000,
  maxQueued: 8,
  maxPatchSide: 64,
  latestTtlMs: 60_000,
  rateLimitPerMinute: 120,
  modelPrefix: 'models',
  corsOrigins: [],
};

function positive(value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === '') return fallback;
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

export function readConfig(env: Env): EdgeConfig {
  return {
    maxBodyBytes: positive(env.MAX_BODY_BYTES, DEFAULT_CONFIG.maxBodyBytes),
    maxSlices: positive(env.MAX_SLICES, DEFAULT_CONFIG.maxSlices),
    maxInPlane: positive(env.MAX_INPLANE, DEFAULT_CONFIG.maxInPlane),
    maxBandBytes: positive(env.MAX_BAND_BYTES, DEFAULT_CONFIG.maxBandBytes),
    maxDecompressedBytes: positive(env.MAX_DECOMPRESSED_BYTES, DEFAULT_CONFIG.maxDecompressedBytes),
    maxVoxels: positive(env.MAX_VOXELS, DEFAULT_CONFIG.maxVoxels),
    maxSynthesisVoxels: positive(env.MAX_SYNTHESIS_VOXELS, DEFAULT_CONFIG.maxSynthesisVoxels),
    bodyIdleTimeoutMs: positive(env.BODY_IDLE_TIMEOUT_MS, DEFAULT_CONFIG.bodyIdleTimeoutMs),
    queueWaitMs: positive(env.QUEUE_WAIT_MS, DEFAULT_CONFIG.queueWaitMs),
    maxQueued: positive(env.MAX_QUEUED, DEFAULT_CONFIG.maxQueued),
    maxPatchSide: positive(env.MAX_PATCH_SIDE, DEFAULT_CONFIG.maxPatchSide),
    latestTtlMs: positive(env.LATEST_TTL_SECONDS, DEFAULT_CONFIG.latestTtlMs / 1000) * 1000,
    rateLimitPerMinute: positive(env.RATE_LIMIT_PER_MINUTE, DEFAULT_CONFIG.rateLimitPerMinute),
    modelPrefix: (env.MODEL_PREFIX ?? DEFAULT_CONFIG.modelPrefix).replace(/\/+$/, ''),
    corsOrigins: (env.CORS_ORIGINS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
  };
}
