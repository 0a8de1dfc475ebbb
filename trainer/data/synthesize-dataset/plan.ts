/**
 * What a synthesize-dataset run is: its options, its cases and where each piece lives in the output.
 *
 * Output layout (a local folder or an S3 prefix; the same keys either way):
 *   imagesTr/<id>_0000.nii.gz, labelsTr/<id>.nii.gz      nnU-Net layout (MSD: imagesTr/<id>.nii.gz)
 *   .freetumor-synthesis/plan.json                       options + the case list, written once
 *   .freetumor-synthesis/cases/<id>.json                 per-variant marker, written after its data
 *   .freetumor-synthesis/shards/<I>-of-<N>.json          a shard finished its cases
 *   dataset.json, summary.json, .freetumor-synthesis-state.json   written by the merge
 * A variant's id is `<case>_syn<v>`; its seeds derive from (seed, case, variant, attempt) only, so
 * its bytes do not depend on the shard count, the worker count or the other cases.
 */
import { FreeTumorError } from '../../../shared/errors.ts';
import type { ObjectStore } from '../../storage/object-store.ts';

export const META = '.freetumor-synthesis';
export const PLAN_KEY = `${META}/plan.json`;
export const STATE_FILE = '.freetumor-synthesis-state.json';
export const MAX_VARIANTS = 1000;
/** The reference's offline scripts retry up to 10 times until the frozen segmentor detects the tumor. */
export const DEFAULT_ATTEMPTS = 10;
export const MAX_ATTEMPTS = 100;

export interface SourceCase {
  name: string;
  image: string;
  label: string;
}

export interface RunSettings {
  organ: string;
  labelMap: string;
  type: string;
  count: number | null;
  seed: number;
  mode: 'darken' | 'brighten';
  variants: number;
  /** Attempts per variant (1 without quality control). */
  attempts: number;
  /** sha256 of the generator / QC model files, so a run cannot mix models. */
  generator: string | null;
  quality: string[] | null;
}

export interface Plan {
  version: 2;
  layout: 'nnunet' | 'msd';
  settings: RunSettings;
  /** Case names in order; shard I of N takes the cases at indices i with i % N === I. */
  cases: string[];
}

export type VariantStatus = 'synthesized' | 'accepted' | 'rejected' | 'failed';

/** The per-variant marker: what was written and how the variant went. */
export interface VariantRecord {
  id: string;
  case: string;
  variant: number;
  status: VariantStatus;
  /** synthesized: handcrafted or generator without QC; accepted/rejected: QC's verdict. */
  attempts: number;
  /** Of the kept attempt (accepted) or the last one (rejected); null without that model. */
  detection: number | null;
  realism: number | null;
  tumors: number;
  tumorVoxels: number;
  image: string | null;
  label: string | null;
  imageSha256: string | null;
  labelSha256: string | null;
  error?: string;
}

/** Shard I of N: `I/N` with 0 <= I < N. */
export interface Shard {
  index: number;
  count: number;
}

export function parseShard(text: string): Shard {
  const m = /^(\d{1,6})\/(\d{1,6})$/.exec(text.trim());
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || index >= count) {
    throw new FreeTumorError('invalid_argument', '--shard must be I/N with 0 <= I < N <= 999999');
  }
  return { index, count };
}

/** The shard from --shard, else AWS Batch's array index and size, else 0/1. */
export function shardFrom(option: string | undefined, env = process.env): Shard {
  if (option !== undefined) return parseShard(option);
  const index = env.AWS_BATCH_JOB_ARRAY_INDEX;
  if (index === undefined || index === '') return { index: 0, count: 1 };
  const size = env.AWS_BATCH_JOB_ARRAY_SIZE;
  if (size === undefined || size === '') {
    throw new FreeTumorError(
      'invalid_argument',
      'AWS_BATCH_JOB_ARRAY_INDEX is set but AWS_BATCH_JOB_ARRAY_SIZE is not (pass --shard I/N)',
    );
  }
  return parseShard(`${index}/${size}`);
}

export function inShard(caseIndex: number, shard: Shard): boolean {
  return caseIndex % shard.count === shard.index;
}

/** FNV-1a of (seed, case, variant): a variant's seed, independent of scheduling. */
export function variantSeed(seed: number, name: string, variant: number): number {
  let h = 0x811c9dc5 ^ seed;
  for (const c of `${name}\u0000${variant}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return h >>> 0;
}

/** Attempt 0 keeps the variant's seed (the handcrafted output of earlier versions); retries mix in the attempt. */
export function attemptSeed(seed: number, attempt: number): number {
  if (attempt === 0) return seed;
  let h = seed ^ 0x9e3779b9;
  h = Math.imul(h ^ attempt, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export function variantId(name: string, v: number): string {
  return `${name}_syn${v}`;
}

export function outputKeys(layout: Plan['layout'], id: string): { image: string; label: string } {
  return {
    image: layout === 'nnunet' ? `imagesTr/${id}_0000.nii.gz` : `imagesTr/${id}.nii.gz`,
    label: `labelsTr/${id}.nii.gz`,
  };
}

export const MARKERS = `${META}/cases/`;
export const markerKey = (id: string) => `${MARKERS}${id}.json`;
export const shardKey = (s: Shard) => `${META}/shards/${s.index}-of-${s.count}.json`;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
const NIFTI = /\.nii(\.gz)?$/;

/**
 * The cases under `prefix` in the nnU-Net (imagesTr/CASE_0000.nii.gz) or MSD (imagesTr/CASE.nii.gz)
 * layout, each with its labelsTr/ label. Hidden files (MSD's `._*`) are skipped; images without a
 * label are counted, not listed.
 */
export async function findCases(
  store: ObjectStore,
  prefix: string,
): Promise<{ cases: SourceCase[]; layout: Plan['layout']; missingLabels: number }> {
  const rel = (k: string) => k.slice(prefix.length);
  const images = (await store.list(`${prefix}imagesTr/`))
    .map(rel)
    .map((k) => k.slice('imagesTr/'.length))
    .filter((f) => !f.includes('/') && !f.startsWith('.') && NIFTI.test(f));
  const labels = new Set(
    (await store.list(`${prefix}labelsTr/`)).map(rel).map((k) => k.slice('labelsTr/'.length)),
  );
  if (images.length === 0 && labels.size === 0) {
    throw new FreeTumorError(
      'not_found',
      '--data must contain imagesTr/ and labelsTr/ (nnU-Net or MSD layout)',
    );
  }
  const nnunet = images.some((f) => /_0000\.nii(\.gz)?$/.test(f));
  const cases: SourceCase[] = [];
  let missingLabels = 0;
  for (const f of images.sort()) {
    const ext = f.endsWith('.gz') ? '.nii.gz' : '.nii';
    let name = f.slice(0, -ext.length);
    if (nnunet) {
      if (!name.endsWith('_0000')) continue; // other channels
      name = name.slice(0, -5);
    }
    if (!NAME.test(name)) {
      throw new FreeTumorError(
        'invalid_argument',
        'a case name holds characters other than letters, digits, dot, dash and underscore',
      );
    }
    const label = [`${name}.nii.gz`, `${name}.nii`].find((l) => labels.has(l));
    if (!label) {
      missingLabels++;
      continue;
    }
    cases.push({ name, image: `${prefix}imagesTr/${f}`, label: `${prefix}labelsTr/${label}` });
  }
  return { cases, layout: nnunet ? 'nnunet' : 'msd', missingLabels };
}

/**
 * Writes the plan if none exists; else checks that it is this run's (same settings and cases) and
 * returns the stored one. More variants than the stored plan has extend it (a compare-and-swap, so
 * concurrent shards cannot lose an update); fewer are not a conflict, the plan's count stands.
 */
export async function claimPlan(store: ObjectStore, prefix: string, plan: Plan): Promise<Plan> {
  const key = `${prefix}${PLAN_KEY}`;
  const encode = (p: Plan) => `${JSON.stringify(p, null, 1)}\n`;
  for (let round = 0; round < 20; round++) {
    if ((await store.putIf(key, encode(plan), { ifNoneMatch: '*' })) !== null) return plan;
    const current = await store.getVersioned(key);
    if (!current) continue;
    const existing = decodePlan(current.bytes);
    const { variants: _a, ...theirs } = existing.settings;
    const { variants: _b, ...ours } = plan.settings;
    if (JSON.stringify(theirs) !== JSON.stringify(ours)) {
      throw new FreeTumorError(
        'invalid_argument',
        '--out holds a run with other options or models; use a new --out or the same options',
      );
    }
    if (existing.cases.join('\n') !== plan.cases.join('\n') || existing.layout !== plan.layout) {
      const had = new Set(existing.cases);
      const added = plan.cases.filter((c) => !had.has(c)).length;
      const gone = existing.cases.length - (plan.cases.length - added);
      throw new FreeTumorError(
        'invalid_argument',
        `the input's cases differ from the run in --out (${added} new, ${gone} missing); use a new --out`,
      );
    }
    if (existing.settings.variants >= plan.settings.variants) return existing;
    const grown = { ...existing, settings: { ...existing.settings, variants: plan.settings.variants } };
    if ((await store.putIf(key, encode(grown), { ifMatch: current.etag })) !== null) return grown;
  }
  throw new FreeTumorError(
    'invalid_argument',
    'the run plan in --out keeps changing; is another run using it?',
  );
}

function decodePlan(bytes: Uint8Array): Plan {
  try {
    const plan = JSON.parse(new TextDecoder().decode(bytes)) as Plan;
    if (plan.version !== 2 || !Array.isArray(plan.cases)) throw new Error('version');
    return plan;
  } catch {
    throw new FreeTumorError('invalid_argument', 'the run plan in --out is not a synthesize-dataset plan');
  }
}

export async function readPlan(store: ObjectStore, prefix: string): Promise<Plan | null> {
  const bytes = await store.get(`${prefix}${PLAN_KEY}`);
  return bytes === null ? null : decodePlan(bytes);
}
