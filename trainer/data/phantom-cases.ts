/**
 * Small preprocessed training cases from shared/phantom, for tests, benchmarks and the demo:
 * a phantom at a coarse spacing, windowed, labels merged for one organ.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { windowHU } from '../../shared/intensity/window.ts';
import { FREETUMOR_MAP, type OrganName, toMergedScheme } from '../../shared/labels/labelmap.ts';
import { generatePhantom } from '../../shared/phantom/phantom.ts';
import type { Dims3 } from '../../shared/volume/volume.ts';
import { encodeCase, type TrainingCase } from './case.ts';
import type { CaseEntry } from './store.ts';

export interface PhantomCaseOptions {
  seed: number;
  size: Dims3 | 'default';
  /** mm; coarse spacings put the whole abdomen in a small grid. */
  spacing?: number;
  organ?: OrganName;
  tumors?: number;
  labeled?: boolean;
}

export function phantomCase(o: PhantomCaseOptions): TrainingCase {
  const organ = o.organ ?? 'liver';
  const p = generatePhantom({
    seed: o.seed,
    spacing: o.spacing ?? 10,
    size: o.size,
    tumors: o.tumors ? [{ organ, count: o.tumors }] : [],
  });
  return {
    id: `phantom_${o.seed}`,
    dims: [...p.ct.dims],
    image: windowHU(p.ct.data),
    label: toMergedScheme(p.label.data, FREETUMOR_MAP, organ),
    organ,
    labeled: o.labeled ?? true,
  };
}

/** Writes cases as cache files in `dir` and returns their entries. */
export async function writeCases(
  dir: string,
  cases: readonly TrainingCase[],
  repeat = 1,
): Promise<CaseEntry[]> {
  await mkdir(dir, { recursive: true });
  return Promise.all(
    cases.map(async (c) => {
      const path = join(dir, `${c.id}.ftcase`);
      await writeFile(path, encodeCase(c));
      return { path, labeled: c.labeled, repeat };
    }),
  );
}
