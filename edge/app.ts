/**
 * The Hono app: middleware order is request id (and the log line) -> CORS -> auth and per-key rate
 * limit on /v1 -> route. Every error leaves through `onError` as `{error: {code, message}}`.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import { cors } from 'hono/cors';
import { readConfig } from './env.ts';
import { auth } from './middleware/auth.ts';
import { ApiError, notFound, onError } from './middleware/errors.ts';
import { rateLimit } from './middleware/rate-limit.ts';
import { requestId } from './middleware/request-id.ts';
import { admin } from './routes/admin.ts';
import { health } from './routes/health.ts';
import { models } from './routes/models.ts';
import { score } from './routes/score.ts';
import { segment } from './routes/segment.ts';
import { synthesize } from './routes/synthesize.ts';
import type { AppEnv } from './types.ts';

export function createApp() {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const issue = result.error.issues[0];
        const where = issue?.path.join('.') || 'request';
        throw new ApiError(400, 'invalid_argument', `${where}: ${issue?.message ?? 'invalid value'}`);
      }
    },
  });
  app.onError(onError);
  app.notFound(notFound);
  app.use('*', requestId());
  app.use('*', async (c, next) => {
    const origins = readConfig(c.env).corsOrigins;
    if (origins.length === 0) return next();
    return cors({
      origin: origins.includes('*') ? '*' : origins,
      allowHeaders: ['authorization', 'content-type', 'x-request-id'],
      allowMethods: ['GET', 'POST', 'OPTIONS'],
      exposeHeaders: ['x-request-id', 'retry-after'],
      maxAge: 600,
    })(c, next);
  });
  app.use('/v1/*', async (c, next) => (c.req.method === 'OPTIONS' ? next() : auth()(c, next)));
  app.use('/v1/*', async (c, next) => (c.req.method === 'OPTIONS' ? next() : rateLimit()(c, next)));

  const routes = app
    .route('/', health)
    .route('/', models)
    .route('/', segment)
    .route('/', score)
    .route('/', synthesize)
    .route('/', admin);

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'FreeTumor edge API',
      version: '1',
      description: 'Tumor segmentation, synthetic-tumor quality scoring and synthesis for CT (NIfTI).',
    },
  });
  return routes;
}

export const app = createApp();
export type AppType = typeof app;
