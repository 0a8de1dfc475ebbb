/**
 * Segmentation statistics (TotalSegmentator's `--statistics`, plus lesions): per structure its voxel
 * count, volume in ml and the CT's HU mean, SD (population), min and max inside it; per lesion (26-
 * connected tumor component, largest first, id 1..n in that order) its voxels, volume, world centroid
 * (RAS mm) and mean HU. One zod schema for the CLI's `segment --statistics` file and the Worker's
 * `format=json` answer; `organVoxels`, `tumorVoxels` and the lesions' first three fields keep the
 * Worker's earlier answer valid.
 */
import { z } from 'zod';
import { applyAffine } from '../geometry/affine.ts';
import { connectedComponents } from '../labels/components.ts';
import { voxelMl } from '../metrics/dice.ts';
import type { Affine, Dims3, Volume } from '../volume/volume.ts';
import type { Structure } from './structures.ts';

const vec3 = z.tuple([z.number(), z.number(), z.number()]);

export const huStatisticsSchema = z.object({
  mean: z.number(),
  sd: z.number(),
  min: z.number(),
  max: z.number(),
});

export const structureStatisticsSchema = z.object({
  classId: z.number().int().positive(),
  name: z.string(),
  voxels: z.number().int().nonnegative(),
  volumeMl: z.number().nonnegative(),
  /** null when the structure is empty. */
  hu: huStatisticsSchema.nullable(),
});

export const lesionStatisticsSchema = z.object({
  voxels: z.number().int().positive(),
  volumeMl: z.number().positive(),
  centroidMm: vec3,
  id: z.number().int().positive(),
  huMean: z.number(),
});

export const segmentationStatisticsSchema = z.object({
  model: z.object({ name: z.string(), version: z.string() }),
  organ: z.string(),
  dims: z.tuple([z.number().int(), z.number().int(), z.number().int()]),
  voxelMl: z.number().positive(),
  organVoxels: z.number().int().nonnegative(),
  tumorVoxels: z.number().int().nonnegative(),
  structures: z.array(structureStatisticsSchema),
  lesions: z.array(lesionStatisticsSchema),
});

export type SegmentationStatistics = z.infer<typeof segmentationStatisticsSchema>;
export type LesionStatistics = z.infer<typeof lesionStatisticsSchema>;

const round = (x: number, digits: number) => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/**
 * Per class id: voxel count and the HU sum, sum of squares, minimum and maximum, added voxel by
 * voxel in raster order (whole volumes, or storage slices in order: the same sums either way).
 */
export class StructureAccumulator {
  readonly count = new Float64Array(256);
  readonly sum = new Float64Array(256);
  readonly sumSq = new Float64Array(256);
  readonly min = new Float64Array(256).fill(Number.POSITIVE_INFINITY);
  readonly max = new Float64Array(256).fill(Number.NEGATIVE_INFINITY);

  add(hu: ArrayLike<number>, mask: ArrayLike<number>): void {
    const { count, sum, sumSq, min, max } = this;
    for (let v = 0; v < mask.length; v++) {
      const c = mask[v];
      if (c === 0) continue;
      const x = hu[v];
      count[c]++;
      sum[c] += x;
      sumSq[c] += x * x;
      if (x < min[c]) min[c] = x;
      if (x > max[c]) max[c] = x;
    }
  }

  structures(structures: Structure[], ml: number): SegmentationStatistics['structures'] {
    return structures.map((s) => {
      const k = this.count[s.classId];
      const mean = k > 0 ? this.sum[s.classId] / k : 0;
      const variance = k > 0 ? Math.max(0, this.sumSq[s.classId] / k - mean * mean) : 0;
      return {
        classId: s.classId,
        name: s.name,
        voxels: k,
        volumeMl: k * ml,
        hu:
          k > 0
            ? {
                mean: round(mean, 2),
                sd: round(Math.sqrt(variance), 2),
                min: this.min[s.classId],
                max: this.max[s.classId],
              }
            : null,
      };
    });
  }
}

interface StatisticsContext {
  model: { name: string; version: string };
  organ: string;
}

function assemble(
  acc: StructureAccumulator,
  structures: Structure[],
  context: StatisticsContext,
  dims: Dims3,
  affine: Affine,
  lesions: LesionStatistics[],
): SegmentationStatistics {
  const ml = voxelMl(affine);
  const organ = structures.find((s) => s.kind === 'organ');
  const tumor = structures.find((s) => s.kind === 'tumor');
  return {
    model: context.model,
    organ: context.organ,
    dims: [...dims],
    voxelMl: ml,
    organVoxels: organ ? acc.count[organ.classId] : 0,
    tumorVoxels: tumor ? acc.count[tumor.classId] : 0,
    structures: acc.structures(structures, ml),
    lesions,
  };
}

/** Statistics of `mask` (class ids) over `image` (HU, same grid). */
export function segmentationStatistics(
  image: Volume,
  mask: Volume<Uint8Array>,
  structures: Structure[],
  context: StatisticsContext,
): SegmentationStatistics {
  if (image.data.length !== mask.data.length) throw new RangeError('image and mask grids differ');
  const acc = new StructureAccumulator();
  acc.add(image.data, mask.data);
  const tumor = structures.find((s) => s.kind === 'tumor');
  const lesions = tumor ? lesionStatistics(image, mask, tumor.classId) : [];
  return assemble(acc, structures, context, mask.dims, mask.affine, lesions);
}

/** A lesion's geometry, known before the CT is read (the streaming segmentation's lesions). */
export interface LesionGeometry {
  voxels: number;
  volumeMl: number;
  centroidMm: [number, number, number];
}

/**
 * segmentationStatistics for a CT read storage slice by storage slice: `add` each HU slice with its
 * mask slice and lesion ids (1..n in the order of `lesions`, largest first), then `result`. The sums
 * run in raster order, as the whole-volume function's, so both give the same numbers.
 */
export class StreamingStatistics {
  private readonly acc = new StructureAccumulator();
  private readonly lesionHu: Float64Array;
  private readonly lesions: LesionGeometry[];
  private readonly structures: Structure[];

  constructor(structures: Structure[], lesions: LesionGeometry[]) {
    this.structures = structures;
    this.lesions = lesions;
    this.lesionHu = new Float64Array(lesions.length + 1);
  }

  add(hu: ArrayLike<number>, mask: ArrayLike<number>, lesionIds: ArrayLike<number> | null): void {
    this.acc.add(hu, mask);
    if (!lesionIds) return;
    const s = this.lesionHu;
    for (let v = 0; v < lesionIds.length; v++) {
      const id = lesionIds[v];
      if (id !== 0) s[id] += hu[v];
    }
  }

  result(context: StatisticsContext, dims: Dims3, affine: Affine): SegmentationStatistics {
    const lesions = this.lesions.map((l, i) => ({
      voxels: l.voxels,
      volumeMl: l.volumeMl,
      centroidMm: l.centroidMm,
      huMean: round(this.lesionHu[i + 1] / l.voxels, 2),
      id: i + 1,
    }));
    return assemble(this.acc, this.structures, context, dims, affine, lesions);
  }
}

/** 26-connected components of `tumorClass`, largest first, with volume, centroid and mean HU. */
export function lesionStatistics(
  image: Volume,
  mask: Volume<Uint8Array>,
  tumorClass: number,
): LesionStatistics[] {
  const [nx, ny] = mask.dims;
  const bin = new Uint8Array(mask.data.length);
  for (let v = 0; v < bin.length; v++) if (mask.data[v] === tumorClass) bin[v] = 1;
  const cc = connectedComponents(bin, mask.dims, 26);
  const acc = new Float64Array(4 * (cc.count + 1));
  for (let v = 0; v < bin.length; v++) {
    const id = cc.labels[v];
    if (id === 0) continue;
    acc[4 * id] += v % nx;
    acc[4 * id + 1] += Math.floor(v / nx) % ny;
    acc[4 * id + 2] += Math.floor(v / (nx * ny));
    acc[4 * id + 3] += image.data[v];
  }
  const ml = voxelMl(mask.affine);
  const lesions = [];
  for (let id = 1; id <= cc.count; id++) {
    const k = cc.sizes[id - 1];
    const c = applyAffine(mask.affine, [acc[4 * id] / k, acc[4 * id + 1] / k, acc[4 * id + 2] / k]);
    lesions.push({
      voxels: k,
      volumeMl: k * ml,
      centroidMm: c.map((x) => round(x, 2)) as [number, number, number],
      huMean: round(acc[4 * id + 3] / k, 2),
    });
  }
  // Largest first; ties keep scan order (the sort is stable).
  lesions.sort((a, b) => b.voxels - a.voxels);
  return lesions.map((l, i) => ({ ...l, id: i + 1 }));
}
