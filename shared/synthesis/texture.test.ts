import { describe, expect, it } from 'vitest';
import { Rng } from '../random.ts';
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

  it('caches blocks by size and gives the same sample cold or warm', () => {
    const cold = new TextureBank({ sigmas: [{ sigmaA: 3, sigmaB: 4 }], minBlock: 32 });
    const a = cold.sample([20, 10, 12], [64, 64, 64], new Rng(9));
    expect(cold.generated).toBe(1);
    cold.sample([30, 5, 7], [64, 64, 64], new Rng(10));
    expect(cold.generated).toBe(1);
    const warm = new TextureBank({ sigmas: [{ sigmaA: 3, sigmaB: 4 }], minBlock: 32 });
    warm.warm([20, 10, 12], [64, 64, 64]);
    expect(warm.sample([20, 10, 12], [64, 64, 64], new Rng(9)).data).toEqual(a.data);
  });

  it('never makes a block larger than the volume, nor smaller than the region', () => {
    const bank = new TextureBank();
    expect(bank.blockDims([20, 30, 40], [96, 96, 96])).toEqual([96, 96, 96]);
    expect(bank.blockDims([20, 30, 140], [244, 202, 224])).toEqual([160, 160, 160]);
    expect(bank.blockDims([10, 10, 10], [12, 200, 8])).toEqual([12, 128, 10]);
  });

  it('drops least recently used blocks over its byte budget', () => {
    const bank = new TextureBank({
      sigmas: [{ sigmaA: 3, sigmaB: 4 }],
      minBlock: 16,
      maxBytes: 32 ** 3 * 4 * 1.5,
    });
    bank.sample([8, 8, 8], [64, 64, 64], new Rng(1));
    bank.sample([40, 40, 40], [64, 64, 64], new Rng(1));
    bank.sample([8, 8, 8], [64, 64, 64], new Rng(1));
    expect(bank.generated).toBe(3);
  });
});
