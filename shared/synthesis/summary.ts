/**
 * Per-tumor facts for a synthesis on a real volume: voxels and volume at the working spacing,
 * centroid in world millimetres (RAS), and mean HU before and after, from the working grid.
 */
import { applyAffine } from '../geometry/affine.ts';
import { voxelVolumeMl } from '../labels/components.ts';
import type { Affine, Dims3 } from '../volume/volume.ts';
import { forEachTumorVoxel, type SynthesisPlan } from './plan.ts';
import type { TumorType } from './tumors.ts';

export interface TumorSummary {
  type: TumorType;
  /** Voxels at the working spacing (1.5 mm by default). */
  voxels: number;
  volumeMl: number;
  /** Centroid in world mm (RAS+), or null when the tumor fell outside the organ. */
  centroidMm: [number, number, number] | null;
  radiiVoxels: Dims3;
  elasticSigma: number;
  placement: string;
  meanHuBefore: number | null;
  meanHuAfter: number | null;
}

/** `hu` is the working-grid CT in HU; `deltaHu` the change the synthesis made there. */
export function summarizeTumors(
  plan: Pick<SynthesisPlan, 'tumors' | 'shapes' | 'dims' | 'tumorMask'>,
  affine: Affine,
  hu: ArrayLike<number>,
  deltaHu: Float32Array,
): TumorSummary[] {
  const mlPerVoxel = voxelVolumeMl(affine);
  return plan.tumors.map((t, n) => {
    let before = 0;
    let after = 0;
    let count = 0;
    forEachTumorVoxel(plan, n, (v) => {
      before += hu[v];
      after += hu[v] + deltaHu[v];
      count++;
    });
    return {
      type: t.type,
      voxels: count,
      volumeMl: round(count * mlPerVoxel, 3),
      centroidMm: t.centroid
        ? (applyAffine(affine, t.centroid).map((x) => round(x, 2)) as [number, number, number])
        : null,
      radiiVoxels: t.radii,
      elasticSigma: round(t.elasticSigma, 3),
      placement: t.placement,
      meanHuBefore: count > 0 ? round(before / count, 1) : null,
      meanHuAfter: count > 0 ? round(after / count, 1) : null,
    };
  });
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
