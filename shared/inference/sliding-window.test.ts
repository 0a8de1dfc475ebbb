import { describe, expect, it } from 'vitest';
import { LimitError } from '../errors.ts';
import { Rng } from '../random.ts';
import type { Dims3 } from '../volume/volume.ts';
import { argmaxChannels, gaussianImportance, slidingWindow, windowStarts } from './sliding-window.ts';
import { identityRunner } from './test-helpers.ts';

function noise(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.random());
}

describe('window placement and weights', () => {
  it('places windows as MONAI: stride patch*(1-overlap), last one flush with the end', () => {
    expect(windowStarts(100, 64, 0.5)).toEqual([0, 32, 36]);
    expect(windowStarts(64, 64, 0.5)).toEqual([0]);
    expect(windowStarts(40, 64, 0.5)).toEqual([0]);
    expect(windowStarts(10, 4, 0.75)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });
  it('builds a gaussian importance map peaking at 1 in the centre, symmetric, never 0', () => {
    const g = gaussianImportance([8, 8, 8]);
    const at = (x: number, y: number, z: number) => g[x + 8 * (y + 8 * z)];
    expect(Math.max(...g)).toBeCloseTo(1, 6);
    expect(at(3, 3, 3)).toBe(at(4, 4, 4));
    expect(at(0, 3, 4)).toBe(at(7, 4, 3));
    expect(Math.min(...g)).toBeGreaterThan(0);
    // sigma = 0.125 * 8 = 1: one voxel further along x from the centre (3.5 -> 4.5) costs exp(-(1.5^2 - 0.5^2)/2).
    expect(at(5, 3, 3) / at(4, 3, 3)).toBeCloseTo(Math.exp(-(1.5 ** 2 - 0.5 ** 2) / 2), 5);
  });
});

describe('slidingWindow', () => {
  it.each([
    ['gaussian', 0.5, [37, 29, 21]],
    ['constant', 0.25, [40, 17, 33]],
    ['gaussian', 0.75, [16, 16, 16]],
    ['gaussian', 0.5, [9, 20, 5]],
  ] as const)(
    'reproduces the input through an identity model (%s, overlap %s, dims %j)',
    async (blending, overlap, dims) => {
      const n = dims[0] * dims[1] * dims[2];
      const image = noise(n, 5);
      const out = await slidingWindow(image, [...dims] as Dims3, identityRunner(), {
        patchSize: [16, 8, 16],
        overlap,
        blending,
        batchSize: 3,
      });
      expect(out.channels).toBe(1);
      expect(out.dims).toEqual(dims);
      let err = 0;
      for (let i = 0; i < n; i++) err = Math.max(err, Math.abs(out.data[i] - image[i]));
      expect(err).toBeLessThan(1e-6);
    },
  );

  it('gives the same result whatever the batch size, and batches patches', async () => {
    const dims: Dims3 = [30, 30, 20];
    const image = noise(30 * 30 * 20, 9);
    const calls = { batches: [] as number[] };
    const a = await slidingWindow(image, dims, identityRunner(calls), {
      patchSize: [16, 16, 16],
      overlap: 0.5,
      blending: 'gaussian',
      batchSize: 4,
    });
    const b = await slidingWindow(image, dims, identityRunner(), {
      patchSize: [16, 16, 16],
      overlap: 0.5,
      blending: 'gaussian',
      batchSize: 1,
    });
    expect(a.data).toEqual(b.data);
    // 3 x 3 x 2 windows (stride 8) in batches of 4.
    expect(calls.batches).toEqual([4, 4, 4, 4, 2]);
  });

  it('rounds the patch up to the divisor and refuses an accumulator over its limit', async () => {
    const calls: number[][] = [];
    const runner = {
      async run(inputs: Record<string, { dims: number[]; data: Float32Array }>) {
        const x = Object.values(inputs)[0];
        calls.push(x.dims);
        return identityRunner().run(inputs as never);
      },
    };
    await slidingWindow(noise(20 * 20 * 20, 1), [20, 20, 20], runner, {
      patchSize: [12, 12, 12],
      overlap: 0,
      blending: 'constant',
      divisor: 8,
    });
    expect(calls[0]).toEqual([1, 1, 16, 16, 16]);
    await expect(
      slidingWindow(noise(1000, 1), [10, 10, 10], identityRunner(), {
        patchSize: [8, 8, 8],
        overlap: 0,
        blending: 'constant',
        maxAccumulatorValues: 999,
      }),
    ).rejects.toBeInstanceOf(LimitError);
  });

  it('argmax picks the largest channel, first on ties', () => {
    const data = Float32Array.of(0.2, 0.5, 0.3, 0.7, 0.5, 0.3, 0.1, 0.2, 0.3);
    expect([...argmaxChannels(data, 3, 3)]).toEqual([1, 0, 0]);
  });
});
