import { describe, expect, it } from 'vitest';
import { Rng } from '../random.ts';
import type { Dims3 } from '../volume/volume.ts';
import { gaussianFilter3d, gaussianKernel, reflectIndex } from './gaussian.ts';

/** Direct triple-sum reference: separable kernels applied by definition, reflect borders. */
function bruteForce(src: Float32Array, dims: Dims3, sigmas: Dims3): Float64Array {
  const [nx, ny, nz] = dims;
  const k = sigmas.map((s) => gaussianKernel(s));
  const r = k.map((w) => (w.length - 1) / 2);
  const out = new Float64Array(src.length);
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++) {
        let acc = 0;
        for (let c = -r[2]; c <= r[2]; c++)
          for (let b = -r[1]; b <= r[1]; b++)
            for (let a = -r[0]; a <= r[0]; a++) {
              const v =
                src[reflectIndex(x + a, nx) + nx * (reflectIndex(y + b, ny) + ny * reflectIndex(z + c, nz))];
              acc += k[0][a + r[0]] * k[1][b + r[1]] * k[2][c + r[2]] * v;
            }
        out[x + nx * (y + ny * z)] = acc;
      }
  return out;
}

describe('gaussianKernel', () => {
  it('has SciPy radius int(4 sigma + 0.5) and sums to 1', () => {
    expect(gaussianKernel(1).length).toBe(9);
    expect(gaussianKernel(1.5).length).toBe(13);
    expect(gaussianKernel(15).length).toBe(121);
    const w = gaussianKernel(2.3);
    expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(w[0]).toBeCloseTo(w[w.length - 1], 15);
  });
});

describe('reflectIndex', () => {
  it('is half-sample symmetric, repeated beyond one period', () => {
    // n = 3: ... 2 2 1 0 | 0 1 2 | 2 1 0 0 1 ...
    expect([-4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7].map((i) => reflectIndex(i, 3))).toEqual([
      2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0, 1,
    ]);
  });
});

describe('gaussianFilter3d', () => {
  it('matches the definition, including kernels wider than the volume', () => {
    const dims: Dims3 = [7, 5, 6];
    const rng = new Rng(3);
    const src = Float32Array.from({ length: 210 }, () => rng.random());
    for (const sigmas of [
      [1, 1, 1],
      [1.3, 2.7, 0.8],
      [0, 2, 0],
    ] as Dims3[]) {
      const got = gaussianFilter3d(src, dims, sigmas);
      const want = bruteForce(src, dims, sigmas.map((s) => (s > 0 ? s : 1e-9)) as Dims3);
      for (let v = 0; v < got.length; v++) expect(got[v]).toBeCloseTo(want[v], 5);
    }
  });

  it('preserves the sum of a constant and leaves the input untouched', () => {
    const src = new Float32Array(4 * 4 * 4).fill(0.25);
    const copy = Float32Array.from(src);
    const out = gaussianFilter3d(src, [4, 4, 4], 2);
    expect(src).toEqual(copy);
    for (const v of out) expect(v).toBeCloseTo(0.25, 6);
  });
});
