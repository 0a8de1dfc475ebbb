/**
 * From a run config to the case entries the loop samples: list every data set, preprocess (with
 * the cache), hold out validation cases, and apply the mode's rules (the baseline uses labeled
 * cases only; labeled cases are repeated `repeat` times per epoch).
 */

import { readFile } from 'node:fs/promises';
import type { RunConfig } from '../train/config.ts';
import { decodeCase, type TrainingCase } from './case.ts';
import { listDataset } from './dataset.ts';
import { preprocessToCache } from './preprocess.ts';
import type { CaseEntry } from './store.ts';

export interface PreparedData {
  train: CaseEntry[];
  validation: string[];
}

export async function prepareData(
  config: RunConfig,
  cacheDir: string,
  log: (m: string) => void = () => {},
): Promise<PreparedData> {
  const train: CaseEntry[] = [];
  const validation: string[] = [];
  const labeledOnly = config.kind === 'segmentation' && config.segmentation.mode === 'baseline';
  for (const d of config.data.datasets) {
    const cases = await listDataset(d);
    const labeled = cases.filter((c) => c.labeled);
    const heldOut = new Set(
      labeled.slice(Math.max(0, labeled.length - config.data.validationCases)).map((c) => c.id),
    );
    let done = 0;
    for (const c of cases) {
      if (!c.labeled && (labeledOnly || !d.unlabeled)) continue;
      const path = await preprocessToCache(
        c,
        { spacing: config.data.spacing, window: config.data.window, labelMap: d.labelMap, organ: d.organ },
        cacheDir,
      );
      if (heldOut.has(c.id)) validation.push(path);
      else train.push({ path, labeled: c.labeled, repeat: c.labeled ? d.repeat : 1 });
      done++;
    }
    log(`data set ${d.name}: ${done} cases preprocessed (${heldOut.size} held out for validation)`);
  }
  return { train, validation };
}

export async function loadCases(paths: readonly string[]): Promise<TrainingCase[]> {
  return Promise.all(paths.map(async (p) => decodeCase(new Uint8Array(await readFile(p)))));
}
