/**
 * What the recipe scripts (eval-run, diagnose-run) take from a demo's output folder: its held-out
 * phantoms, and a run's segmentor exported as the demo exports it (int8, one checkpoint).
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { DemoCase } from '../../trainer/demo/data.ts';
import { exportRun } from '../../trainer/export/from-run.ts';

/** The held-out phantoms (imagesTs with a label in labelsTs), sorted by id. */
export async function heldOutCases(demo: string): Promise<DemoCase[]> {
  const phantom = join(demo, 'data', 'phantom');
  const cases: DemoCase[] = [];
  for (const f of (await readdir(join(phantom, 'imagesTs'))).sort()) {
    const id = f.replace(/_0000\.nii\.gz$/, '');
    const label = join(phantom, 'labelsTs', `${id}.nii.gz`);
    if (!existsSync(label)) continue;
    // hasTumor only picks the comparison's example pictures; the scores come from the labels.
    cases.push({ id, image: join(phantom, 'imagesTs', f), label, labelMap: 'freetumor', hasTumor: true });
  }
  return cases;
}

/** Exports a run's segmentor into `dir` as the demo does (int8 + fp32, the given checkpoint and overlap). */
export async function exportSegmentor(
  run: string,
  dir: string,
  o: { checkpoint: string; overlap: number },
): Promise<void> {
  await exportRun(run, dir, {
    quantize: 'int8',
    checkpoint: o.checkpoint === 'last' ? 'last' : 'best',
    roles: ['segmentor'],
    overlap: o.overlap,
  });
}

/** The machine's load averages, printed with every result (figures taken under load say so). */
export function loadLine(): string {
  return `load ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`;
}
