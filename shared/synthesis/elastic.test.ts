import { describe, expect, it } from 'vitest';
import { Rng } from '../random.ts';
import { deformGrid, deformRandomGrid } from './elastic.ts';
import { ellipsoid } from './ellipsoid.ts';

function count(data: Uint8Array): number {
  return data.reduce((a, b) => a + b, 0);
}

describe('ellipsoid', () => {
  it('is the strict discrete ellipsoid in a 4r box', () => {
    const e = ellipsoid([3, 4, 5]);
    expect(e.dims).toEqual([12, 16, 20]);
    const at = (i: number, j: number, k: number) => e.data[i + 12 * (j + 16 * k)];
    expect(at(6, 8, 10)).toBe(1);
    expect(at(8, 8, 10)).toBe(1);
    expect(at(9, 8, 10)).toBe(0); // on the surface: (3/3)^2 = 1 is not < 1
    expect(at(6, 8, 14)).toBe(1);
    expect(at(6, 8, 15)).toBe(0);
    // Volume close to 4/3 pi r^3 (60 * 4.19 = 251).
    expect(count(e.data)).toBeGreaterThan(200);
    expect(count(e.data)).toBeLessThan(260);
  });
});

describe('deformGrid', () => {
  it('is the identity for a zero displacement', () => {
    const e = ellipsoid([4, 5, 3]);
    for (const axes of [
      [0, 1],
      [1, 2],
      [0, 2],
    ] as const) {
      expect(deformGrid(e, new Float64Array(18), [axes[0], axes[1]]).data).toEqual(e.data);
    }
  });

  it('shifts the shape by a uniform displacement (the spline reproduces constants)', () => {
    const e = ellipsoid([4, 4, 4]);
    const disp = new Float64Array(18);
    disp.fill(2, 0, 9); // axis 0 samples from i + 2: the shape moves by -2
    const d = deformGrid(e, disp, [0, 1]);
    const n = 16;
    for (let k = 0; k < n; k++)
      for (let j = 0; j < n; j++)
        for (let i = 0; i < n - 2; i++)
          expect(d.data[i + n * (j + n * k)]).toBe(e.data[i + 2 + n * (j + n * k)]);
  });

  it('keeps a random deformation near the original shape for a small sigma', () => {
    const e = ellipsoid([8, 8, 8]);
    const d = deformRandomGrid(e, 1, [0, 1], new Rng(5));
    let same = 0;
    for (let v = 0; v < e.data.length; v++) same += e.data[v] === d.data[v] ? 1 : 0;
    expect(same / e.data.length).toBeGreaterThan(0.97);
    expect(d.data).not.toEqual(e.data);
  });
});
