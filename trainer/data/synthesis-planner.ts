/**
 * The trainer's view of shared/synthesis: a planner places a tumor in a crop and returns its mask,
 * the per-voxel weight (blurred mask x texture, zero outside the organ) and the merged label with 3
 * on synthetic voxels. The intensity change itself is applied by the trainer (differentiably, with
 * the generator) or with a handcrafted difference. Injectable so tests can pin a plan.
 */
import type { OrganName } from '../../shared/labels/labelmap.ts';
import type { Rng } from '../../shared/random.ts';
import { planSynthesis } from '../../shared/synthesis/index.ts';
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
  options: { type: TumorTypeChoice; count: number; organ: OrganName },
  rng: Rng,
) => PlanLike;

/** planSynthesis of shared/synthesis (one tumor per crop, as TGAN.Synthesis). */
export const defaultPlanner: Planner = (input, options, rng) => planSynthesis(input, options, rng);

export async function loadPlanner(): Promise<Planner> {
  return defaultPlanner;
}
