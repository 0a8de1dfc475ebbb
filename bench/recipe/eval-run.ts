/**
 * Scores a trained run folder the way the demo does: export (int8, best checkpoint, overlap 0.5)
 * and run the deployed pipeline (shared/inference) on a demo output's held-out phantoms.
 * For recipe experiments on a run that a demo (or `freetumor train`) left behind.
 *
 *   node bench/recipe/eval-run.ts --run DEMO_OUT/runs/baseline --demo DEMO_OUT [--checkpoint best|last]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { compareSegmentors } from '../../trainer/demo/evaluation.ts';
import { exportSegmentor, heldOutCases, loadLine } from './demo-output.ts';

const { values } = parseArgs({
  options: {
    run: { type: 'string' },
    demo: { type: 'string' },
    checkpoint: { type: 'string', default: 'best' },
  },
});
if (!values.run || !values.demo) throw new Error('--run and --demo are required');
const cases = await heldOutCases(values.demo);
const dir = await mkdtemp(join(tmpdir(), 'ft-evalrun-'));
try {
  await exportSegmentor(values.run, dir, { checkpoint: values.checkpoint, overlap: 0.5 });
  const c = await compareSegmentors([{ name: values.run, dir }], cases, 'liver', (m) => console.log(m));
  for (const l of c.lesions) {
    const f = Object.values(l.found)[0];
    console.log(
      `${l.caseId}/${l.lesion} ${l.volumeMl.toFixed(1)} ml ${f.detected ? 'found' : 'missed'} Dice ${f.dice.toFixed(2)}`,
    );
  }
  console.log(loadLine());
} finally {
  await rm(dir, { recursive: true, force: true });
}
