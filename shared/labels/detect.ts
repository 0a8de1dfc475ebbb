/**
 * Which label scheme a label volume is in, decided so that it cannot be misread:
 * 1. a map the user names is checked against the ids present (FreeTumor's scheme on a label with
 *    ids up to 104 is refused, naming the option);
 * 2. else a dataset.json beside the label names the classes;
 * 3. else the ids present pick a known scheme: 1-2 only: one organ and its tumor (MSD, LiTS,
 *    KiTS19: unambiguous only for the liver, where FreeTumor's scheme agrees); up to 6:
 *    FreeTumor; up to 117 (plus our synthetic-tumor ids 201-203): TotalSegmentator, v2 when an
 *    id above 104 is present. Anything else is refused.
 * Finally the organ asked for must be present under the chosen map. Every refusal is one line
 * that names the option to pass (`--label-map` on the CLI, `label_map` over HTTP).
 */
import { FreeTumorError } from '../errors.ts';
import { type LabelMapSource, labelMapFromDatasetJson } from './dataset-json.ts';
import {
  FREETUMOR_MAP,
  type LabelMap,
  MAX_LABEL_ID,
  MSD_MAP,
  organLabels,
  parseLabelMap,
  TOTALSEG_MAP,
  TOTALSEG_V1_MAP,
  TOTALSEG_V2_MAP,
} from './labelmap.ts';
import { ORGAN_CHOICES, ORGANS, type OrganName } from './organs.ts';

/**
 * The distinct class ids of a label volume (0 excluded), and what does not fit a label map: the one
 * description of what ids a label holds, gathered in one pass and used both to decide its label map
 * (resolveLabelMap) and to choose a synthetic tumor id that collides with none (whole-volume.ts).
 */
export interface LabelIds {
  /** Sorted distinct non-zero ids. */
  ids: number[];
  /** Voxels that are negative, non-integer or above 65535 (a CT given as a label has many). */
  invalid: number;
}

/** Whether the label holds class id `id`. */
export function holdsLabelId(found: LabelIds, id: number): boolean {
  const { ids } = found;
  let lo = 0;
  let hi = ids.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (ids[mid] === id) return true;
    if (ids[mid] < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

/** The label's largest class id (0 when it holds none). */
export function largestLabelId(found: LabelIds): number {
  return found.ids.at(-1) ?? 0;
}

export function labelIds(data: ArrayLike<number>): LabelIds {
  const collector = new LabelIdCollector();
  collector.add(data);
  return collector.ids();
}

/** labelIds gathered chunk by chunk, for a label read slice by slice (the Worker's stream). */
export class LabelIdCollector {
  private readonly seen = new Uint8Array(MAX_LABEL_ID + 1);
  private invalid = 0;

  add(data: ArrayLike<number>): void {
    const seen = this.seen;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v >= 0 && v <= MAX_LABEL_ID && v === Math.floor(v)) seen[v] = 1;
      else this.invalid++;
    }
  }

  ids(): LabelIds {
    const ids: number[] = [];
    for (let id = 1; id <= MAX_LABEL_ID; id++) if (this.seen[id]) ids.push(id);
    return { ids, invalid: this.invalid };
  }
}

export interface ResolveOptions {
  /** The user's map (a scheme name, custom ids, or "auto"/undefined to decide from the label). */
  spec?: string;
  /** The organ the caller needs; checked to be present. */
  organ?: OrganName;
  /** Parsed dataset.json found beside the label, if any. */
  datasetJson?: unknown;
  /** How the option is called where the message is shown (default `--label-map`). */
  option?: string;
}

export interface ResolvedLabelMap {
  map: LabelMap;
  source: LabelMapSource;
  /** Why this map (for logs and summaries), e.g. "detected: ids 1-104". */
  reason: string;
}

function range(ids: number[]): string {
  if (ids.length === 0) return 'no ids but 0';
  return ids.length === 1 ? `id ${ids[0]}` : `ids ${ids[0]}-${ids.at(-1)}`;
}

/** Ids the map does not know: above its maxId and not one of its tumor ids. */
function foreignIds(map: LabelMap, ids: number[]): number[] {
  if (map.maxId === undefined) return [];
  const own = new Set<number>();
  for (const o of Object.values(map.organs)) for (const t of o?.tumor ?? []) own.add(t);
  return ids.filter((id) => id > (map.maxId as number) && !own.has(id));
}

/** Picks a known scheme from the ids present (see the module comment). */
export function detectLabelMap(
  found: LabelIds,
  organ: OrganName | undefined,
  option = '--label-map',
): LabelMap {
  const { ids } = found;
  const max = ids.at(-1) ?? 0;
  const synthetic = new Set([201, 202, 203]);
  const classes = ids.filter((id) => !synthetic.has(id));
  const classMax = classes.at(-1) ?? 0;
  if (max === 0) {
    throw new FreeTumorError('empty_organ', 'the label volume is all 0 (no organ labeled)');
  }
  if (max <= 2) {
    // 1 (+2): one organ and its tumor. FreeTumor's scheme reads 1 as the liver as well, so only
    // the liver is unambiguous; 1 as the pancreas or a kidney has to be said.
    if (organ === undefined || organ === 'liver') return MSD_MAP;
    throw new FreeTumorError(
      'invalid_label_map',
      `the label holds only ${range(ids)} (one organ + its tumor, or FreeTumor's liver): pass ${option} msd if 1 is the ${organ}, or a dataset.json`,
    );
  }
  if (max <= FREETUMOR_MAP.maxId!) return FREETUMOR_MAP;
  if (
    classMax <= TOTALSEG_V2_MAP.maxId! &&
    ids.every((id) => id <= TOTALSEG_V2_MAP.maxId! || synthetic.has(id))
  ) {
    if (classMax > TOTALSEG_V1_MAP.maxId!) return TOTALSEG_V2_MAP;
    return TOTALSEG_MAP;
  }
  throw new FreeTumorError(
    'invalid_label_map',
    `label ${range(ids)} fit no known scheme (freetumor 1-6, totalseg-v1 1-104, totalseg-v2 1-117, msd 1-2): pass ${option}`,
  );
}

/** The label map for a label volume with these ids (see the module comment). */
export function resolveLabelMap(found: LabelIds, options: ResolveOptions = {}): ResolvedLabelMap {
  const option = options.option ?? '--label-map';
  if (found.invalid > 0) {
    throw new FreeTumorError(
      'invalid_label_map',
      `the label volume has ${found.invalid} voxels that are not class ids (integers 0..${MAX_LABEL_ID}); is it a CT?`,
    );
  }
  const spec = options.spec?.trim();
  let resolved: ResolvedLabelMap;
  if (spec && spec.toLowerCase() !== 'auto') {
    const map = parseLabelMap(spec);
    const foreign = foreignIds(map, found.ids);
    if (foreign.length > 0) {
      let hint = '';
      try {
        hint = `; it looks like ${detectLabelMap(found, undefined, option).name}`;
      } catch {
        // No known scheme fits either: the plain refusal says enough.
      }
      throw new FreeTumorError(
        'invalid_label_map',
        `label ${range(found.ids)} do not fit ${option} ${map.name} (ids up to ${map.maxId})${hint}: pass the right ${option}`,
      );
    }
    resolved = { map, source: 'option', reason: `${option} ${map.name}` };
  } else if (options.datasetJson !== undefined) {
    const map = labelMapFromDatasetJson(options.datasetJson, option);
    resolved = { map, source: 'dataset.json', reason: 'dataset.json beside the label' };
  } else {
    const map = detectLabelMap(found, options.organ, option);
    resolved = { map, source: 'detected', reason: `detected from label ${range(found.ids)}` };
  }
  if (options.organ) checkOrganPresent(resolved, found, options.organ, option);
  return resolved;
}

function checkOrganPresent(r: ResolvedLabelMap, found: LabelIds, organ: OrganName, option: string): void {
  const ids = organLabels(r.map, organ).organ;
  const present = new Set(found.ids);
  if (ids.some((id) => present.has(id))) return;
  throw new FreeTumorError(
    'empty_organ',
    `no ${organ} in the label: ${r.map.name} (${r.reason}) gives it id ${ids.join('+')}, which the label (${range(found.ids)}) does not hold; pass ${option} if it uses other ids`,
  );
}

/** The one organ of `map` whose ids are present, for callers that were not told the organ. */
export function presentOrgan(map: LabelMap, found: LabelIds, option = '--organ'): OrganName {
  const present = new Set(found.ids);
  const organs = ORGANS.filter((o) => map.organs[o]?.organ.some((id) => present.has(id)));
  if (organs.length === 1) return organs[0];
  if (organs.length === 0) {
    throw new FreeTumorError('empty_organ', `the label holds none of ${ORGAN_CHOICES} under ${map.name}`);
  }
  throw new FreeTumorError('invalid_argument', `the label holds ${organs.join(' and ')}: pass ${option}`);
}

/** Most distinct values a volume may hold and still be taken for a label map (TotalSegmentator v2 has 117). */
export const LABEL_VOLUME_MAX_CLASSES = 1024;

export interface LabelVolumeEvidence {
  /** True for an integer volume of non-negative values with at most LABEL_VOLUME_MAX_CLASSES distinct ones. */
  isLabel: boolean;
  /** Distinct values counted (stops counting past the limit). */
  distinct: number;
  reason: string;
}

/**
 * Whether a volume is a label map, for choosing nearest-neighbour resampling: integer voxel type,
 * no negative value (a CT has air at -1000) and few distinct values. Floating data (a CT with
 * scl_slope applied, a probability map) is never taken for labels.
 */
export function labelVolumeEvidence(data: ArrayLike<number>): LabelVolumeEvidence {
  if (data instanceof Float32Array || data instanceof Float64Array) {
    return { isLabel: false, distinct: 0, reason: 'floating-point voxels' };
  }
  // Ids up to 65535 go through a presence table (a Set per voxel is slow on 10^8 voxels).
  const table = new Uint8Array(MAX_LABEL_ID + 1);
  const large = new Set<number>();
  let distinct = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < 0) return { isLabel: false, distinct, reason: 'negative values' };
    if (v <= MAX_LABEL_ID) {
      if (table[v] === 0) {
        table[v] = 1;
        distinct++;
      }
    } else if (!large.has(v)) {
      large.add(v);
      distinct++;
    }
    if (distinct > LABEL_VOLUME_MAX_CLASSES) {
      return { isLabel: false, distinct, reason: `more than ${LABEL_VOLUME_MAX_CLASSES} distinct values` };
    }
  }
  return { isLabel: true, distinct, reason: `${distinct} distinct non-negative integer values` };
}
