/**
 * A preprocessed training case (canonical RAS, resampled, windowed to [0, 1], labels in the merged
 * scheme of one organ) and its on-disk form in the preprocessing cache: a small binary file
 * "FTCASE01" + uint32 header length + JSON header + padding to 4 + float32 image + uint8 label.
 */
import { FreeTumorError } from '../../shared/errors.ts';
import type { OrganName } from '../../shared/labels/labelmap.ts';
import { type Dims3, voxelCount } from '../../shared/volume/volume.ts';

export interface TrainingCase {
  id: string;
  /** [nx, ny, nz]; data index i + nx * (j + ny * k). */
  dims: Dims3;
  /** Windowed intensities in [0, 1]. */
  image: Float32Array;
  /** Merged scheme: 0 background, 1 organ, 2 real tumor. */
  label: Uint8Array;
  organ: OrganName;
  /** True for cases with tumor annotations (the "labeled" part); false for organ-only masks. */
  labeled: boolean;
}

const MAGIC = 'FTCASE01';

interface CaseHeader {
  id: string;
  dims: Dims3;
  organ: OrganName;
  labeled: boolean;
}

export function encodeCase(c: TrainingCase): Uint8Array {
  const header = new TextEncoder().encode(
    JSON.stringify({ id: c.id, dims: c.dims, organ: c.organ, labeled: c.labeled }),
  );
  const n = voxelCount(c.dims);
  const imageOffset = Math.ceil((12 + header.length) / 4) * 4;
  const out = new Uint8Array(imageOffset + 4 * n + n);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, header.length, true);
  out.set(header, 12);
  out.set(new Uint8Array(c.image.buffer, c.image.byteOffset, 4 * n), imageOffset);
  out.set(c.label, imageOffset + 4 * n);
  return out;
}

export function decodeCase(bytes: Uint8Array): TrainingCase {
  const bad = (why: string) =>
    new FreeTumorError(
      'invalid_argument',
      `preprocessed case file is corrupt (${why}); delete the cache entry`,
    );
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) throw bad('magic');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(8, true);
  if (12 + headerLength > bytes.length) throw bad('header');
  const h = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLength))) as CaseHeader;
  const n = voxelCount(h.dims);
  const imageOffset = Math.ceil((12 + headerLength) / 4) * 4;
  if (bytes.length !== imageOffset + 5 * n) throw bad('size');
  // Copy into fresh, aligned buffers (the file buffer may be shared or unaligned).
  const image = new Float32Array(n);
  new Uint8Array(image.buffer).set(bytes.subarray(imageOffset, imageOffset + 4 * n));
  const label = bytes.slice(imageOffset + 4 * n, imageOffset + 5 * n);
  return { id: h.id, dims: h.dims, organ: h.organ, labeled: h.labeled, image, label };
}
