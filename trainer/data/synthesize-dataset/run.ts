/**
 * One shard of a synthesize-dataset run (a whole run when there is one shard): claim or check the
 * run's plan, synthesize this shard's variants that have no marker yet in worker threads, and write
 * each variant's CT and label first and its marker last. A killed shard therefore loses at most the
 * variants in flight, and a rerun (a Batch retry) redoes exactly those. With one shard the merge
 * follows; with more, `synthesize-dataset merge` runs once every shard has finished.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FreeTumorError } from '../../../shared/errors.ts';
import { ORGANS, type OrganName, parseLabelMap } from '../../../shared/labels/labelmap.ts';
import { MODEL_ROLES } from '../../../shared/model/manifest.ts';
import { SYNTHESIS_TYPES, type SynthesisType } from '../../../shared/synthesis/tumors.ts';
import { openLocation, type S3Settings } from '../../storage/object-store.ts';
import { type MergeResult, mergeRun } from './merge.ts';
import { resolveModelDir } from './models.ts';
import {
  claimPlan,
  DEFAULT_ATTEMPTS,
  findCases,
  inShard,
  MARKERS,
  MAX_ATTEMPTS,
  MAX_VARIANTS,
  markerKey,
  outputKeys,
  type Plan,
  type RunSettings,
  type Shard,
  shardKey,
  type VariantRecord,
  variantId,
  variantSeed,
} from './plan.ts';
import { runPool } from './pool.ts';
import type { VariantJob } from './synthesize-case.ts';

export interface SynthesizeDatasetOptions extends S3Settings {
  /** Input: a local folder or s3://bucket/prefix (imagesTr/, labelsTr/). */
  data: string;
  /** Output: a local folder or s3://bucket/prefix. */
  out: string;
  variants: number;
  workers: number;
  organ: string;
  labelMap: string;
  type: string;
  count?: number;
  seed: number;
  mode: string;
  /**
   * Exported generator folder (or s3:// prefix: a model folder, or published models with
   * latest.json): its per-voxel difference map instead of a scalar.
   */
  generator?: string;
  /** Models with a segmentor (and/or discriminator), local or s3:// as above: QC with retries. */
  quality?: string;
  attempts?: number;
  shard: Shard;
  log?: (message: string) => void;
  onProgress?: (done: number, total: number) => void;
}

export interface ShardResult {
  shard: Shard;
  cases: number;
  shardCases: number;
  variants: number;
  done: number;
  skipped: number;
  failed: number;
  seconds: number;
  /** Present when this run also merged (one shard). */
  merge?: MergeResult;
}

/** sha256 of every model file the folder's manifests name, per role (what the plan pins). */
async function modelFingerprint(dir: string, roles: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const role of roles) {
    for (const root of [join(dir, role), dir]) {
      let manifest: { role?: string; files?: Array<{ sha256: string }> };
      try {
        manifest = JSON.parse(await readFile(join(root, 'manifest.json'), 'utf8'));
      } catch {
        continue;
      }
      if (manifest.role !== role) continue;
      out.push(`${role}:${(manifest.files ?? []).map((f) => f.sha256).join(',')}`);
      break;
    }
  }
  return out;
}

function check(o: SynthesizeDatasetOptions): void {
  const bad = (m: string) => {
    throw new FreeTumorError('invalid_argument', m);
  };
  if (!ORGANS.includes(o.organ as OrganName)) bad(`--organ must be one of ${ORGANS.join(', ')}`);
  if (!SYNTHESIS_TYPES.includes(o.type as SynthesisType))
    bad(`--type must be one of ${SYNTHESIS_TYPES.join(', ')}`);
  if (o.mode !== 'darken' && o.mode !== 'brighten') bad('--mode must be darken or brighten');
  if (o.variants < 1 || o.variants > MAX_VARIANTS) bad(`--variants must be 1..${MAX_VARIANTS}`);
  const attempts = o.attempts ?? DEFAULT_ATTEMPTS;
  if (attempts < 1 || attempts > MAX_ATTEMPTS) bad(`--attempts must be 1..${MAX_ATTEMPTS}`);
  if (!parseLabelMap(o.labelMap).organs[o.organ as OrganName]) bad(`--label-map has no ids for ${o.organ}`);
}

export async function synthesizeDataset(o: SynthesizeDatasetOptions): Promise<ShardResult> {
  check(o);
  const log = o.log ?? (() => {});
  // s3:// models (a published prefix with latest.json, or one model folder) are fetched once here.
  if (o.generator) o = { ...o, generator: await resolveModelDir(o.generator, o) };
  if (o.quality) o = { ...o, quality: await resolveModelDir(o.quality, o) };
  const input = openLocation(o.data, o);
  const output = openLocation(o.out, o);
  try {
    const { cases, layout, missingLabels } = await findCases(input.store, input.prefix);
    if (cases.length === 0) {
      throw new FreeTumorError('not_found', 'no cases with an image and a label found under --data');
    }
    if (missingLabels > 0) log(`note: ${missingLabels} image(s) without a label were skipped`);
    const generator = o.generator ? await modelFingerprint(o.generator, ['generator']) : null;
    if (o.generator && generator?.length === 0)
      throw new FreeTumorError('model_unavailable', 'no generator manifest.json in --generator');
    const quality = o.quality ? await modelFingerprint(o.quality, ['segmentor', 'discriminator']) : null;
    if (o.quality && quality?.length === 0) {
      throw new FreeTumorError(
        'model_unavailable',
        `--quality holds no segmentor or discriminator manifest (roles: ${MODEL_ROLES.join(', ')})`,
      );
    }
    const settings: RunSettings = {
      organ: o.organ,
      labelMap: o.labelMap,
      type: o.type,
      count: o.count ?? null,
      seed: o.seed,
      mode: o.mode as RunSettings['mode'],
      variants: o.variants,
      attempts: quality ? (o.attempts ?? DEFAULT_ATTEMPTS) : 1,
      generator: generator?.join(';') ?? null,
      quality,
    };
    const plan: Plan = await claimPlan(output.store, output.prefix, {
      version: 2,
      layout,
      settings,
      cases: cases.map((c) => c.name),
    });
    const byName = new Map(cases.map((c) => [c.name, c]));
    const finished = new Set(
      (await output.store.list(`${output.prefix}${MARKERS}`)).map((k) =>
        k.slice(output.prefix.length + MARKERS.length, -'.json'.length),
      ),
    );

    interface Item {
      job: VariantJob;
      name: string;
      variant: number;
    }
    const items: Item[] = [];
    let shardCases = 0;
    let total = 0;
    plan.cases.forEach((name, i) => {
      if (!inShard(i, o.shard)) return;
      shardCases++;
      for (let v = 0; v < plan.settings.variants; v++) {
        total++;
        const id = variantId(name, v);
        if (finished.has(id)) continue;
        items.push({
          name,
          variant: v,
          job: {
            id,
            seed: variantSeed(o.seed, name, v),
            organ: o.organ as OrganName,
            labelMap: o.labelMap,
            type: o.type as SynthesisType,
            count: o.count,
            mode: settings.mode,
            attempts: settings.attempts,
          },
        });
      }
    });
    const skipped = total - items.length;
    if (skipped > 0) log(`resuming: ${skipped} of ${total} variants of this shard already done`);

    const t0 = performance.now();
    let done = 0;
    let failed = 0;
    const fetch = async (key: string) => {
      const bytes = await input.store.get(key);
      if (bytes === null) throw new FreeTumorError('not_found', 'an input object disappeared during the run');
      return bytes;
    };
    await runPool(
      items,
      o.workers,
      { generator: o.generator, quality: o.quality, threads: 1 },
      async (item) => {
        const c = byName.get(item.name);
        if (!c) throw new FreeTumorError('not_found', 'a planned case is no longer in the input');
        const [image, label] = await Promise.all([fetch(c.image), fetch(c.label)]);
        return { job: item.job, image, label };
      },
      async (item, reply) => {
        if ('fatal' in reply) throw new Error(`synthesis failed unexpectedly: ${reply.fatal}`);
        const r = reply.outcome;
        const keys = outputKeys(plan.layout, item.job.id);
        const record: VariantRecord = {
          id: item.job.id,
          case: item.name,
          variant: item.variant,
          status: r.ok ? r.status : 'failed',
          attempts: r.ok ? r.attempts : 0,
          detection: r.ok ? round(r.detection) : null,
          realism: r.ok ? round(r.realism) : null,
          tumors: r.ok ? r.tumors : 0,
          tumorVoxels: r.ok ? r.tumorVoxels : 0,
          image: null,
          label: null,
          imageSha256: null,
          labelSha256: null,
        };
        if (r.ok) {
          const c = byName.get(item.name) as (typeof cases)[number];
          // A rejected variant keeps the original CT and label, byte for byte.
          const image = r.image ?? (await fetch(c.image));
          const label = r.label ?? (await fetch(c.label));
          // Data first, marker last: a marker always names complete objects.
          await output.store.put(`${output.prefix}${keys.image}`, image);
          await output.store.put(`${output.prefix}${keys.label}`, label);
          Object.assign(record, {
            image: keys.image,
            label: keys.label,
            imageSha256: sha256(image),
            labelSha256: sha256(label),
          });
        } else {
          record.error = `${r.code}: ${r.message}`;
          failed++;
        }
        await output.store.put(
          `${output.prefix}${markerKey(item.job.id)}`,
          `${JSON.stringify(record, null, 1)}\n`,
          'application/json',
        );
        done++;
        o.onProgress?.(done, items.length);
      },
    );
    const seconds = (performance.now() - t0) / 1000;
    await output.store.put(
      `${output.prefix}${shardKey(o.shard)}`,
      `${JSON.stringify({ shard: o.shard, cases: shardCases, variants: total }, null, 1)}\n`,
      'application/json',
    );
    const result: ShardResult = {
      shard: o.shard,
      cases: plan.cases.length,
      shardCases,
      variants: total,
      done,
      skipped,
      failed,
      seconds: Math.round(seconds * 100) / 100,
    };
    if (o.shard.count === 1) {
      result.merge = await mergeRun(output.store, output.prefix);
    } else {
      // Every shard tries the merge once its markers are written: the last one to finish sees all
      // markers (S3 and R2 list with read-after-write consistency) and writes dataset.json, so an
      // array job needs no follow-up step. Two shards finishing together write the same bytes.
      try {
        result.merge = await mergeRun(output.store, output.prefix);
      } catch (e) {
        if (!(e instanceof FreeTumorError && e.code === 'not_found')) throw e;
        log(`merge: not yet (${e.message.split(';')[0]}); the last shard to finish merges`);
      }
    }
    return result;
  } finally {
    input.close();
    output.close();
  }
}

function round(x: number | null): number | null {
  return x === null ? null : Math.round(x * 1e4) / 1e4;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
