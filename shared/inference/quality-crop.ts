/**
 * Quality control where the synthetic tumor is: FreeTumor's offline QC scores a crop around the
 * labels padded to at least one model patch per axis, not the whole CT. Here the crop is the
 * synthetic tumor's bounding box plus half a patch of context on each side (and at least one patch),
 * in each model's own millimetres; the volumes stream in slice by slice and only the crop is kept,
 * then `scoreSynthetic` (quality.ts: the one accept rule) scores it. On a 512 x 512 x N CT that is a
 * few windows instead of thousands.
 */
import { FreeTumorError, LimitError } from '../errors.ts';
import { affinesClose, applyAffine } from '../geometry/affine.ts';
import { canonicalReorientation } from '../geometry/orientation.ts';
import type { ModelManifest } from '../model/manifest.ts';
import { allocTypedArray } from '../volume/datatype.ts';
import type { NiftiHeaderInfo } from '../volume/nifti-header.ts';
import type { NiftiSliceReader } from '../volume/nifti-slices.ts';
import type { Affine, Dims3, Volume, VoxelArray } from '../volume/volume.ts';
import { type QualityScore, type ScoreOptions, scoreSynthetic } from './quality.ts';

/** Inclusive voxel bounds per input axis: [i0, i1, j0, j1, k0, k1]. */
export type Box = [number, number, number, number, number, number];

/** Most runs of synthetic voxels kept while the label streams (a guard, far above any tumor). */
export const MAX_SYNTHETIC_RUNS = 4_000_000;

/**
 * Collects the voxels of the candidate synthetic labels (2 and 3, the merged scheme's tumor and
 * synthetic tumor) as runs while a label map streams, with their bounding boxes.
 */
export class SyntheticCollector {
  private readonly nx: number;
  private readonly ny: number;
  private readonly runs = new Map<number, { data: Int32Array; n: number; box: Box | null }>();

  constructor(dims: Dims3, values: readonly number[] = [2, 3]) {
    this.nx = dims[0];
    this.ny = dims[1];
    for (const v of values) this.runs.set(v, { data: new Int32Array(1024), n: 0, box: null });
  }

  add(k: number, slice: VoxelArray): void {
    const { nx, ny } = this;
    for (const [value, r] of this.runs) {
      for (let j = 0; j < ny; j++) {
        const row = nx * j;
        for (let i = 0; i < nx; i++) {
          if (slice[row + i] !== value) continue;
          const start = i;
          while (i < nx && slice[row + i] === value) i++;
          this.push(r, k, row + start, i - start);
        }
      }
    }
  }

  private push(
    r: { data: Int32Array; n: number; box: Box | null },
    k: number,
    start: number,
    len: number,
  ): void {
    if (r.n + 3 > r.data.length) {
      if (r.data.length / 3 >= MAX_SYNTHETIC_RUNS)
        throw new LimitError('synthetic tumor runs', MAX_SYNTHETIC_RUNS, 'more');
      const grown = new Int32Array(r.data.length * 2);
      grown.set(r.data);
      r.data = grown;
    }
    r.data[r.n++] = k;
    r.data[r.n++] = start;
    r.data[r.n++] = len;
    const i0 = start % this.nx;
    const j = Math.floor(start / this.nx);
    const i1 = i0 + len - 1;
    const b = r.box;
    if (!b) r.box = [i0, i1, j, j, k, k];
    else {
      b[0] = Math.min(b[0], i0);
      b[1] = Math.max(b[1], i1);
      b[2] = Math.min(b[2], j);
      b[3] = Math.max(b[3], j);
      b[4] = Math.min(b[4], k);
      b[5] = Math.max(b[5], k);
    }
  }

  /** The synthetic label (3 when present, else 2, as quality.ts), its box (null: none) and voxel count. */
  result(syntheticLabel?: number): { value: number; box: Box | null; voxels: number } {
    const value = syntheticLabel ?? ((this.runs.get(3)?.n ?? 0) > 0 ? 3 : 2);
    const r = this.runs.get(value);
    let voxels = 0;
    if (r) for (let q = 2; q < r.n; q += 3) voxels += r.data[q];
    return { value, box: r?.box ? ([...r.box] as Box) : null, voxels };
  }

  /** The synthetic mask inside `box` (value at synthetic voxels, 0 elsewhere). */
  maskIn(box: Box, value: number): Uint8Array {
    const [i0, i1, j0, j1, k0, k1] = box;
    const cx = i1 - i0 + 1;
    const cy = j1 - j0 + 1;
    const out = new Uint8Array(cx * cy * (k1 - k0 + 1));
    const r = this.runs.get(value);
    if (!r) return out;
    for (let q = 0; q < r.n; q += 3) {
      const k = r.data[q];
      if (k < k0 || k > k1) continue;
      const j = Math.floor(r.data[q + 1] / this.nx);
      if (j < j0 || j > j1) continue;
      const a = Math.max(i0, r.data[q + 1] % this.nx);
      const b = Math.min(i1, (r.data[q + 1] % this.nx) + r.data[q + 2] - 1);
      if (a > b) continue;
      const base = cx * (j - j0 + cy * (k - k0)) - i0;
      out.fill(value, base + a, base + b + 1);
    }
    return out;
  }
}

/**
 * The QC crop on the input grid: the tumor box grown by half a model patch (in mm) on each side and
 * to at least one patch per axis, for every model that will score it, clipped to the volume.
 */
export function qcCropBox(dims: Dims3, affine: Affine, tumor: Box, manifests: ModelManifest[]): Box {
  const r = canonicalReorientation(affine);
  const out: number[] = [];
  for (let a = 0; a < 3; a++) {
    const o = r.axes.indexOf(a);
    const voxelMm = Math.hypot(affine[a], affine[4 + a], affine[8 + a]);
    let need = 0;
    for (const m of manifests) {
      const pre = m.preprocessing;
      need = Math.max(need, pre.patchSize[o] * pre.spacing[o]);
    }
    const lo0 = tumor[2 * a];
    const hi0 = tumor[2 * a + 1];
    const margin = Math.ceil((0.5 * need) / voxelMm);
    let lo = lo0 - margin;
    let hi = hi0 + margin;
    const min = Math.ceil(need / voxelMm);
    if (hi - lo + 1 < min) {
      const grow = min - (hi - lo + 1);
      lo -= Math.floor(grow / 2);
      hi += Math.ceil(grow / 2);
    }
    out.push(Math.max(0, lo), Math.min(dims[a] - 1, hi));
  }
  return out as Box;
}

export function boxVoxels(box: Box): number {
  return (box[1] - box[0] + 1) * (box[3] - box[2] + 1) * (box[5] - box[4] + 1);
}

/** The affine of a crop starting at (i0, j0, k0). */
export function cropAffine(affine: Affine, box: Box): Affine {
  const out = Float64Array.from(affine);
  const o = applyAffine(affine, [box[0], box[2], box[4]]);
  out[3] = o[0];
  out[7] = o[1];
  out[11] = o[2];
  return out;
}

/** Reads a streamed volume and keeps only `box`. */
export async function readCrop(reader: NiftiSliceReader, box: Box): Promise<Volume> {
  const info = reader.info;
  const [i0, i1, j0, j1, k0, k1] = box;
  const cx = i1 - i0 + 1;
  const cy = j1 - j0 + 1;
  const cz = k1 - k0 + 1;
  const nx = info.dims[0];
  let data: VoxelArray | null = null;
  for (let k = 0; k < info.dims[2]; k++) {
    const slice = await reader.next();
    if (!slice) throw new Error('internal: the slice reader ended early');
    if (k < k0 || k > k1) continue;
    data ??= allocLike(slice, cx * cy * cz);
    for (let j = j0; j <= j1; j++) {
      const from = i0 + nx * j;
      (data as Float64Array).set(
        (slice as Float64Array).subarray(from, from + cx),
        cx * (j - j0 + cy * (k - k0)),
      );
    }
    if (k === k1) break;
  }
  await reader.cancel();
  if (!data) throw new Error('internal: the crop is empty');
  return { dims: [cx, cy, cz], data, affine: cropAffine(info.affine, box), datatype: info.datatype };
}

function allocLike(like: VoxelArray, n: number): VoxelArray {
  if (like instanceof Float32Array) return new Float32Array(n);
  if (like instanceof Float64Array) return new Float64Array(n);
  return allocTypedArray(
    like instanceof Uint8Array
      ? 'uint8'
      : like instanceof Int8Array
        ? 'int8'
        : like instanceof Int16Array
          ? 'int16'
          : like instanceof Uint16Array
            ? 'uint16'
            : like instanceof Int32Array
              ? 'int32'
              : 'uint32',
    n,
  );
}

/** Image and label must share their grid (as scoreSynthetic checks on whole volumes). */
export function checkSameGrid(image: NiftiHeaderInfo, label: NiftiHeaderInfo): void {
  if (image.dims.some((d, a) => d !== label.dims[a]) || !affinesClose(image.affine, label.affine, 1e-3)) {
    throw new FreeTumorError('invalid_geometry', 'image and label are not on the same grid');
  }
}

/**
 * Scores the synthetic tumor on its QC crop: `collector` holds the label's synthetic voxels (the
 * label streamed first), `image` is the CT's reader (header read, voxels not yet). Returns the score
 * and the crop it used.
 */
export async function scoreSyntheticCrop(
  image: NiftiSliceReader,
  label: NiftiHeaderInfo,
  collector: SyntheticCollector,
  options: ScoreOptions & { maxCropVoxels: number },
): Promise<QualityScore & { crop: Box | null }> {
  checkSameGrid(image.info, label);
  const synthetic = collector.result(options.syntheticLabel);
  const manifests = [options.segmentor?.manifest, options.discriminator?.manifest].filter(
    (m): m is ModelManifest => m !== undefined,
  );
  if (!synthetic.box) {
    // No synthetic voxel: rejected by the rule without running a model (as scoreSynthetic).
    await image.cancel();
    const tiny: Volume = {
      dims: [1, 1, 1],
      data: new Uint8Array(1),
      affine: Float64Array.from(image.info.affine),
      datatype: 'uint8',
    };
    return {
      ...(await scoreSynthetic(tiny, tiny, { ...options, syntheticLabel: synthetic.value })),
      crop: null,
    };
  }
  const box = qcCropBox(image.info.dims, image.info.affine, synthetic.box, manifests);
  const n = boxVoxels(box);
  if (n > options.maxCropVoxels) throw new LimitError('QC crop voxels', options.maxCropVoxels, n);
  const ct = await readCrop(image, box);
  const mask: Volume = {
    dims: ct.dims,
    data: collector.maskIn(box, synthetic.value),
    affine: ct.affine,
    datatype: 'uint8',
  };
  const score = await scoreSynthetic(ct, mask, { ...options, syntheticLabel: synthetic.value });
  return { ...score, crop: box };
}
