import { createHash } from 'node:crypto';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { AppEnv } from '../types.ts';
import { auth, bearerToken, constantTimeEqual, matchesAny, parseHashes, sha256Hex } from './auth.ts';
import { onError } from './errors.ts';

const hash = (s: string) => createHash('sha256').update(s).digest('hex');

describe('auth helpers', () => {
  it('hashes like node:crypto', async () => {
    for (const s of ['', 'abc', 'ft-key-ünïcode']) expect(await sha256Hex(s)).toBe(hash(s));
  });

  it('parses only well-formed hashes, case-insensitively', () => {
    const a = hash('a');
    expect(parseHashes(` ${a.toUpperCase()} , nothex, ${hash('b')},`)).toEqual([a, hash('b')]);
    expect(parseHashes(undefined)).toEqual([]);
  });

  it('compares in constant time and checks every hash', () => {
    expect(constantTimeEqual('abc', 'abc')).toBe(true);
    expect(constantTimeEqual('abc', 'abd')).toBe(false);
    expect(constantTimeEqual('abc', 'abcd')).toBe(false);
    expect(matchesAny(hash('k'), [hash('x'), hash('k'), hash('y')])).toBe(true);
    expect(matchesAny(hash('k'), [hash('x')])).toBe(false);
  });

  it('extracts bearer tokens', () => {
    expect(bearerToken('Bearer abc.def')).toBe('abc.def');
    expect(bearerToken('bearer   tok ')).toBe('tok');
    expect(bearerToken('Basic abc')).toBeNull();
    expect(bearerToken('Bearer ')).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
  });
});

describe('auth middleware', () => {
  const app = new Hono<AppEnv>();
  app.onError(onError);
  app.get('/v1/x', auth(), (c) => c.json({ admin: c.get('admin') }));
  app.get('/v1/admin', auth({ admin: true }), (c) => c.json({ ok: true }));
  const env = { API_KEY_HASHES: hash('user-key'), ADMIN_KEY_HASHES: hash('admin-key') };
  const get = (path: string, key?: string, e: Record<string, string> = env) =>
    app.request(path, key ? { headers: { authorization: `Bearer ${key}` } } : {}, e);

  it('401 without or with a wrong key, with a Bearer challenge', async () => {
    for (const r of [await get('/v1/x'), await get('/v1/x', 'wrong')]) {
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await r.json()).error.code).toBe('unauthorized');
    }
  });

  it('accepts user and admin keys; 403 for a user key on admin routes', async () => {
    expect(await (await get('/v1/x', 'user-key')).json()).toEqual({ admin: false });
    expect(await (await get('/v1/x', 'admin-key')).json()).toEqual({ admin: true });
    const r = await get('/v1/admin', 'user-key');
    expect(r.status).toBe(403);
    expect((await r.json()).error.code).toBe('forbidden');
    expect((await get('/v1/admin', 'admin-key')).status).toBe(200);
  });

  it('fails closed when no key is configured', async () => {
    expect((await get('/v1/x', 'user-key', {})).status).toBe(401);
  });
});
