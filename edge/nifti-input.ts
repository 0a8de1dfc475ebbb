/** NIfTI bodies read under the configured limits (compressed, decompressed bytes and voxels). */
import { readNifti } from '../shared/volume/nifti.ts';
import type { Volume } from '../shared/volume/volume.ts';
import type { EdgeConfig } from './env.ts';

export function readNiftiBounded(bytes: Uint8Array, config: EdgeConfig): Volume {
  return readNifti(bytes, {
    maxCompressedBytes: config.maxBodyBytes,
    maxBytes: config.maxDecompressedBytes,
    maxVoxels: config.maxVoxels,
  });
}
