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
  MAX_BODY_BYTES?: string;
  MAX_DECOMPRESSED_BYTES?: string;
  MAX_VOXELS?: string;
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
  maxDecompressedBytes: number;
  maxVoxels: number;
  maxPatchSide: number;
  latestTtlMs: number;
  rateLimitPerMinute: number;
  modelPrefix: string;
  corsOrigins: string[];
}

/** Defaults sized for the 128 MB isolate: a 3 mm abdomen CT is ~1.4 M voxels, 5.5 MB as int32. */
export const DEFAULT_CONFIG: EdgeConfig = {
  maxBodyBytes: 32 * 1024 * 1024,
  maxDecompressedBytes: 48 * 1024 * 1024,
  maxVoxels: 8_000_000,
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
    maxDecompressedBytes: positive(env.MAX_DECOMPRESSED_BYTES, DEFAULT_CONFIG.maxDecompressedBytes),
    maxVoxels: positive(env.MAX_VOXELS, DEFAULT_CONFIG.maxVoxels),
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
