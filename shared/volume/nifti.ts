/**
 * NIfTI reading and writing for every runtime (no Node or Workers APIs).
 *
 * Reading: NIfTI-1 and NIfTI-2, `.nii` or `.nii.gz` (gzip found by its magic bytes, not by
 * a file name), either byte order, the eight datatypes of `DataTypeName`, scl_slope /
 * scl_inter applied as nibabel does, the affine chosen as nibabel does (see nifti-header.ts).
 * The header is validated and the caller's limits checked before the voxel buffer is
 * allocated; a gzip stream is inflated only as far as the header says the data reach.
 * Only 3D volumes are read: a header with dim[4..7] > 1 is rejected (not cut to its first
 * frame), so that nobody segments one frame of a series without knowing it. `data` is the
 * on-disk typed array when the data are unscaled, else Float32Array (Float64Array for
 * float64 data) with the scaling applied; `datatype` is always the on-disk type.
 *
 * Writing: NIfTI-1, little-endian, vox_offset 352, magic n+1, gzip by default, with the
 * affine in both the sform (exactly, as float32) and the qform (rotation + pixdim + qfac,
 * computed as nibabel's `set_qform`), both with code 1 (scanner).
 *
 * readNifti / writeNifti are synchronous and gzip with fflate (pure JS). readNiftiAsync
 * inflates through the platform's DecompressionStream (native zlib in Node and workerd, 2-4x
 * faster than fflate): prefer it where a Promise is fine.
 */
import { FreeTumorError, LimitError, NiftiError } from '../errors.ts';
import { isInvertibleAffine, nearestOrthogonal } from '../geometry/affine.ts';
import { castTo, datatypeInfo, hostToLittleEndian, toHostOrder, typedArrayOn } from './datatype.ts';
import { gunzipStream, gzip, isGzip } from './gzip.ts';
import {
  DEFAULT_NIFTI_LIMITS,
  matrixToQuaternion,
  NIFTI1_HEADER_BYTES,
  type NiftiHeaderInfo,
  type NiftiLimits,
  parseNiftiHeader,
} from './nifti-header.ts';
import { NiftiStreamParser } from './nifti-stream.ts';
import type { DataTypeName, Volume, VoxelArray } from './volume.ts';

export { DEFAULT_NIFTI_LIMITS, type NiftiHeaderInfo, type NiftiLimits } from './nifti-header.ts';

export interface NiftiReadInfo extends NiftiHeaderInfo {
  gzip: boolean;
}

function resolveLimits(limits?: Partial<NiftiLimits>): NiftiLimits {
  const l = { ...DEFAULT_NIFTI_LIMITS, ...limits };
  for (const [k, v] of Object.entries(l)) {
    if (!(typeof v === 'number' && v > 0)) throw new RangeError(`NIfTI limit ${k} must be a positive number`);
  }
  return l;
}

function checkFileSize(bytes: Uint8Array, limits: NiftiLimits): void {
  if (bytes.length > limits.maxCompressedBytes) {
    throw new LimitError('file bytes', limits.maxCompressedBytes, bytes.length);
  }
  if (bytes.length === 0) throw new NiftiError('invalid_nifti', 'the file is empty');
}

/** The validated header (dims, datatype, spacing, affine ...) without reading the voxel data. */
export function readNiftiHeader(bytes: Uint8Array, limits?: Partial<NiftiLimits>): NiftiReadInfo {
  const lim = resolveLimits(limits);
  checkFileSize(bytes, lim);
  if (!isGzip(bytes)) {
    const info = parseNiftiHeader(bytes, lim);
    checkDataInside(info, bytes.length);
    return { ...info, gzip: false };
  }
  const parser = new NiftiStreamParser(lim, true);
  gunzipStream(bytes, (chunk) => parser.push(chunk), 16 * 1024);
  return { ...parser.header(), gzip: true };
}

function checkDataInside(info: NiftiHeaderInfo, length: number): void {
  if (info.voxOffset > length)
    throw new NiftiError('truncated', 'vox_offset points past the end of the file');
  if (info.voxOffset + info.dataBytes > length) {
    throw new NiftiError(
      'truncated',
      `voxel data are truncated: ${length - info.voxOffset} of ${info.dataBytes} bytes present`,
    );
  }
}

/** Reads a `.nii` or `.nii.gz` into a Volume; see the module comment for what is accepted. */
export function readNifti(bytes: Uint8Array, limits?: Partial<NiftiLimits>): Volume {
  const lim = resolveLimits(limits);
  checkFileSize(bytes, lim);
  const { info, data } = isGzip(bytes) ? inflateNifti(bytes, lim) : sliceNifti(bytes, lim);
  return toVolume(info, data);
}

/**
 * readNifti, but inflating with the platform's native DecompressionStream (Node, workerd and
 * browsers have it; several times faster than fflate) when there is one. Same checks, same
 * early stop, same result; anything the native inflater refuses is handed to readNifti, so
 * errors are the same typed ones.
 */
export async function readNiftiAsync(bytes: Uint8Array, limits?: Partial<NiftiLimits>): Promise<Volume> {
  const lim = resolveLimits(limits);
  checkFileSize(bytes, lim);
  if (!isGzip(bytes) || typeof DecompressionStream === 'undefined') return readNifti(bytes, limits);
  const parser = new NiftiStreamParser(lim);
  try {
    await pumpThrough(bytes, new DecompressionStream('gzip'), inputChunkFor(lim.maxBytes), (chunk) =>
      parser.push(chunk),
    );
  } catch (e) {
    if (e instanceof FreeTumorError) throw e;
    return readNifti(bytes, limits);
  }
  const { info, data } = parser.finish();
  return toVolume(info, data);
}

/**
 * Feeds `input` through a (de)compression stream `slice` bytes at a time and hands the output
 * to `sink` until it returns false, then cancels the rest.
 */
async function pumpThrough(
  input: Uint8Array,
  transform: ReadableWritablePair<Uint8Array, BufferSource>,
  slice: number,
  sink: (chunk: Uint8Array) => boolean,
): Promise<void> {
  let pos = 0;
  const source = new ReadableStream<BufferSource>({
    pull(controller) {
      if (pos >= input.length) {
        controller.close();
        return;
      }
      const end = Math.min(input.length, pos + slice);
      controller.enqueue(input.subarray(pos, end) as Uint8Array<ArrayBuffer>);
      pos = end;
    },
  });
  const reader = source.pipeThrough(transform).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    if (!sink(value)) {
      await reader.cancel().catch(() => undefined);
      return;
    }
  }
}

function toVolume(info: NiftiHeaderInfo, data: Uint8Array): Volume {
  toHostOrder(data, info.bytesPerVoxel, info.littleEndian);
  const raw = typedArrayOn(info.datatype, data.buffer as ArrayBuffer, data.byteOffset, info.voxels);
  return {
    dims: [...info.dims],
    data: info.scaling ? applyScaling(raw, info.scaling, info.datatype) : raw,
    affine: info.affine,
    datatype: info.datatype,
  };
}

function sliceNifti(bytes: Uint8Array, lim: NiftiLimits): { info: NiftiHeaderInfo; data: Uint8Array } {
  const info = parseNiftiHeader(bytes, lim);
  checkDataInside(info, bytes.length);
  // A copy: the volume must not keep the whole file (header, extensions) alive, and the
  // copy starts at offset 0 so every typed array view is aligned.
  // (Not bytes.slice: on a Node Buffer that is a view, not a copy.)
  const data = new Uint8Array(info.dataBytes);
  data.set(bytes.subarray(info.voxOffset, info.voxOffset + info.dataBytes));
  return { info, data };
}

/**
 * Inflates a .nii.gz in one pass with fflate, stopping at the end of the voxel data. Until the
 * header is parsed the input goes in 1 KiB at a time (at most ~1 MiB inflated before the header is
 * checked: a gzip bomb never inflates first); then in steps sized from what the header announced.
 */
function inflateNifti(gz: Uint8Array, lim: NiftiLimits): { info: NiftiHeaderInfo; data: Uint8Array } {
  const parser = new NiftiStreamParser(lim);
  gunzipStream(
    gz,
    (chunk) => parser.push(chunk),
    () => {
      const info = parser.parsed;
      return info ? inputChunkFor(info.dataBytes) : HEADER_INPUT_CHUNK;
    },
  );
  return parser.finish();
}

/** Compressed bytes per inflate step before the header is known (deflate expands at most ~1032x). */
const HEADER_INPUT_CHUNK = 1024;

/**
 * Compressed bytes per inflate step once the header said how many bytes the data take. Deflate
 * expands at most ~1032x, so a step can overshoot by ~1032x its input: keep that under a quarter of
 * the announced data (16 KiB steps at least, up to 256 KiB, where per-step overhead stops mattering).
 */
function inputChunkFor(dataBytes: number): number {
  return Math.min(256 * 1024, Math.max(16 * 1024, Math.floor(dataBytes / 4 / 1032)));
}

/** value * slope + inter into float32 (float64 for float64 data), as nibabel's get_fdata. */
function applyScaling(
  raw: VoxelArray,
  s: { slope: number; inter: number },
  datatype: DataTypeName,
): VoxelArray {
  const out = datatype === 'float64' ? new Float64Array(raw.length) : new Float32Array(raw.length);
  const { slope, inter } = s;
  for (let i = 0; i < raw.length; i++) out[i] = raw[i] * slope + inter;
  return out;
}

export interface WriteNiftiOptions {
  /** gzip the file (`.nii.gz`); default true. */
  gzip?: boolean;
  /** Datatype on disk; default the volume's `datatype`. Values are rounded and clamped for integer types. */
  datatype?: DataTypeName;
  /** descrip (at most 79 ASCII characters; anything else is replaced). */
  description?: string;
  /** gzip level 1..9 for fflate; default 1 (as nibabel: fast, files ~10% larger than level 6). */
  level?: 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
}

const VOX_OFFSET = 352;

/** Writes a NIfTI-1 file (see the module comment); gzip by fflate. */
export function writeNifti(vol: Volume, opts: WriteNiftiOptions = {}): Uint8Array {
  const raw = encodeNifti(vol, opts);
  return opts.gzip === false ? raw : gzip(raw, opts.level ?? 1);
}

/**
 * writeNifti as a Promise; with `native: true` gzip goes through the platform's
 * CompressionStream (zlib level 6: ~5% smaller files, but on CT-like data about 1.8x slower
 * than fflate's level 1, measured in bench/nifti.bench.ts), else through fflate as writeNifti.
 */
export async function writeNiftiAsync(
  vol: Volume,
  opts: WriteNiftiOptions & { native?: boolean } = {},
): Promise<Uint8Array> {
  const raw = encodeNifti(vol, opts);
  if (opts.gzip === false) return raw;
  if (!opts.native || typeof CompressionStream === 'undefined') return gzip(raw, opts.level ?? 1);
  const parts: Uint8Array[] = [];
  let total = 0;
  await pumpThrough(raw, new CompressionStream('gzip'), 1 << 20, (chunk) => {
    parts.push(chunk);
    total += chunk.length;
    return true;
  });
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** The uncompressed .nii bytes. */
function encodeNifti(vol: Volume, opts: WriteNiftiOptions): Uint8Array {
  const datatype = opts.datatype ?? vol.datatype;
  const dt = datatypeInfo(datatype);
  const [nx, ny, nz] = vol.dims;
  if (vol.data.length !== nx * ny * nz) {
    throw new NiftiError(
      'invalid_nifti',
      `volume has ${vol.data.length} voxels but dims ${vol.dims.join('x')}`,
    );
  }
  for (const d of vol.dims) {
    if (!Number.isInteger(d) || d < 1 || d > 32767) {
      throw new NiftiError('invalid_nifti', 'NIfTI-1 dims must be integers in 1..32767');
    }
  }
  const data = castTo(vol.data, datatype);
  const out = new Uint8Array(VOX_OFFSET + data.byteLength);
  writeHeader(out, vol, datatype, opts.description ?? '');
  const body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  hostToLittleEndian(body, dt.bytes);
  out.set(body, VOX_OFFSET);
  return out;
}

/**
 * The 352 bytes (header + empty extension flag) that precede the voxel data of a NIfTI-1 file
 * written by this module, for writers that stream the voxels after it.
 */
export function niftiHeaderBytes(
  dims: Volume['dims'],
  affine: Volume['affine'],
  datatype: DataTypeName,
  description = '',
): Uint8Array {
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 1 || d > 32767) {
      throw new NiftiError('invalid_nifti', 'NIfTI-1 dims must be integers in 1..32767');
    }
  }
  const out = new Uint8Array(VOX_OFFSET);
  writeHeader(out, { dims, affine }, datatype, description);
  return out;
}

function writeHeader(
  out: Uint8Array,
  vol: Pick<Volume, 'dims' | 'affine'>,
  datatype: DataTypeName,
  description: string,
): void {
  const v = new DataView(out.buffer, out.byteOffset, VOX_OFFSET);
  const dt = datatypeInfo(datatype);
  const a = vol.affine;
  if (!isInvertibleAffine(a))
    throw new NiftiError('invalid_geometry', 'affine is not finite or not invertible');
  const q = qformOf(a);
  v.setInt32(0, NIFTI1_HEADER_BYTES, true);
  out[39] = 0; // dim_info
  const dims = [3, vol.dims[0], vol.dims[1], vol.dims[2], 1, 1, 1, 1];
  for (let i = 0; i < 8; i++) v.setInt16(40 + 2 * i, dims[i], true);
  v.setInt16(70, dt.code, true);
  v.setInt16(72, dt.bytes * 8, true);
  const pixdim = [q.qfac, q.zooms[0], q.zooms[1], q.zooms[2], 1, 1, 1, 1];
  for (let i = 0; i < 8; i++) v.setFloat32(76 + 4 * i, pixdim[i], true);
  v.setFloat32(108, VOX_OFFSET, true);
  v.setFloat32(112, 1, true); // scl_slope
  v.setFloat32(116, 0, true); // scl_inter
  out[123] = 2; // xyzt_units: mm
  const text = description.replace(/[^\x20-\x7e]/g, '?').slice(0, 79);
  for (let i = 0; i < text.length; i++) out[148 + i] = text.charCodeAt(i);
  v.setInt16(252, 1, true); // qform_code: scanner
  v.setInt16(254, 1, true); // sform_code: scanner
  for (let i = 0; i < 3; i++) {
    v.setFloat32(256 + 4 * i, q.quat[i], true);
    v.setFloat32(268 + 4 * i, a[i * 4 + 3], true); // qoffset
  }
  for (let i = 0; i < 12; i++) v.setFloat32(280 + 4 * i, a[i], true);
  out.set([0x6e, 0x2b, 0x31, 0], 344); // "n+1\0"
  // bytes 348..351: extension flag 0 (no extensions).
}

/**
 * nibabel's `set_qform`: zooms are the column lengths; qfac -1 (k flipped) when the
 * direction matrix is left-handed; the rotation is the nearest orthogonal matrix (shear
 * cannot be represented in a qform and is dropped there; the sform keeps it).
 */
function qformOf(a: Float64Array): { quat: [number, number, number]; zooms: number[]; qfac: 1 | -1 } {
  const zooms = [0, 1, 2].map((c) => Math.hypot(a[c], a[4 + c], a[8 + c]));
  const r = new Float64Array(9);
  for (let row = 0; row < 3; row++) {
    for (let c = 0; c < 3; c++) r[row * 3 + c] = zooms[c] > 0 ? a[row * 4 + c] / zooms[c] : 0;
  }
  const det =
    r[0] * (r[4] * r[8] - r[5] * r[7]) -
    r[1] * (r[3] * r[8] - r[5] * r[6]) +
    r[2] * (r[3] * r[7] - r[4] * r[6]);
  const qfac = det > 0 ? 1 : -1;
  if (qfac < 0) for (let row = 0; row < 3; row++) r[row * 3 + 2] *= -1;
  const [, x, y, z] = matrixToQuaternion(nearestOrthogonal(r));
  return { quat: [x, y, z], zooms, qfac };
}
