/**
 * DICOM RLE Lossless (PS3.5 Annex G): a 64-byte header (segment count, 15 offsets), then one
 * PackBits segment per byte plane, most significant plane first. No maintained npm package decodes
 * it on its own (the cornerstone loader bundles it inside a viewer), and the format is 30 lines, so it
 * lives here; every write is bounds-checked and the output size is fixed by Rows x Columns.
 */
import { FreeTumorError } from '../errors.ts';

function corrupt(what: string): FreeTumorError {
  return new FreeTumorError('invalid_argument', `DICOM RLE frame is corrupt: ${what}`);
}

/** Returns the stored values little-endian, `bitsAllocated / 8` bytes per pixel. */
export function decodeRle(
  frame: Uint8Array,
  info: { rows: number; columns: number; bitsAllocated: number },
): Uint8Array {
  const pixels = info.rows * info.columns;
  const planes = info.bitsAllocated / 8;
  if (frame.length < 64) throw corrupt('shorter than its 64-byte header');
  const head = new DataView(frame.buffer, frame.byteOffset, 64);
  const segments = head.getUint32(0, true);
  if (segments !== planes) throw corrupt(`${segments} segments for ${info.bitsAllocated}-bit pixels`);
  const out = new Uint8Array(pixels * planes);
  for (let s = 0; s < segments; s++) {
    const start = head.getUint32(4 + 4 * s, true);
    const end = s + 1 < segments ? head.getUint32(8 + 4 * s, true) : frame.length;
    if (start < 64 || end > frame.length || end < start) throw corrupt('segment offsets out of range');
    // Segment 0 holds the most significant bytes; little-endian output puts them last.
    const plane = planes - 1 - s;
    let pos = start;
    let p = 0;
    while (p < pixels && pos < end) {
      const n = (frame[pos++] << 24) >> 24; // signed header byte
      if (n >= 0) {
        const count = n + 1;
        if (pos + count > end || p + count > pixels) throw corrupt('literal run overflows');
        for (let i = 0; i < count; i++) out[p++ * planes + plane] = frame[pos++];
      } else if (n !== -128) {
        const count = 1 - n;
        if (pos >= end || p + count > pixels) throw corrupt('replicate run overflows');
        const value = frame[pos++];
        for (let i = 0; i < count; i++) out[p++ * planes + plane] = value;
      }
    }
    if (p !== pixels) throw corrupt(`segment ${s + 1} decodes to ${p} of ${pixels} pixels`);
  }
  return out;
}
