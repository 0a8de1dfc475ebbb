/**
 * gzip for NIfTI, on fflate (pure JS, so the edge can use it). Inflating is streamed in small
 * input chunks and the consumer decides after each chunk whether it has had enough, so a
 * gzip bomb never inflates much past the caller's cap: the gzip trailer's ISIZE is not
 * trusted (it is only the size mod 2^32 and anyone can write it).
 */
import { Gunzip, gzipSync } from 'fflate';
import { FreeTumorError, NiftiError } from '../errors.ts';

/** gzip's magic bytes: 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Inflates `gz` `inputChunk` compressed bytes at a time (deflate expands at most ~1032x, so
 * one step inflates at most ~1032 * inputChunk bytes past what the consumer asked for),
 * handing each piece of output to `sink`; `sink` returns false to stop early (the rest is
 * never inflated). Returns whether the stream was inflated to its
 * end. Any fflate failure (bad header, corrupt deflate data) becomes a NiftiError.
 */
export function gunzipStream(
  gz: Uint8Array,
  sink: (chunk: Uint8Array) => boolean,
  inputChunk: number | (() => number) = 16 * 1024,
): boolean {
  const step = typeof inputChunk === 'number' ? () => inputChunk : inputChunk;
  let stop = false;
  let ended = false;
  const inflater = new Gunzip((chunk, final) => {
    if (stop) return;
    if (chunk.length > 0 && !sink(chunk)) stop = true;
    if (final) ended = true;
  });
  try {
    for (let pos = 0; pos < gz.length && !stop; ) {
      const end = Math.min(gz.length, pos + Math.max(1, step()));
      inflater.push(gz.subarray(pos, end), end === gz.length);
      pos = end;
    }
  } catch (e) {
    // The sink's own typed errors (a bad header seen mid-stream) pass through as they are.
    if (e instanceof FreeTumorError) throw e;
    if (stop) return false;
    throw gzipError(e);
  }
  return ended && !stop;
}

function gzipError(e: unknown): NiftiError {
  // fflate's messages are fixed strings ("invalid block type", "unexpected EOF", ...) with no
  // data in them; "unexpected EOF" is how a cut-off download shows.
  const msg = e instanceof Error ? e.message : 'unknown error';
  if (/EOF/i.test(msg)) return new NiftiError('truncated', 'gzip stream is truncated');
  return new NiftiError('invalid_nifti', `gzip stream is corrupt (${msg.slice(0, 60)})`);
}

/**
 * gzip-compresses `bytes`; level 1..9 (6 is zlib's default balance of speed and size).
 * mtime 0 keeps the output a pure function of the input, so the same volume gives the same file.
 */
export function gzip(bytes: Uint8Array, level: 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 = 6): Uint8Array {
  return gzipSync(bytes, { level, mem: 8, mtime: 0 });
}
