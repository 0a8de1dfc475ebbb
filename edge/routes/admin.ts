/**
 * POST /v1/admin/retrain (admin scope): submits the retraining job to AWS Batch through
 * edge/jobs/batch.ts (the infra area's SigV4 client). A Worker without the Batch secrets answers 501.
 */
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import { BatchSubmitError, submitRetrainJob } from '../jobs/batch.ts';
import { auth } from '../middleware/auth.ts';
import { ApiError } from '../middleware/errors.ts';
import { errorSchema, retrainBodySchema, retrainResultSchema } from '../schemas.ts';
import type { AppEnv } from '../types.ts';

const errors = (description: string) => ({
  description,
  content: { 'application/json': { schema: errorSchema } },
});

const route = createRoute({
  method: 'post',
  path: '/v1/admin/retrain',
  summary: 'Submit a retraining job (admin scope)',
  security: [{ bearer: [] }],
  middleware: [auth({ admin: true })] as const,
  request: { body: { content: { 'application/json': { schema: retrainBodySchema } }, required: false } },
  responses: {
    202: { description: 'submitted', content: { 'application/json': { schema: retrainResultSchema } } },
    403: errors('key without admin scope'),
    501: errors('retraining is not configured on this Worker'),
    502: errors('AWS Batch refused or could not be reached'),
  },
});

export const admin = new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
  const body = c.req.header('content-type')?.includes('json') ? c.req.valid('json') : {};
  try {
    const job = await submitRetrainJob(c.env, { reason: 'admin-api', ...body });
    return c.json({ submitted: true, jobId: job.jobId, jobName: job.jobName }, 202);
  } catch (e) {
    if (!(e instanceof BatchSubmitError)) throw e;
    if (e.awsCode === 'NotConfigured') throw new ApiError(501, 'not_implemented', e.message);
    throw new ApiError(502, 'upstream_error', e.message);
  }
});
