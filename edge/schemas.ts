/**
 * zod schemas of the HTTP contract: they validate query parameters and generate /openapi.json.
 * Binary and multipart bodies are described with plain OpenAPI schema objects on purpose: a zod
 * schema there would make @hono/zod-openapi parse the body before our bounded reader sees it.
 */
import { z } from '@hono/zod-openapi';
import { ORGANS } from '../shared/labels/organs.ts';
import { segmentationStatisticsSchema } from '../shared/segmentation/statistics.ts';

/** The OpenAPI schema object type @hono/zod-openapi accepts beside zod schemas. */
type SchemaObject = {
  type: 'object';
  required: string[];
  properties: Record<string, Record<string, unknown>>;
};

export const organSchema = z.enum(ORGANS);

export const errorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string() }) })
  .openapi('Error', {
    example: { error: { code: 'too_large', message: 'voxels is 9000000, over the limit of 8000000' } },
  });

export const healthSchema = z
  .object({
    status: z.enum(['ok', 'degraded', 'unpublished']),
    models: z.record(z.string(), z.string()).openapi({ description: 'role -> active version' }),
    states: z
      .record(
        z.string(),
        z.object({
          version: z.string(),
          state: z.enum(['ready', 'not_loaded', 'error']),
          error: z.string().optional(),
        }),
      )
      .openapi({ description: 'role -> state of its model (error: sha256 mismatch, missing file, ...)' }),
    isolate: z.object({
      wasmMemoryBytes: z.number().int(),
      sessions: z.number().int(),
      busy: z.boolean(),
      queued: z.number().int(),
    }),
  })
  .openapi('Health');

export const segmentQuerySchema = z.object({
  organ: organSchema
    .optional()
    .openapi({ description: 'restrict the result to this organ (default: the model organ)' }),
  format: z
    .enum(['nifti', 'json'])
    .default('nifti')
    .openapi({ description: 'NIfTI mask or JSON lesion summary' }),
});

/** format=json: the CLI's `segment --statistics` schema, defined once in shared/. */
export const segmentJsonSchema = segmentationStatisticsSchema.openapi('SegmentResult');

export const scoreSchema = z
  .object({
    realism: z.number().nullable(),
    detection: z.number().nullable(),
    accepted: z.boolean(),
    threshold: z.object({ detection: z.number(), realism: z.number(), policy: z.string() }),
    model: z.record(z.string(), z.string()).openapi({ description: 'role -> version of the models used' }),
  })
  .openapi('ScoreResult');

export const retrainBodySchema = z
  .object({
    jobName: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/)
      .optional(),
    reason: z
      .string()
      .max(256)
      .optional()
      .openapi({ description: 'kept as a job tag; never put patient data here' }),
    dataManifestKey: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,511}$/)
      .optional(),
    force: z.boolean().optional(),
  })
  .openapi('RetrainRequest');

export const retrainResultSchema = z
  .object({ submitted: z.boolean(), jobId: z.string(), jobName: z.string() })
  .openapi('RetrainResult');

export const niftiBinary: { type: 'string'; format: string } = { type: 'string', format: 'binary' };

export const scoreMultipart: SchemaObject = {
  type: 'object',
  required: ['image', 'label'],
  properties: {
    image: { ...niftiBinary, description: 'CT with a synthetic tumor (NIfTI)' },
    label: { ...niftiBinary, description: 'its label on the same grid (0 bg, 1 organ, 2 tumor)' },
    organ: { type: 'string', enum: [...ORGANS] },
  },
};

export const synthesizeMultipart: SchemaObject = {
  type: 'object',
  required: ['image', 'label', 'organ'],
  properties: {
    image: { ...niftiBinary, description: 'CT (NIfTI, HU)' },
    label: { ...niftiBinary, description: 'organ label on the same grid' },
    organ: { type: 'string', enum: [...ORGANS] },
    type: { type: 'string', enum: ['tiny', 'small', 'medium', 'large', 'mix', 'random'] },
    count: { type: 'integer', minimum: 1, maximum: 10 },
    seed: { type: 'integer' },
    label_map: {
      type: 'string',
      description:
        'freetumor, totalseg, totalseg-v1, totalseg-v2, msd or ids (e.g. liver=5,kidney=2+3); absent or auto: detected from the label ids, as the CLI does',
    },
    format: { type: 'string', enum: ['zip', 'multipart'], default: 'zip' },
  },
};

export const synthesizeParamsSchema = z.object({
  organ: organSchema,
  /** The CLI's default (`freetumor synthesize --type`). */
  type: z.enum(['tiny', 'small', 'medium', 'large', 'mix', 'random']).default('random'),
  count: z.coerce.number().int().min(1).max(10).optional(),
  seed: z.coerce
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .default(0),
  label_map: z.string().max(512).optional(),
  format: z.enum(['zip', 'multipart']).default('zip'),
});

export const scoreParamsSchema = z.object({ organ: organSchema.optional() });
