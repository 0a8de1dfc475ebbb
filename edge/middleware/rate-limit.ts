/**
 * Per-key rate limiting. The Workers rate limiting binding (wrangler.toml `[[ratelimits]]`) counts
 * across the location; without it a fixed-window counter inside the isolate bounds each key so a
 * deployment missing the binding is still not unlimited.
 */
import type { MiddlewareHandler } from 'hono';
import { readConfig } from '../env.ts';
import type { AppEnv } from '../types.ts';
import { ApiError } from './errors.ts';

export class WindowLimiter {
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly counts = new Map<string, { start: number; count: number }>();
  constructor(limit: number, windowMs: number) {
    this.limit = limit;
    this.windowMs = windowMs;
  }

  /** Counts one request for `key` at time `now`; false when the key is over its limit. */
  take(key: string, now: number): boolean {
    let w = this.counts.get(key);
    if (!w || now - w.start >= this.windowMs) {
      if (this.counts.size > 10_000) this.prune(now);
      w = { start: now, count: 0 };
      this.counts.set(key, w);
    }
    w.count++;
    return w.count <= this.limit;
  }

  private prune(now: number): void {
    for (const [k, w] of this.counts) if (now - w.start >= this.windowMs) this.counts.delete(k);
  }
}

let fallback: WindowLimiter | null = null;
let fallbackLimit = 0;

export function rateLimit(): MiddlewareHandler<AppEnv> {
  return async function rateLimitMiddleware(c, next) {
    const key = c.get('keyHash');
    let ok: boolean;
    if (c.env.RATE_LIMITER) {
      ok = (await c.env.RATE_LIMITER.limit({ key })).success;
    } else {
      const limit = readConfig(c.env).rateLimitPerMinute;
      if (!fallback || fallbackLimit !== limit) {
        fallback = new WindowLimiter(limit, 60_000);
        fallbackLimit = limit;
      }
      ok = fallback.take(key, Date.now());
    }
    if (!ok)
      throw new ApiError(429, 'rate_limited', 'too many requests for this API key', { 'retry-after': '60' });
    await next();
  };
}
