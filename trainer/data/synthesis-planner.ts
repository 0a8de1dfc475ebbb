/**
 * The trainer's view of shared/synthesis: a planner places a tumor in a crop and returns its mask,
 * the per-voxel weight (blurred mask x texture, zero outside the organ) and the merged label with 3
 * on synthetic voxels. The intensity change itself is applied by the trainer (differentiably, with
 * the generator) or with a handcrafted difference. Injectable so tests can pin a plan.
 */
import type { OrganName } from '../../shared/labels/labelmap.ts';
import type { Rng } from '../../shared/random.ts';
import { planSynthesis } from '../../shared/synthesis/index.ts';
import { forEachShapeVoxel, type PlacedShape } from '../../shared/synthesis/plan.ts';
import type { TypeChoice } from '../../shared/synthesis/tumors.ts';
import type { Dims3 } from '../../shared/volume/volume.ts';

/** A type, `random` (p 0.25 each), or a list of types to draw from (shared/synthesis/tumors.ts). */
export type TumorTypeChoice = TypeChoice;

export interface PlanLike {
  tumorMask: Uint8Array;
  weight: Float32Array;
  label: Uint8Array;
}

export type Planner = (
  input: { image: Float32Array; label: Uint8Array; dims: Dims3; spacing: Dims3 },
  options: { type: TumorTypeChoice; count: number; organ: OrganName; minInsideOrgan?: number },
  rng: Rng,
) => PlanLike;

/** Redraws of a plan whose tumor lies too much outside the organ. */
export const CONTAINMENT_ATTEMPTS = 8;

/**
 * Fraction of the placed shapes' voxels inside the grid that fall on labeled tissue (label >= 1):
 * 1 for a tumor wholly in the organ, low for one centred near the organ's edge, which the organ mask
 * cuts into a dark region bounded by the organ's edge.
 */
export function insideFraction(shapes: readonly PlacedShape[], label: Uint8Array, dims: Dims3): number {
  let inGrid = 0;
  let inside = 0;
  for (const placed of shapes) {
    forEachShapeVoxel(placed, dims, (v) => {
      inGrid++;
      if (label[v] >= 1) inside++;
    });
  }
  return inGrid === 0 ? 0 : inside / inGrid;
}

/**
 * planSynthesis of shared/synthesis (one tumor per crop, as TGAN.Synthesis). With
 * `minInsideOrgan` > 0 a plan whose tumor is less contained is redrawn from the same stream (so the
 * run stays deterministic), up to CONTAINMENT_ATTEMPTS times; the most contained plan is kept.
 */
export const defaultPlanner: Planner = (input, options, rng) => {
  const min = options.minInsideOrgan ?? 0;
  let plan = planSynthesis(input, options, rng);
  if (min <= 0) return plan;
  let best = plan;
  let bestFraction = insideFraction(plan.shapes, input.label, input.dims);
  for (let a = 1; a < CONTAINMENT_ATTEMPTS && bestFraction < min; a++) {
    plan = planSynthesis(input, options, rng);
    const f = insideFraction(plan.shapes, input.label, input.dims);
    if (f > bestFraction) {
      best = plan;
      bestFraction = f;
    }
  }
  return best;
};

export async function loadPlanner(): Promise<Planner> {
  return defaultPlanner;
}
