import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '../train/config.ts';
import { FULL_PLAN, planFor, QUICK_PLAN, timeLimitSeconds } from './plan.ts';
import { demoRunConfig } from './training.ts';

describe('demo plan', () => {
  it('quick is the same pipeline at a smaller size; patches fit the model depth', () => {
    expect(planFor({ quick: true }).name).toBe('quick');
    expect(planFor({ quick: false })).toBe(FULL_PLAN);
    expect(QUICK_PLAN.patch).toBeLessThan(FULL_PLAN.patch);
    for (const p of [FULL_PLAN, QUICK_PLAN]) expect(p.patch % 2 ** (p.model.depth - 1)).toBe(0);
    // The evaluation has at least 6 held-out cases with tumors and 12 lesions in the full plan.
    expect((FULL_PLAN.phantoms.heldOut - 1) * FULL_PLAN.phantoms.tumorsPerCase).toBeGreaterThanOrEqual(12);
  });

  it('the time guard is a generous multiple of the planned idle time, scaled by the user', () => {
    const t = timeLimitSeconds(FULL_PLAN, 'baseline', 1);
    expect(t).toBeGreaterThan(3 * FULL_PLAN.steps.baseline * FULL_PLAN.idleStepSeconds.baseline);
    expect(timeLimitSeconds(FULL_PLAN, 'baseline', 2)).toBeCloseTo(2 * t, 9);
  });

  it('run configs have fixed step counts and the sequence fields on top', () => {
    const data = {
      source: 'phantoms' as const,
      datasets: [
        {
          name: 'p',
          format: 'msd' as const,
          path: '/x',
          labelMap: 'freetumor',
          organ: 'liver' as const,
          unlabeled: true,
        },
      ],
      validationCases: 2,
      selectCheckpoints: true,
      heldOut: [],
      healthy: [],
      counts: { labeled: 1, unlabeled: 0, heldOut: 0, real: 0 },
      notes: [],
    };
    const ctx = { plan: FULL_PLAN, data, cacheDir: '/c', seed: 3 };
    const ft = parseRunConfig(
      demoRunConfig('freetumor', ctx, {
        segmentation: { mode: 'freetumor', synthesisRun: '/r/s', qcSegmentorRun: '/r/b', initFrom: '/r/b' },
      }),
    );
    expect(ft.steps).toBe(FULL_PLAN.steps.freetumor);
    // FreeTumor and its control continue the baseline at the fine-tuning rate.
    expect(ft.optimizer.lr).toBe(FULL_PLAN.lr.finetune);
    const control = parseRunConfig(demoRunConfig('control', ctx, { segmentation: { initFrom: '/r/b' } }));
    expect(control.steps).toBe(FULL_PLAN.steps.freetumor);
    expect(control.optimizer.lr).toBe(FULL_PLAN.lr.finetune);
    expect(control.segmentation).toMatchObject({ mode: 'baseline', initFrom: '/r/b' });
    const base = parseRunConfig(demoRunConfig('baseline', ctx, {}));
    expect(base.optimizer.lr).toBe(FULL_PLAN.lr.segmentation);
    expect(ft.segmentation).toMatchObject({
      mode: 'freetumor',
      synthesisRun: '/r/s',
      qcSegmentorRun: '/r/b',
    });
    expect(ft.segmentation.qc.policy).toBe('segmentor');
    expect(ft.validateEvery).toBe(FULL_PLAN.validateEvery);
    expect(ft.data.validationCases).toBe(2);
    const syn = parseRunConfig(demoRunConfig('synthesis', ctx, { synthesis: { segmentorRun: '/r/b' } }));
    expect(syn.kind).toBe('synthesis');
    expect(syn.steps).toBe(FULL_PLAN.steps.synthesis);
    expect(syn.synthesis.segmentorRun).toBe('/r/b');
    expect(syn.data.spacing).toEqual([3, 3, 3]);
  });
});
