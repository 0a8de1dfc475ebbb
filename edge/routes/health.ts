/**
 * GET /health (no auth): liveness plus each published model's real state. Always 200 (the isolate
 * is alive); `status` is `ok` only when something is published and every published model is ready
 * or loadable: a model whose file failed its sha256 check or is missing, or an unreadable
 * latest.json, makes it `degraded`, and nothing published makes it `unpublished`.
 */
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import { edgeContext } from '../context.ts';
import { heavyWork } from '../gate.ts';
import { cachedRunnerKeys, wasmMemoryBytes } from '../ort.ts';
import type { ModelState } from '../registry.ts';
import { healthSchema } from '../schemas.ts';
import type { AppEnv } from '../types.ts';

const route = createRoute({
  method: 'get',
  path: '/health',
  summary: 'Liveness, the active model versions and their state',
  responses: { 200: { description: 'alive', content: { 'application/json': { schema: healthSchema } } } },
});

export const health = new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
  const { registry } = edgeContext(c.env);
  const models: Record<string, string> = {};
  let states: Record<string, ModelState> = {};
  let status: 'ok' | 'degraded' | 'unpublished' = 'ok';
  try {
    const r = await registry.states();
    if (!r.published) status = 'unpublished';
    states = r.models as Record<string, ModelState>;
    for (const [role, s] of Object.entries(states)) {
      models[role] = s.version;
      if (s.state === 'error') status = 'degraded';
    }
  } catch (e) {
    status = 'degraded';
    states = { pointer: { version: '', state: 'error', error: (e as { code?: string }).code ?? 'internal' } };
  }
  return c.json(
    {
      status,
      models,
      states,
      isolate: {
        wasmMemoryBytes: wasmMemoryBytes(),
        sessions: cachedRunnerKeys().length,
        busy: heavyWork.held,
        queued: heavyWork.queued,
      },
    },
    200,
  );
});
