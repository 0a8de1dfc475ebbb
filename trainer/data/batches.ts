/**
 * Builds the training batch of a step, deterministically from (seed, step): which cases (epochs of
 * shuffled case lists, labeled cases repeated), the crops, augmentations and, where asked, the
 * synthesis plans. Runs on the training thread or in patch workers (prefetch.ts) alike.
 */
import type { OrganName } from '../../shared/labels/labelmap.ts';
import { drawDifference } from '../../shared/synthesis/compose.ts';
import { type Dims3, voxelCount } from '../../shared/volume/volume.ts';
import { augmentPatch, type CropClasses, extractPatch, sampleCropStart } from './patches.ts';
import { STREAM, stepRng } from './seeds.ts';
import type { CaseStore } from './store.ts';
import type { Planner, TumorTypeChoice } from './synthesis-planner.ts';

export interface BatchSpec {
  seed: number;
  patchSize: Dims3;
  casesPerStep: number;
  cropsPerCase: number;
  /** Where crops are centred (tumor / organ / body fractions). */
  crops: CropClasses;
  /** Millimetres per voxel of the training grid: synthetic tumor sizes are physical. */
  spacing: Dims3;
  augment: boolean;
  /**
   * Which crops get synthesis plans: none; `eligible` = organ present and no real tumor (the
   * segmentation rule of notes §5); `organ` = any crop with organ (synthesis training).
   */
  synthesis: 'none' | 'eligible' | 'organ';
  /** Independent plans per crop: 1 for segmentation, 2 for synthesis training (G step, D step). */
  plansPerCrop: number;
  tumorType: TumorTypeChoice;
  /** Least fraction of a synthetic tumor's shape in the organ (0: any; synthesis-planner.ts). */
  minInsideOrgan?: number;
  /** Range of the per-crop factor on an accepted synthetic tumor's intensity change; absent = 1. */
  contrast?: readonly [number, number];
  /** Generator channel order. */
  organs: readonly OrganName[];
}

export interface PlanSet {
  /** 1 where crop b has a plan. */
  has: Uint8Array;
  /** [b * voxels] blurred mask x texture, zero outside the organ. */
  weight: Float32Array;
  /** [b * voxels] merged label with 3 on synthetic voxels (the crop's label where has = 0). */
  label: Uint8Array;
  /** Handcrafted difference per crop (shared/synthesis/compose.ts), used when no generator is given. */
  difference: Float32Array;
  /** Per crop: the factor on the tumor's intensity change once quality control accepted it (1 = as drawn). */
  contrast: Float32Array;
}

export interface Batch {
  step: number;
  size: number;
  dims: Dims3;
  /** [b * voxels], crop b at offset b * voxels, x fastest: NDHWC with C = 1 as is. */
  images: Float32Array;
  labels: Uint8Array;
  /** Index into spec.organs per crop. */
  organIndex: Int32Array;
  caseIds: string[];
  plans: PlanSet[];
}

/** The entry order of an epoch: every case `repeat` times, shuffled. */
export class EpochOrder {
  private readonly base: number[];
  private cachedEpoch = -1;
  private cached: number[] = [];
  private readonly seed: number;

  constructor(store: CaseStore, seed: number) {
    this.seed = seed;
    this.base = store.entries.flatMap((e, i) => Array.from({ length: e.repeat }, () => i));
  }

  get length(): number {
    return this.base.length;
  }

  /** Case index of the g-th draw of the run. */
  at(g: number): number {
    const epoch = Math.floor(g / this.base.length);
    if (epoch !== this.cachedEpoch) {
      this.cached = stepRng(this.seed, STREAM.order, epoch).shuffle(this.base.slice());
      this.cachedEpoch = epoch;
    }
    return this.cached[g % this.base.length];
  }
}

export function makeBatch(
  store: CaseStore,
  order: EpochOrder,
  spec: BatchSpec,
  step: number,
  planner: Planner | null,
): Batch {
  const size = spec.casesPerStep * spec.cropsPerCase;
  const n = voxelCount(spec.patchSize);
  const images = new Float32Array(size * n);
  const labels = new Uint8Array(size * n);
  const organIndex = new Int32Array(size);
  const caseIds: string[] = [];
  const plans: PlanSet[] = Array.from({ length: spec.plansPerCrop }, () => ({
    has: new Uint8Array(size),
    weight: new Float32Array(size * n),
    label: new Uint8Array(size * n),
    difference: new Float32Array(size),
    contrast: new Float32Array(size).fill(1),
  }));
  for (let c = 0; c < spec.casesPerStep; c++) {
    const caseIndex = order.at(step * spec.casesPerStep + c);
    const tc = store.get(caseIndex);
    for (let r = 0; r < spec.cropsPerCase; r++) {
      const b = c * spec.cropsPerCase + r;
      const rng = stepRng(spec.seed, STREAM.crop, step, b);
      const start = sampleCropStart(tc.image, tc.label, tc.dims, spec.patchSize, spec.crops, rng);
      let patch = extractPatch(tc.image, tc.label, tc.dims, start, spec.patchSize);
      if (spec.augment) patch = augmentPatch(patch, rng);
      images.set(patch.image, b * n);
      labels.set(patch.label, b * n);
      organIndex[b] = Math.max(0, spec.organs.indexOf(tc.organ));
      caseIds.push(tc.id);
      if (spec.synthesis === 'none' || !planner) continue;
      let organ = false;
      let tumor = false;
      for (let i = 0; i < n; i++) {
        if (patch.label[i] === 1) organ = true;
        else if (patch.label[i] === 2) tumor = true;
      }
      if (!organ || (spec.synthesis === 'eligible' && tumor)) continue;
      plans.forEach((set, p) => {
        const prng = stepRng(spec.seed, STREAM.plan, step, b, p);
        const plan = planner(
          { image: patch.image, label: patch.label, dims: spec.patchSize, spacing: spec.spacing },
          { type: spec.tumorType, count: 1, organ: tc.organ, minInsideOrgan: spec.minInsideOrgan ?? 0 },
          prng,
        );
        set.has[b] = 1;
        set.weight.set(plan.weight, b * n);
        const [lo, hi] = spec.contrast ?? [1, 1];
        // Its own stream: drawing it shifts none of the other draws.
        if (lo !== 1 || hi !== 1)
          set.contrast[b] = lo + (hi - lo) * stepRng(spec.seed, STREAM.contrast, step, b, p).random();
        set.label.set(plan.label, b * n);
        set.difference[b] = drawDifference(prng);
      });
    }
  }
  for (const set of plans) {
    for (let b = 0; b < size; b++) if (!set.has[b]) set.label.set(labels.subarray(b * n, (b + 1) * n), b * n);
  }
  return { step, size, dims: [...spec.patchSize], images, labels, organIndex, caseIds, plans };
}

/** The ArrayBuffers of a batch, for a zero-copy postMessage transfer. */
export function batchTransferList(b: Batch): ArrayBuffer[] {
  return [
    b.images,
    b.labels,
    b.organIndex,
    ...b.plans.flatMap((p) => [p.has, p.weight, p.label, p.difference, p.contrast]),
  ].map((a) => a.buffer as ArrayBuffer);
}
