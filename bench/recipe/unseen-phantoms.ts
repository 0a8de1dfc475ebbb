/**
 * The exported segmentor on phantoms of seeds the demo never uses, through the CLI as a user runs
 * it: `freetumor phantom` -> `freetumor segment` -> `freetumor evaluate`, one process each, then
 * the shared case averages. Issue 12's bar for the demo's FreeTumor segmentor: organ Dice >= 0.85,
 * tumor Dice >= 0.3 (cases with a tumor), >= 60% of lesions found.
 *
 *   node bench/recipe/unseen-phantoms.ts --model demo-out/models/published [--cases 4] [--seed 9000]
 *        [--spacing 3] [--tumors 2] [--check]
 *
 * Prints one JSON object; with --check, exits 1 when a bar is missed. The demo's phantoms use
 * seeds 1000-1099 (labeled), 2000-2099 (unlabeled) and 3000-3099 (held out), plus --seed.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { averageCases } from '../../shared/metrics/cases.ts';
import type { CaseEvaluation } from '../../shared/metrics/evaluate.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const UNSEEN_BARS = { organDice: 0.85, tumorDice: 0.3, lesionSensitivity: 0.6 };

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    cases: { type: 'string', default: '4' },
    seed: { type: 'string', default: '9000' },
    spacing: { type: 'string', default: '3' },
    tumors: { type: 'string', default: '2' },
    check: { type: 'boolean', default: false },
  },
});
if (!values.model) {
  process.stderr.write('unseen-phantoms: --model DIR (a folder with segmentor/) is required\n');
  process.exit(2);
}

async function cli(args: string[]): Promise<unknown> {
  const r = await run(process.execPath, [join(ROOT, 'bin/freetumor.js'), ...args, '--json'], {
    cwd: ROOT,
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(r.stdout);
}

const dir = await mkdtemp(join(tmpdir(), 'ft-unseen-'));
try {
  const evaluations: CaseEvaluation[] = [];
  const cases: Array<{ seed: number; organDice: number; tumorDice: number; lesions: string }> = [];
  const t0 = performance.now();
  for (let i = 0; i < Number(values.cases); i++) {
    const seed = Number(values.seed) + i;
    const c = join(dir, String(seed));
    await cli([
      'phantom',
      '--seed',
      String(seed),
      '--spacing',
      values.spacing,
      '--tumors',
      `liver:${values.tumors}`,
      '--out',
      c,
    ]);
    await cli([
      'segment',
      '--model',
      values.model,
      '--image',
      join(c, 'ct.nii.gz'),
      '--out',
      join(c, 'mask.nii.gz'),
      '--organ',
      'liver',
    ]);
    const e = (await cli([
      'evaluate',
      '--pred',
      join(c, 'mask.nii.gz'),
      '--truth',
      join(c, 'label.nii.gz'),
      // The phantom's label holds liver, pancreas and kidney: score the organ the model segments.
      '--organ',
      'liver',
    ])) as CaseEvaluation;
    evaluations.push(e);
    cases.push({
      seed,
      organDice: e.organ.dice,
      tumorDice: e.tumor.dice,
      lesions: `${e.lesions.detected}/${e.lesions.trueLesions} (+${e.lesions.falsePositives} false)`,
    });
  }
  const a = averageCases(evaluations);
  const missed = [
    (a.organDice ?? 0) < UNSEEN_BARS.organDice ? 'organ Dice' : null,
    (a.tumorDiceCasesWithTumor ?? 0) < UNSEEN_BARS.tumorDice ? 'tumor Dice' : null,
    (a.lesionSensitivity ?? 0) < UNSEEN_BARS.lesionSensitivity ? 'lesions found' : null,
  ].filter((x): x is string => x !== null);
  process.stdout.write(
    `${JSON.stringify(
      {
        model: values.model,
        spacingMm: Number(values.spacing),
        cases,
        organDice: a.organDice,
        tumorDiceCasesWithTumor: a.tumorDiceCasesWithTumor,
        lesionsDetected: a.lesionsDetected,
        trueLesions: a.trueLesions,
        falsePositiveLesions: a.falsePositiveLesions,
        bars: UNSEEN_BARS,
        missed,
        seconds: Math.round((performance.now() - t0) / 1000),
      },
      null,
      2,
    )}\n`,
  );
  if (values.check && missed.length > 0) process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
