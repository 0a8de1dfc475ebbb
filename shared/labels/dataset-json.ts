/**
 * The label map a dataset.json names. Two layouts exist:
 * - Medical Segmentation Decathlon: `"labels": {"0": "background", "1": "liver", "2": "cancer"}`;
 * - nnU-Net v2: `"labels": {"background": 0, "liver": 1, "liver_tumor": 2}`, a value may be a
 *   list of ids (region-based training: `"kidney": [1, 2, 3], "tumor": [2]`).
 * Names are matched case-insensitively with spaces and dashes as underscores: an organ by its
 * name (kidney also as kidney_left/right, left_kidney, kidneys), its tumor as
 * `<organ>_tumor|cancer|lesion|mass`, and a bare `tumor|cancer|lesion(s)|mass(es)` as the tumor
 * of every organ named (in MSD's one-organ tasks, that organ). Ids of a tumor are removed from
 * an organ's list (regions overlap). Other classes (cyst, spleen, ...) are background.
 */
import { FreeTumorError } from '../errors.ts';
import { type LabelMap, MAX_LABEL_ID, type OrganLabels } from './labelmap.ts';
import { ORGAN_CHOICES, ORGANS, type OrganName } from './organs.ts';

export type LabelMapSource = 'option' | 'dataset.json' | 'detected';

const GENERIC_TUMOR = /^(tumou?rs?|cancers?|lesions?|mass(es)?|metastas[ie]s)$/;

function organOf(name: string): OrganName | null {
  if (name === 'kidneys' || /^(kidney_(left|right|l|r)|(left|right)_kidney)$/.test(name)) return 'kidney';
  return (ORGANS as readonly string[]).includes(name) ? (name as OrganName) : null;
}

function tumorOrganOf(name: string): OrganName | null {
  const m = /^([a-z]+)_(tumou?rs?|cancers?|lesions?|mass(es)?|metastas[ie]s)$/.exec(name);
  return m ? organOf(m[1]) : null;
}

function asIds(value: unknown): number[] | null {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) return null;
  const ids = list.map((v) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v));
  return ids.every((v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_LABEL_ID)
    ? (ids as number[])
    : null;
}

/** name -> ids from either layout; null when `labels` has neither. */
function namedIds(labels: Record<string, unknown>): Array<[string, number[]]> | null {
  const entries = Object.entries(labels);
  const norm = (s: string) =>
    s
      .trim()
      .toLowerCase()
      .replace(/[\s-]+/g, '_');
  if (entries.every(([k, v]) => /^\d+$/.test(k) && typeof v === 'string')) {
    return entries.map(([k, v]) => [norm(v as string), [Number(k)]]);
  }
  const out: Array<[string, number[]]> = [];
  for (const [k, v] of entries) {
    const ids = asIds(v);
    if (!ids) return null;
    out.push([norm(k), ids]);
  }
  return out;
}

export function labelMapFromDatasetJson(json: unknown, option = '--label-map'): LabelMap {
  const labels = (json as { labels?: unknown } | null)?.labels;
  const bad = (why: string) =>
    new FreeTumorError('invalid_label_map', `dataset.json beside the label ${why}; pass ${option}`);
  if (!labels || typeof labels !== 'object' || Array.isArray(labels)) throw bad('has no "labels" object');
  const named = namedIds(labels as Record<string, unknown>);
  if (!named) throw bad('has "labels" in neither the MSD nor the nnU-Net layout');
  const organ: Partial<Record<OrganName, Set<number>>> = {};
  const tumor: Partial<Record<OrganName, number[]>> = {};
  const generic: number[] = [];
  for (const [name, ids] of named) {
    const nonZero = ids.filter((id) => id > 0);
    const o = organOf(name);
    if (o) {
      organ[o] ??= new Set();
      for (const id of nonZero) organ[o].add(id);
      continue;
    }
    const t = tumorOrganOf(name);
    if (t) tumor[t] = [...(tumor[t] ?? []), ...nonZero];
    else if (GENERIC_TUMOR.test(name)) generic.push(...nonZero);
  }
  const present = ORGANS.filter((o) => organ[o] && organ[o].size > 0);
  if (present.length === 0) throw bad(`names none of ${ORGAN_CHOICES}`);
  const map: LabelMap = { name: 'dataset.json', organs: {} };
  let next = Math.max(...named.flatMap(([, ids]) => ids)) + 1;
  for (const o of present) {
    const own = tumor[o] ?? [];
    const tumorIds = [...new Set([...own, ...generic])];
    const organIds = [...(organ[o] as Set<number>)].filter((id) => !tumorIds.includes(id));
    if (organIds.length === 0) throw bad(`gives ${o} only ids that are also tumor ids`);
    const assigned = tumorIds.length === 0;
    const entry: OrganLabels = {
      organ: organIds.sort((a, b) => a - b),
      tumor: tumorIds,
      tumorOut: assigned ? next++ : (own[0] ?? generic[0]),
      tumorOutAssigned: assigned,
    };
    map.organs[o] = entry;
  }
  if (next > MAX_LABEL_ID + 1) throw bad(`leaves no free id for a synthetic tumor below ${MAX_LABEL_ID}`);
  return map;
}
