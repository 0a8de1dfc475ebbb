/**
 * NIfTI files on the CLI through Node's native zlib. Reading: the header is read first (the
 * shared reader inflates only as far as it), then gunzipSync inflates exactly the bytes it
 * announces (maxOutputLength), so a gzip bomb behind a small header never inflates; a stream that
 * holds more than that, or a corrupt one, goes to the shared reader, which stops at the end of the
 * data or says what is wrong. On the real 5.5 MB sample CT this is ~5-10x faster than fflate's
 * pure-JS inflate and ~2x faster than the web DecompressionStream (which the shared reader keeps
 * for the Worker). Writing deflates at level 1 (nibabel's default level), 2-4x faster than
 * fflate's level 1 and 3-4x faster than zlib's default 6, for files ~12% larger.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { isGzip } from '../../shared/volume/gzip.ts';
import { readNifti, readNiftiHeader, type WriteNiftiOptions, writeNifti } from '../../shared/volume/nifti.ts';
import type { Volume } from '../../shared/volume/volume.ts';

export function readNiftiNode(bytes: Uint8Array): Volume {
  if (!isGzip(bytes)) return readNifti(bytes);
  const header = readNiftiHeader(bytes);
  let raw: Buffer;
  try {
    raw = gunzipSync(bytes, { maxOutputLength: header.voxOffset + header.dataBytes });
  } catch {
    return readNifti(bytes);
  }
  return readNifti(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
}

export function niftiGz(vol: Volume, opts: Omit<WriteNiftiOptions, 'gzip' | 'level'> = {}): Uint8Array {
  return gzipSync(writeNifti(vol, { ...opts, gzip: false }), { level: 1 });
}
