/**
 * `synthesize-dataset merge`: once every shard has written its variants' markers, one dataset.json
 * (nnU-Net format, with each variant's QC record), the state file (every record, keyed by id) and
 * summary.json (counts and the accept rate). It refuses while any planned variant lacks its marker
 * and names the shards those belong to. Everything it writes is a function of the markers alone,
 * so the output does not depend on how many shards made them.
 */
import { FreeTumorError } from '../../../shared/errors.ts';
import { labelNames, parseLabelMap } from '../../../shared/labels/labelmap.ts';
import type { ObjectStore } from '../../storage/object-store.ts';
import {
  MARKERS,
  META,
  type Plan,
  readPlan,
  STATE_FILE,
  type VariantRecord,
  type VariantStatus,
  variantId,
} from './plan.ts';

export interface MergeSummary {
  cases: number;
  variants: number;
  counts: Record<VariantStatus, number>;
  /** accepted / (accepted + rejected); null without quality control. */
  acceptRate: number | null;
  meanAttempts: number | null;
  /** Median detection of accepted variants (null without a QC segmentor). */
  medianDetectionAccepted: number | null;
}

export interface MergeResult extends MergeSummary {
  written: string[];
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The shards (of the shard count the shard markers record) that still miss variants. */
async function missingShards(
  store: ObjectStore,
  prefix: string,
  plan: Plan,
  missingCases: Set<string>,
): Promise<string> {
  const counts = new Set(
    (await store.list(`${prefix}${META}/shards/`))
      .map((k) => /(\d+)-of-(\d+)\.json$/.exec(k)?.[2])
      .filter((n): n is string => n !== undefined)
      .map(Number),
  );
  if (counts.size !== 1) return '';
  const n = [...counts][0];
  const shards = new Set<number>();
  plan.cases.forEach((c, i) => {
    if (missingCases.has(c)) shards.add(i % n);
  });
  return ` (shards ${[...shards]
    .sort((a, b) => a - b)
    .slice(0, 20)
    .map((s) => `${s}/${n}`)
    .join(', ')} of ${n})`;
}

export async function mergeRun(store: ObjectStore, prefix: string): Promise<MergeResult> {
  const plan = await readPlan(store, prefix);
  if (!plan) {
    throw new FreeTumorError(
      'not_found',
      'no synthesize-dataset run in --out (no plan); run the shards first',
    );
  }
  const have = new Set(
    (await store.list(`${prefix}${MARKERS}`)).map((k) => k.slice(prefix.length + MARKERS.length, -5)),
  );
  const records: VariantRecord[] = [];
  const missingCases = new Set<string>();
  let missing = 0;
  const expected: string[] = [];
  for (const c of plan.cases) {
    for (let v = 0; v < plan.settings.variants; v++) {
      const id = variantId(c, v);
      expected.push(id);
      if (!have.has(id)) {
        missing++;
        missingCases.add(c);
      }
    }
  }
  if (missing > 0) {
    throw new FreeTumorError(
      'not_found',
      `${missing} of ${expected.length} variants have no marker yet${await missingShards(store, prefix, plan, missingCases)}; run those shards, then merge`,
    );
  }
  for (const id of expected) {
    const bytes = await store.get(`${prefix}${MARKERS}${id}.json`);
    if (bytes === null)
      throw new FreeTumorError('not_found', 'a variant marker disappeared during the merge');
    records.push(JSON.parse(new TextDecoder().decode(bytes)) as VariantRecord);
  }

  const counts: Record<VariantStatus, number> = { synthesized: 0, accepted: 0, rejected: 0, failed: 0 };
  for (const r of records) counts[r.status]++;
  const judged = counts.accepted + counts.rejected;
  const qcRecords = records.filter((r) => r.status === 'accepted' || r.status === 'rejected');
  const summary: MergeSummary = {
    cases: plan.cases.length,
    variants: records.length,
    counts,
    acceptRate: judged > 0 ? Math.round((counts.accepted / judged) * 1e4) / 1e4 : null,
    meanAttempts:
      qcRecords.length > 0
        ? Math.round((qcRecords.reduce((a, r) => a + r.attempts, 0) / qcRecords.length) * 100) / 100
        : null,
    medianDetectionAccepted: median(
      records
        .filter((r) => r.status === 'accepted' && r.detection !== null)
        .map((r) => r.detection as number),
    ),
  };
  const usable = records.filter((r) => r.image !== null && r.label !== null);
  const s = plan.settings;
  const dataset = {
    name: 'freetumor-synthetic',
    description:
      `FreeTumor synthetic ${s.organ} tumors (${s.type}${s.generator ? ', trained generator' : ', handcrafted'}` +
      `${s.quality ? ', quality control' : ''}), ${s.variants} variant(s) per case; rejected variants keep the original`,
    channel_names: { '0': 'CT' },
    labels: labelNames(parseLabelMap(s.labelMap)),
    numTraining: usable.length,
    file_ending: '.nii.gz',
    training: usable.map((r) => ({ image: `./${r.image}`, label: `./${r.label}` })),
    synthesis: records.map((r) => ({
      id: r.id,
      status: r.status,
      attempts: r.attempts,
      detection: r.detection,
      realism: r.realism,
    })),
  };
  const state = { version: 2, settings: s, variants: Object.fromEntries(records.map((r) => [r.id, r])) };
  const written = ['dataset.json', STATE_FILE, 'summary.json'];
  await store.put(`${prefix}dataset.json`, `${JSON.stringify(dataset, null, 2)}\n`, 'application/json');
  await store.put(`${prefix}${STATE_FILE}`, `${JSON.stringify(state, null, 1)}\n`, 'application/json');
  await store.put(`${prefix}summary.json`, `${JSON.stringify(summary, null, 2)}\n`, 'application/json');
  return { ...summary, written };
}
