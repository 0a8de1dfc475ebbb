/**
 * The data manifest: the one JSON object in R2/S3 that says what a scheduled training run trains on
 * (cases as image/label object keys, labeled or not, and their split), how (a partial run config)
 * and how the result is judged (the validation metric that gates promotion). Its canonical hash,
 * with the job settings, is the job's identity: the same inputs never train twice.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { FreeTumorError } from '../../shared/errors.ts';
import { ORGANS } from '../../shared/labels/organs.ts';

/** An object key: relative, no `..` segments, no control characters. */
const objectKey = z
  .string()
  .min(1)
  .max(1024)
  .refine(
    (k) =>
      !k.startsWith('/') && !k.split('/').includes('..') && ![...k].some((ch) => ch.charCodeAt(0) < 0x20),
    {
      message: 'must be a relative object key without ".." segments',
    },
  );

export const dataCaseSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, 'case ids hold letters, digits, dot, dash, underscore'),
    image: objectKey,
    /** Labeled cases: organ + tumor labels; unlabeled cases: organ masks only (no tumor annotation). */
    label: objectKey,
    labeled: z.boolean(),
    split: z.enum(['train', 'validation']),
    /** Optional sha256 of the image and label objects, checked after download. */
    imageSha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
    labelSha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
  })
  .strict();

export const PROMOTION_METRICS = [
  'tumorDice',
  'tumorDiceWithTumor',
  'organDice',
  'tumorNsd',
  'lesionSensitivity',
] as const;
export type PromotionMetric = (typeof PROMOTION_METRICS)[number];

export const dataManifestSchema = z
  .object({
    schemaVersion: z.literal(1),
    name: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/),
    organ: z.enum(ORGANS),
    /** Label scheme of the label objects (`freetumor`, `totalseg` or `liver=1,liver_tumor=2`). */
    labelMap: z.string().min(1).default('freetumor'),
    cases: z.array(dataCaseSchema).min(2).max(100_000),
    /** Partial segmentation run config (trainer/train/config.ts) merged over the job's defaults. */
    segmentation: z.record(z.string(), z.unknown()).default({}),
    /** Present -> a synthesis (generator/discriminator) run precedes segmentation training. */
    synthesis: z.record(z.string(), z.unknown()).optional(),
    promotion: z
      .object({
        metric: z.enum(PROMOTION_METRICS).default('tumorDice'),
        /** The candidate must beat the active model by more than this. */
        minImprovement: z.number().min(0).max(1).default(0),
      })
      .strict()
      .default({ metric: 'tumorDice', minImprovement: 0 }),
  })
  .strict()
  .superRefine((m, ctx) => {
    const ids = new Set<string>();
    for (const c of m.cases) {
      if (ids.has(c.id))
        ctx.addIssue({ code: 'custom', path: ['cases'], message: `duplicate case id ${c.id}` });
      ids.add(c.id);
    }
    if (!m.cases.some((c) => c.split === 'train' && c.labeled)) {
      ctx.addIssue({ code: 'custom', path: ['cases'], message: 'no labeled training case' });
    }
    if (!m.cases.some((c) => c.split === 'validation' && c.labeled)) {
      ctx.addIssue({
        code: 'custom',
        path: ['cases'],
        message: 'no labeled validation case (promotion needs a held-out metric)',
      });
    }
  });

export type DataManifest = z.output<typeof dataManifestSchema>;
export type DataCase = z.output<typeof dataCaseSchema>;

export function parseDataManifest(bytes: Uint8Array): DataManifest {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new FreeTumorError('invalid_argument', 'data manifest is not valid JSON');
  }
  const r = dataManifestSchema.safeParse(value);
  if (!r.success) {
    const problems = r.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new FreeTumorError('invalid_argument', `invalid data manifest: ${problems.join('; ')}`);
  }
  return r.data;
}

/** JSON with sorted keys, so that the hash does not depend on key order or whitespace. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The job id: a hash of the parsed manifest and the settings that change what gets trained. Two
 * runs with the same id would train the same model, so the second one does nothing.
 */
export function jobIdOf(manifest: DataManifest, settings: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson({ manifest, settings })).digest('hex').slice(0, 24);
}
