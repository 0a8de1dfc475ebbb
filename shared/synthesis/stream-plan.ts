/**
 * The planning half of a streamed synthesis (stream-synthesis.ts): the label is read storage slice by
 * storage slice and only what `planSynthesis` needs is kept, so a 512 x 512 x 1000 label (256 MB)
 * never exists whole, neither at full resolution nor at the working spacing.
 *
 * The whole-volume path (whole-volume.ts) resamples the canonical label to the working spacing
 * (nearest) and merges it to 0 / 1 organ / 2 real tumor. Here each working-grid slab is sampled from
 * the storage slice nearest to it with the same tables (resample.ts's nearestTable on the same
 * matrix), merged with the same lookup, and kept run-length coded. The organ's box on the working grid
 * plus `CROP_MARGIN` voxels is then assembled and planned on. A plan on that crop equals the plan on
 * the whole grid: every label voxel >= 1 lies inside it, the margin covers the location's erosion and
 * the blur padding (so the region is clamped by the crop only where the volume ends), the texture
 * block is chosen for the whole grid's dims, and the tumors' positions are moved back by the crop's
 * start (centroids from their exact integer sums). Only the plan's region is kept afterwards.
 */

import { FreeTumorError, LimitError } from '../errors.ts';
import { invertAffine, multiplyAffine } from '../geometry/affine.ts';
import { nearestTable } from '../geometry/resample.ts';
import { type StreamGrid, storageIndexOf, streamGrid } from '../inference/stream-grid.ts';
import { type PackedPlane, packPlane, unpackPlane } from '../inference/stream-labels.ts';
import { HU_WINDOW } from '../intensity/window.ts';
import { LabelIdCollector } from '../labels/detect.ts';
import { type OrganLabels, organLabels, toMergedScheme } from '../labels/labelmap.ts';
import type { Rng } from '../random.ts';
import type { NiftiHeaderInfo } from '../volume/nifti-header.ts';
import type { NiftiSliceReader } from '../volume/nifti-slices.ts';
import type { Dims3, VoxelArray } from '../volume/volume.ts';
import { drawDifference } from './compose.ts';
import {
  defaultTextureBank,
  type PlacedShape,
  planSynthesis,
  type SynthesisPlan,
  type TumorInfo,
} from './plan.ts';
import { TextureBank, type TextureSample } from './texture.ts';
import {
  checkSameGrid,
  checkTumorIdFits,
  emptyOrganError,
  freeTumorId,
  tumorIdDependsOnLabel,
  type VolumeSynthesisOptions,
} from './whole-volume.ts';

/**
 * Working-grid voxels kept around the organ's box for planning: more than the blur padding
 * (trunc(4 x 2 + 0.5) + 1 = 9 for the largest blur sigma, 2) and the location's erosion radius (2).
 * `planOnCrop` checks that the plan's region never ends on a crop face inside the volume.
 */
export const CROP_MARGIN = 10;

export interface StreamPlanLimits {
  /** Most working-grid voxels of the organ's box (planning) and of the tumors' region. */
  maxVoxels: number;
}

/** A box on the working grid: start and size per canonical axis. */
export interface Box3 {
  start: Dims3;
  size: Dims3;
}

const boxVoxels = (b: Box3) => b.size[0] * b.size[1] * b.size[2];

/** What the CT pass needs of the plan: everything on the region's box (`box`), nothing else. */
export interface RegionPlan {
  /** The box the arrays below cover (working-grid coordinates), raster order with x fastest. */
  box: Box3;
  /** blur(mask) x texture on organ voxels. */
  weight: Float32Array;
  /** 1 on synthetic tumor voxels of the working grid (the plan's label 3). */
  tumor: Uint8Array;
  /** The plan's tumor mask, for the per-tumor summary. */
  tumorMask: Uint8Array;
  /** The tumors, positions on the working grid. */
  tumors: TumorInfo[];
  /** The deformed shapes with origins relative to `box`. */
  shapes: PlacedShape[];
}

export interface StreamPlan {
  image: StreamGrid;
  organIds: OrganLabels;
  spacing: number;
  window: [number, number];
  difference: number;
  mode: 'darken' | 'brighten';
  blurSigma: number;
  texture: SynthesisPlan['texture'];
  /** The plan's region on the working grid (null: no tumor voxel fell in the organ). */
  region: Box3 | null;
  /** The arrays over the region grown to `box` (set by the caller from the sub-grid's reach). */
  regionPlan: (box: Box3) => RegionPlan;
}

/** Texture blocks chosen for the whole working grid while the plan sees only the crop. */
class WholeGridTextures extends TextureBank {
  private readonly inner: TextureBank;
  private readonly gridDims: Dims3;

  constructor(inner: TextureBank, gridDims: Dims3) {
    super({ sigmas: inner.sigmas });
    this.inner = inner;
    this.gridDims = gridDims;
  }

  override sample(size: Dims3, _volumeDims: Dims3, rng: Rng): TextureSample {
    return this.inner.sample(size, this.gridDims, rng);
  }
}

/**
 * Reads the label (pass 1), plans the tumors on the organ's crop and keeps the plan's region.
 * `image` is the CT's header (its grid defines the working grid, as in whole-volume.ts).
 */
export async function planStreamed(
  image: NiftiHeaderInfo,
  label: NiftiSliceReader,
  options: VolumeSynthesisOptions,
  rng: Rng,
  limits: StreamPlanLimits,
): Promise<StreamPlan> {
  checkSameGrid(image, label.info);
  const spacing = options.spacing ?? 1.5;
  const window: [number, number] = options.window ?? [HU_WINDOW[0], HU_WINDOW[1]];
  const s: Dims3 = [spacing, spacing, spacing];
  const gi = streamGrid(image.dims, image.affine, s);
  const gl = streamGrid(label.info.dims, label.info.affine, s);
  if (
    gi.reorientation.axes.some((a, o) => a !== gl.reorientation.axes[o]) ||
    gi.reorientation.flips.some((f, o) => f !== gl.reorientation.flips[o])
  ) {
    throw new FreeTumorError('invalid_geometry', 'image and label must share one grid (orientations differ)');
  }
  const W = gi.modelDims;
  if (gl.modelDims.some((d, a) => d !== W[a])) {
    const n = W[0] * W[1] * W[2];
    throw new FreeTumorError(
      'invalid_argument',
      `image and label must have ${n} voxels (dims ${W.join('x')})`,
    );
  }
  const ids0 = organLabels(options.labelMap, options.organ);
  // The label's ids come from the caller (the pass that resolved its map) or, when the tumor id
  // depends on them, are gathered during this pass.
  const collector =
    options.labelIds === undefined && tumorIdDependsOnLabel(ids0) ? new LabelIdCollector() : null;
  const merged = await workingLabel(gl, label, options, collector);
  const organIds = freeTumorId(ids0, () => options.labelIds ?? (collector as LabelIdCollector).ids());
  checkTumorIdFits(organIds, label.info.datatype);
  if (!merged.organ || !merged.bounds) throw emptyOrganError(options.organ, organIds, spacing);

  // The crop: the label's box on the working grid plus the margin, inside the grid.
  const lo = merged.bounds.lo.map((x) => Math.max(0, x - CROP_MARGIN)) as Dims3;
  const hi = merged.bounds.hi.map((x, a) => Math.min(W[a] - 1, x + CROP_MARGIN));
  const crop: Box3 = { start: lo, size: [0, 1, 2].map((a) => hi[a] - lo[a] + 1) as Dims3 };
  if (boxVoxels(crop) > limits.maxVoxels)
    throw new LimitError(
      "synthesis voxels (the organ's box at the working spacing)",
      limits.maxVoxels,
      boxVoxels(crop),
    );
  const cropLabel = merged.assemble(crop);
  const plan = planSynthesis(
    // The plan reads the label only; the image is checked for its length.
    {
      image: new Float32Array(cropLabel.length),
      label: cropLabel,
      dims: crop.size,
      // Sizes are in mm: the working spacing converts them to voxels (as synthesizeVolume).
      spacing: [spacing, spacing, spacing],
    },
    {
      type: options.type,
      count: options.count,
      organ: options.organ,
      textures: new WholeGridTextures(options.textures ?? defaultTextureBank(), W),
    },
    rng,
  );
  // synthesize()'s draw order: the plan, then the difference (unless given).
  const difference = options.difference ?? drawDifference(rng);
  const region = plan.region
    ? { start: plan.region.start.map((x, a) => x + crop.start[a]) as Dims3, size: plan.region.size }
    : null;
  if (plan.region) checkRegionInside(plan.region, crop, W);
  if (region && boxVoxels(region) > limits.maxVoxels)
    throw new LimitError(
      "synthesis voxels (the tumors' region at the working spacing)",
      limits.maxVoxels,
      boxVoxels(region),
    );
  const tumors = plan.tumors.map((t) => onWholeGrid(t, crop.start));
  return {
    image: gi,
    organIds,
    spacing,
    window,
    difference,
    mode: options.mode ?? 'darken',
    blurSigma: plan.blurSigma,
    texture: plan.texture,
    region,
    regionPlan: (box) => regionArrays(plan, crop, box, tumors),
  };
}

/** A tumor planned on the crop, placed on the whole grid (centroid from its exact integer sums). */
function onWholeGrid(t: TumorInfo, start: Dims3): TumorInfo {
  const n = t.voxels;
  const centroid = t.centroid
    ? (t.centroid.map((c, a) => (Math.round(c * n) + start[a] * n) / n) as [number, number, number])
    : null;
  return { ...t, center: t.center.map((c, a) => c + start[a]) as Dims3, centroid };
}

/** The plan's region must be clamped by the crop only where the crop is the grid's own edge. */
function checkRegionInside(region: Box3, crop: Box3, W: Dims3): void {
  for (let a = 0; a < 3; a++) {
    const atStart = region.start[a] === 0 && crop.start[a] > 0;
    const atEnd = region.start[a] + region.size[a] === crop.size[a] && crop.start[a] + crop.size[a] < W[a];
    if (atStart || atEnd) throw new Error('internal: the synthesis region reached the planning crop');
  }
}

/** The plan's arrays copied onto `box` (working-grid coordinates; zero outside the crop). */
function regionArrays(plan: SynthesisPlan, crop: Box3, box: Box3, tumors: TumorInfo[]): RegionPlan {
  const [bx, by, bz] = box.size;
  const n = bx * by * bz;
  const weight = new Float32Array(n);
  const tumor = new Uint8Array(n);
  const tumorMask = new Uint8Array(n);
  const [cx, cy] = crop.size;
  for (let k = 0; k < bz; k++) {
    const zk = box.start[2] + k - crop.start[2];
    if (zk < 0 || zk >= crop.size[2]) continue;
    for (let j = 0; j < by; j++) {
      const yj = box.start[1] + j - crop.start[1];
      if (yj < 0 || yj >= cy) continue;
      for (let i = 0; i < bx; i++) {
        const xi = box.start[0] + i - crop.start[0];
        if (xi < 0 || xi >= cx) continue;
        const from = xi + cx * (yj + cy * zk);
        const to = i + bx * (j + by * k);
        weight[to] = plan.weight[from];
        tumor[to] = plan.label[from] === 3 ? 1 : 0;
        tumorMask[to] = plan.tumorMask[from];
      }
    }
  }
  const shift = box.start.map((x, a) => crop.start[a] - x);
  const shapes = plan.shapes.map((s) => ({
    origin: s.origin.map((o, a) => o + shift[a]) as Dims3,
    shape: s.shape,
  }));
  return { box, weight, tumor, tumorMask, tumors, shapes };
}

/**
 * Pass 1 over the label: each working-grid slab, nearest-sampled from its storage slice and merged,
 * kept run-length coded; the label's box (merged >= 1) and whether the organ (1) is present.
 */
async function workingLabel(
  g: StreamGrid,
  reader: NiftiSliceReader,
  options: VolumeSynthesisOptions,
  ids: LabelIdCollector | null,
) {
  const W = g.modelDims;
  const a = g.slabAxis;
  const [o1, o2] = g.planeAxes;
  const [nx, , nz] = g.inputDims;
  const toCanonical = multiplyAffine(invertAffine(g.canonicalAffine), g.modelAffine);
  const cd = g.canonicalDims;
  const nearest = [0, 1, 2].map((o) =>
    nearestTable(W[o], cd[o], toCanonical[o * 5], toCanonical[o * 4 + 3], 1),
  );
  // In-slice offset (i + nx * j) of each working index along the plane axes, -1 outside the FOV.
  const offsets = [o1, o2].map((o) => {
    const ax = g.reorientation.axes[o];
    const flip = g.reorientation.flips[o];
    const stride = ax === 0 ? 1 : nx;
    return Int32Array.from(nearest[o], (c) => (c < 0 ? -1 : (flip ? g.inputDims[ax] - 1 - c : c) * stride));
  });
  const n1 = W[o1];
  const n2 = W[o2];
  // Working slabs per canonical index along the slab axis.
  const slabsOf = new Map<number, number[]>();
  for (let t = 0; t < W[a]; t++) {
    const c = nearest[a][t];
    if (c < 0) continue;
    const list = slabsOf.get(c);
    if (list) list.push(t);
    else slabsOf.set(c, [t]);
  }
  const planes = new Map<number, PackedPlane>();
  const values = new Float64Array(n1 * n2);
  let organ = false;
  let bounds: { lo: Dims3; hi: Dims3 } | null = null;
  for (let k = 0; k < nz; k++) {
    const slice: VoxelArray | null = await reader.next();
    if (!slice) throw new Error('internal: the label ended early');
    ids?.add(slice);
    for (const t of slabsOf.get(storageIndexOf(g, k)) ?? []) {
      for (let p2 = 0; p2 < n2; p2++) {
        const off2 = offsets[1][p2];
        for (let p1 = 0; p1 < n1; p1++) {
          const off1 = offsets[0][p1];
          values[p1 + n1 * p2] = off1 < 0 || off2 < 0 ? 0 : slice[off1 + off2];
        }
      }
      const m = toMergedScheme(values, options.labelMap, options.organ);
      let any = false;
      for (let p2 = 0; p2 < n2; p2++) {
        for (let p1 = 0; p1 < n1; p1++) {
          const v = m[p1 + n1 * p2];
          if (v === 0) continue;
          any = true;
          if (v === 1) organ = true;
          const c: Dims3 = [0, 0, 0];
          c[a] = t;
          c[o1] = p1;
          c[o2] = p2;
          if (!bounds) bounds = { lo: [...c], hi: [...c] };
          for (let q = 0; q < 3; q++) {
            if (c[q] < bounds.lo[q]) bounds.lo[q] = c[q];
            if (c[q] > bounds.hi[q]) bounds.hi[q] = c[q];
          }
        }
      }
      if (any) planes.set(t, packPlane(m));
    }
  }
  await reader.next(); // the end: stops the stream
  return {
    organ,
    bounds,
    /** The merged label on `box` (x fastest), from the kept slabs. */
    assemble(box: Box3): Uint8Array {
      const [bx, by] = box.size;
      const out = new Uint8Array(boxVoxels(box));
      const plane = new Uint8Array(n1 * n2);
      for (let t = box.start[a]; t < box.start[a] + box.size[a]; t++) {
        const packed = planes.get(t);
        if (!packed) continue;
        unpackPlane(packed, plane);
        const c: Dims3 = [0, 0, 0];
        c[a] = t - box.start[a];
        for (let p2 = box.start[o2]; p2 < box.start[o2] + box.size[o2]; p2++) {
          c[o2] = p2 - box.start[o2];
          for (let p1 = box.start[o1]; p1 < box.start[o1] + box.size[o1]; p1++) {
            c[o1] = p1 - box.start[o1];
            out[c[0] + bx * (c[1] + by * c[2])] = plane[p1 + n1 * p2];
          }
        }
      }
      return out;
    },
  };
}
