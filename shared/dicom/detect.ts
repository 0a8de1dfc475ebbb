/** Recognising a DICOM Part 10 file by its bytes, without loading the parser. */

/** True when the bytes start like a Part 10 file (128-byte preamble then "DICM"). */
export function isDicomPart10(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 132 &&
    bytes[128] === 0x44 &&
    bytes[129] === 0x49 &&
    bytes[130] === 0x43 &&
    bytes[131] === 0x4d
  );
}
