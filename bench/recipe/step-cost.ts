/**
 * Step costs of the demo's three runs relative to the `train` bench's reference step (tiny U-Net,
 * 32^3, widths 8-16, batch 1: `npm run bench -- train`), timed interleaved in one process so that
 * a shared machine's load hits all of them alike. An idle-machine estimate is the ratio times the
 * reference step's idle time, which is measured separately (an idle run of the bench).
 *
 *   node bench/recipe/step-cost.ts [--rounds 3] [--plan full|quick]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { selectBackend } from '../../trainer/backend.ts';
import type { Batch } from '../../trainer/data/batches.ts';
import { phantomCase, writeCases } from '../../trainer/data/phantom-cases.ts';
import { createBatchSource } from '../../trainer/data/prefetch.ts';
import { FULL_PLAN, QUICK_PLAN } from '../../trainer/demo/plan.ts';
import { buildUNet, generatorConfig, segmentorConfig } from '../../trainer/models/unet.ts';
import { parseRunConfig } from '../../trainer/train/config.ts';
import type { Trainer } from '../../trainer/train/run.ts';
import { createSegmentationTrainer } from '../../trainer/train/segmentation.ts';
import { createSynthesisTrainer } from '../../trainer/train/synthesis.ts';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '3' }, plan: { type: 'string', default: 'full' } },
});
const plan = values.plan === 'quick' ? QUICK_PLAN : FULL_PLAN;
await selectBackend('cpu');
const dir = await mkdtemp(join(tmpdir(), 'ft-stepcost-'));
const s = plan.spacing;
const cases = [0, 1].map((i) =>
  phantomCase({ seed: 1000 + i, size: 'default', spacing: s, tumors: plan.phantoms.tumorsPerCase }),
);
const entries = await writeCases(dir, cases);
const common = {
  steps: 1000,
  patchSize: plan.patch,
  casesPerStep: 1,
  data: {
    datasets: [{ name: 'p', format: 'msd', path: '-', organ: 'liver' }],
    spacing: [s, s, s],
    workers: 0,
  },
  model: { ...plan.model, norm: 'instance' },
};

async function timed(name: string, trainer: Trainer): Promise<{ name: string; run: () => Promise<number> }> {
  const source = await createBatchSource({
    entries,
    spec: trainer.spec,
    workers: 0,
    prefetch: 1,
    lastStep: 10_000,
  });
  let step = 0;
  const batches: Batch[] = [];
  for (let i = 0; i < 4; i++) batches.push(await source.next(i));
  await source.close();
  return {
    name,
    run: async () => {
      const b = batches[step % batches.length];
      const t0 = performance.now();
      await trainer.step(b, step++);
      return (performance.now() - t0) / 1000;
    },
  };
}

const reference = createSegmentationTrainer(
  parseRunConfig({
    ...common,
    kind: 'segmentation',
    patchSize: 32,
    cropsPerCase: 1,
    model: { baseChannels: 4, depth: 2, norm: 'instance' },
    segmentation: { cutmix: false },
  }),
);
const baseline = createSegmentationTrainer(
  parseRunConfig({ ...common, kind: 'segmentation', cropsPerCase: plan.crops.segmentation }),
);
const unet = { baseChannels: plan.model.baseChannels, depth: plan.model.depth, norm: 'instance' as const };
const generator = buildUNet(generatorConfig({ ...unet, seed: 1 }, 3));
const qcSegmentor = buildUNet(segmentorConfig({ ...unet, seed: 2 }, 3));
const freetumor = createSegmentationTrainer(
  parseRunConfig({
    ...common,
    kind: 'segmentation',
    cropsPerCase: plan.crops.segmentation,
    segmentation: { mode: 'freetumor', synthesisRun: '-', qcSegmentorRun: '-', qc: { policy: 'segmentor' } },
  }),
  { generator, qcSegmentor },
);
const synthesis = createSynthesisTrainer(
  parseRunConfig({ ...common, kind: 'synthesis', cropsPerCase: plan.crops.synthesis }),
  { segmentor: qcSegmentor, samplesDir: null },
);
const runs = [
  await timed('reference (bench train: 32^3, widths 8-16, batch 1)', reference),
  await timed('baseline', baseline),
  await timed('freetumor', freetumor),
  await timed('synthesis', synthesis),
];
const times = new Map<string, number[]>(runs.map((r) => [r.name, []]));
for (const r of runs) await r.run(); // warm-up
for (let round = 0; round < Number(values.rounds); round++) {
  for (const r of runs) for (let i = 0; i < 3; i++) times.get(r.name)?.push(await r.run());
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ref = median(times.get(runs[0].name) ?? []);
process.stdout.write(
  `${JSON.stringify(
    {
      plan: plan.name,
      load: loadavg()[0].toFixed(1),
      steps: runs.map((r) => ({
        name: r.name,
        medianSeconds: Number(median(times.get(r.name) ?? []).toFixed(3)),
        ratioToReference: Number((median(times.get(r.name) ?? []) / ref).toFixed(2)),
      })),
    },
    null,
    2,
  )}\n`,
);
for (const t of [reference, baseline, freetumor, synthesis]) t.dispose();
generator.dispose();
qcSegmentor.dispose();
await rm(dir, { recursive: true, force: true });
