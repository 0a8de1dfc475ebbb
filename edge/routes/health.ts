/** GET /health (no auth): liveness plus the published versions; never fails on a model problem. */
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import { edgeContext } from '../context.ts';
import { cachedRunnerKeys, wasmMemoryBytes } from '../ort.ts';
import { healthSchema } from '../schemas.ts';
import type { AppEnv } from '../types.ts';

const route = createRoute({
  method: 'get',
  path: '/health',
  summary: 'Liveness and the active model versions',
  responses: { 200: { description: 'healthy', content: { 'application/json': { schema: healthSchema } } } },
});

export const health = new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
  const { registry } = edgeContext(c.env);
  const models: Record<string, string> = {};
  let status: 'ok' | 'degraded' = 'ok';
  try {
    const pointer = await registry.latest();
    for (const [role, entry] of Object.entries(pointer?.models ?? {})) models[role] = entry.version;
  } catch {
    status = 'degraded';
  }
  return c.json(
    { status, models, isolate: { wasmMemoryBytes: wasmMemoryBytes(), sessions: cachedRunnerKeys().length } },
    200,
  );
});
