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
import type { Volume } from '../volume/volume.ts';
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

/** Statistics of `mask` (class ids) over `image` (HU, same grid). */
export function segmentationStatistics(
  image: Volume,
  mask: Volume<Uint8Array>,
  structures: Structure[],
  context: { model: { name: string; version: string }; organ: string },
): SegmentationStatistics {
  if (image.data.length !== mask.data.length) throw new RangeError('image and mask grids differ');
  const ml = voxelMl(mask.affine);
  const n = 256;
  const count = new Float64Array(n);
  const sum = new Float64Array(n);
  const sumSq = new Float64Array(n);
  const min = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
  const max = new Float64Array(n).fill(Number.NEGATIVE_INFINITY);
  const m = mask.data;
  const img = image.data;
  for (let v = 0; v < m.length; v++) {
    const c = m[v];
    if (c === 0) continue;
    const hu = img[v];
    count[c]++;
    sum[c] += hu;
    sumSq[c] += hu * hu;
    if (hu < min[c]) min[c] = hu;
    if (hu > max[c]) max[c] = hu;
  }
  const structureStats = structures.map((s) => {
    const k = count[s.classId];
    const mean = k > 0 ? sum[s.classId] / k : 0;
    const variance = k > 0 ? Math.max(0, sumSq[s.classId] / k - mean * mean) : 0;
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
              min: min[s.classId],
              max: max[s.classId],
            }
          : null,
    };
  });
  const organ = structures.find((s) => s.kind === 'organ');
  const tumor = structures.find((s) => s.kind === 'tumor');
  return {
    model: context.model,
    organ: context.organ,
    dims: [...mask.dims],
    voxelMl: ml,
    organVoxels: organ ? count[organ.classId] : 0,
    tumorVoxels: tumor ? count[tumor.classId] : 0,
    structures: structureStats,
    lesions: tumor ? lesionStatistics(image, mask, tumor.classId) : [],
  };
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
