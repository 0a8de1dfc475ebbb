import { describe, expect, it } from 'vitest';
import { Rng } from '../random.ts';
import { matrixToQuaternion, quaternionToMatrix } from '../volume/nifti-header.ts';
import type { Affine } from '../volume/volume.ts';
import {
  affinesClose,
  applyAffine,
  det3,
  invertAffine,
  isInvertibleAffine,
  multiplyAffine,
  nearestOrthogonal,
} from './affine.ts';

function randomAffine(rng: Rng): Affine {
  const a = new Float64Array(16);
  for (let i = 0; i < 12; i++) a[i] = rng.uniform(-3, 3);
  a[15] = 1;
  return a;
}

describe('affine helpers', () => {
  it('invertAffine inverts: A * inv(A) = I and points map back', () => {
    const rng = new Rng(1);
    const identity = Float64Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    for (let n = 0; n < 50; n++) {
      const a = randomAffine(rng);
      if (!isInvertibleAffine(a)) continue;
      expect(affinesClose(multiplyAffine(a, invertAffine(a)), identity, 1e-9)).toBe(true);
      const p = [rng.uniform(-50, 50), rng.uniform(-50, 50), rng.uniform(-50, 50)];
      const back = applyAffine(invertAffine(a), applyAffine(a, p));
      for (let i = 0; i < 3; i++) expect(back[i]).toBeCloseTo(p[i], 6);
    }
  });

  it('rejects singular and non-finite affines', () => {
    const singular = Float64Array.from([1, 2, 3, 0, 2, 4, 6, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    expect(isInvertibleAffine(singular)).toBe(false);
    expect(() => invertAffine(singular)).toThrow(/singular/);
    const nan = Float64Array.from([1, 0, 0, Number.NaN, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    expect(isInvertibleAffine(nan)).toBe(false);
  });

  it('det3 is the signed voxel volume', () => {
    expect(det3(Float64Array.from([-2, 0, 0, 9, 0, 3, 0, 9, 0, 0, 4, 9, 0, 0, 0, 1]))).toBe(-24);
  });

  it('nearestOrthogonal returns a rotation, unchanged for one already orthogonal', () => {
    const rng = new Rng(2);
    for (let n = 0; n < 20; n++) {
      const m = Array.from({ length: 9 }, () => rng.uniform(-1, 1));
      const r = nearestOrthogonal(m);
      // R R^T = I
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 3; j++) {
          const dot = r[i * 3] * r[j * 3] + r[i * 3 + 1] * r[j * 3 + 1] + r[i * 3 + 2] * r[j * 3 + 2];
          expect(dot).toBeCloseTo(i === j ? 1 : 0, 9);
        }
    }
    const rot = quaternionToMatrix(0.5, 0.5, 0.5, 0.5);
    const same = nearestOrthogonal(rot);
    for (let i = 0; i < 9; i++) expect(same[i]).toBeCloseTo(rot[i], 14);
  });

  it('quaternion <-> matrix round trips, including 180-degree turns (w = 0)', () => {
    const rng = new Rng(3);
    const quats: number[][] = [
      [0, 1, 0, 0],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
      [0, Math.SQRT1_2, Math.SQRT1_2, 0],
    ];
    for (let n = 0; n < 50; n++) {
      const q = [rng.uniform(0, 1), rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1)];
      const norm = Math.hypot(...q);
      quats.push(q.map((x) => x / norm));
    }
    for (const q of quats) {
      const m = quaternionToMatrix(q[0], q[1], q[2], q[3]);
      const back = quaternionToMatrix(...matrixToQuaternion(m));
      for (let i = 0; i < 9; i++) expect(back[i]).toBeCloseTo(m[i], 12);
      expect(matrixToQuaternion(m)[0]).toBeGreaterThanOrEqual(0);
    }
  });
});
