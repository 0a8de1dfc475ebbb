/**
 * NIfTI-1 / NIfTI-2 header parsing and validation. Everything here runs before any voxel
 * buffer is allocated: a header that is wrong, or that asks for more than the caller allows,
 * stops here with a NiftiError / LimitError whose message names the field or the limit and
 * never quotes header strings (descrip, aux_file, intent_name may hold patient data).
 *
 * The affine follows nibabel's `get_best_affine`: sform when sform_code != 0, else qform
 * when qform_code != 0, else the Analyze-style base affine (pixdim diagonal, x flipped,
 * centred on the volume).
 */
import { LimitError, NiftiError } from '../errors.ts';
import { isInvertibleAffine } from '../geometry/affine.ts';
import { datatypeFromCode } from './datatype.ts';
import type { Affine, DataTypeName, Dims3 } from './volume.ts';

export interface NiftiLimits {
  /** Most voxels a volume may have. */
  maxVoxels: number;
  /** Most bytes the voxel data may take (and so the decompressed stream past the header). */
  maxBytes: number;
  /** Most bytes the file itself (compressed or not) may have. */
  maxCompressedBytes: number;
}

export const DEFAULT_NIFTI_LIMITS: NiftiLimits = {
  maxVoxels: 2 ** 28,
  maxBytes: 2 ** 30,
  maxCompressedBytes: 2 ** 30,
};

export interface NiftiHeaderInfo {
  version: 1 | 2;
  littleEndian: boolean;
  /** [nx, ny, nz] (dims beyond dim[0] count as 1). */
  dims: Dims3;
  /** dim[0]: the number of dimensions the header declares (1..7). */
  ndim: number;
  datatype: DataTypeName;
  bytesPerVoxel: number;
  /** pixdim[0..7] as stored (pixdim[0] is qfac). */
  pixdim: number[];
  /** Voxel sizes along i, j, k from pixdim. */
  spacing: Dims3;
  voxOffset: number;
  /** scl_slope / scl_inter to apply, or null when the data are unscaled (slope 0, NaN, inf or 1/0). */
  scaling: { slope: number; inter: number } | null;
  qformCode: number;
  sformCode: number;
  affine: Affine;
  affineSource: 'sform' | 'qform' | 'base';
  /** xyzt_units as stored (2 = mm, the usual). */
  xyztUnits: number;
  /** Bytes of voxel data: voxels * bytesPerVoxel. */
  dataBytes: number;
  voxels: number;
}

export const NIFTI1_HEADER_BYTES = 348;
export const NIFTI2_HEADER_BYTES = 540;

/** Which NIfTI version and byte order the first 4 bytes (sizeof_hdr) announce, or null. */
export function sniffHeader(bytes: Uint8Array): { version: 1 | 2; littleEndian: boolean } | null {
  if (bytes.length < 4) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, 4);
  const le = view.getInt32(0, true);
  const be = view.getInt32(0, false);
  if (le === NIFTI1_HEADER_BYTES) return { version: 1, littleEndian: true };
  if (le === NIFTI2_HEADER_BYTES) return { version: 2, littleEndian: true };
  if (be === NIFTI1_HEADER_BYTES) return { version: 1, littleEndian: false };
  if (be === NIFTI2_HEADER_BYTES) return { version: 2, littleEndian: false };
  return null;
}

/** Raw fields, read with the file's byte order; NIfTI-1 and -2 differ only in widths and offsets. */
interface RawHeader {
  version: 1 | 2;
  littleEndian: boolean;
  magicOk: boolean;
  pairMagic: boolean;
  dim: number[];
  datatype: number;
  pixdim: number[];
  voxOffset: number;
  sclSlope: number;
  sclInter: number;
  qformCode: number;
  sformCode: number;
  quatern: [number, number, number];
  qoffset: [number, number, number];
  srow: number[];
  xyztUnits: number;
}

function readRaw(bytes: Uint8Array, version: 1 | 2, le: boolean): RawHeader {
  const v = new DataView(
    bytes.buffer,
    bytes.byteOffset,
    version === 1 ? NIFTI1_HEADER_BYTES : NIFTI2_HEADER_BYTES,
  );
  const f32 = (o: number) => v.getFloat32(o, le);
  const f64 = (o: number) => v.getFloat64(o, le);
  const i64 = (o: number) => {
    // Dims and offsets beyond 2^53 cannot be exact numbers; any such value is over every limit.
    const b = v.getBigInt64(o, le);
    return b > BigInt(Number.MAX_SAFE_INTEGER) || b < -BigInt(Number.MAX_SAFE_INTEGER)
      ? Number.NaN
      : Number(b);
  };
  if (version === 1) {
    const magic = String.fromCharCode(bytes[344], bytes[345], bytes[346], bytes[347]);
    return {
      version,
      littleEndian: le,
      magicOk: magic === 'n+1\0',
      pairMagic: magic === 'ni1\0',
      dim: Array.from({ length: 8 }, (_, i) => v.getInt16(40 + 2 * i, le)),
      datatype: v.getInt16(70, le),
      pixdim: Array.from({ length: 8 }, (_, i) => f32(76 + 4 * i)),
      voxOffset: f32(108),
      sclSlope: f32(112),
      sclInter: f32(116),
      qformCode: v.getInt16(252, le),
      sformCode: v.getInt16(254, le),
      quatern: [f32(256), f32(260), f32(264)],
      qoffset: [f32(268), f32(272), f32(276)],
      srow: Array.from({ length: 12 }, (_, i) => f32(280 + 4 * i)),
      xyztUnits: bytes[123],
    };
  }
  const magic = Array.from(bytes.subarray(4, 12), (b) => String.fromCharCode(b)).join('');
  return {
    version,
    littleEndian: le,
    magicOk: magic === 'n+2\0\r\n\x1a\n',
    pairMagic: magic === 'ni2\0\r\n\x1a\n',
    dim: Array.from({ length: 8 }, (_, i) => i64(16 + 8 * i)),
    datatype: v.getInt16(12, le),
    pixdim: Array.from({ length: 8 }, (_, i) => f64(104 + 8 * i)),
    voxOffset: i64(168),
    sclSlope: f64(176),
    sclInter: f64(184),
    qformCode: v.getInt32(344, le),
    sformCode: v.getInt32(348, le),
    quatern: [f64(352), f64(360), f64(368)],
    qoffset: [f64(376), f64(384), f64(392)],
    srow: Array.from({ length: 12 }, (_, i) => f64(400 + 8 * i)),
    xyztUnits: v.getInt32(500, le),
  };
}

/**
 * Parses and validates a header from the first bytes of a (decompressed) NIfTI stream.
 * `bytes` must hold the whole fixed header (348 or 540 bytes). Does not check that the data
 * are present: the caller knows the stream's length.
 */
export function parseNiftiHeader(bytes: Uint8Array, limits: NiftiLimits): NiftiHeaderInfo {
  const sniff = sniffHeader(bytes);
  if (!sniff) throw new NiftiError('invalid_nifti', 'not a NIfTI file: sizeof_hdr is neither 348 nor 540');
  const need = sniff.version === 1 ? NIFTI1_HEADER_BYTES : NIFTI2_HEADER_BYTES;
  if (bytes.length < need) {
    throw new NiftiError(
      'truncated',
      `NIfTI-${sniff.version} header is truncated (${bytes.length} of ${need} bytes)`,
    );
  }
  const raw = readRaw(bytes, sniff.version, sniff.littleEndian);
  if (raw.pairMagic) {
    throw new NiftiError(
      'invalid_nifti',
      'two-file NIfTI (.hdr/.img pair) is not supported: convert it to a single .nii',
    );
  }
  if (!raw.magicOk)
    throw new NiftiError('invalid_nifti', `not a single-file NIfTI-${raw.version}: bad magic`);

  const ndim = raw.dim[0];
  if (!(Number.isInteger(ndim) && ndim >= 1 && ndim <= 7)) {
    throw new NiftiError(
      'invalid_nifti',
      `dim[0] must be 1..7, found ${Number.isFinite(ndim) ? ndim : 'out of range'}`,
    );
  }
  for (let i = 1; i <= ndim; i++) {
    const d = raw.dim[i];
    if (!Number.isFinite(d)) throw new LimitError(`dim[${i}]`, limits.maxVoxels, 'beyond 2^53');
    if (d < 1) throw new NiftiError('invalid_nifti', `dim[${i}] must be positive, found ${d}`);
  }
  for (let i = 4; i <= ndim; i++) {
    if (raw.dim[i] > 1) {
      throw new NiftiError(
        'invalid_nifti',
        `only 3D volumes are supported: dim[${i}] is ${raw.dim[i]} (a 4D+ series; extract one volume first)`,
      );
    }
  }
  const dims: Dims3 = [0, 1, 2].map((a) => (a + 1 <= ndim ? raw.dim[a + 1] : 1)) as Dims3;
  let voxels = 1;
  for (const d of dims) {
    voxels *= d;
    if (voxels > limits.maxVoxels) throw new LimitError('voxel count', limits.maxVoxels, dims.join('x'));
  }

  const dt = datatypeFromCode(raw.datatype);
  if ('unsupported' in dt) {
    throw new NiftiError(
      'unsupported_datatype',
      `unsupported ${dt.unsupported}; supported: uint8, int8, int16, uint16, int32, uint32, float32, float64`,
    );
  }
  const dataBytes = voxels * dt.bytes;
  if (dataBytes > limits.maxBytes) throw new LimitError('voxel data bytes', limits.maxBytes, dataBytes);

  const minOffset = raw.version === 1 ? NIFTI1_HEADER_BYTES + 4 : NIFTI2_HEADER_BYTES + 4;
  if (!Number.isFinite(raw.voxOffset) || !Number.isInteger(raw.voxOffset) || raw.voxOffset < minOffset) {
    throw new NiftiError(
      'invalid_nifti',
      `vox_offset must be an integer >= ${minOffset}, found ${Number.isFinite(raw.voxOffset) ? raw.voxOffset : 'non-finite'}`,
    );
  }
  if (raw.voxOffset > limits.maxBytes) throw new LimitError('vox_offset', limits.maxBytes, raw.voxOffset);

  // Spatial voxel sizes: must be usable for the axes the header declares; an axis beyond dim[0]
  // (a 2D image's k) takes 1 when its pixdim is unset.
  const spacing = [1, 2, 3].map((i) => {
    const p = raw.pixdim[i];
    if (i <= ndim && !(Number.isFinite(p) && p > 0)) {
      throw new NiftiError('invalid_geometry', `pixdim[${i}] must be finite and > 0, found ${p}`);
    }
    return Number.isFinite(p) && p > 0 ? p : 1;
  }) as Dims3;

  const { affine, source } = bestAffine(raw, dims, spacing);
  if (!isInvertibleAffine(affine)) {
    throw new NiftiError('invalid_geometry', `the ${source} affine is not finite or not invertible`);
  }

  return {
    version: raw.version,
    littleEndian: raw.littleEndian,
    dims,
    ndim,
    datatype: dt.name,
    bytesPerVoxel: dt.bytes,
    pixdim: raw.pixdim,
    spacing,
    voxOffset: raw.voxOffset,
    scaling: scalingOf(raw.sclSlope, raw.sclInter),
    qformCode: raw.qformCode,
    sformCode: raw.sformCode,
    affine,
    affineSource: source,
    xyztUnits: raw.xyztUnits,
    dataBytes,
    voxels,
  };
}

/** nibabel's get_slope_inter: slope 0 or non-finite means unscaled; a finite slope needs a finite intercept. */
function scalingOf(slope: number, inter: number): { slope: number; inter: number } | null {
  if (slope === 0 || !Number.isFinite(slope)) return null;
  if (!Number.isFinite(inter))
    throw new NiftiError('invalid_nifti', 'scl_inter is not finite while scl_slope is set');
  if (slope === 1 && inter === 0) return null;
  return { slope, inter };
}

function bestAffine(
  raw: RawHeader,
  dims: Dims3,
  spacing: Dims3,
): { affine: Affine; source: 'sform' | 'qform' | 'base' } {
  if (raw.sformCode !== 0) {
    const a = new Float64Array(16);
    a.set(raw.srow);
    a[15] = 1;
    return { affine: a, source: 'sform' };
  }
  if (raw.qformCode !== 0) return { affine: qformAffine(raw, spacing), source: 'qform' };
  // nibabel's shape_zoom_affine with x flipped: the Analyze convention, centred on the volume.
  const a = new Float64Array(16);
  const zooms = [-spacing[0], spacing[1], spacing[2]];
  for (let i = 0; i < 3; i++) {
    a[i * 5] = zooms[i];
    a[i * 4 + 3] = -((dims[i] - 1) / 2) * zooms[i];
  }
  a[15] = 1;
  return { affine: a, source: 'base' };
}

/** nibabel's `get_qform`: quaternion (b, c, d; a >= 0 filled in) times pixdim, qfac on k. */
function qformAffine(raw: RawHeader, spacing: Dims3): Affine {
  const [b, c, d] = raw.quatern;
  const threshold = raw.version === 1 ? -3 * 2 ** -23 : -3 * 2 ** -52;
  const w2 = 1 - (b * b + c * c + d * d);
  if (!Number.isFinite(w2) || w2 < threshold) {
    throw new NiftiError('invalid_geometry', 'qform quaternion is not a unit quaternion (b^2+c^2+d^2 > 1)');
  }
  const a = w2 < 0 ? 0 : Math.sqrt(w2);
  const r = quaternionToMatrix(a, b, c, d);
  // nibabel fixes a qfac other than +-1 to 1 on load (nifti1.h: 0 means 1).
  const qfac = raw.pixdim[0] === -1 ? -1 : 1;
  const zoom = [spacing[0], spacing[1], spacing[2] * qfac];
  const out = new Float64Array(16);
  for (let row = 0; row < 3; row++) {
    for (let col = 0; col < 3; col++) out[row * 4 + col] = r[row * 3 + col] * zoom[col];
    out[row * 4 + 3] = raw.qoffset[row];
  }
  out[15] = 1;
  return out;
}

/** Rotation matrix (row-major) of quaternion (w, x, y, z), normalised first, as nibabel's quat2mat. */
export function quaternionToMatrix(w: number, x: number, y: number, z: number): Float64Array {
  const n = w * w + x * x + y * y + z * z;
  if (n < 2.220446049250313e-16) return Float64Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]);
  const s = 2 / n;
  const X = x * s;
  const Y = y * s;
  const Z = z * s;
  const wX = w * X;
  const wY = w * Y;
  const wZ = w * Z;
  const xX = x * X;
  const xY = x * Y;
  const xZ = x * Z;
  const yY = y * Y;
  const yZ = y * Z;
  const zZ = z * Z;
  return Float64Array.from([
    1 - (yY + zZ),
    xY - wZ,
    xZ + wY,
    xY + wZ,
    1 - (xX + zZ),
    yZ - wX,
    xZ - wY,
    yZ + wX,
    1 - (xX + yY),
  ]);
}

/**
 * Quaternion (w >= 0, x, y, z) of a rotation matrix (row-major, det +1), Shepperd's method:
 * the same rotation nibabel's mat2quat finds, with the sign chosen so that w >= 0.
 */
export function matrixToQuaternion(m: ArrayLike<number>): [number, number, number, number] {
  const [m00, m01, m02, m10, m11, m12, m20, m21, m22] = Array.from(m);
  const tr = m00 + m11 + m22;
  let w: number;
  let x: number;
  let y: number;
  let z: number;
  if (tr > 0) {
    const s = Math.sqrt(tr + 1) * 2;
    w = 0.25 * s;
    x = (m21 - m12) / s;
    y = (m02 - m20) / s;
    z = (m10 - m01) / s;
  } else if (m00 > m11 && m00 > m22) {
    const s = Math.sqrt(1 + m00 - m11 - m22) * 2;
    w = (m21 - m12) / s;
    x = 0.25 * s;
    y = (m01 + m10) / s;
    z = (m02 + m20) / s;
  } else if (m11 > m22) {
    const s = Math.sqrt(1 + m11 - m00 - m22) * 2;
    w = (m02 - m20) / s;
    x = (m01 + m10) / s;
    y = 0.25 * s;
    z = (m12 + m21) / s;
  } else {
    const s = Math.sqrt(1 + m22 - m00 - m11) * 2;
    w = (m10 - m01) / s;
    x = (m02 + m20) / s;
    y = (m12 + m21) / s;
    z = 0.25 * s;
  }
  const n = Math.hypot(w, x, y, z);
  const sign = w < 0 ? -1 : 1;
  return [(sign * w) / n, (sign * x) / n, (sign * y) / n, (sign * z) / n];
}
