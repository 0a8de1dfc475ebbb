/**
 * The model manifest: the one description of a published model that every runtime trusts.
 * A model file is unusable without it, and its sha256 must match before a session is made.
 */
import { z } from 'zod';
import { ORGANS } from '../labels/organs.ts';

export const MODEL_ROLES = ['segmentor', 'discriminator', 'generator'] as const;
export type ModelRole = (typeof MODEL_ROLES)[number];

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'sha256 must be 64 lower-case hex digits');

export const tensorSpecSchema = z.object({
  name: z.string().min(1),
  /** NCDHW; symbolic dims as strings ("N", "D", "H", "W"). */
  shape: z.array(z.union([z.number().int().positive(), z.string().min(1)])),
  dtype: z.enum(['float32']),
});

export const modelFileSchema = z.object({
  /** Path relative to the manifest (or the R2 key prefix of the version). */
  path: z.string().min(1),
  sha256: sha256Hex,
  bytes: z.number().int().positive(),
  precision: z.enum(['fp32', 'int8']),
});

export const preprocessingSchema = z.object({
  /** Target voxel size in mm (x, y, z) after reorientation. */
  spacing: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
  /** HU window mapped to [0, 1] and clipped. */
  window: z.tuple([z.number(), z.number()]),
  orientation: z.literal('RAS'),
  /** Sliding-window patch size (x, y, z) in voxels. */
  patchSize: z.tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive()]),
  overlap: z.number().min(0).lt(1),
  blending: z.enum(['gaussian', 'constant']),
  /** Spatial sides must be a multiple of this (2^depth of the U-Net). */
  divisor: z.number().int().positive().default(1),
});

export const manifestSchema = z.object({
  schemaVersion: z.literal(1),
  name: z.string().min(1),
  role: z.enum(MODEL_ROLES),
  version: z.string().regex(/^[0-9A-Za-z._-]+$/, 'version may hold letters, digits, dot, dash, underscore'),
  created: z.iso.datetime(),
  /** The organ the model was trained for (segmentor) or organs (generator channels, in order). */
  organs: z.array(z.enum(ORGANS)).min(1),
  files: z.array(modelFileSchema).min(1),
  inputs: z.array(tensorSpecSchema).min(1),
  outputs: z.array(tensorSpecSchema).min(1),
  preprocessing: preprocessingSchema,
  /** Output channel names, index = class id (e.g. ["background", "organ", "tumor"]). */
  labels: z.array(z.string().min(1)).min(1),
  /** What the model ends in: probabilities (softmax), tanh map (generator). */
  outputActivation: z.enum(['softmax', 'tanh', 'sigmoid']),
  training: z
    .object({
      mode: z.string(),
      steps: z.number().int().nonnegative(),
      cases: z.object({ labeled: z.number().int().nonnegative(), unlabeled: z.number().int().nonnegative() }),
      datasets: z.array(z.string()).default([]),
      architecture: z.record(z.string(), z.unknown()).default({}),
    })
    .optional(),
  metrics: z.record(z.string(), z.number()).default({}),
  /** Quality-control policy (discriminator/segmentor manifests used for scoring). */
  qualityControl: z
    .object({
      detectionThreshold: z.number().min(0).max(1).default(0.7),
      realismThreshold: z.number().min(0).max(1).default(0.5),
      policy: z.enum(['segmentor', 'discriminator', 'both', 'either']).default('segmentor'),
    })
    .optional(),
});

export type ModelManifest = z.infer<typeof manifestSchema>;
export type ModelFile = z.infer<typeof modelFileSchema>;
export type Preprocessing = z.infer<typeof preprocessingSchema>;

/**
 * The pointer a publisher writes last (`<prefix>/latest.json`): which version of each role is
 * active. A reader that finds it can fetch every manifest it names; a half-published version is
 * never named.
 */
export const latestPointerSchema = z.object({
  schemaVersion: z.literal(1),
  updated: z.iso.datetime(),
  /** role -> { version, manifest key relative to the bucket prefix } */
  // partialRecord: a pointer names only the roles published so far (z.record with enum keys
  // would require all three).
  models: z.partialRecord(z.enum(MODEL_ROLES), z.object({ version: z.string(), manifest: z.string() })),
});
export type LatestPointer = z.infer<typeof latestPointerSchema>;

export function parseManifest(json: unknown): ModelManifest {
  return manifestSchema.parse(json);
}
