/**
 * The in-memory volume every module passes around.
 *
 * Layout: NIfTI order, i (x) fastest: `index = i + nx * (j + ny * k)`. A volume is
 * therefore a [nz, ny, nx] = [D, H, W] array in NCDHW terms with no copy, which is the
 * order the tfjs models (NDHWC with C=1) and the ONNX models (NCDHW) take.
 * Affine: row-major 4x4 (16 numbers) mapping voxel (i, j, k, 1) to world millimetres in
 * NIfTI's RAS+ convention, exactly as nibabel's `img.affine`.
 */
export type Affine = Float64Array;

export type VoxelArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array;

/** NIfTI datatypes we read and write (names as in nifti1.h, lower case). */
export type DataTypeName = 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64';

export type Dims3 = [number, number, number];

export interface Volume<T extends VoxelArray = VoxelArray> {
  /** [nx, ny, nz]. */
  dims: Dims3;
  data: T;
  /** voxel -> world (mm, RAS+), row-major 4x4. */
  affine: Affine;
  /** The datatype the volume came from (or is to be written as); `data`'s type may differ after scaling. */
  datatype: DataTypeName;
}

export function voxelCount(dims: Dims3): number {
  return dims[0] * dims[1] * dims[2];
}

/** Column lengths of the affine's 3x3 part: the voxel size in mm along i, j, k. */
export function spacingOf(affine: Affine): Dims3 {
  const s: number[] = [];
  for (let c = 0; c < 3; c++) {
    s.push(Math.hypot(affine[c], affine[4 + c], affine[8 + c]));
  }
  return s as Dims3;
}

export function identityAffine(spacing: Dims3 = [1, 1, 1]): Affine {
  const a = new Float64Array(16);
  a[0] = spacing[0];
  a[5] = spacing[1];
  a[10] = spacing[2];
  a[15] = 1;
  return a;
}

export function makeVolume<T extends VoxelArray>(
  dims: Dims3,
  data: T,
  affine: Affine,
  datatype: DataTypeName,
): Volume<T> {
  if (data.length !== voxelCount(dims)) {
    throw new RangeError(`volume data has ${data.length} voxels, dims say ${voxelCount(dims)}`);
  }
  return { dims: [...dims] as Dims3, data, affine: Float64Array.from(affine), datatype };
}
