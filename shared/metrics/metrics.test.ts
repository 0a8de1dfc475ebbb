import { describe, expect, it } from 'vitest';
import { Rng } from '../random.ts';
import { type Dims3, identityAffine } from '../volume/volume.ts';
import { averageCases } from './cases.ts';
import { binaryMask, dice, volumeMl, voxelMl } from './dice.ts';
import { squaredDistanceTransform } from './edt.ts';
import { evaluateCase } from './evaluate.ts';
import { lesionDetection } from './lesions.ts';
import { normalizedSurfaceDistance, surfaceVoxels } from './nsd.ts';

const idx = (d: Dims3, i: number, j: number, k: number) => i + d[0] * (j + d[1] * k);

function box(dims: Dims3, lo: Dims3, hi: Dims3, value = 1, into?: Uint8Array): Uint8Array {
  const m = into ?? new Uint8Array(dims[0] * dims[1] * dims[2]);
  for (let k = lo[2]; k < hi[2]; k++)
    for (let j = lo[1]; j < hi[1]; j++) for (let i = lo[0]; i < hi[0]; i++) m[idx(dims, i, j, k)] = value;
  return m;
}

function ball(dims: Dims3, c: Dims3, r: number, spacing: Dims3 = [1, 1, 1]): Uint8Array {
  const m = new Uint8Array(dims[0] * dims[1] * dims[2]);
  for (let k = 0; k < dims[2]; k++)
    for (let j = 0; j < dims[1]; j++)
      for (let i = 0; i < dims[0]; i++)
        if (Math.hypot((i - c[0]) * spacing[0], (j - c[1]) * spacing[1], (k - c[2]) * spacing[2]) <= r)
          m[idx(dims, i, j, k)] = 1;
  return m;
}

describe('dice', () => {
  it('is 0.5 for two 4^3 cubes shifted by half their side', () => {
    const d: Dims3 = [10, 6, 6];
    expect(dice(box(d, [0, 0, 0], [4, 4, 4]), box(d, [2, 0, 0], [6, 4, 4]))).toBe(0.5);
  });
  it('is 1 when both are empty and 0 when one is', () => {
    const z = new Uint8Array(8);
    const one = Uint8Array.of(0, 1, 0, 0, 0, 0, 0, 0);
    expect(dice(z, z)).toBe(1);
    expect(dice(one, z)).toBe(0);
    expect(() => dice(one, new Uint8Array(7))).toThrow(/differ/);
  });
  it('selects labels and measures volumes in ml from the affine', () => {
    const labels = Uint8Array.of(0, 1, 2, 2, 1, 0);
    expect([...binaryMask(labels, [1, 2])]).toEqual([0, 1, 1, 1, 1, 0]);
    const a = identityAffine([2, 2, 2.5]);
    expect(voxelMl(a)).toBeCloseTo(0.01, 12);
    expect(volumeMl(binaryMask(labels, 2), a)).toBeCloseTo(0.02, 12);
  });
});

describe('exact Euclidean distance transform', () => {
  it('equals brute force on random sites with anisotropic spacing', () => {
    const rng = new Rng(3);
    const dims: Dims3 = [9, 7, 5];
    const spacing: Dims3 = [0.7, 1.3, 2.5];
    const sites = new Uint8Array(9 * 7 * 5);
    for (let n = 0; n < 6; n++) sites[rng.int(0, sites.length - 1)] = 1;
    const d = squaredDistanceTransform(sites, dims, spacing);
    const pts: Dims3[] = [];
    for (let k = 0; k < 5; k++)
      for (let j = 0; j < 7; j++)
        for (let i = 0; i < 9; i++) if (sites[idx(dims, i, j, k)]) pts.push([i, j, k]);
    for (let k = 0; k < 5; k++)
      for (let j = 0; j < 7; j++)
        for (let i = 0; i < 9; i++) {
          let best = Infinity;
          for (const p of pts)
            best = Math.min(
              best,
              ((i - p[0]) * spacing[0]) ** 2 +
                ((j - p[1]) * spacing[1]) ** 2 +
                ((k - p[2]) * spacing[2]) ** 2,
            );
          expect(d[idx(dims, i, j, k)]).toBeCloseTo(best, 9);
        }
  });
});

describe('normalized surface distance', () => {
  const dims: Dims3 = [24, 24, 24];
  it('is 1 for identical masks and for both empty, 0 when one is empty', () => {
    const a = ball(dims, [12, 12, 12], 6);
    expect(normalizedSurfaceDistance(a, a, dims, [1, 1, 1], 0)).toBe(1);
    const z = new Uint8Array(a.length);
    expect(normalizedSurfaceDistance(z, z, dims, [1, 1, 1], 1)).toBe(1);
    expect(normalizedSurfaceDistance(a, z, dims, [1, 1, 1], 1)).toBe(0);
  });
  it('counts concentric spheres 3 mm apart as close only when the tolerance reaches 3 mm', () => {
    const inner = ball(dims, [12, 12, 12], 5);
    const outer = ball(dims, [12, 12, 12], 8);
    expect(normalizedSurfaceDistance(inner, outer, dims, [1, 1, 1], 1)).toBe(0);
    expect(normalizedSurfaceDistance(inner, outer, dims, [1, 1, 1], 4.5)).toBe(1);
    const mid = normalizedSurfaceDistance(inner, outer, dims, [1, 1, 1], 3);
    expect(mid).toBeGreaterThan(0);
    expect(mid).toBeLessThan(1);
  });
  it('uses the spacing: a one-slice shift is 2.5 mm on a 2.5 mm z axis', () => {
    const a = box(dims, [4, 4, 4], [12, 12, 12]);
    const b = box(dims, [4, 4, 5], [12, 12, 13]);
    // The top and bottom faces move by one slice; side faces stay within 1 slice of each other.
    const s: Dims3 = [1, 1, 2.5];
    expect(normalizedSurfaceDistance(a, b, dims, s, 2.6)).toBe(1);
    expect(normalizedSurfaceDistance(a, b, dims, s, 2.4)).toBeLessThan(1);
    expect(normalizedSurfaceDistance(a, b, dims, [1, 1, 1], 1)).toBe(1);
  });
  it('finds the 6-neighbour border of a cube (and the grid edge is a border)', () => {
    const d: Dims3 = [5, 5, 5];
    expect(surfaceVoxels(box(d, [1, 1, 1], [4, 4, 4]), d).reduce((s, v) => s + v, 0)).toBe(26);
    expect(surfaceVoxels(new Uint8Array(125).fill(1), d).reduce((s, v) => s + v, 0)).toBe(125 - 27);
  });
});

describe('lesion detection', () => {
  const dims: Dims3 = [30, 20, 20];
  const truth = box(dims, [2, 2, 2], [6, 6, 6]);
  box(dims, [20, 10, 10], [24, 14, 14], 1, truth);
  const pred = box(dims, [3, 2, 2], [7, 6, 6]);
  box(dims, [10, 15, 15], [12, 17, 17], 1, pred);

  it('matches components: sensitivity, false positives and per-lesion Dice', () => {
    const r = lesionDetection(pred, truth, dims, identityAffine([1, 1, 1]));
    expect(r.trueLesions).toBe(2);
    expect(r.predictedLesions).toBe(2);
    expect(r.detected).toBe(1);
    expect(r.sensitivity).toBe(0.5);
    expect(r.falsePositives).toBe(1);
    expect(r.lesions[0]).toEqual({ voxels: 64, volumeMl: 0.064, detected: true, dice: (2 * 48) / 128 });
    expect(r.lesions[1].detected).toBe(false);
    expect(r.lesions[1].dice).toBe(0);
  });
  it('has no sensitivity without true lesions and ignores components under the minimum volume', () => {
    const none = lesionDetection(pred, new Uint8Array(pred.length), dims, identityAffine([1, 1, 1]));
    expect(none.sensitivity).toBeNull();
    expect(none.falsePositives).toBe(2);
    const big = lesionDetection(pred, truth, dims, identityAffine([1, 1, 1]), { minVolumeMl: 0.01 });
    expect(big.predictedLesions).toBe(1);
    expect(big.falsePositives).toBe(0);
  });
});

describe('evaluateCase', () => {
  it('reports organ and tumor Dice, NSD, lesions and ml on a labeled pair', () => {
    const dims: Dims3 = [20, 20, 20];
    const truth = box(dims, [2, 2, 2], [18, 18, 18], 1);
    box(dims, [5, 5, 5], [9, 9, 9], 2, truth);
    const pred = box(dims, [2, 2, 2], [18, 18, 18], 1);
    box(dims, [5, 5, 5], [9, 9, 9], 2, pred);
    box(dims, [12, 12, 12], [14, 14, 14], 2, pred);
    const r = evaluateCase(pred, truth, dims, identityAffine([2, 2, 2]), { tolerance: 2 });
    expect(r.organ.dice).toBe(1);
    expect(r.tumor.dice).toBeCloseTo((2 * 64) / (64 + 72), 12);
    expect(r.tumor.trueMl).toBeCloseTo(0.512, 12);
    expect(r.tumor.predictedMl).toBeCloseTo(0.576, 12);
    expect(r.hasTumor).toBe(true);
    expect(r.lesions.falsePositives).toBe(1);
    expect(r.lesions.sensitivity).toBe(1);
    expect(r.tumor.nsd).toBeLessThan(1);
    expect(r.organ.nsd).toBe(1);
  });
});

describe('case averages', () => {
  it('keeps the two tumor Dice conventions apart and sums lesions over every case', () => {
    const dims: Dims3 = [12, 12, 12];
    const affine = identityAffine([2, 2, 2]);
    const organ = box(dims, [1, 1, 1], [11, 11, 11], 1);
    const withTumor = box(dims, [3, 3, 3], [6, 6, 6], 2, organ.slice());
    // Case 1: tumor found exactly. Case 2: tumor missed. Case 3: tumor-free, nothing predicted.
    // Case 4: tumor-free, a false tumor.
    const e1 = evaluateCase(withTumor, withTumor, dims, affine);
    const e2 = evaluateCase(organ, withTumor, dims, affine);
    const e3 = evaluateCase(organ, organ, dims, affine);
    const e4 = evaluateCase(box(dims, [7, 7, 7], [9, 9, 9], 2, organ.slice()), organ, dims, affine);
    const a = averageCases([e1, e2, e3, e4]);
    expect(a.cases).toBe(4);
    expect(a.casesWithTumor).toBe(2);
    expect(a.tumorDiceCasesWithTumor).toBeCloseTo(0.5, 12);
    expect(a.tumorDiceAllCases).toBeCloseTo((1 + 0 + 1 + 0) / 4, 12);
    expect(a.trueLesions).toBe(2);
    expect(a.lesionsDetected).toBe(1);
    expect(a.lesionSensitivity).toBe(0.5);
    expect(a.falsePositiveLesions).toBe(1);
    expect(a.tumorFreeCasesPredictedTumorMl).toBeCloseTo((8 * 8) / 1000, 12);
    expect(averageCases([e3]).tumorDiceCasesWithTumor).toBeNull();
    expect(averageCases([]).organDice).toBeNull();
  });
});
