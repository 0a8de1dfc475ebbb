/**
 * synthesize = planSynthesis + applyDifference, with the handcrafted difference drawn when none
 * is given. Deterministic for a given Rng state.
 */
import type { Rng } from '../random.ts';
import { applyDifference, type CompositionMode, drawDifference } from './compose.ts';
import { type PlanOptions, planSynthesis, type SynthesisInput, type SynthesisPlan } from './plan.ts';

export interface SynthesizeOptions extends PlanOptions {
  /** Scalar (window units) or a per-voxel map; default U(0.2, 0.7). */
  difference?: number | Float32Array;
  mode?: CompositionMode;
}

export interface SynthesisResult {
  image: Float32Array;
  plan: SynthesisPlan;
  /** The scalar used, or 'map' for a per-voxel difference. */
  difference: number | 'map';
  mode: CompositionMode;
}

export function synthesize(input: SynthesisInput, options: SynthesizeOptions, rng: Rng): SynthesisResult {
  const plan = planSynthesis(input, options, rng);
  const difference = options.difference ?? drawDifference(rng);
  const mode = options.mode ?? 'darken';
  const image = applyDifference(input.image, plan, difference, mode);
  return { image, plan, difference: typeof difference === 'number' ? difference : 'map', mode };
}
