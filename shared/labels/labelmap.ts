/**
 * Label schemes and the mapping from a data set's own label ids to the merged scheme the
 * synthesis works in (0 background, 1 organ, 2 real tumor, 3 synthetic tumor).
 *
 * A map names, per organ, the ids that mean "this organ" and the ids that mean "a real tumor of
 * this organ", plus the id written for a synthetic tumor in the data set's own scheme. Maps
 * without tumor ids (TotalSegmentator) get new ids that the scheme does not use: see
 * `TOTALSEG_V1_MAP` and `parseLabelMap`. Which scheme a label volume is in is decided by
 * `resolveLabelMap` (detect.ts): dataset.json, the ids present, or the user's map, checked
 * against each other.
 */
import { FreeTumorError } from '../errors.ts';
import { ORGAN_CHOICES, ORGANS, type OrganName } from './organs.ts';

// Re-exported so that existing imports keep working; the list itself lives in organs.ts.
export { ORGANS, type OrganName } from './organs.ts';

export interface OrganLabels {
  /** Ids of the organ's healthy tissue. */
  organ: number[];
  /** Ids of real tumors of this organ (merged to 2). */
  tumor: number[];
  /** Id written on synthetic tumor voxels in the output label. */
  tumorOut: number;
  /** True when `tumorOut` was invented because the scheme has no tumor id for this organ. */
  tumorOutAssigned: boolean;
}

export interface LabelMap {
  name: string;
  organs: Partial<Record<OrganName, OrganLabels>>;
  /**
   * Largest class id of a named scheme. A label with other ids above it (besides the tumor ids
   * this map writes) is not in this scheme. Absent for custom maps.
   */
  maxId?: number;
  /** Organs a scheme cannot name on its own, with the reason (shown as the error). */
  unresolved?: Partial<Record<OrganName, string>>;
  /** One line for help texts. */
  description?: string;
}

/** Merged internal scheme. */
export const MERGED = { background: 0, organ: 1, realTumor: 2, syntheticTumor: 3 } as const;

/** FreeTumor abdomen 7-class scheme: 0 bg, 1 liver, 2 liver tumor, 3 pancreas, 4 pancreas tumor, 5 kidney, 6 kidney tumor. */
export const FREETUMOR_MAP: LabelMap = {
  name: 'freetumor',
  description: 'FreeTumor abdomen: 1 liver, 2 liver tumor, 3 pancreas, 4 its tumor, 5 kidney, 6 its tumor',
  maxId: 6,
  organs: {
    liver: { organ: [1], tumor: [2], tumorOut: 2, tumorOutAssigned: false },
    pancreas: { organ: [3], tumor: [4], tumorOut: 4, tumorOutAssigned: false },
    kidney: { organ: [5], tumor: [6], tumorOut: 6, tumorOutAssigned: false },
  },
};

/**
 * Ids written for synthetic tumors in TotalSegmentator labels, which have no tumor classes:
 * 201 (liver), 202 (pancreas), 203 (kidney), above every class id TotalSegmentator uses
 * (v1: 104, v2: 117) so they never collide. They count as tumor when such a label is read again.
 */
const TOTALSEG_TUMOR: Record<OrganName, number> = { liver: 201, pancreas: 202, kidney: 203 };

function totalsegOrgan(organ: OrganName, ids: number[]): OrganLabels {
  const t = TOTALSEG_TUMOR[organ];
  return { organ: ids, tumor: [t], tumorOut: t, tumorOutAssigned: true };
}

/** TotalSegmentator v1 "total" task (104 classes): liver 5, kidney_right 2, kidney_left 3, pancreas 10. */
export const TOTALSEG_V1_MAP: LabelMap = {
  name: 'totalseg-v1',
  description: 'TotalSegmentator v1 (104 classes): liver 5, kidneys 2+3, pancreas 10',
  maxId: 104,
  organs: {
    liver: totalsegOrgan('liver', [5]),
    pancreas: totalsegOrgan('pancreas', [10]),
    kidney: totalsegOrgan('kidney', [2, 3]),
  },
};

/** TotalSegmentator v2 "total" task (117 classes): liver 5, kidneys 2 and 3, pancreas 7 (10 is a lung lobe). */
export const TOTALSEG_V2_MAP: LabelMap = {
  name: 'totalseg-v2',
  description: 'TotalSegmentator v2 (117 classes): liver 5, kidneys 2+3, pancreas 7',
  maxId: 117,
  organs: {
    liver: totalsegOrgan('liver', [5]),
    pancreas: totalsegOrgan('pancreas', [7]),
    kidney: totalsegOrgan('kidney', [2, 3]),
  },
};

/**
 * TotalSegmentator without a version: v1 and v2 agree on the liver and kidneys, not on the
 * pancreas (10 in v1, a lung lobe in v2), so that organ needs the version.
 */
export const TOTALSEG_MAP: LabelMap = {
  name: 'totalseg',
  description: 'TotalSegmentator v1 or v2: liver 5, kidneys 2+3 (the pancreas needs totalseg-v1 or -v2)',
  maxId: 117,
  organs: { liver: TOTALSEG_V1_MAP.organs.liver, kidney: TOTALSEG_V1_MAP.organs.kidney },
  unresolved: {
    pancreas:
      'TotalSegmentator v1 and v2 give the pancreas different ids (10 and 7): pass --label-map totalseg-v1 or totalseg-v2',
  },
};

/** One organ and its tumor: MSD Task03 (liver) / Task07 (pancreas), LiTS, KiTS19, and `freetumor segment` masks. */
export const MSD_MAP: LabelMap = {
  name: 'msd',
  description: 'one organ: 1 organ, 2 tumor (MSD, LiTS, KiTS19; what freetumor segment writes)',
  maxId: 2,
  organs: Object.fromEntries(
    ORGANS.map((o) => [o, { organ: [1], tumor: [2], tumorOut: 2, tumorOutAssigned: false }]),
  ),
};

export const NAMED_LABEL_MAPS: Readonly<Record<string, LabelMap>> = {
  freetumor: FREETUMOR_MAP,
  totalseg: TOTALSEG_MAP,
  totalsegmentator: TOTALSEG_MAP,
  'totalseg-v1': TOTALSEG_V1_MAP,
  'totalseg-v2': TOTALSEG_V2_MAP,
  msd: MSD_MAP,
};

/** Help text for a --label-map option, built from the schemes above. */
export const LABEL_MAP_HELP =
  'auto (dataset.json beside the label, else detected from its ids), freetumor, totalseg-v1, totalseg-v2, ' +
  'totalseg, msd, or ids like liver=5,kidney=2+3,pancreas=10 (liver_tumor=N names a tumor id)';

export const MAX_LABEL_ID = 65535;

/**
 * Parses a named scheme (`NAMED_LABEL_MAPS`) or a custom map such as `liver=5,kidney=2+3,pancreas=10` or
 * `liver=1,liver_tumor=2`. `<organ>_tumor=` lists real-tumor ids; the first of them is also the
 * id written for synthetic tumors. Organs without a tumor id get new ids: the largest id the map
 * names plus 1, 2, ... in the order liver, pancreas, kidney (reported as `tumorOutAssigned`).
 */
export function parseLabelMap(text: string): LabelMap {
  const trimmed = text.trim();
  const named = NAMED_LABEL_MAPS[trimmed.toLowerCase()];
  if (named) return named;
  if (trimmed.toLowerCase() === 'auto') {
    throw new FreeTumorError(
      'invalid_label_map',
      'label map "auto" is decided from the label itself (resolveLabelMap)',
    );
  }
  const organ: Partial<Record<OrganName, number[]>> = {};
  const tumor: Partial<Record<OrganName, number[]>> = {};
  const seen = new Set<number>();
  for (const part of trimmed.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0)
      throw new FreeTumorError('invalid_label_map', `label map entry "${clip(part)}" is not NAME=ID[+ID...]`);
    const key = part.slice(0, eq).trim().toLowerCase();
    const isTumor = key.endsWith('_tumor');
    const name = (isTumor ? key.slice(0, -'_tumor'.length) : key) as OrganName;
    if (!ORGANS.includes(name)) {
      throw new FreeTumorError(
        'invalid_label_map',
        `label map names "${clip(key)}"; organs are ${ORGAN_CHOICES} (or a scheme: ${Object.keys(NAMED_LABEL_MAPS).join(', ')})`,
      );
    }
    const ids = part
      .slice(eq + 1)
      .split('+')
      .map((s) => Number(s.trim()));
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 1 || id > MAX_LABEL_ID) {
        throw new FreeTumorError(
          'invalid_label_map',
          `label ids must be integers in 1..${MAX_LABEL_ID} (entry "${clip(key)}")`,
        );
      }
      if (seen.has(id))
        throw new FreeTumorError('invalid_label_map', `label id ${id} appears twice in the label map`);
      seen.add(id);
    }
    const target = isTumor ? tumor : organ;
    if (target[name]) throw new FreeTumorError('invalid_label_map', `label map names "${clip(key)}" twice`);
    target[name] = ids;
  }
  const map: LabelMap = { name: 'custom', organs: {} };
  let next = Math.max(...seen) + 1;
  for (const name of ORGANS) {
    const ids = organ[name];
    if (!ids) {
      if (tumor[name])
        throw new FreeTumorError('invalid_label_map', `label map gives ${name}_tumor but not ${name}`);
      continue;
    }
    const t = tumor[name] ?? [];
    const assigned = t.length === 0;
    map.organs[name] = {
      organ: ids,
      tumor: t,
      tumorOut: assigned ? next++ : t[0],
      tumorOutAssigned: assigned,
    };
  }
  if (next > MAX_LABEL_ID + 1)
    throw new FreeTumorError('invalid_label_map', `new tumor ids would exceed ${MAX_LABEL_ID}`);
  return map;
}

function clip(s: string): string {
  return s.length > 32 ? `${s.slice(0, 32)}...` : s;
}

export function organLabels(map: LabelMap, organ: OrganName): OrganLabels {
  const o = map.organs[organ];
  const why = map.unresolved?.[organ];
  if (!o && why) throw new FreeTumorError('invalid_label_map', why);
  if (!o) throw new FreeTumorError('invalid_label_map', `the label map ${map.name} has no ids for ${organ}`);
  return o;
}

/** A 65536-entry lookup from a scheme id to the merged id for one organ (other organs are background). */
export function mergedLookup(map: LabelMap, organ: OrganName): Uint8Array {
  const o = organLabels(map, organ);
  const lut = new Uint8Array(MAX_LABEL_ID + 1);
  for (const id of o.organ) lut[id] = MERGED.organ;
  for (const id of o.tumor) lut[id] = MERGED.realTumor;
  return lut;
}

/**
 * The merged scheme for one organ: 1 on the organ, 2 on its real tumors, 0 elsewhere (other
 * organs too, so that a tumor placed in the liver never spills into the kidney). Label values
 * outside 0..65535 (or non-integers) are background.
 */
export function toMergedScheme(labels: ArrayLike<number>, map: LabelMap, organ: OrganName): Uint8Array {
  const lut = mergedLookup(map, organ);
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v > 0 && v <= MAX_LABEL_ID) out[i] = lut[v | 0] * (v === (v | 0) ? 1 : 0);
  }
  return out;
}

/** Label names for a dataset.json (nnU-Net v2 `labels`: name -> id). */
export function labelNames(map: LabelMap): Record<string, number | number[]> {
  const out: Record<string, number | number[]> = { background: 0 };
  for (const name of ORGANS) {
    const o = map.organs[name];
    if (!o) continue;
    out[name] = o.organ.length === 1 ? o.organ[0] : o.organ;
    const tumorIds = o.tumor.includes(o.tumorOut) ? o.tumor : [...o.tumor, o.tumorOut];
    out[`${name}_tumor`] = tumorIds.length === 1 ? tumorIds[0] : tumorIds;
  }
  return out;
}
