/**
 * From the instances of a folder to one regular stack: group by SeriesInstanceUID, choose one series,
 * check that its slices form one regular grid, and build the exact voxel -> world affine.
 *
 * Geometry (PS3.3 C.7.6.2): column i runs along the row cosine (first 3 of ImageOrientationPatient)
 * at PixelSpacing[1] mm, row j along the column cosine at PixelSpacing[0] mm, and slices are sorted
 * along the normal (row x column cosine), so slice k grows along +normal whatever the file order or
 * InstanceNumber say. The slice step is (last - first position) / (n - 1). DICOM is LPS; the volume's
 * affine is RAS (x and y negated), as every other volume here.
 *
 * Refused, with the limit named: slices whose orientation, size or pixel spacing differ; fewer than
 * two slices; two slices at one position; uneven spacing (a slice off the regular grid by more than
 * `spacingTolerance` of the step, e.g. a missing slice); gantry tilt or a sheared stack (step not
 * along the normal by more than `maxTiltDegrees`). We refuse rather than resample: a resampled CT is
 * not the one the user's PACS holds, and a DICOM-SEG must lie on the source slices.
 */
import { FreeTumorError, LimitError } from '../errors.ts';
import type { Affine, Dims3 } from '../volume/volume.ts';
import type { DicomInstance } from './instance.ts';
import { safeUid } from './transfer-syntax.ts';

export interface DicomLimits {
  /** Files looked at in a folder or zip. */
  maxFiles: number;
  /** Bytes of one file (or zip entry). */
  maxFileBytes: number;
  /** Voxels of the assembled volume (as the NIfTI reader's limit). */
  maxVoxels: number;
  /** Rows and columns of a slice. */
  maxSliceSide: number;
  /** Largest deviation of a slice from the regular grid, as a fraction of the slice step. */
  spacingTolerance: number;
  /** Largest angle between the slice step and the slice normal. */
  maxTiltDegrees: number;
}

export const DEFAULT_DICOM_LIMITS: DicomLimits = {
  maxFiles: 10_000,
  maxFileBytes: 256 * 2 ** 20,
  maxVoxels: 2 ** 28,
  maxSliceSide: 4096,
  spacingTolerance: 0.01,
  maxTiltDegrees: 0.05,
};

export interface SeriesSummary {
  seriesInstanceUid: string;
  modality: string;
  instances: number;
}

/** Image instances (pixel data + plane geometry) grouped by series, in first-seen order. */
export function groupSeries<T extends DicomInstance>(instances: T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const inst of instances) {
    if (!inst.hasPixelData) continue;
    const list = groups.get(inst.seriesInstanceUid);
    if (list) list.push(inst);
    else groups.set(inst.seriesInstanceUid, [inst]);
  }
  return groups;
}

export function summarize(groups: Map<string, DicomInstance[]>): SeriesSummary[] {
  return [...groups.entries()].map(([uid, list]) => ({
    seriesInstanceUid: uid,
    modality: list[0].modality || '?',
    instances: list.length,
  }));
}

/** The series asked for, or the only one; several without a choice is an error listing them. */
export function selectSeries<T extends DicomInstance>(groups: Map<string, T[]>, wanted?: string): T[] {
  if (groups.size === 0)
    throw new FreeTumorError('invalid_argument', 'the input holds no DICOM image with pixel data');
  const list = summarize(groups)
    .map((s) => `${safeUid(s.seriesInstanceUid)} (${s.modality}, ${s.instances} instance(s))`)
    .join('; ');
  if (wanted !== undefined) {
    const chosen = groups.get(wanted);
    if (!chosen)
      throw new FreeTumorError(
        'not_found',
        `DICOM series ${safeUid(wanted)} is not in the input; it holds: ${list}`,
      );
    return chosen;
  }
  if (groups.size > 1) {
    throw new FreeTumorError(
      'invalid_argument',
      `the input holds ${groups.size} DICOM series; choose one by SeriesInstanceUID (--series): ${list}`,
    );
  }
  return [...groups.values()][0];
}

export interface StackGeometry {
  dims: Dims3;
  /** voxel -> world, RAS mm, row-major 4x4. */
  affine: Affine;
  /** The instances in slice order (k = 0 .. n-1). */
  order: number[];
  /** Slice step along the normal (mm). */
  sliceSpacing: number;
}

const dot = (a: number[], b: number[]) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a: number[], b: number[]) => [
  a[1] * b[2] - a[2] * b[1],
  a[2] * b[0] - a[0] * b[2],
  a[0] * b[1] - a[1] * b[0],
];
const norm = (a: number[]) => Math.hypot(a[0], a[1], a[2]);

function invalid(message: string): FreeTumorError {
  return new FreeTumorError('invalid_geometry', `DICOM series: ${message}`);
}

/** Checks the stack (see the module comment) and returns its grid and affine. */
export function stackGeometry(
  instances: DicomInstance[],
  limits: DicomLimits = DEFAULT_DICOM_LIMITS,
): StackGeometry {
  const n = instances.length;
  if (n < 2) throw invalid('a single slice is a 2D image, not a volume (a series needs at least 2 slices)');
  const first = instances[0];
  if (first.frames > 1) {
    throw new FreeTumorError(
      'unsupported_datatype',
      'multi-frame (enhanced) DICOM images are not supported; export the series as single-frame images',
    );
  }
  const { rows, columns } = first;
  if (!(rows > 0 && columns > 0)) throw invalid('Rows or Columns missing');
  if (rows > limits.maxSliceSide || columns > limits.maxSliceSide) {
    throw new LimitError('slice rows/columns', limits.maxSliceSide, Math.max(rows, columns));
  }
  if (rows * columns * n > limits.maxVoxels)
    throw new LimitError('voxels', limits.maxVoxels, rows * columns * n);
  for (const inst of instances) {
    if (!inst.position || !inst.orientation || !inst.pixelSpacing)
      throw invalid('a slice lacks ImagePositionPatient, ImageOrientationPatient or PixelSpacing');
    if (inst.frames > 1) throw invalid('the series mixes single- and multi-frame images');
    if (inst.rows !== rows || inst.columns !== columns) throw invalid('slices differ in Rows or Columns');
    if (inst.orientation.some((v, i) => Math.abs(v - first.orientation![i]) > 1e-4))
      throw invalid('slices differ in ImageOrientationPatient (not one stack)');
    if (inst.pixelSpacing.some((v, i) => Math.abs(v - first.pixelSpacing![i]) > 1e-4))
      throw invalid('slices differ in PixelSpacing');
  }
  const o = first.orientation!;
  const r = [o[0], o[1], o[2]];
  const c = [o[3], o[4], o[5]];
  if (Math.abs(norm(r) - 1) > 1e-3 || Math.abs(norm(c) - 1) > 1e-3 || Math.abs(dot(r, c)) > 1e-3)
    throw invalid('ImageOrientationPatient is not two orthogonal unit vectors');
  const [rowSpacing, colSpacing] = first.pixelSpacing!;
  if (!(rowSpacing > 0 && colSpacing > 0)) throw invalid('PixelSpacing must be positive');
  const normal = cross(r, c);
  const along = instances.map((inst) => dot(inst.position!, normal));
  const order = along.map((_, i) => i).sort((a, b) => along[a] - along[b]);
  const p0 = instances[order[0]].position!;
  const pn = instances[order[n - 1]].position!;
  const step = [0, 1, 2].map((a) => (pn[a] - p0[a]) / (n - 1));
  const stepAlong = dot(step, normal);
  for (let k = 1; k < n; k++) {
    if (along[order[k]] - along[order[k - 1]] < 1e-3)
      throw invalid('two slices share one position (duplicates, or several acquisitions in one series)');
  }
  const tilt = (Math.acos(Math.min(1, stepAlong / norm(step))) * 180) / Math.PI;
  if (tilt > limits.maxTiltDegrees) {
    throw invalid(
      `gantry tilt or sheared stack of ${tilt.toFixed(2)} degrees (limit ${limits.maxTiltDegrees}); resample it to an orthogonal grid first`,
    );
  }
  const tolerance = limits.spacingTolerance * stepAlong;
  let worst = 0;
  for (let k = 0; k < n; k++) {
    const expected = along[order[0]] + k * stepAlong;
    worst = Math.max(worst, Math.abs(along[order[k]] - expected));
  }
  if (worst > tolerance) {
    throw invalid(
      `uneven slice spacing: a slice lies ${worst.toFixed(3)} mm off the regular ${stepAlong.toFixed(3)} mm grid (limit ${limits.spacingTolerance * 100}% of the step; a slice may be missing)`,
    );
  }
  // LPS columns: i along the row cosine, j along the column cosine, k along the step.
  const lps = [
    [r[0] * colSpacing, c[0] * rowSpacing, step[0], p0[0]],
    [r[1] * colSpacing, c[1] * rowSpacing, step[1], p0[1]],
    [r[2] * colSpacing, c[2] * rowSpacing, step[2], p0[2]],
  ];
  const affine = new Float64Array(16);
  for (let row = 0; row < 3; row++) {
    const sign = row < 2 ? -1 : 1;
    for (let col = 0; col < 4; col++) affine[row * 4 + col] = sign * lps[row][col] + 0; // + 0: no -0
  }
  affine[15] = 1;
  return { dims: [columns, rows, n], affine, order, sliceSpacing: stepAlong };
}
