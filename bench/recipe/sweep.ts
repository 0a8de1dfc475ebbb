/**
 * Recipe experiments on the phantoms (docs/training-recipe.md): trains one segmentation
 * run (baseline mode: real tumors only) with the recipe changed by a JSON override, for a fixed
 * number of steps and seeds, and scores it on held-out phantoms at the training grid with the
 * deployed post-processing. One JSON line per experiment on stdout.
 *
 *   node bench/recipe/sweep.ts '{"name": "batch-dice", "steps": 800, "set": {"segmentation.loss.dice": "batch"}}'
 *
 * Fields: name, steps, seed, spacing (mm), labeled / heldOut (cases), tumorsPerCase, and `set`:
 * run-config overrides (trainer/train/config.ts paths). Nothing here is used by the product.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '../../trainer/backend.ts';
import { phantomCase, writeCases } from '../../trainer/data/phantom-cases.ts';
import { sizeMultiple } from '../../trainer/models/unet.ts';
import { applyOverrides, parseRunConfig } from '../../trainer/train/config.ts';
import { MetricsLog } from '../../trainer/train/metrics.ts';
import { runPaths, runTraining } from '../../trainer/train/run.ts';
import { createSegmentationTrainer, segmentationModelConfig } from '../../trainer/train/segmentation.ts';
import { evaluateSegmentor } from '../../trainer/train/validation.ts';

interface Experiment {
  name: string;
  steps: number;
  seed?: number;
  spacing?: number;
  labeled?: number;
  heldOut?: number;
  tumorsPerCase?: number;
  set?: Record<string, unknown>;
}

const e = JSON.parse(process.argv[2] ?? '{}') as Experiment;
const spacing = e.spacing ?? 3;
const seed = e.seed ?? 0;
await selectBackend('cpu');
const dir = await mkdtemp(join(tmpdir(), 'ft-sweep-'));
try {
  const tumors = e.tumorsPerCase ?? 2;
  const train = Array.from({ length: e.labeled ?? 6 }, (_, i) =>
    phantomCase({ seed: 1000 + i, size: 'default', spacing, tumors, labeled: true }),
  );
  const held = Array.from({ length: e.heldOut ?? 6 }, (_, i) =>
    phantomCase({ seed: 5000 + i, size: 'default', spacing, tumors, labeled: true }),
  );
  const entries = await writeCases(join(dir, 'cases'), train);
  const base = {
    kind: 'segmentation',
    seed,
    steps: e.steps,
    patchSize: 32,
    casesPerStep: 1,
    cropsPerCase: 2,
    checkpointEvery: 1_000_000,
    data: {
      datasets: [{ name: 'phantom', format: 'msd', path: '-', organ: 'liver' }],
      spacing: [spacing, spacing, spacing],
      workers: 0,
    },
    model: { baseChannels: 4, depth: 3, norm: 'instance' },
    optimizer: { lr: 3e-3, warmupSteps: 0, schedule: 'linear' },
    segmentation: { mode: 'baseline' },
  };
  const overrides = Object.entries(e.set ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  const config = parseRunConfig(applyOverrides(base, overrides));
  const trainer = createSegmentationTrainer(config);
  const run = join(dir, 'run');
  const t0 = performance.now();
  await runTraining({ dir: run, config, entries, trainer });
  const trainSeconds = (performance.now() - t0) / 1000;
  const rows = new MetricsLog(runPaths(run).metrics).read();
  const stepSeconds = rows.map((r) => r.step_seconds as number).sort((a, b) => a - b);
  const lastLoss = rows.slice(-50).reduce((s, r) => s + (r.loss as number), 0) / Math.min(50, rows.length);
  const t1 = performance.now();
  const v = await evaluateSegmentor(trainer.models.segmentor.model, held, {
    patchSize: config.patchSize,
    divisor: sizeMultiple(segmentationModelConfig(config)),
    spacing: config.data.spacing,
  });
  const a = v.averages;
  const r3 = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000);
  process.stdout.write(
    `${JSON.stringify({
      name: e.name,
      steps: e.steps,
      seed,
      set: e.set ?? {},
      tumorDiceCasesWithTumor: r3(a.tumorDiceCasesWithTumor),
      organDice: r3(a.organDice),
      lesions: `${a.lesionsDetected}/${a.trueLesions}`,
      falsePositiveLesions: a.falsePositiveLesions,
      perLesion: v.cases.flatMap((c) =>
        c.evaluation.lesions.lesions.map((l) => [Math.round(l.volumeMl * 10) / 10, l.detected ? 1 : 0]),
      ),
      lastLoss: r3(lastLoss),
      medianStepSeconds: r3(stepSeconds[Math.floor(stepSeconds.length / 2)]),
      trainSeconds: Math.round(trainSeconds),
      evalSeconds: Math.round((performance.now() - t1) / 1000),
      load: loadavg()[0].toFixed(1),
      cores: cpus().length,
    })}\n`,
  );
  trainer.dispose();
} finally {
  await rm(dir, { recursive: true, force: true });
}
