import { describe, expect, it } from 'vitest';
import { FULL_PLAN, planFor, QUICK_PLAN, stepsForBudget } from './plan.ts';
import { measuredStepSeconds } from './training.ts';

describe('demo plan', () => {
  it('sizes the steps to the budget from the measured step time, within bounds', () => {
    const b = { seconds: 100, minSteps: 8, maxSteps: 400 };
    // 3 steps done in 3 s: 97 s left.
    expect(stepsForBudget(b, 1, 3, 3)).toBe(100);
    expect(stepsForBudget(b, 0.5, 3, 3)).toBe(197);
    expect(stepsForBudget(b, 0.1, 3, 3)).toBe(400);
    expect(stepsForBudget(b, 60, 3, 180)).toBe(8);
    // Over budget: no more steps than already done (or the minimum).
    expect(stepsForBudget(b, 1, 50, 120)).toBe(50);
  });

  it('quick is the same pipeline at a smaller size; the budget scale applies to every run', () => {
    expect(planFor({ quick: true, budgetScale: 1 }).name).toBe('quick');
    expect(QUICK_PLAN.patch).toBeLessThan(FULL_PLAN.patch);
    const half = planFor({ quick: false, budgetScale: 0.5 });
    expect(half.budgets.baseline.seconds).toBe(FULL_PLAN.budgets.baseline.seconds / 2);
    expect(half.budgets.freetumor.maxSteps).toBe(FULL_PLAN.budgets.freetumor.maxSteps);
    for (const p of [FULL_PLAN, QUICK_PLAN]) expect(p.patch % 2 ** (p.model.depth - 1)).toBe(0);
  });

  it('measures the step time without the first (set-up) step', () => {
    const records = [{ step_seconds: 5 }, { step_seconds: 1 }, { step_seconds: 1.2 }];
    // Wall 7.6 s: 5 s first step, then 2.6 s for two steps (batches included) -> 1.3 s/step.
    expect(measuredStepSeconds(records, 7.6, 3)).toBeCloseTo(1.3, 6);
    expect(measuredStepSeconds([], 6, 3)).toBe(2);
    expect(measuredStepSeconds([{ step_seconds: 2 }], 10, 1)).toBe(2);
  });
});
