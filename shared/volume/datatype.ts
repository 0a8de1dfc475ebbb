/**
 * The NIfTI datatypes we support: their nifti1.h codes, sizes and typed arrays, plus the
 * conversions the reader (bytes on disk, either endianness) and the writer (cast, round and
 * clamp to a target type) need.
 */
import type { DataTypeName, VoxelArray } from './volume.ts';

interface DataTypeInfo {
  name: DataTypeName;
  code: number;
  bytes: number;
  integer: boolean;
  min: number;
  max: number;
}

const TYPES: DataTypeInfo[] = [
  { name: 'uint8', code: 2, bytes: 1, integer: true, min: 0, max: 255 },
  { name: 'int16', code: 4, bytes: 2, integer: true, min: -32768, max: 32767 },
  { name: 'int32', code: 8, bytes: 4, integer: true, min: -2147483648, max: 2147483647 },
  {
    name: 'float32',
    code: 16,
    bytes: 4,
    integer: false,
    min: -3.4028234663852886e38,
    max: 3.4028234663852886e38,
  },
  { name: 'float64', code: 64, bytes: 8, integer: false, min: -Number.MAX_VALUE, max: Number.MAX_VALUE },
  { name: 'int8', code: 256, bytes: 1, integer: true, min: -128, max: 127 },
  { name: 'uint16', code: 512, bytes: 2, integer: true, min: 0, max: 65535 },
  { name: 'uint32', code: 768, bytes: 4, integer: true, min: 0, max: 4294967295 },
];

export const DATATYPE_NAMES: readonly DataTypeName[] = TYPES.map((t) => t.name);

/** Codes nifti1.h defines that we recognise but do not read, named for a clear error. */
const UNSUPPORTED: Record<number, string> = {
  1: 'binary',
  32: 'complex64',
  128: 'rgb24',
  1024: 'int64',
  1280: 'uint64',
  1536: 'float128',
  1792: 'complex128',
  2048: 'complex256',
  2304: 'rgba32',
};

export function datatypeInfo(name: DataTypeName): DataTypeInfo {
  const t = TYPES.find((x) => x.name === name);
  if (!t) throw new RangeError(`unknown datatype ${name}`);
  return t;
}

/** The info for a nifti1.h code, or a description of why it is not supported. */
export function datatypeFromCode(code: number): DataTypeInfo | { unsupported: string } {
  const t = TYPES.find((x) => x.code === code);
  if (t) return t;
  return {
    unsupported: UNSUPPORTED[code] ? `datatype ${UNSUPPORTED[code]} (code ${code})` : `datatype code ${code}`,
  };
}

export function isDataTypeName(s: string): s is DataTypeName {
  return (DATATYPE_NAMES as readonly string[]).includes(s);
}

/** The datatype a typed array naturally stores. */
export function datatypeOfArray(a: VoxelArray): DataTypeName {
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Uint16Array) return 'uint16';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Uint32Array) return 'uint32';
  if (a instanceof Float32Array) return 'float32';
  return 'float64';
}

/** A typed array of `name` viewing `buffer` (which must hold exactly `length` elements from `offset`). */
export function typedArrayOn(
  name: DataTypeName,
  buffer: ArrayBuffer,
  offset: number,
  length: number,
): VoxelArray {
  switch (name) {
    case 'uint8':
      return new Uint8Array(buffer, offset, length);
    case 'int8':
      return new Int8Array(buffer, offset, length);
    case 'int16':
      return new Int16Array(buffer, offset, length);
    case 'uint16':
      return new Uint16Array(buffer, offset, length);
    case 'int32':
      return new Int32Array(buffer, offset, length);
    case 'uint32':
      return new Uint32Array(buffer, offset, length);
    case 'float32':
      return new Float32Array(buffer, offset, length);
    case 'float64':
      return new Float64Array(buffer, offset, length);
  }
}

export function allocTypedArray(name: DataTypeName, length: number): VoxelArray {
  return typedArrayOn(name, new ArrayBuffer(length * datatypeInfo(name).bytes), 0, length);
}

/** Same element type as `like`, `length` elements. */
export function allocLike(like: VoxelArray, length: number): VoxelArray {
  return allocTypedArray(datatypeOfArray(like), length);
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverses the byte order of each `size`-byte element of `bytes`, in place. */
export function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  const n = bytes.length - (bytes.length % size);
  if (size === 2) {
    for (let i = 0; i < n; i += 2) {
      const a = bytes[i];
      bytes[i] = bytes[i + 1];
      bytes[i + 1] = a;
    }
    return;
  }
  const half = size >> 1;
  for (let i = 0; i < n; i += size) {
    for (let a = 0; a < half; a++) {
      const t = bytes[i + a];
      bytes[i + a] = bytes[i + size - 1 - a];
      bytes[i + size - 1 - a] = t;
    }
  }
}

/** Converts data stored with the file's byte order to the host's, in place. */
export function toHostOrder(bytes: Uint8Array, size: number, littleEndian: boolean): void {
  if (littleEndian !== LITTLE_ENDIAN_HOST) swapBytes(bytes, size);
}

/** Makes bytes in host order into the little-endian order NIfTI files we write use, in place. */
export function hostToLittleEndian(bytes: Uint8Array, size: number): void {
  if (!LITTLE_ENDIAN_HOST) swapBytes(bytes, size);
}

/**
 * `src` converted to `name`: floats to integer types are rounded half away from zero and
 * clamped to the type's range (NaN becomes 0), as a careful writer must; no-op copies are
 * plain `set`s.
 */
export function castTo(src: ArrayLike<number>, name: DataTypeName): VoxelArray {
  const out = allocTypedArray(name, src.length);
  const info = datatypeInfo(name);
  const srcIsInteger = !(src instanceof Float32Array || src instanceof Float64Array);
  if (!info.integer || (srcIsInteger && fitsIn(src as VoxelArray, info))) {
    (out as Float64Array).set(src as ArrayLike<number>);
    return out;
  }
  const { min, max } = info;
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    let r: number;
    if (Number.isNaN(v)) r = 0;
    else if (v <= min) r = min;
    else if (v >= max) r = max;
    else r = v < 0 ? -Math.round(-v) : Math.round(v);
    out[i] = r;
  }
  return out;
}

/** Whether every value an integer array type can hold fits `info` (so a plain copy is exact). */
function fitsIn(src: VoxelArray, info: DataTypeInfo): boolean {
  const s = datatypeInfo(datatypeOfArray(src));
  return s.min >= info.min && s.max <= info.max;
}
