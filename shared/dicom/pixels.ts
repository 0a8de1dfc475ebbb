/**
 * Stored pixel values -> modality values (HU for CT): stored value, masked to BitsStored and
 * sign-extended, times RescaleSlope plus RescaleIntercept (PS3.3 C.11.1), per slice since each slice
 * may carry its own rescale. The volume is int16 when every rescale is integral and the whole stored
 * range maps inside int16 (nearly every CT), else float32.
 */
import { FreeTumorError } from '../errors.ts';
import type { DataTypeName } from '../volume/volume.ts';
import type { DicomInstance } from './instance.ts';

export interface PixelFormat {
  rows: number;
  columns: number;
  bitsAllocated: number;
  bitsStored: number;
  signed: boolean;
}

export function checkPixelFormat(inst: DicomInstance): void {
  if (inst.samplesPerPixel !== 1 || !/^MONOCHROME[12]$/.test(inst.photometric)) {
    throw new FreeTumorError(
      'unsupported_datatype',
      `DICOM photometric interpretation ${inst.photometric.replace(/[^A-Z0-9_]/g, '').slice(0, 16) || '?'} with ${inst.samplesPerPixel} sample(s) per pixel is not a grey-scale CT slice`,
    );
  }
  if (
    ![8, 16, 32].includes(inst.bitsAllocated) ||
    inst.bitsStored < 1 ||
    inst.bitsStored > inst.bitsAllocated
  ) {
    throw new FreeTumorError(
      'unsupported_datatype',
      `DICOM BitsAllocated ${inst.bitsAllocated} / BitsStored ${inst.bitsStored} is not supported (8, 16 or 32 bits)`,
    );
  }
  if (!Number.isFinite(inst.slope) || inst.slope === 0 || !Number.isFinite(inst.intercept)) {
    throw new FreeTumorError('invalid_argument', 'DICOM RescaleSlope must be a non-zero number');
  }
}

function storedRange(inst: DicomInstance): [number, number] {
  const b = inst.bitsStored;
  return inst.signed ? [-(2 ** (b - 1)), 2 ** (b - 1) - 1] : [0, 2 ** b - 1];
}

/** The datatype that holds every slice's rescaled range exactly. */
export function outputDatatype(instances: DicomInstance[]): DataTypeName {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const inst of instances) {
    if (!Number.isInteger(inst.slope) || !Number.isInteger(inst.intercept)) return 'float32';
    const [a, b] = storedRange(inst).map((v) => v * inst.slope + inst.intercept);
    lo = Math.min(lo, a, b);
    hi = Math.max(hi, a, b);
  }
  return lo >= -32768 && hi <= 32767 ? 'int16' : 'float32';
}

/**
 * Writes one slice's modality values into `out` at `offset`. `bytes` are the stored values,
 * little-endian, BitsAllocated wide, row by row (what native DICOM and every codec hand back).
 */
export function rescaleInto(
  bytes: Uint8Array,
  inst: DicomInstance,
  out: Int16Array | Float32Array,
  offset: number,
): void {
  const count = inst.rows * inst.columns;
  const width = inst.bitsAllocated / 8;
  if (bytes.length < count * width) {
    throw new FreeTumorError(
      'truncated',
      `DICOM pixel data are truncated: ${bytes.length} of ${count * width} bytes in a slice`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, count * width);
  const bits = inst.bitsStored;
  const mask = bits >= 32 ? 0xffffffff : 2 ** bits - 1;
  const signBit = 2 ** (bits - 1);
  const { slope, intercept } = inst;
  for (let p = 0; p < count; p++) {
    let raw: number;
    if (width === 1) raw = view.getUint8(p);
    else if (width === 2) raw = view.getUint16(2 * p, true);
    else raw = view.getUint32(4 * p, true);
    if (bits < 32) raw &= mask;
    let v = raw;
    if (inst.signed && v >= signBit) v -= 2 * signBit;
    out[offset + p] = v * slope + intercept;
  }
}
