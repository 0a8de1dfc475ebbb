import { describe, expect, it } from 'vitest';
import { Rng } from '../../shared/random.ts';
import { planSynthesis } from '../../shared/synthesis/index.ts';
import { TextureBank } from '../../shared/synthesis/texture.ts';
import type { Dims3 } from '../../shared/volume/volume.ts';
import { defaultPlanner, insideFraction } from './synthesis-planner.ts';

/** A 32^3 crop whose organ fills only the half x < 16: many tumors are cut by its edge. */
function halfOrganCrop() {
  const dims: Dims3 = [32, 32, 32];
  const label = new Uint8Array(32 * 32 * 32);
  for (let k = 0; k < 32; k++)
    for (let j = 0; j < 32; j++) for (let i = 0; i < 16; i++) label[i + 32 * (j + 32 * k)] = 1;
  return { image: new Float32Array(label.length).fill(0.5), label, dims, spacing: [3, 3, 3] as Dims3 };
}

describe('insideFraction', () => {
  it('is 1 for a shape wholly in the organ and the organ share of the shape otherwise', () => {
    const shape = { dims: [4, 4, 4] as Dims3, data: new Uint8Array(64).fill(1) };
    const crop = halfOrganCrop();
    expect(insideFraction([{ origin: [2, 2, 2], shape }], crop.label, crop.dims)).toBe(1);
    expect(insideFraction([{ origin: [14, 2, 2], shape }], crop.label, crop.dims)).toBe(0.5);
    // Voxels outside the crop do not count against it.
    expect(insideFraction([{ origin: [-2, 2, 2], shape }], crop.label, crop.dims)).toBe(1);
  });
});

describe('defaultPlanner with minInsideOrgan', () => {
  // A small texture bank keeps the test fast (the planner passes its options on to planSynthesis).
  const textures = new TextureBank({ size: 32 });
  const options = { type: 'small' as const, count: 1, organ: 'liver' as const, textures };

  it('is planSynthesis itself at 0, and redraws cut tumors deterministically above 0', () => {
    const crop = halfOrganCrop();
    const plain = planSynthesis(crop, options, new Rng(5));
    const same = defaultPlanner(crop, { ...options, minInsideOrgan: 0 }, new Rng(5));
    expect(same.label).toEqual(planSynthesis(crop, options, new Rng(5)).label);
    expect(plain.tumors.length).toBe(1);
    let below = 0;
    let raised = 0;
    for (let seed = 0; seed < 12; seed++) {
      const free = planSynthesis(crop, options, new Rng(seed));
      const fFree = insideFraction(free.shapes, crop.label, crop.dims);
      const held = defaultPlanner(crop, { ...options, minInsideOrgan: 0.9 }, new Rng(seed));
      const again = defaultPlanner(crop, { ...options, minInsideOrgan: 0.9 }, new Rng(seed));
      expect(again.label).toEqual(held.label);
      const fHeld = insideFraction((held as typeof free).shapes, crop.label, crop.dims);
      expect(fHeld).toBeGreaterThanOrEqual(fFree);
      if (fFree < 0.9) below++;
      if (fHeld > fFree) raised++;
    }
    // The half-organ crop cuts some tumors, and the redraws place them further inside.
    expect(below).toBeGreaterThan(0);
    expect(raised).toBeGreaterThan(0);
  });
});
