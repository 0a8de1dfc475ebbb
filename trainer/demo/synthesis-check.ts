/**
 * The demo's measurement of synthesis (trainer/train/synthesis-eval.ts) on its held-out cases:
 * the trained discriminator's ROC AUC between real lesions and generator-made tumors, the HU
 * contrast of real, handcrafted and generator-made tumors, and how often the quality-control rule
 * accepts generator-made and handcrafted tumors. The held-out cases are preprocessed exactly like
 * training cases (same spacing, window and cache).
 */
import { join } from 'node:path';
import { HU_WINDOW } from '../../shared/intensity/window.ts';
import type { OrganName } from '../../shared/labels/labelmap.ts';
import { ORGANS } from '../../shared/labels/labelmap.ts';
import { loadCases } from '../data/prepare.ts';
import { preprocessToCache } from '../data/preprocess.ts';
import { loadRunModel } from '../train/load.ts';
import { evaluateSynthesis, type SynthesisEvaluation } from '../train/synthesis-eval.ts';
import type { DemoCase } from './data.ts';
import type { DemoPlan } from './plan.ts';
import { DEMO_QC } from './training.ts';

export async function measureSynthesis(o: {
  plan: DemoPlan;
  heldOut: readonly DemoCase[];
  runsDir: string;
  cacheDir: string;
  organ: OrganName;
  seed: number;
}): Promise<SynthesisEvaluation> {
  const s = o.plan.spacing;
  const paths: string[] = [];
  for (const c of o.heldOut) {
    paths.push(
      await preprocessToCache(
        { id: c.id, image: c.image, label: c.label, labeled: true },
        { spacing: [s, s, s], window: [HU_WINDOW[0], HU_WINDOW[1]], labelMap: c.labelMap, organ: o.organ },
        o.cacheDir,
      ),
    );
  }
  const cases = await loadCases(paths);
  const generator = await loadRunModel(join(o.runsDir, 'synthesis'), 'generator');
  const discriminator = await loadRunModel(join(o.runsDir, 'synthesis'), 'discriminator');
  const segmentor = await loadRunModel(join(o.runsDir, 'baseline'), 'segmentor');
  try {
    const p = o.plan.patch;
    return await evaluateSynthesis(generator.model, discriminator.model, cases, {
      patchSize: [p, p, p],
      spacing: [s, s, s],
      window: [HU_WINDOW[0], HU_WINDOW[1]],
      organIndex: ORGANS.indexOf(o.organ),
      organChannels: generator.config.outChannels,
      tumorType: o.plan.tumorType,
      perCase: o.plan.synthesisEvalPerCase,
      seed: o.seed + 77,
      qc: { rule: DEMO_QC, segmentor: segmentor.model },
    });
  } finally {
    generator.model.dispose();
    discriminator.model.dispose();
    segmentor.model.dispose();
  }
}
