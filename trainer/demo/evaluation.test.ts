import { describe, expect, it } from 'vitest';
import { COMPARED_MODELS, type LesionRow, type ModelScores, verdictLine } from './evaluation.ts';

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

  it("names the lesions one model finds and the other does not, with the finder's lesion Dice", () => {
    const base = scores(COMPARED_MODELS.baseline, 0.49, 12);
    const control = scores(COMPARED_MODELS.control, 0.6, 11);
    const ft = scores(COMPARED_MODELS.freetumor, 0.57, 11);
    const row = (lesion: number, b: number | null, c: number | null, f: number | null): LesionRow => ({
      caseId: 'test_004',
      lesion,
      volumeMl: 4.428,
      found: Object.fromEntries(
        [
          [COMPARED_MODELS.baseline, b],
          [COMPARED_MODELS.control, c],
          [COMPARED_MODELS.freetumor, f],
        ].map(([m, d]) => [m, { detected: d !== null, dice: d ?? 0 }]),
      ),
    });
    // Lesion 1 found by all, lesion 2 by the baseline only (a few voxels), lesion 3 by FreeTumor only.
    const v = verdictLine(
      [base, control, ft],
      [row(1, 0.8, 0.7, 0.9), row(2, 0.012, null, null), row(3, null, null, 0.4)],
    );
    expect(v).toContain(
      'lesions -1: test_004 lesion 2, 4.4 ml, found by the baseline only, lesion Dice 0.01; test_004 lesion 3, 4.4 ml, found by FreeTumor only, lesion Dice 0.40)',
    );
    expect(v).toContain(
      '(tumor Dice -0.030, lesions +0: test_004 lesion 3, 4.4 ml, found by FreeTumor only, lesion Dice 0.40)',
    );
    expect(v).not.toContain('lesion 1,');
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
