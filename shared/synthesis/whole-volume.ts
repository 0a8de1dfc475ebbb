/**
 * Synthesis on a whole CT volume of any orientation, spacing and datatype:
 * canonical RAS -> resample to the working spacing (1.5 mm: image linear, label nearest) ->
 * HU window (HU_WINDOW) -> synthesize -> back to the input grid. The handcrafted synthesis
 * resamples only the organ's box plus a margin (organ-grid.ts: the same result, a fraction of
 * the cost); a generator sees the whole field of view, as its receptive field reaches past it.
 *
 * Going back, only the change is carried: the HU difference made at the working spacing is
 * resampled (linearly) onto the input grid and added to the input's own HU on the organ's
 * voxels, rounded for integer datatypes. Every other voxel keeps its exact input value, and the
 * output keeps the input's dims, affine and datatype. The label is the input label with the
 * synthetic tumor voxels (nearest-resampled, on the organ only) set to the organ's tumor id.
 */
import { FreeTumorError } from '../errors.ts';
import { affinesClose, applyAffine, invertAffine, multiplyAffine } from '../geometry/affine.ts';
import { fromCanonical, type Reorientation, toCanonical } from '../geometry/orientation.ts';
import { gridForSpacing, resampleToGrid } from '../geometry/resample.ts';
import { HU_WINDOW, windowHU } from '../intensity/window.ts';
import { voxelVolumeMl } from '../labels/components.ts';
import { holdsLabelId, type LabelIds, labelIds, largestLabelId } from '../labels/detect.ts';
import {
  type LabelMap,
  mergedLookup,
  type OrganLabels,
  type OrganName,
  organLabels,
  toMergedScheme,
} from '../labels/labelmap.ts';
import type { Rng } from '../random.ts';
import { datatypeInfo } from '../volume/datatype.ts';
import { type Affine, type Dims3, type Volume, type VoxelArray, voxelCount } from '../volume/volume.ts';
import { applyDifference, type CompositionMode, drawDifference } from './compose.ts';
import { organWorkGrid } from './organ-grid.ts';
import { type PlanOptions, planSynthesis, type Region, type SynthesisInput } from './plan.ts';
import { round, summarizeTumors, type TumorSummary } from './summary.ts';
import type { SynthesisResult } from './synthesize.ts';
import type { TextureBank } from './texture.ts';
import type { SynthesisType } from './tumors.ts';

export interface VolumeSynthesisOptions {
  organ: OrganName;
  labelMap: LabelMap;
  type: SynthesisType;
  count?: number;
  /** Scalar difference in window units; default U(0.2, 0.7). */
  difference?: number;
  mode?: CompositionMode;
  /** Working spacing in mm (default 1.5). */
  spacing?: number;
  window?: [number, number];
  textures?: TextureBank;
  /**
   * The ids the label holds, when the caller gathered them already (to resolve its label map):
   * the tumor id is chosen from them (freeTumorId) instead of a pass over the label. They must
   * be the label's own; absent, that pass is made, only when the choice needs it.
   */
  labelIds?: LabelIds;
}

export interface VolumeSynthesisSummary {
  organ: OrganName;
  labelMap: string;
  /** Id written on synthetic tumor voxels in the output label. */
  tumorLabel: number;
  /** True when the scheme had no tumor id and `tumorLabel` is a new one. */
  tumorLabelAssigned: boolean;
  type: SynthesisType;
  mode: CompositionMode;
  /** The scalar used, or 'map' for a generator's per-voxel map. */
  difference: number | 'map';
  blurSigma: number;
  texture: { sigmaA: number; sigmaB: number } | null;
  spacingMm: number;
  window: [number, number];
  /** Synthetic tumor voxels and volume on the input grid. */
  inputTumorVoxels: number;
  inputTumorVolumeMl: number;
  changedVoxels: number;
  tumors: TumorSummary[];
}

export interface VolumeSynthesisResult {
  image: Volume;
  label: Volume;
  summary: VolumeSynthesisSummary;
  /**
   * PNG bytes of an axial slice through the largest tumor. A Promise: the PNG encoder is loaded
   * only when a preview is asked for (~25 ms of a `synthesize` process's start-up otherwise).
   */
  preview(): Promise<Uint8Array>;
}

interface Prepared {
  image: Volume;
  label: Volume;
  options: VolumeSynthesisOptions;
  organIds: OrganLabels;
  spacing: number;
  window: [number, number];
  canonImage: Volume;
  canonLabel: Volume;
  undoImage: Reorientation;
  undoLabel: Reorientation;
  work: Volume;
  input: SynthesisInput;
}

/**
 * An invented tumor id (the map had none) must not collide with a class the label already uses,
 * as `liver=5` would with a full TotalSegmentator map: then take the label's largest id + 1.
 * An id the user gave explicitly is kept as given, and so is a scheme's own (TotalSegmentator's
 * 201 from an earlier synthesis is no collision). `found` is asked for only when the choice depends
 * on it; callers that resolved the label map already pass the ids they gathered for it.
 */
export function freeTumorId(ids: OrganLabels, found: () => LabelIds): OrganLabels {
  if (!tumorIdDependsOnLabel(ids)) return ids;
  const label = found();
  return holdsLabelId(label, ids.tumorOut) ? { ...ids, tumorOut: largestLabelId(label) + 1 } : ids;
}

/** Whether freeTumorId reads the label's ids for these organ ids. */
export function tumorIdDependsOnLabel(ids: OrganLabels): boolean {
  return ids.tumorOutAssigned && !ids.tumor.includes(ids.tumorOut);
}

/**
 * `options` with the label's ids, gathered here when the tumor id depends on them and the caller
 * had none: for a caller that synthesizes on one label several times (retries with new seeds).
 */
export function withLabelIds(options: VolumeSynthesisOptions, label: Volume): VolumeSynthesisOptions {
  if (options.labelIds || !tumorIdDependsOnLabel(organLabels(options.labelMap, options.organ))) {
    return options;
  }
  return { ...options, labelIds: labelIds(label.data) };
}

/** The tumor id must fit the label's datatype (it is written into the label). */
export function checkTumorIdFits(ids: OrganLabels, datatype: Volume['datatype']): void {
  const labelMax = datatypeInfo(datatype).max;
  if (ids.tumorOut > labelMax) {
    throw new FreeTumorError(
      'invalid_label_map',
      `tumor id ${ids.tumorOut} does not fit the label's datatype ${datatype} (max ${labelMax})`,
    );
  }
}

/** The error for a label without the organ at the working spacing. */
export function emptyOrganError(organ: OrganName, ids: OrganLabels, spacing: number): FreeTumorError {
  return new FreeTumorError(
    'empty_organ',
    `no ${organ} voxels (label ids ${ids.organ.join('+')}) in the label at ${spacing} mm`,
  );
}

/** Canonical orientation, working spacing, window and merged label (see the module comment). */
function prepare(
  image: Volume,
  label: Volume,
  options: VolumeSynthesisOptions,
  organOnly: boolean,
): Prepared {
  checkSameGrid(image, label);
  const organIds = freeTumorId(
    organLabels(options.labelMap, options.organ),
    () => options.labelIds ?? labelIds(label.data),
  );
  checkTumorIdFits(organIds, label.datatype);
  const spacing = options.spacing ?? 1.5;
  const [lo, hi] = options.window ?? [HU_WINDOW[0], HU_WINDOW[1]];
  const { volume: canonImage, undo: undoImage } = toCanonical(image);
  const { volume: canonLabel, undo: undoLabel } = toCanonical(label);
  const lut = mergedLookup(options.labelMap, options.organ);
  const grid = organOnly
    ? organWorkGrid(canonLabel, lut, spacing)
    : gridForSpacing(canonLabel.dims, canonLabel.affine, [spacing, spacing, spacing]);
  // Organ-only (handcrafted): the image is resampled later, on the tumors' region alone
  // (fillImageRegion); nothing else of it is read. A generator needs it all now.
  const work: Volume = organOnly
    ? {
        dims: grid.dims,
        data: new Float32Array(voxelCount(grid.dims)),
        affine: grid.affine,
        datatype: 'float32',
      }
    : resampleToGrid(canonImage, grid.dims, grid.affine, 'linear');
  const workLabel = resampleToGrid(canonLabel, grid.dims, grid.affine, 'nearest');
  const merged = toMergedScheme(workLabel.data, options.labelMap, options.organ);
  if (!merged.includes(1)) throw emptyOrganError(options.organ, organIds, spacing);
  const x = organOnly ? new Float32Array(work.data.length) : windowHU(work.data, lo, hi);
  return {
    image,
    label,
    options,
    organIds,
    spacing,
    window: [lo, hi],
    canonImage,
    canonLabel,
    undoImage,
    undoLabel,
    work,
    input: { image: x, label: merged, dims: work.dims, spacing: [spacing, spacing, spacing] },
  };
}

export function synthesizeVolume(
  image: Volume,
  label: Volume,
  options: VolumeSynthesisOptions,
  rng: Rng,
): VolumeSynthesisResult {
  const p = prepare(image, label, options, true);
  // synthesize()'s steps and draws, with the image filled in between: plan, difference, compose.
  const plan = planSynthesis(p.input, planOptions(options), rng);
  const difference = options.difference ?? drawDifference(rng);
  const mode = options.mode ?? 'darken';
  if (plan.region) fillImageRegion(p, plan.region);
  const out = applyDifference(p.input.image, plan, difference, mode);
  return finish(p, { image: out, plan, difference, mode });
}

/** Resamples the CT on `region` of the working grid into work (HU) and input.image (windowed). */
function fillImageRegion(p: Prepared, region: Region): void {
  const { work } = p;
  const [nx, ny] = work.dims;
  const origin = applyAffine(work.affine, region.start);
  const affine = Float64Array.from(work.affine);
  affine[3] = origin[0];
  affine[7] = origin[1];
  affine[11] = origin[2];
  const hu = resampleToGrid(p.canonImage, region.size, affine, 'linear').data as Float32Array;
  const x = windowHU(hu, p.window[0], p.window[1]);
  const [sx, sy, sz] = region.size;
  for (let k = 0; k < sz; k++) {
    for (let j = 0; j < sy; j++) {
      const row = region.start[0] + nx * (region.start[1] + j + ny * (region.start[2] + k));
      const local = sx * (j + sy * k);
      (work.data as Float32Array).set(hu.subarray(local, local + sx), row);
      p.input.image.set(x.subarray(local, local + sx), row);
    }
  }
}

/** Provides a per-voxel difference map for the working grid; only `region` needs values. */
export type DifferenceProvider = (input: SynthesisInput, region: Region) => Promise<Float32Array>;

/** As synthesizeVolume, with the difference map from `provider` (a generator) instead of a scalar. */
export async function synthesizeVolumeWith(
  image: Volume,
  label: Volume,
  options: VolumeSynthesisOptions,
  rng: Rng,
  provider: DifferenceProvider,
): Promise<VolumeSynthesisResult> {
  const p = prepare(image, label, options, false);
  const plan = planSynthesis(p.input, planOptions(options), rng);
  const mode = options.mode ?? 'darken';
  const map = plan.region ? await provider(p.input, plan.region) : 0;
  const out = applyDifference(p.input.image, plan, map, mode);
  return finish(p, { image: out, plan, difference: 'map', mode });
}

function planOptions(options: VolumeSynthesisOptions): PlanOptions {
  return { type: options.type, count: options.count, organ: options.organ, textures: options.textures };
}

function finish(p: Prepared, result: SynthesisResult): VolumeSynthesisResult {
  const { image, options, organIds, spacing, canonImage, canonLabel, undoImage, undoLabel, work } = p;
  const [lo, hi] = p.window;
  const x = p.input.image;
  const { plan } = result;
  const span = hi - lo;
  const [wx, wy] = work.dims;
  // The HU change and the tumor on the working region only: outside it both are 0, and so is its
  // outermost layer (it lies a blur radius + 1 past the tumors), so resampling the region alone
  // back gives what resampling the whole working grid would.
  const region = plan.region ?? { start: [0, 0, 0] as Dims3, size: [1, 1, 1] as Dims3 };
  const [rx, ry, rz] = region.size;
  const deltaWork = new Float32Array(rx * ry * rz);
  const tumorWork = new Float32Array(deltaWork.length);
  for (let k = 0; k < rz; k++) {
    for (let j = 0; j < ry; j++) {
      const row = region.start[0] + wx * (region.start[1] + j + wy * (region.start[2] + k));
      const local = rx * (j + ry * k);
      for (let i = 0; i < rx; i++) {
        const v = row + i;
        if (plan.weight[v] !== 0) deltaWork[local + i] = (result.image[v] - x[v]) * span;
        if (plan.label[v] === 3) tumorWork[local + i] = 1;
      }
    }
  }
  const regionAffine = Float64Array.from(work.affine);
  const regionOrigin = applyAffine(work.affine, region.start);
  regionAffine[3] = regionOrigin[0];
  regionAffine[7] = regionOrigin[1];
  regionAffine[11] = regionOrigin[2];
  const lut = mergedLookup(options.labelMap, options.organ);
  // Back in the canonical frame (the same grid whatever the input orientation), then un-reoriented.
  const source = canonImage.data;
  const sourceLabel = canonLabel.data;
  const outImage = source.slice() as VoxelArray;
  const outLabel = sourceLabel.slice() as VoxelArray;
  let changed = 0;
  let tumorVoxels = 0;
  const sub = plan.region ? inputSubGrid(plan.region, work.affine, canonImage) : null;
  if (sub) {
    // Only the part of the input grid that the working region covers is resampled back.
    const deltaIn = resampleToGrid(
      { dims: region.size, data: deltaWork, affine: regionAffine, datatype: 'float32' },
      sub.dims,
      sub.affine,
      'linear',
    ).data as Float32Array;
    // Linear + 0.5 rather than nearest: a 3 mm voxel centre lies exactly between 1.5 mm centres,
    // where nearest would break ties by axis direction; this is a symmetric majority.
    const tumorIn = resampleToGrid(
      { dims: region.size, data: tumorWork, affine: regionAffine, datatype: 'float32' },
      sub.dims,
      sub.affine,
      'linear',
    ).data as Float32Array;
    const integer = !(source instanceof Float32Array || source instanceof Float64Array);
    const range = datatypeInfo(image.datatype);
    const [nx, ny] = canonImage.dims;
    const [sx, sy, sz] = sub.dims;
    for (let k = 0; k < sz; k++) {
      for (let j = 0; j < sy; j++) {
        for (let i = 0; i < sx; i++) {
          const s = i + sx * (j + sy * k);
          const v = sub.start[0] + i + nx * (sub.start[1] + j + ny * (sub.start[2] + k));
          const l = sourceLabel[v];
          if (!(l > 0 && l === (l | 0) && lut[l] === 1)) continue;
          if (tumorIn[s] >= 0.5) {
            outLabel[v] = organIds.tumorOut;
            tumorVoxels++;
          }
          const d = deltaIn[s];
          if (d === 0) continue;
          let y = source[v] + d;
          if (integer) y = Math.min(range.max, Math.max(range.min, Math.round(y)));
          if (y !== source[v]) {
            outImage[v] = y;
            changed++;
          }
        }
      }
    }
  }

  // summarizeTumors indexes the working grid: the region's change placed there.
  const deltaHu = new Float32Array(x.length);
  for (let k = 0; k < rz; k++) {
    for (let j = 0; j < ry; j++) {
      const row = region.start[0] + wx * (region.start[1] + j + wy * (region.start[2] + k));
      const local = rx * (j + ry * k);
      deltaHu.set(deltaWork.subarray(local, local + rx), row);
    }
  }
  const summary = synthesisSummary(
    options,
    { organIds, spacing, window: [lo, hi], affine: image.affine },
    result,
    summarizeTumors(plan, work.affine, work.data, deltaHu),
    { tumorVoxels, changed },
  );
  const outImageVol = fromCanonical({ ...canonImage, data: outImage }, undoImage);
  const outLabelVol = fromCanonical({ ...canonLabel, data: outLabel }, undoLabel);
  return {
    image: outImageVol,
    label: outLabelVol,
    summary,
    preview: () => previewPng(outImageVol, outLabelVol, summary, options.labelMap, options.organ, [lo, hi]),
  };
}

/** The summary of a synthesis on a volume (whole or streamed: one shape for the CLI and the Worker). */
export function synthesisSummary(
  options: VolumeSynthesisOptions,
  grid: { organIds: OrganLabels; spacing: number; window: [number, number]; affine: Affine },
  result: Pick<SynthesisResult, 'mode' | 'difference'> & {
    plan: Pick<SynthesisResult['plan'], 'blurSigma' | 'texture'>;
  },
  tumors: TumorSummary[],
  counts: { tumorVoxels: number; changed: number },
): VolumeSynthesisSummary {
  const { plan } = result;
  return {
    organ: options.organ,
    labelMap: options.labelMap.name,
    tumorLabel: grid.organIds.tumorOut,
    tumorLabelAssigned: grid.organIds.tumorOutAssigned,
    type: options.type,
    mode: result.mode,
    difference: typeof result.difference === 'number' ? round(result.difference, 4) : 'map',
    blurSigma: round(plan.blurSigma, 4),
    texture: plan.texture,
    spacingMm: grid.spacing,
    window: grid.window,
    inputTumorVoxels: counts.tumorVoxels,
    inputTumorVolumeMl: round(counts.tumorVoxels * voxelVolumeMl(grid.affine), 3),
    changedVoxels: counts.changed,
    tumors,
  };
}

/** The input-grid box (start, dims, affine) covering a working-grid region, one voxel of margin. */
export function inputSubGrid(
  region: Region,
  workAffine: Affine,
  image: Pick<Volume, 'dims' | 'affine'>,
): { start: Dims3; dims: Dims3; affine: Affine } | null {
  const toInput = multiplyAffine(invertAffine(image.affine), workAffine);
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-Infinity, -Infinity, -Infinity];
  for (let c = 0; c < 8; c++) {
    const corner = [0, 1, 2].map((a) => region.start[a] + ((c >> a) & 1 ? region.size[a] - 0.5 : -0.5));
    const p = applyAffine(toInput, corner);
    for (let a = 0; a < 3; a++) {
      lo[a] = Math.min(lo[a], p[a]);
      hi[a] = Math.max(hi[a], p[a]);
    }
  }
  const start = [0, 1, 2].map((a) => Math.max(0, Math.floor(lo[a]) - 1)) as Dims3;
  const end = [0, 1, 2].map((a) => Math.min(image.dims[a] - 1, Math.ceil(hi[a]) + 1));
  if ([0, 1, 2].some((a) => end[a] < start[a])) return null;
  const dims = [0, 1, 2].map((a) => end[a] - start[a] + 1) as Dims3;
  const affine = Float64Array.from(image.affine);
  const origin = applyAffine(image.affine, start);
  affine[3] = origin[0];
  affine[7] = origin[1];
  affine[11] = origin[2];
  return { start, dims, affine };
}

export function checkSameGrid(
  image: Pick<Volume, 'dims' | 'affine'>,
  label: Pick<Volume, 'dims' | 'affine'>,
): void {
  const same = image.dims.every((d, a) => d === label.dims[a]);
  if (!same || !affinesClose(image.affine, label.affine, 1e-3)) {
    throw new FreeTumorError(
      'invalid_geometry',
      'image and label must share one grid (same dims and affine)',
    );
  }
}

/** Axial slice through the largest tumor's centroid (else the middle of the organ). */
async function previewPng(
  image: Volume,
  label: Volume,
  summary: VolumeSynthesisSummary,
  map: LabelMap,
  organ: OrganName,
  window: [number, number],
): Promise<Uint8Array> {
  const { renderAxialPng } = await import('./preview.ts');
  const canonImage = toCanonical(image).volume;
  const canonLabel = toCanonical(label).volume;
  const o = organLabels(map, organ);
  const largest = summary.tumors.filter((t) => t.centroidMm).sort((a, b) => b.voxels - a.voxels)[0];
  let slice: number;
  if (largest?.centroidMm) {
    slice = applyAffine(invertAffine(canonImage.affine), largest.centroidMm)[2];
  } else {
    slice = organMiddleSlice(canonLabel, new Set(o.organ));
  }
  return renderAxialPng(canonImage, canonLabel, {
    slice,
    window,
    organIds: o.organ,
    syntheticIds: [o.tumorOut],
    realTumorIds: o.tumor.filter((t) => t !== o.tumorOut),
  });
}

function organMiddleSlice(label: Volume, ids: Set<number>): number {
  const [nx, ny, nz] = label.dims;
  let sum = 0;
  let n = 0;
  for (let v = 0; v < label.data.length; v++) {
    if (ids.has(label.data[v])) {
      sum += Math.floor(v / (nx * ny));
      n++;
    }
  }
  return n > 0 ? sum / n : nz / 2;
}
