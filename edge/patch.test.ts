import { describe, expect, it } from 'vitest';
import type { ModelManifest } from '../shared/model/manifest.ts';
import { fitPatch } from './patch.ts';

function manifest(patchSize: [number, number, number], divisor: number): ModelManifest {
  return {
    preprocessing: {
      spacing: [3, 3, 3],
      window: [-175, 250],
      orientation: 'RAS',
      patchSize,
      overlap: 0.25,
      blending: 'gaussian',
      divisor,
    },
  } as ModelManifest;
}

describe('fitPatch', () => {
  it('clamps each side to the cap, as a multiple of the divisor', () => {
    expect(fitPatch(manifest([96, 96, 80], 8), 64).preprocessing.patchSize).toEqual([64, 64, 64]);
    expect(fitPatch(manifest([96, 48, 96], 16), 70).preprocessing.patchSize).toEqual([64, 48, 64]);
    expect(fitPatch(manifest([96, 96, 96], 16), 8).preprocessing.patchSize).toEqual([16, 16, 16]);
  });

  it('returns the same manifest when it fits', () => {
    const m = manifest([48, 48, 48], 4);
    expect(fitPatch(m, 64)).toBe(m);
  });
});
