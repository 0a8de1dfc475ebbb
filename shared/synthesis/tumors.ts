/**
 * Tumor types and their shapes (method §2.2): radii randint(floor(0.75 r0), floor(1.25 r0)) per
 * axis, elastic sigma and count per type, the `mix` recipe and the TGAN's `random` choice.
 *
 * Sizes are physical: the reference draws radii and deformation sigmas in voxels of its 1.5 mm
 * working grid, so a draw is taken in those units (the same random numbers as the reference) and
 * converted to millimetres (x 1.5), then to voxels of the grid at hand (/ its spacing per axis).
 * At 1.5 mm this is exactly the reference; at 3 mm a "medium" tumor keeps its 18-30 mm radius
 * instead of doubling to 36-60 mm.
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

/** The grid the reference's voxel sizes refer to (mm): its data are resampled to 1.5 mm isotropic. */
export const REFERENCE_SPACING_MM = 1.5;

/** Inclusive radius range of a type, in voxels of the reference's 1.5 mm grid. */
export function radiusRange(type: TumorType): [number, number] {
  const r0 = TYPE_SPECS[type].r0;
  return [Math.floor(0.75 * r0), Math.floor(1.25 * r0)];
}

/** Inclusive radius range of a type in millimetres (tiny 4.5-7.5, small 9-15, medium 18-30, large 36-60). */
export function radiusRangeMm(type: TumorType): [number, number] {
  const [lo, hi] = radiusRange(type);
  return [lo * REFERENCE_SPACING_MM, hi * REFERENCE_SPACING_MM];
}

/** A length in millimetres as voxels along each axis of a grid with `spacing` (mm per voxel). */
export function mmToVoxels(mm: number, spacing: Dims3): Dims3 {
  return spacing.map((s) => mm / s) as Dims3;
}

/** Checks a grid spacing: three positive finite millimetre values. */
export function checkSpacing(spacing: unknown): asserts spacing is Dims3 {
  if (
    !Array.isArray(spacing) ||
    spacing.length !== 3 ||
    !spacing.every((s) => typeof s === 'number' && Number.isFinite(s) && s > 0)
  ) {
    throw new FreeTumorError('invalid_argument', 'spacing must be three positive numbers (mm per voxel)');
  }
}

/** Most tumors one call may ask for (a bound on work, not a method parameter). */
export const MAX_TUMORS = 64;

/**
 * What a synthesis is asked to place: a type, `mix`, `random` (one of the four per tumor, p 0.25
 * each), or a list of types (one of them per tumor, uniformly: `random` restricted to the sizes a
 * data set's lesions have).
 */
export type TypeChoice = SynthesisType | readonly TumorType[];

/** The list of tumor types one synthesis places, in order. */
export function tumorTypes(type: TypeChoice, count: number | undefined, rng: Rng): TumorType[] {
  if (typeof type !== 'string') {
    const list: readonly TumorType[] = type;
    if (list.length === 0 || !list.every((t) => TUMOR_TYPES.includes(t))) {
      throw new FreeTumorError(
        'invalid_argument',
        `tumor types must be a non-empty list of ${TUMOR_TYPES.join(', ')}`,
      );
    }
    if (count !== undefined && (!Number.isInteger(count) || count < 1 || count > MAX_TUMORS)) {
      throw new FreeTumorError('invalid_argument', `tumor count must be an integer in 1..${MAX_TUMORS}`);
    }
    return Array.from({ length: count ?? 1 }, () => rng.pick(list));
  }
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
  /** Semi-axes in voxels of the grid the shape was made for. */
  radii: Dims3;
  /** Semi-axes in millimetres (the reference's draw x 1.5 mm). */
  radiiMm: Dims3;
  /** Elastic deformation sigma as drawn, in voxels of the reference's 1.5 mm grid. */
  elasticSigma: number;
  shape: Shape;
}

/**
 * Radii, elastic sigma, ellipsoid, then the three deformations, in the reference's draw order,
 * for a grid of `spacing` mm per voxel (see the module comment).
 */
export function tumorShape(type: TumorType, rng: Rng, spacing: Dims3): TumorShape {
  checkSpacing(spacing);
  const [lo, hi] = radiusRange(type);
  const drawn: Dims3 = [rng.int(lo, hi), rng.int(lo, hi), rng.int(lo, hi)];
  const radiiMm = drawn.map((r) => r * REFERENCE_SPACING_MM) as Dims3;
  const radii = radiiMm.map((mm, a) => Math.max(1, Math.round(mm / spacing[a]))) as Dims3;
  const elasticSigma = TYPE_SPECS[type].sigma(rng);
  let shape = ellipsoid(radii);
  for (const axes of DEFORM_AXES) {
    // The displacement moves both deformed axes; their mean spacing converts it to voxels.
    // (A factor first, so that at 1.5 mm the sigma is the drawn value bit for bit.)
    const factor = REFERENCE_SPACING_MM / ((spacing[axes[0]] + spacing[axes[1]]) / 2);
    shape = deformRandomGrid(shape, elasticSigma * factor, axes, rng);
  }
  return { type, radii, radiiMm, elasticSigma, shape };
}
