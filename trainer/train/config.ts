/**
 * The run config: one JSON file (validated here) plus CLI overrides (`--set a.b=value`).
 * The resolved config is written into the run folder, so a run explains itself.
 */
import { z } from 'zod';
import { FreeTumorError } from '../../shared/errors.ts';
import { policyUses, QUALITY_RULE_POLICIES, type QualityRulePolicy } from '../../shared/inference/quality.ts';
import { HU_WINDOW } from '../../shared/intensity/window.ts';
import { ORGANS } from '../../shared/labels/organs.ts';

const side = z.number().int().min(8).max(512);

/** The recipe's crop centres (measured: docs/training-recipe.md). */
export const DEFAULT_CROPS = { tumor: 0.3, organ: 0.3, body: 0.3, air: 0.1 };
/** The recipe's segmentation loss (measured: docs/training-recipe.md). */
export const DEFAULT_LOSS = { dice: 'batch' as const, tumorWeight: 5, blobWeight: 0 };
const patchSize = z
  .union([side, z.tuple([side, side, side])])
  .transform((v) => (typeof v === 'number' ? ([v, v, v] as [number, number, number]) : v));

export const datasetSchema = z
  .object({
    name: z.string().min(1).max(100),
    /** `msd`: a folder in the nnU-Net/MSD layout (imagesTr, labelsTr, imagesTs/unlabeled); `list`: a JSON list file. */
    format: z.enum(['msd', 'list']),
    path: z.string().min(1),
    /** `freetumor`, `totalseg` or a custom map (`liver=1,liver_tumor=2`), see shared/labels. */
    labelMap: z.string().min(1).default('freetumor'),
    organ: z.enum(ORGANS),
    /** How many times each labeled case appears per epoch (the reference repeats labeled sets x10). */
    repeat: z.number().int().min(1).max(1000).default(1),
    /** Use the unlabeled part (organ masks, no tumor annotations). Ignored by the baseline mode. */
    unlabeled: z.boolean().default(true),
  })
  .strict();

export const dataSchema = z
  .object({
    datasets: z.array(datasetSchema).min(1),
    /** Resampling target in mm. */
    spacing: z
      .tuple([z.number().positive(), z.number().positive(), z.number().positive()])
      .default([1.5, 1.5, 1.5]),
    /** HU window mapped to [0, 1]. */
    window: z.tuple([z.number(), z.number()]).default([HU_WINDOW[0], HU_WINDOW[1]]),
    /** Preprocessed-volume cache; default `<run>/cache` (`.cache/freetumor` to share between runs). */
    cacheDir: z.string().nullable().default(null),
    /** Validation cases per data set taken from the labeled part (sliding-window tumor Dice). */
    validationCases: z.number().int().min(0).default(0),
    /**
     * Where crops go: fractions centred on a real tumor voxel, an organ voxel, a body voxel
     * (unlabeled, above air), or beyond the volume's edge (air, as sliding windows see around the
     * body), normalised; a class a case lacks passes its share on (tumor -> organ -> body). See
     * trainer/data/patches.ts for why.
     */
    crops: z
      .object({
        tumor: z.number().min(0),
        organ: z.number().min(0),
        body: z.number().min(0),
        air: z.number().min(0).default(0),
      })
      .strict()
      .refine((c) => c.tumor + c.organ + c.body + c.air > 0, 'at least one crop fraction must be positive')
      .default(DEFAULT_CROPS),
    augment: z.boolean().default(true),
    /** Patch producer threads (0 = on the training thread). */
    workers: z.number().int().min(0).max(16).default(1),
    /** Batches prepared ahead of the training step. */
    prefetch: z.number().int().min(1).max(16).default(2),
  })
  .strict();

export const modelSchema = z
  .object({
    baseChannels: z.number().int().min(1).max(128).default(32),
    depth: z.number().int().min(1).max(6).default(4),
    norm: z.enum(['instance', 'group', 'none']).default('instance'),
    groups: z.number().int().min(1).default(8),
  })
  .strict();

/**
 * Synthetic tumor types: one type, `random` (the reference: p 0.25 each), or a list to draw from
 * uniformly (e.g. without `large` when a data set's lesions are all smaller).
 */
const tumorTypeSchema = z.union([
  z.enum(['tiny', 'small', 'medium', 'large', 'random']),
  z
    .array(z.enum(['tiny', 'small', 'medium', 'large']))
    .min(1)
    .max(4),
]);

/** The quality-control rule of shared/inference/quality.ts (the one accept rule), as config. */
export const qcSchema = z
  .object({
    /** Which signal accepts a synthetic tumor: the frozen segmentor, the discriminator, both, either, or none (accept all). */
    policy: z.enum(QUALITY_RULE_POLICIES as [QualityRulePolicy, ...QualityRulePolicy[]]).default('segmentor'),
    /** Accept when more than this fraction of synthetic voxels is predicted as tumor (reference 0.7). */
    detectionThreshold: z.number().min(0).max(1).default(0.7),
    /** Accept when the discriminator's mean p(real tumor) over synthetic voxels exceeds this. */
    realismThreshold: z.number().min(0).max(1).default(0.5),
  })
  .strict();

export const lossSchema = z
  .object({
    /**
     * Dice per crop (`sample`, MONAI's default) or over the whole batch (`batch`): a crop without
     * tumor gives the per-crop tumor Dice almost no gradient, the batch Dice still counts it.
     */
    dice: z.enum(['batch', 'sample']).default(DEFAULT_LOSS.dice),
    /** Cross-entropy weight of the tumor class (background and organ 1), weighted mean as torch. */
    tumorWeight: z.number().positive().max(1000).default(DEFAULT_LOSS.tumorWeight),
    /**
     * Weight of the blob loss term (Kofler et al. 2023): each tumor component of a crop gets its
     * own Dice, so a small or faint lesion weighs as much as a large one; 0 leaves it out (the
     * reference).
     */
    blobWeight: z.number().min(0).max(100).default(DEFAULT_LOSS.blobWeight),
  })
  .strict();

export const segmentationSchema = z
  .object({
    /** `baseline`: real tumors only; `freetumor`: online synthesis with quality control. */
    mode: z.enum(['baseline', 'freetumor']).default('baseline'),
    /** A synthesis run folder whose generator (and discriminator) drive the online synthesis; null = handcrafted difference. */
    synthesisRun: z.string().nullable().default(null),
    /** A (baseline) segmentation run folder whose segmentor is frozen for quality control. */
    qcSegmentorRun: z.string().nullable().default(null),
    qc: qcSchema.default({ policy: 'segmentor', detectionThreshold: 0.7, realismThreshold: 0.5 }),
    loss: lossSchema.default(DEFAULT_LOSS),
    /** The CutMix-style slab swap within a batch (notes §5); always on in the reference. */
    cutmix: z.boolean().default(true),
    tumorType: tumorTypeSchema.default('random'),
    /**
     * Online synthetic tumors must have at least this fraction of their shape (inside the crop)
     * in the organ; a plan below it is redrawn (up to 8 times, the most contained one kept).
     * 0 is the reference (tumors cut by the organ mask at its edge; see docs/training-recipe.md).
     */
    minInsideOrgan: z.number().min(0).max(1).default(0),
    /**
     * Each accepted online synthetic tumor's intensity change is scaled by a factor drawn uniformly
     * from [lo, hi] per crop, after quality control judged the tumor as drawn, so that tumors fainter
     * than the generator's (or the handcrafted procedure's) reach training too. [1, 1] keeps them
     * as they come (the reference; docs/training-recipe.md has the measurements).
     */
    syntheticContrast: z
      .tuple([z.number().gt(0).max(2), z.number().gt(0).max(2)])
      .refine(([lo, hi]) => lo <= hi, 'syntheticContrast: lo must not exceed hi')
      .default([1, 1]),
    /**
     * A segmentation run folder whose segmentor (best checkpoint) gives this run's starting
     * weights; null = random initialisation. Same architecture required. Ignored when the run
     * folder already holds a checkpoint (resuming).
     */
    initFrom: z.string().nullable().default(null),
  })
  .strict();

export const synthesisSchema = z
  .object({
    /** Segmentation run whose segmentor is the frozen "segmentation discriminator" in G's loss. */
    segmentorRun: z.string().nullable().default(null),
    advWeight: z.number().min(0).default(0.1),
    tumorType: tumorTypeSchema.default('random'),
    /** Write a PNG of a synthetic tumor every this many steps (0 = never). */
    sampleEvery: z.number().int().min(0).default(100),
  })
  .strict();

export const optimizerSchema = z
  .object({
    lr: z.number().positive().max(1),
    weightDecay: z.number().min(0).max(1),
    beta1: z.number().min(0).max(1),
    beta2: z.number().min(0).max(1),
    amsgrad: z.boolean(),
    warmupSteps: z.number().int().min(0),
    /**
     * After the warmup: cosine to 0 (the reference), linear to 0, or constant. The schedule spans
     * the run's `steps`, so a run's step count is fixed when it starts (runTraining warns when a
     * resumed run changes it).
     */
    schedule: z.enum(['cosine', 'linear', 'constant']),
  })
  .strict();

export const runConfigSchema = z
  .object({
    kind: z.enum(['segmentation', 'synthesis']),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(0),
    steps: z.number().int().min(1),
    patchSize: patchSize.default([96, 96, 96]),
    /** Volumes per step; each gives `cropsPerCase` crops (reference: 1 x 4 for segmentation). */
    casesPerStep: z.number().int().min(1).max(64).default(1),
    cropsPerCase: z.number().int().min(1).max(64).default(4),
    checkpointEvery: z.number().int().min(1).default(100),
    validateEvery: z.number().int().min(0).default(0),
    logEvery: z.number().int().min(1).default(1),
    data: dataSchema,
    model: modelSchema.default({ baseChannels: 32, depth: 4, norm: 'instance', groups: 8 }),
    optimizer: optimizerSchema.partial().default({}),
    segmentation: segmentationSchema.default({
      mode: 'baseline',
      synthesisRun: null,
      qcSegmentorRun: null,
      qc: { policy: 'segmentor', detectionThreshold: 0.7, realismThreshold: 0.5 },
      loss: DEFAULT_LOSS,
      cutmix: true,
      tumorType: 'random',
      minInsideOrgan: 0,
      syntheticContrast: [1, 1],
      initFrom: null,
    }),
    synthesis: synthesisSchema.default({
      segmentorRun: null,
      advWeight: 0.1,
      tumorType: 'random',
      sampleEvery: 100,
    }),
  })
  .strict()
  .superRefine((c, ctx) => {
    const multiple = 2 ** (c.model.depth - 1);
    if (c.patchSize.some((s) => s % multiple !== 0)) {
      ctx.addIssue({
        code: 'custom',
        path: ['patchSize'],
        message: `each side must be a multiple of ${multiple} (model depth ${c.model.depth})`,
      });
    }
    if (c.kind === 'segmentation' && c.segmentation.mode === 'freetumor') {
      const p = c.segmentation.qc.policy;
      const uses = policyUses(p);
      if (uses.segmentor && !c.segmentation.qcSegmentorRun) {
        ctx.addIssue({
          code: 'custom',
          path: ['segmentation', 'qcSegmentorRun'],
          message: `qc policy '${p}' needs a frozen segmentor run`,
        });
      }
      if (uses.discriminator && !c.segmentation.synthesisRun) {
        ctx.addIssue({
          code: 'custom',
          path: ['segmentation', 'synthesisRun'],
          message: `qc policy '${p}' needs a synthesis run (its discriminator)`,
        });
      }
    }
  });

export type RunConfigInput = z.input<typeof runConfigSchema>;
export type ParsedRunConfig = z.output<typeof runConfigSchema>;
export type OptimizerConfig = z.output<typeof optimizerSchema>;
export type RunConfig = ParsedRunConfig & { optimizer: OptimizerConfig };
export type DatasetConfig = z.output<typeof datasetSchema>;
export type QcConfig = z.output<typeof qcSchema>;
export type LossConfig = z.output<typeof lossSchema>;

/** Reference optimiser settings per kind (notes §3 and §5). */
export function defaultOptimizer(kind: RunConfig['kind']): OptimizerConfig {
  return kind === 'synthesis'
    ? {
        lr: 1e-4,
        weightDecay: 0,
        beta1: 0,
        beta2: 0.999,
        amsgrad: false,
        warmupSteps: 0,
        schedule: 'constant',
      }
    : {
        lr: 3e-4,
        weightDecay: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        amsgrad: true,
        warmupSteps: 0,
        schedule: 'cosine',
      };
}

/** Validates a config object; errors list every problem as `path: message` in one line. */
export function parseRunConfig(value: unknown): RunConfig {
  const r = runConfigSchema.safeParse(value);
  if (!r.success) {
    const problems = r.error.issues.map(
      (i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`,
    );
    throw new FreeTumorError('invalid_argument', `invalid run config: ${problems.join('; ')}`);
  }
  const c = r.data;
  return { ...c, optimizer: { ...defaultOptimizer(c.kind), ...c.optimizer } };
}

/** Parses JSON text of a config file. */
export function parseRunConfigText(text: string): RunConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new FreeTumorError('invalid_argument', `run config is not valid JSON (${(e as Error).message})`);
  }
  return parseRunConfig(value);
}

/**
 * Applies `a.b.c=value` overrides to a raw config object (before validation). Values are parsed as
 * JSON when they parse, else taken as strings (`data.workers=0`, `segmentation.mode=freetumor`).
 */
export function applyOverrides(raw: unknown, overrides: readonly string[]): unknown {
  const root = structuredClone(raw ?? {}) as Record<string, unknown>;
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0)
      throw new FreeTumorError(
        'invalid_argument',
        `override ${JSON.stringify(o)} is not of the form key.path=value`,
      );
    const path = o.slice(0, eq).split('.');
    if (path.some((p) => p === '' || p === '__proto__' || p === 'constructor' || p === 'prototype')) {
      throw new FreeTumorError(
        'invalid_argument',
        `override key ${JSON.stringify(o.slice(0, eq))} is not a valid path`,
      );
    }
    const text = o.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = text;
    }
    let node = root;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (next === undefined || next === null) node[key] = {};
      else if (typeof next !== 'object' || Array.isArray(next)) {
        throw new FreeTumorError('invalid_argument', `override ${path.join('.')}: ${key} is not an object`);
      }
      node = node[key] as Record<string, unknown>;
    }
    node[path[path.length - 1]] = value;
  }
  return root;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Deep merge of raw config objects (arrays and scalars from `over` replace); `__proto__` and friends are ignored. */
export function mergeConfig(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') continue;
    out[k] =
      isPlainObject(v) && isPlainObject(out[k]) ? mergeConfig(out[k] as Record<string, unknown>, v) : v;
  }
  return out;
}
