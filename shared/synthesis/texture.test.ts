import { describe, expect, it } from 'vitest';
import { Rng } from '../random.ts';
import type { Dims3 } from '../volume/volume.ts';
import { gaussianFilter3d, gaussianFilterMultiscale, multiscaleFactor } from './gaussian.ts';
import { DEFAULT_TEXTURE_SIGMAS, generateTextureDetailed, TextureBank } from './texture.ts';

describe('generateTexture', () => {
  it.each([
    [3, 4],
    [15, 7],
  ])('sigma (%d, %d): values in [0, 1], mean over the support B2 > 0.12 in [0.5, 0.55]', (sigmaA, sigmaB) => {
    for (let seed = 0; seed < 3; seed++) {
      const { data, u0, support } = generateTextureDetailed([48, 40, 32], { sigmaA, sigmaB }, new Rng(seed));
      expect(u0).toBeGreaterThanOrEqual(0.5);
      expect(u0).toBeLessThan(0.55);
      let sum = 0;
      let n = 0;
      for (let v = 0; v < data.length; v++) {
        expect(data[v]).toBeGreaterThanOrEqual(0);
        expect(data[v]).toBeLessThanOrEqual(1);
        if (support[v]) {
          sum += data[v];
          n++;
        }
      }
      expect(n).toBeGreaterThan(data.length / 10);
      // Clipping at 1 can only lower the mean below u0.
      expect(sum / n).toBeGreaterThanOrEqual(0.49);
      expect(sum / n).toBeLessThanOrEqual(0.55);
      expect(sum / n).toBeCloseTo(u0, 2);
    }
  });
});

describe('TextureBank', () => {
  it('has the 10 default sigma pairs', () => {
    expect(DEFAULT_TEXTURE_SIGMAS).toHaveLength(10);
    expect(DEFAULT_TEXTURE_SIGMAS[9]).toEqual({ sigmaA: 15, sigmaB: 7 });
  });

  it('cuts windows of one volume per pair: generated once, the same cold or warm', () => {
    const sigmas = [{ sigmaA: 3, sigmaB: 4 }];
    const cold = new TextureBank({ sigmas, size: 32 });
    const a = cold.sample([20, 10, 12], undefined, new Rng(9));
    cold.sample([30, 5, 7], undefined, new Rng(10));
    cold.sample([40, 40, 40], undefined, new Rng(11));
    expect(cold.generated).toBe(1);
    const warm = new TextureBank({ sigmas, size: 32 });
    warm.warm();
    expect(warm.sample([20, 10, 12], undefined, new Rng(9)).data).toEqual(a.data);
    // The window is the volume's own voxels at `start`.
    const vol = warm.volume(0);
    const { start } = a;
    expect(a.data[0]).toBe(vol[start[0] + 32 * (start[1] + 32 * start[2])]);
    expect(a.data[19 + 20 * (9 + 10 * 11)]).toBe(
      vol[start[0] + 19 + 32 * (start[1] + 9 + 32 * (start[2] + 11))],
    );
  });

  it('draws windows at random positions for the same region size (not one block per size)', () => {
    const bank = new TextureBank({ sigmas: [{ sigmaA: 3, sigmaB: 4 }], size: 48 });
    const starts = new Set<string>();
    const firsts = new Set<number>();
    for (let s = 0; s < 20; s++) {
      const w = bank.sample([16, 16, 16], [16, 16, 16], new Rng(s));
      starts.add(w.start.join(','));
      firsts.add(w.data[0]);
      for (const v of w.start) expect(v).toBeLessThanOrEqual(48 - 16 - 1);
    }
    expect(starts.size).toBe(20);
    expect(firsts.size).toBeGreaterThan(15);
  });

  it('continues the volume by reflection for a window longer than it', () => {
    const bank = new TextureBank({ sigmas: [{ sigmaA: 3, sigmaB: 4 }], size: 16 });
    const w = bank.sample([20, 16, 16], undefined, new Rng(1));
    expect(w.start).toEqual([0, 0, 0]);
    const vol = bank.volume(0);
    for (let t = 0; t < 4; t++) expect(w.data[16 + t]).toBe(vol[15 - t]);
  });

  it('depends on the seed', () => {
    const sigmas = [{ sigmaA: 3, sigmaB: 4 }];
    const a = new TextureBank({ sigmas, size: 16, seed: 1 }).volume(0);
    const b = new TextureBank({ sigmas, size: 16, seed: 2 }).volume(0);
    expect(a).not.toEqual(b);
  });

  it('drops least recently used volumes over its byte budget', () => {
    const bank = new TextureBank({
      sigmas: [
        { sigmaA: 3, sigmaB: 4 },
        { sigmaA: 6, sigmaB: 4 },
      ],
      size: 16,
      maxBytes: 16 ** 3 * 4 * 1.5,
    });
    bank.volume(0);
    bank.volume(1);
    bank.volume(0);
    expect(bank.generated).toBe(3);
  });
});

function meanOf(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v;
  return s / x.length;
}

function sdOf(x: Float32Array): number {
  const m = meanOf(x);
  let s = 0;
  for (const v of x) s += (v - m) ** 2;
  return Math.sqrt(s / x.length);
}

/** Normalised autocorrelation of a field at lag `lag` along axis i, j or k. */
function autocorrelation(x: Float32Array, dims: Dims3, axis: 0 | 1 | 2, lag: number): number {
  const [nx, ny, nz] = dims;
  const mean = meanOf(x);
  const step = [1, nx, nx * ny][axis];
  const lim = [nx, ny, nz][axis];
  let num = 0;
  let den = 0;
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++) {
        const v = i + nx * (j + ny * k);
        const c = axis === 0 ? i : axis === 1 ? j : k;
        const d = x[v] - mean;
        den += d * d;
        if (c + lag < lim) num += d * (x[v + lag * step] - mean);
      }
  return num / den;
}

describe('gaussianFilterMultiscale', () => {
  it('coarsens by floor(sigma / coarseSigma), exact when that is 1', () => {
    expect([3, 3.9, 4, 7, 9, 15].map((s) => multiscaleFactor(s))).toEqual([1, 1, 2, 3, 4, 7]);
    expect([3, 4, 6, 15].map((s) => multiscaleFactor(s, 1.5))).toEqual([2, 2, 4, 10]);
  });

  it.each([
    [4, 2],
    [7, 2],
    [15, 2],
    [3, 1.5],
  ])(
    'keeps the mean and the autocorrelation of the exact filter on noise (sigma %d, coarse sigma %d)',
    (sigma, coarseSigma) => {
      // 96^3: the field must hold many correlation lengths for its variance to be a stable statistic.
      const dims: Dims3 = [96, 96, 96];
      const noise = new Float32Array(96 ** 3);
      new Rng(sigma).fillUniform(noise);
      const exact = gaussianFilter3d(noise, dims, sigma);
      const fast = gaussianFilterMultiscale(noise, dims, sigma, undefined, coarseSigma);
      expect(meanOf(fast)).toBeCloseTo(meanOf(exact), 3);
      expect(sdOf(fast) / sdOf(exact)).toBeGreaterThan(0.93);
      expect(sdOf(fast) / sdOf(exact)).toBeLessThan(1.07);
      for (const lag of [1, Math.round(sigma / 2), sigma]) {
        for (const axis of [0, 1, 2] as const) {
          expect(
            Math.abs(autocorrelation(fast, dims, axis, lag) - autocorrelation(exact, dims, axis, lag)),
          ).toBeLessThan(0.05);
        }
      }
    },
  );
});
