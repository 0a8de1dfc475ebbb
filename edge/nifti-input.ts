/**
 * NIfTI bodies under the configured limits. CTs are streamed (`openNiftiBody`): the header is read
 * and checked first, then slices as the upload arrives, with the compressed-byte, slice, in-plane and
 * idle-time limits. Volumes that are still read whole (small label maps) go through
 * `readNiftiBounded`.
 */
import { LimitError } from '../shared/errors.ts';
import { readNifti } from '../shared/volume/nifti.ts';
import { NiftiSliceReader, type SliceStreamLimits } from '../shared/volume/nifti-slices.ts';
import type { Volume } from '../shared/volume/volume.ts';
import type { EdgeConfig } from './env.ts';

export function readNiftiBounded(bytes: Uint8Array, config: EdgeConfig): Volume {
  return readNifti(bytes, {
    maxCompressedBytes: config.maxBodyBytes,
    maxBytes: config.maxDecompressedBytes,
    maxVoxels: config.maxVoxels,
  });
}

/** The slice-stream limits of a CT body. */
export function sliceLimits(config: EdgeConfig): SliceStreamLimits {
  const maxVoxels = config.maxInPlane * config.maxInPlane * config.maxSlices;
  return {
    maxCompressedBytes: config.maxBodyBytes,
    maxSlices: config.maxSlices,
    maxInPlane: config.maxInPlane,
    maxVoxels,
    maxBytes: maxVoxels * 8,
  };
}

/** Refuses a declared Content-Length over the limit before anything is read. */
export function checkDeclaredLength(req: Request, maxBytes: number): void {
  const declared = req.headers.get('content-length');
  if (declared === null) return;
  const n = Number(declared);
  if (Number.isFinite(n) && n > maxBytes) throw new LimitError('request body bytes', maxBytes, n);
}

/** Opens a streamed NIfTI body (a CT); the header is validated before this returns. */
export function openNiftiBody(
  body: ReadableStream<Uint8Array>,
  config: EdgeConfig,
  signal?: AbortSignal,
): Promise<NiftiSliceReader> {
  return NiftiSliceReader.open(body, {
    limits: sliceLimits(config),
    idleTimeoutMs: config.bodyIdleTimeoutMs,
    signal,
  });
}
