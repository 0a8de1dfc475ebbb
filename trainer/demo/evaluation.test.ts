import { describe, expect, it } from 'vitest';
import { COMPARED_MODELS, type ModelScores, verdictLine } from './evaluation.ts';

function scores(model: string, tumorDice: number, lesionsDetected: number): ModelScores {
  return {
    model,
    cases: 7,
    casesWithTumor: 6,
    tumorDice,
    tumorDiceAllCases: tumorDice,
    tumorNsd: 0.5,
    organDice: 0.9,
    organNsd: 0.8,
    lesionsDetected,
    trueLesions: 12,
    falsePositiveLesions: 30,
    healthyFalseTumorMl: 0,
    seconds: 1,
  };
}

describe('verdictLine', () => {
  it('compares FreeTumor with the baseline and with the equal-steps control, each a target', () => {
    const base = scores(COMPARED_MODELS.baseline, 0.49, 12);
    const control = scores(COMPARED_MODELS.control, 0.6, 11);
    const ft = scores(COMPARED_MODELS.freetumor, 0.57, 11);
    const v = verdictLine([base, control, ft]);
    expect(v).toMatch(/^FreeTumor segmentor on 7 held-out cases: organ Dice 0\.900, tumor Dice 0\.570/);
    expect(v).toContain('FreeTumor falls behind the baseline (tumor Dice +0.080, lesions -1)');
    expect(v).toContain('FreeTumor falls behind the control (tumor Dice -0.030, lesions +0)');
    expect(v).toMatch(/targets missed: FreeTumor < baseline, FreeTumor < control\.$/);
    const better = verdictLine([base, control, scores(COMPARED_MODELS.freetumor, 0.61, 12)]);
    expect(better).toMatch(/all targets met\.$/);
    expect(better).toContain('matches or beats the control (tumor Dice +0.010, lesions +1)');
  });

  it('names what is missing instead of comparing with it', () => {
    expect(verdictLine([])).toBe('No segmentor was evaluated.');
    expect(verdictLine([scores(COMPARED_MODELS.baseline, 0.5, 10)])).toMatch(
      /^Only the baseline was evaluated/,
    );
    const low = verdictLine([scores(COMPARED_MODELS.freetumor, 0.3, 6)]);
    expect(low).toMatch(/targets missed: tumor Dice < 0\.5, lesions found < 75%\.$/);
    expect(low).not.toContain('control');
  });
});
