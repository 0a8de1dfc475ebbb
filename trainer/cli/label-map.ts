/**
 * Node glue for label maps on the CLI: finds a dataset.json beside a label (its folder, or the
 * folder above as in nnU-Net's and MSD's labelsTr/), then lets shared/labels decide the map.
 * The deciding itself (detection, checks, messages) lives in shared/labels/detect.ts.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  type LabelIds,
  labelIds,
  type ResolvedLabelMap,
  resolveLabelMap,
} from '../../shared/labels/detect.ts';
import type { OrganName } from '../../shared/labels/organs.ts';
import { CliError } from './output.ts';

/** dataset.json files larger than this are not label descriptions. */
const MAX_DATASET_JSON_BYTES = 4 * 1024 * 1024;

/** The parsed dataset.json beside `labelPath` (same folder, then the parent), or undefined. */
export async function datasetJsonBeside(labelPath: string): Promise<unknown> {
  const here = dirname(labelPath);
  for (const dir of [here, dirname(here)]) {
    const path = join(dir, 'dataset.json');
    const info = await stat(path).catch(() => null);
    if (!info?.isFile()) continue;
    if (info.size > MAX_DATASET_JSON_BYTES) {
      throw new CliError(`dataset.json beside the label is over ${MAX_DATASET_JSON_BYTES} bytes`);
    }
    try {
      return JSON.parse(await readFile(path, 'utf8'));
    } catch {
      throw new CliError('dataset.json beside the label is not valid JSON; fix it or pass --label-map');
    }
  }
  return undefined;
}

export interface CliLabelMapOptions {
  /** The option's value ("auto" or absent: dataset.json, else detection). */
  spec?: string;
  organ?: OrganName;
  /** The option's name in messages. */
  option?: string;
}

/** The label map of one label volume read from `labelPath`. */
export async function resolveCliLabelMap(
  labelPath: string,
  labelData: ArrayLike<number>,
  options: CliLabelMapOptions,
): Promise<ResolvedLabelMap & { found: LabelIds }> {
  const found = labelIds(labelData);
  const auto = options.spec === undefined || options.spec.trim().toLowerCase() === 'auto';
  const datasetJson = auto ? await datasetJsonBeside(labelPath) : undefined;
  const resolved = resolveLabelMap(found, {
    spec: options.spec,
    organ: options.organ,
    datasetJson,
    option: options.option,
  });
  return { ...resolved, found };
}

/**
 * The synthetic tumor id `freetumor synthesize` wrote for this label: from the summary.json it
 * wrote beside its label.nii.gz, when that is where the label comes from.
 */
export async function syntheticIdFromSummary(labelPath: string): Promise<number | undefined> {
  if (!/^label\.nii(\.gz)?$/.test(basename(labelPath))) return undefined;
  const path = join(dirname(labelPath), 'summary.json');
  try {
    const summary = JSON.parse(await readFile(path, 'utf8')) as { tumorLabel?: unknown };
    const id = summary.tumorLabel;
    return Number.isInteger(id) && (id as number) > 0 ? (id as number) : undefined;
  } catch {
    return undefined;
  }
}
