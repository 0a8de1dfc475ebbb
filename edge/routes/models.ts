/** GET /v1/models: the active manifest of each published role. */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { MODEL_ROLES, type ModelManifest, type ModelRole } from '../../shared/model/manifest.ts';
import { edgeContext } from '../context.ts';
import { errorSchema } from '../schemas.ts';
import type { AppEnv } from '../types.ts';

const modelsSchema = z
  .object({
    updated: z.string(),
    models: z
      .record(z.string(), z.record(z.string(), z.unknown()))
      .openapi({ description: 'role -> manifest' }),
  })
  .openapi('Models');

const route = createRoute({
  method: 'get',
  path: '/v1/models',
  summary: 'The active model manifests',
  security: [{ bearer: [] }],
  responses: {
    200: { description: 'manifests by role', content: { 'application/json': { schema: modelsSchema } } },
    503: { description: 'no models published yet', content: { 'application/json': { schema: errorSchema } } },
  },
});

export const models = new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
  const { registry } = edgeContext(c.env);
  const pointer = await registry.latest();
  if (!pointer) {
    return c.json({ error: { code: 'model_unavailable', message: 'no models are published yet' } }, 503);
  }
  const out: Partial<Record<ModelRole, ModelManifest>> = {};
  for (const role of MODEL_ROLES) if (pointer.models[role]) out[role] = await registry.manifest(role);
  return c.json({ updated: pointer.updated, models: out as Record<string, Record<string, unknown>> }, 200);
});
