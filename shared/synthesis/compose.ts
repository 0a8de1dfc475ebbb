/**
 * Intensity composition (method §2.4 with §10.5): x' = clip(x - weight * D, 0, 1) ('darken',
 * abdomen) or x' = clip(x + weight * D, 0, 1) ('brighten', the chest variant), where weight =
 * blur(mask) * texture on organ voxels. D is a scalar (handcrafted mode) or a per-voxel map.
 * Only the plan's region is touched; every other voxel is copied unchanged.
 */
import { FreeTumorError } from '../errors.ts';
import type { Rng } from '../random.ts';
import type { SynthesisPlan } from './plan.ts';

export type CompositionMode = 'darken' | 'brighten';

/** Handcrafted difference range (window units; 1.0 = 425 HU). */
export const DIFFERENCE_RANGE: [number, number] = [0.2, 0.7];

/** d = 0.2 + 0.5 * U(0, 1), as the reference's handcrafted mode. */
export function drawDifference(rng: Rng): number {
  return DIFFERENCE_RANGE[0] + (DIFFERENCE_RANGE[1] - DIFFERENCE_RANGE[0]) * rng.random();
}

export function applyDifference(
  image: Float32Array,
  plan: Pick<SynthesisPlan, 'weight' | 'region' | 'dims'>,
  difference: number | Float32Array,
  mode: CompositionMode = 'darken',
): Float32Array {
  if (image.length !== plan.weight.length) {
    throw new FreeTumorError('invalid_argument', 'image and plan have different voxel counts');
  }
  if (typeof difference !== 'number' && difference.length !== image.length) {
    throw new FreeTumorError('invalid_argument', `difference map must have ${image.length} voxels`);
  }
  if (typeof difference === 'number' && !Number.isFinite(difference)) {
    throw new FreeTumorError('invalid_argument', 'difference must be a finite number');
  }
  if (mode !== 'darken' && mode !== 'brighten') {
    throw new FreeTumorError('invalid_argument', 'mode must be darken or brighten');
  }
  const out = image.slice();
  const region = plan.region;
  if (!region) return out;
  const sign = mode === 'darken' ? -1 : 1;
  const [nx, ny] = plan.dims;
  const [sx, sy, sz] = region.size;
  const w = plan.weight;
  for (let k = 0; k < sz; k++) {
    for (let j = 0; j < sy; j++) {
      const row = region.start[0] + nx * (region.start[1] + j + ny * (region.start[2] + k));
      for (let v = row; v < row + sx; v++) {
        if (w[v] === 0) continue;
        const d = typeof difference === 'number' ? difference : difference[v];
        const x = image[v] + sign * w[v] * d;
        out[v] = Math.min(1, Math.max(0, x));
      }
    }
  }
  return out;
}
