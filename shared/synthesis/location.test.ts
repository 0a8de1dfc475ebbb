import { describe, expect, it } from 'vitest';
import { FreeTumorError } from '../errors.ts';
import { Rng } from '../random.ts';
import type { Dims3 } from '../volume/volume.ts';
import { erodedSlice, organKRange, pickLocation, roundHalfEven } from './location.ts';

function box(
  dims: Dims3,
  lo: Dims3,
  hi: Dims3,
  label: Uint8Array = new Uint8Array(dims[0] * dims[1] * dims[2]),
): Uint8Array {
  for (let k = lo[2]; k <= hi[2]; k++)
    for (let j = lo[1]; j <= hi[1]; j++)
      for (let i = lo[0]; i <= hi[0]; i++) label[i + dims[0] * (j + dims[1] * k)] = 1;
  return label;
}

describe('erodedSlice', () => {
  it('erodes with a 5x5 square and does not erode at the image border (OpenCV)', () => {
    const dims: Dims3 = [10, 10, 1];
    const full = erodedSlice(box(dims, [0, 0, 0], [9, 9, 0]), dims, 0);
    expect(full.every((v) => v === 1)).toBe(true);
    const inner = erodedSlice(box(dims, [2, 2, 0], [7, 7, 0]), dims, 0);
    // A 6x6 square loses 2 voxels per side: a 2x2 core remains.
    expect(inner.reduce((a, b) => a + b, 0)).toBe(4);
    expect(inner[4 + 10 * 4]).toBe(1);
    const thin = erodedSlice(box(dims, [2, 2, 0], [5, 7, 0]), dims, 0);
    expect(thin.every((v) => v === 0)).toBe(true);
  });
});

describe('pickLocation', () => {
  it('places the centre in the 0.3-0.7 band of the organ extent, on an eroded voxel', () => {
    const dims: Dims3 = [20, 20, 40];
    const label = box(dims, [3, 3, 10], [16, 16, 29]);
    expect(organKRange(label, dims)).toEqual([10, 29]);
    for (let s = 0; s < 50; s++) {
      const { center, placement } = pickLocation(label, dims, new Rng(s));
      expect(placement).toBe('eroded');
      expect(center[2]).toBeGreaterThanOrEqual(10 + Math.round(0.3 * 19) - 1);
      expect(center[2]).toBeLessThanOrEqual(10 + Math.round(0.7 * 19) + 1);
      for (const a of [0, 1]) {
        expect(center[a]).toBeGreaterThanOrEqual(5);
        expect(center[a]).toBeLessThanOrEqual(14);
      }
    }
  });

  it('widens to the whole organ range when the middle slices erode away', () => {
    const dims: Dims3 = [20, 20, 30];
    // Thick only in slices 0-2, a 2-voxel rod elsewhere: the 0.3-0.7 band always erodes empty.
    const label = box(dims, [2, 2, 0], [17, 17, 2]);
    box(dims, [9, 9, 3], [10, 10, 29], label);
    const seen = new Set<string>();
    for (let s = 0; s < 20; s++) {
      const { center, placement } = pickLocation(label, dims, new Rng(s));
      expect(placement).toBe('widened');
      expect(center[2]).toBeLessThanOrEqual(2);
      expect(label[center[0] + 20 * (center[1] + 20 * center[2])]).toBe(1);
      seen.add(center.join());
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  it('falls back to any organ voxel when no slice survives erosion', () => {
    const dims: Dims3 = [16, 16, 16];
    const label = box(dims, [7, 7, 2], [9, 8, 13]);
    for (let s = 0; s < 10; s++) {
      const { center, placement } = pickLocation(label, dims, new Rng(s));
      expect(placement).toBe('any_voxel');
      expect(label[center[0] + 16 * (center[1] + 16 * center[2])]).toBe(1);
    }
  });

  it('throws empty_organ only for an organ without voxels', () => {
    const dims: Dims3 = [8, 8, 8];
    const label = new Uint8Array(512);
    label[5] = 2; // a real tumor is not organ
    expect(() => pickLocation(label, dims, new Rng(1))).toThrow(FreeTumorError);
    try {
      pickLocation(label, dims, new Rng(1));
    } catch (e) {
      expect((e as FreeTumorError).code).toBe('empty_organ');
    }
  });
});

describe('roundHalfEven', () => {
  it('rounds like Python', () => {
    expect([0.5, 1.5, 2.5, 2.4, 2.6, 3].map(roundHalfEven)).toEqual([0, 2, 2, 2, 3, 3]);
  });
});
