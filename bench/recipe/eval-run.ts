/**
 * Scores a trained run folder the way the demo does: export (int8, best checkpoint, overlap 0.5)
 * and run the deployed pipeline (shared/inference) on a demo output's held-out phantoms.
 * For recipe experiments on a run that a demo (or `freetumor train`) left behind.
 *
 *   node bench/recipe/eval-run.ts --run DEMO_OUT/runs/baseline --demo DEMO_OUT [--checkpoint best|last]
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { DemoCase } from '../../trainer/demo/data.ts';
import { compareSegmentors } from '../../trainer/demo/evaluation.ts';
import { exportRun } from '../../trainer/export/from-run.ts';

const { values } = parseArgs({
  options: {
    run: { type: 'string' },
    demo: { type: 'string' },
    checkpoint: { type: 'string', default: 'best' },
  },
});
if (!values.run || !values.demo) throw new Error('--run and --demo are required');
const phantom = join(values.demo, 'data', 'phantom');
const cases: DemoCase[] = [];
for (const f of (await readdir(join(phantom, 'imagesTs'))).sort()) {
  const id = f.replace(/_0000\.nii\.gz$/, '');
  const label = join(phantom, 'labelsTs', `${id}.nii.gz`);
  if (!existsSync(label)) continue;
  cases.push({ id, image: join(phantom, 'imagesTs', f), label, labelMap: 'freetumor', hasTumor: true });
}
const dir = await mkdtemp(join(tmpdir(), 'ft-evalrun-'));
try {
  await exportRun(values.run, dir, {
    quantize: 'int8',
    checkpoint: values.checkpoint === 'last' ? 'last' : 'best',
    roles: ['segmentor'],
    overlap: 0.5,
  });
  const c = await compareSegmentors([{ name: values.run, dir }], cases, 'liver', (m) => console.log(m));
  for (const l of c.lesions) {
    const f = Object.values(l.found)[0];
    console.log(
      `${l.caseId}/${l.lesion} ${l.volumeMl.toFixed(1)} ml ${f.detected ? 'found' : 'missed'} Dice ${f.dice.toFixed(2)}`,
    );
  }
  console.log(
    `load ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
