/**
 * Bearer API keys. Keys are stored only as SHA-256 hex hashes (Worker secrets API_KEY_HASHES and
 * ADMIN_KEY_HASHES); the presented key is hashed and compared with every stored hash in constant
 * time, so neither a key nor which hash it matched leaks through timing. No configured key -> every
 * request is refused (fail closed).
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../types.ts';
import { ApiError } from './errors.ts';

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export function parseHashes(list: string | undefined): string[] {
  return (list ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => /^[0-9a-f]{64}$/.test(s));
}

/** Equal-length strings compared without an early exit; different lengths are unequal. */
export function constantTimeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return diff === 0;
}

/** True when `hash` equals one of `hashes`; always walks the whole list. */
export function matchesAny(hash: string, hashes: string[]): boolean {
  let found = false;
  for (const h of hashes) found = constantTimeEqual(hash, h) || found;
  return found;
}

export function bearerToken(header: string | undefined): string | null {
  const m = /^Bearer[ \t]+([\x21-\x7e]{1,512})[ \t]*$/i.exec(header ?? '');
  return m ? m[1] : null;
}

const CHALLENGE = { 'www-authenticate': 'Bearer realm="freetumor"' };

export interface AuthOptions {
  /** Admin routes: a valid key without admin scope gets 403. */
  admin?: boolean;
}

export function auth(options: AuthOptions = {}): MiddlewareHandler<AppEnv> {
  return async function authMiddleware(c, next) {
    const token = bearerToken(c.req.header('authorization'));
    if (token === null) throw new ApiError(401, 'unauthorized', 'missing bearer API key', CHALLENGE);
    const hash = await sha256Hex(token);
    const admin = matchesAny(hash, parseHashes(c.env.ADMIN_KEY_HASHES));
    const user = matchesAny(hash, parseHashes(c.env.API_KEY_HASHES));
    if (!admin && !user) throw new ApiError(401, 'unauthorized', 'invalid API key', CHALLENGE);
    if (options.admin && !admin) throw new ApiError(403, 'forbidden', 'this API key has no admin scope');
    c.set('keyHash', hash);
    c.set('admin', admin);
    await next();
  };
}
