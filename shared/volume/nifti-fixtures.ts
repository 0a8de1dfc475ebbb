/**
 * Builds NIfTI files field by field, for tests only: either version, either byte order, any
 * field value (valid or not). It is written independently of the writer in nifti.ts so that
 * tests of the reader do not lean on the writer.
 */
import { datatypeInfo } from './datatype.ts';
import type { DataTypeName } from './volume.ts';

export interface NiftiSpec {
  version?: 1 | 2;
  littleEndian?: boolean;
  /** dim[0..7]; default [3, nx, ny, nz, 1, 1, 1, 1] from `values` being a cube is not assumed. */
  dim: number[];
  datatype: DataTypeName | number;
  /** Voxel values (encoded as `datatype`; ignored when `rawData` is given). */
  values?: ArrayLike<number>;
  rawData?: Uint8Array;
  pixdim?: number[];
  voxOffset?: number;
  sclSlope?: number;
  sclInter?: number;
  qformCode?: number;
  sformCode?: number;
  quatern?: [number, number, number];
  qoffset?: [number, number, number];
  srow?: number[];
  magic?: string;
  sizeofHdr?: number;
  descrip?: string;
  intentName?: string;
}

const CODES: Record<DataTypeName, number> = {
  uint8: 2,
  int16: 4,
  int32: 8,
  float32: 16,
  float64: 64,
  int8: 256,
  uint16: 512,
  uint32: 768,
};

export function encodeValues(values: ArrayLike<number>, datatype: DataTypeName, le: boolean): Uint8Array {
  const size = datatypeInfo(datatype).bytes;
  const out = new Uint8Array(values.length * size);
  const v = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    const o = i * size;
    switch (datatype) {
      case 'uint8':
        v.setUint8(o, x);
        break;
      case 'int8':
        v.setInt8(o, x);
        break;
      case 'int16':
        v.setInt16(o, x, le);
        break;
      case 'uint16':
        v.setUint16(o, x, le);
        break;
      case 'int32':
        v.setInt32(o, x, le);
        break;
      case 'uint32':
        v.setUint32(o, x, le);
        break;
      case 'float32':
        v.setFloat32(o, x, le);
        break;
      case 'float64':
        v.setFloat64(o, x, le);
        break;
    }
  }
  return out;
}

/** An uncompressed single-file NIfTI built from `spec`. */
export function buildNifti(spec: NiftiSpec): Uint8Array {
  const version = spec.version ?? 1;
  const le = spec.littleEndian ?? true;
  const hdrSize = version === 1 ? 348 : 540;
  const voxOffset = spec.voxOffset ?? (version === 1 ? 352 : 544);
  const code = typeof spec.datatype === 'number' ? spec.datatype : CODES[spec.datatype];
  const data =
    spec.rawData ??
    (typeof spec.datatype === 'string' && spec.values
      ? encodeValues(spec.values, spec.datatype, le)
      : new Uint8Array(0));
  const total = Math.max(hdrSize + 4, Number.isFinite(voxOffset) ? Math.floor(voxOffset) : 0) + data.length;
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  const pixdim = spec.pixdim ?? [1, 1, 1, 1, 1, 1, 1, 1];
  const srow = spec.srow ?? [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0];
  const quatern = spec.quatern ?? [0, 0, 0];
  const qoffset = spec.qoffset ?? [0, 0, 0];
  const text = (offset: number, s: string | undefined, max: number) => {
    if (!s) return;
    for (let i = 0; i < Math.min(s.length, max); i++) out[offset + i] = s.charCodeAt(i);
  };
  v.setInt32(0, spec.sizeofHdr ?? hdrSize, le);
  if (version === 1) {
    for (let i = 0; i < 8; i++) v.setInt16(40 + 2 * i, spec.dim[i] ?? 1, le);
    v.setInt16(70, code, le);
    v.setInt16(72, typeof spec.datatype === 'string' ? datatypeInfo(spec.datatype).bytes * 8 : 0, le);
    for (let i = 0; i < 8; i++) v.setFloat32(76 + 4 * i, pixdim[i] ?? 1, le);
    v.setFloat32(108, voxOffset, le);
    v.setFloat32(112, spec.sclSlope ?? 1, le);
    v.setFloat32(116, spec.sclInter ?? 0, le);
    out[123] = 2;
    text(148, spec.descrip, 79);
    v.setInt16(252, spec.qformCode ?? 0, le);
    v.setInt16(254, spec.sformCode ?? 1, le);
    for (let i = 0; i < 3; i++) v.setFloat32(256 + 4 * i, quatern[i], le);
    for (let i = 0; i < 3; i++) v.setFloat32(268 + 4 * i, qoffset[i], le);
    for (let i = 0; i < 12; i++) v.setFloat32(280 + 4 * i, srow[i], le);
    text(328, spec.intentName, 15);
    text(344, spec.magic ?? 'n+1\0', 4);
  } else {
    text(4, spec.magic ?? 'n+2\0\r\n\x1a\n', 8);
    v.setInt16(12, code, le);
    v.setInt16(14, typeof spec.datatype === 'string' ? datatypeInfo(spec.datatype).bytes * 8 : 0, le);
    for (let i = 0; i < 8; i++) v.setBigInt64(16 + 8 * i, BigInt(spec.dim[i] ?? 1), le);
    for (let i = 0; i < 8; i++) v.setFloat64(104 + 8 * i, pixdim[i] ?? 1, le);
    v.setBigInt64(168, BigInt(Math.floor(voxOffset)), le);
    v.setFloat64(176, spec.sclSlope ?? 1, le);
    v.setFloat64(184, spec.sclInter ?? 0, le);
    text(240, spec.descrip, 79);
    v.setInt32(344, spec.qformCode ?? 0, le);
    v.setInt32(348, spec.sformCode ?? 1, le);
    for (let i = 0; i < 3; i++) v.setFloat64(352 + 8 * i, quatern[i], le);
    for (let i = 0; i < 3; i++) v.setFloat64(376 + 8 * i, qoffset[i], le);
    for (let i = 0; i < 12; i++) v.setFloat64(400 + 8 * i, srow[i], le);
    v.setInt32(500, 2, le);
    text(508, spec.intentName, 15);
  }
  out.set(data, total - data.length);
  return out;
}
