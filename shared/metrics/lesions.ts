/**
 * Lesion-level detection: connected components of the predicted and true tumor masks, matched by
 * overlap. A true lesion is detected when a predicted component overlaps it; a predicted component
 * that overlaps no true lesion is a false positive.
 */
import { connectedComponents } from '../labels/components.ts';
import type { Affine, Dims3 } from '../volume/volume.ts';
import { voxelMl } from './dice.ts';

export interface LesionMatch {
  voxels: number;
  volumeMl: number;
  detected: boolean;
  /** Dice of the lesion against the union of the predicted components that overlap it. */
  dice: number;
}

export interface LesionDetection {
  trueLesions: number;
  predictedLesions: number;
  detected: number;
  /** detected / trueLesions; null when the case has no true lesion. */
  sensitivity: number | null;
  falsePositives: number;
  lesions: LesionMatch[];
}

export interface LesionOptions {
  connectivity?: 6 | 26;
  /** Components smaller than this (ml) are ignored on both sides (0 keeps all). */
  minVolumeMl?: number;
}

export function lesionDetection(
  pred: Uint8Array,
  truth: Uint8Array,
  dims: Dims3,
  affine: Affine,
  options: LesionOptions = {},
): LesionDetection {
  const connectivity = options.connectivity ?? 26;
  const ml = voxelMl(affine);
  const minVoxels = (options.minVolumeMl ?? 0) / ml;
  const p = connectedComponents(pred, dims, connectivity);
  const t = connectedComponents(truth, dims, connectivity);
  const keepP = (id: number) => id > 0 && p.sizes[id - 1] >= minVoxels;
  const keepT = (id: number) => id > 0 && t.sizes[id - 1] >= minVoxels;

  // Overlap voxel counts per (true, predicted) pair, sparse: lesions are few.
  const overlap = new Map<number, Map<number, number>>();
  const predHitsTruth = new Uint8Array(p.count + 1);
  for (let v = 0; v < pred.length; v++) {
    const ti = t.labels[v];
    const pi = p.labels[v];
    if (!keepT(ti) || !keepP(pi)) continue;
    let row = overlap.get(ti);
    if (!row) {
      row = new Map();
      overlap.set(ti, row);
    }
    row.set(pi, (row.get(pi) ?? 0) + 1);
    predHitsTruth[pi] = 1;
  }

  const lesions: LesionMatch[] = [];
  let detected = 0;
  for (let ti = 1; ti <= t.count; ti++) {
    if (!keepT(ti)) continue;
    const size = t.sizes[ti - 1];
    const row = overlap.get(ti);
    let inter = 0;
    let predSize = 0;
    for (const [pi, n] of row ?? []) {
      inter += n;
      predSize += p.sizes[pi - 1];
    }
    const hit = inter > 0;
    if (hit) detected++;
    lesions.push({ voxels: size, volumeMl: size * ml, detected: hit, dice: (2 * inter) / (size + predSize) });
  }
  let predictedLesions = 0;
  let falsePositives = 0;
  for (let pi = 1; pi <= p.count; pi++) {
    if (!keepP(pi)) continue;
    predictedLesions++;
    if (!predHitsTruth[pi]) falsePositives++;
  }
  return {
    trueLesions: lesions.length,
    predictedLesions,
    detected,
    sensitivity: lesions.length === 0 ? null : detected / lesions.length,
    falsePositives,
    lesions,
  };
}
