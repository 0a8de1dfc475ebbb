/**
 * Tumor types and their shapes (method §2.2): radii randint(floor(0.75 r0), floor(1.25 r0)) per
 * axis, elastic sigma and count per type, the `mix` recipe and the TGAN's `random` choice.
 */
import { FreeTumorError } from '../errors.ts';
import type { Rng } from '../random.ts';
import type { Dims3 } from '../volume/volume.ts';
import { DEFORM_AXES, deformRandomGrid } from './elastic.ts';
import { ellipsoid, type Shape } from './ellipsoid.ts';

export type TumorType = 'tiny' | 'small' | 'medium' | 'large';
/** `mix`: the SyntheticTumors recipe of all four; `random`: one type with p 0.25 each per tumor (FreeTumor's TGAN). */
export type SynthesisType = TumorType | 'mix' | 'random';

export const TUMOR_TYPES: readonly TumorType[] = ['tiny', 'small', 'medium', 'large'];
export const SYNTHESIS_TYPES: readonly SynthesisType[] = [...TUMOR_TYPES, 'mix', 'random'];

interface TypeSpec {
  r0: number;
  /** Elastic deformation sigma in voxels. */
  sigma: (rng: Rng) => number;
  /** Count when the type is asked for on its own. */
  count: [number, number];
  /** Count inside `mix`. */
  mixCount: [number, number];
}

export const TYPE_SPECS: Record<TumorType, TypeSpec> = {
  tiny: { r0: 4, sigma: (rng) => rng.uniform(0.5, 1), count: [3, 10], mixCount: [3, 10] },
  small: { r0: 8, sigma: (rng) => rng.int(1, 2), count: [3, 10], mixCount: [5, 10] },
  medium: { r0: 16, sigma: (rng) => rng.int(3, 6), count: [2, 5], mixCount: [2, 5] },
  large: { r0: 32, sigma: (rng) => rng.int(5, 10), count: [1, 3], mixCount: [1, 3] },
};

/** Inclusive radius range of a type, in voxels. */
export function radiusRange(type: TumorType): [number, number] {
  const r0 = TYPE_SPECS[type].r0;
  return [Math.floor(0.75 * r0), Math.floor(1.25 * r0)];
}

/** Most tumors one call may ask for (a bound on work, not a method parameter). */
export const MAX_TUMORS = 64;

/** The list of tumor types one synthesis places, in order. */
export function tumorTypes(type: SynthesisType, count: number | undefined, rng: Rng): TumorType[] {
  if (!SYNTHESIS_TYPES.includes(type)) {
    throw new FreeTumorError('invalid_argument', `tumor type must be one of ${SYNTHESIS_TYPES.join(', ')}`);
  }
  if (count !== undefined && (!Number.isInteger(count) || count < 1 || count > MAX_TUMORS)) {
    throw new FreeTumorError('invalid_argument', `tumor count must be an integer in 1..${MAX_TUMORS}`);
  }
  if (type === 'mix') {
    if (count !== undefined)
      throw new FreeTumorError('invalid_argument', 'a tumor count cannot be given with type mix');
    return TUMOR_TYPES.flatMap((t) => Array<TumorType>(rng.int(...TYPE_SPECS[t].mixCount)).fill(t));
  }
  if (type === 'random') {
    return Array.from({ length: count ?? 1 }, () => rng.pick(TUMOR_TYPES));
  }
  return Array<TumorType>(count ?? rng.int(...TYPE_SPECS[type].count)).fill(type);
}

export interface TumorShape {
  type: TumorType;
  radii: Dims3;
  elasticSigma: number;
  shape: Shape;
}

/** Radii, elastic sigma, ellipsoid, then the three deformations, in the reference's draw order. */
export function tumorShape(type: TumorType, rng: Rng): TumorShape {
  const [lo, hi] = radiusRange(type);
  const radii: Dims3 = [rng.int(lo, hi), rng.int(lo, hi), rng.int(lo, hi)];
  const elasticSigma = TYPE_SPECS[type].sigma(rng);
  let shape = ellipsoid(radii);
  for (const axes of DEFORM_AXES) shape = deformRandomGrid(shape, elasticSigma, axes, rng);
  return { type, radii, elasticSigma, shape };
}
