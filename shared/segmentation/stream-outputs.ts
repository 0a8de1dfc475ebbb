/**
 * Statistics and the preview of a streamed segmentation: a second pass over the CT, storage slice by
 * storage slice, beside the mask replayed from the segmentation's compressed class ids (with each
 * voxel's lesion id). Memory: one CT slice, one mask slice and the two preview planes; the numbers
 * and pixels equal those of the whole-volume functions (statistics.ts, preview.ts) on the same mask.
 */
import { encode } from 'fast-png';
import { canonicalReorientation, reorientedGrid } from '../geometry/orientation.ts';
import type { StreamSegmentation } from '../inference/stream-segment.ts';
import type { NiftiSliceReader } from '../volume/nifti-slices.ts';
import { spacingOf } from '../volume/volume.ts';
import {
  organClasses,
  PreviewPlaneCollector,
  previewFocus,
  renderPreviewPlanes,
  SliceCentroid,
} from './preview.ts';
import { type SegmentationStatistics, StreamingStatistics } from './statistics.ts';
import type { Structure } from './structures.ts';

export interface SecondPassOptions {
  context: { model: { name: string; version: string }; organ: string };
  /** Compute the preview (PNG) too; its focus is the largest lesion, else `organCentroid`. */
  preview?: {
    window?: readonly [number, number];
    /** The organ centroid taken while the mask went out (`maskCentroid`), for a mask without lesions. */
    organCentroid: SliceCentroid;
  };
}

/** The centroid taker for the first pass over the mask (the classes the preview falls back to). */
export function maskCentroid(seg: Pick<StreamSegmentation, 'dims'>, structures: Structure[]): SliceCentroid {
  return new SliceCentroid(seg.dims[0], organClasses(structures));
}

/**
 * Reads `ct` (the same CT, opened again, header read) to its last slice beside `seg.replay()`.
 * Call after `seg.slices()` was exhausted.
 */
export async function secondPass(
  seg: Pick<StreamSegmentation, 'dims' | 'affine' | 'lesions' | 'replay'>,
  ct: NiftiSliceReader,
  structures: Structure[],
  options: SecondPassOptions,
): Promise<{ statistics: SegmentationStatistics; previewPng: Uint8Array | null }> {
  const lesions = seg.lesions();
  const stats = new StreamingStatistics(structures, lesions);
  const r = canonicalReorientation(seg.affine);
  const canonical = reorientedGrid(seg.dims, seg.affine, r);
  const preview = options.preview;
  const previewOptions = { focusMm: lesions[0]?.centroidMm, window: preview?.window };
  const at = preview
    ? previewFocus(canonical.dims, canonical.affine, previewOptions, () =>
        preview.organCentroid.canonical(seg.dims, r),
      )
    : null;
  const planes = at ? new PreviewPlaneCollector(seg.dims, r, at) : null;
  try {
    for (const { mask, lesions: ids } of seg.replay()) {
      const hu = await ct.next();
      if (!hu) throw new Error('internal: the CT ended before the mask');
      stats.add(hu, mask, ids);
      planes?.add(hu, mask);
    }
  } finally {
    await ct.cancel();
  }
  let previewPng: Uint8Array | null = null;
  if (planes && at) {
    const rgba = renderPreviewPlanes(
      canonical.dims,
      spacingOf(canonical.affine),
      at,
      planes,
      structures,
      previewOptions,
    );
    previewPng = encode({ ...rgba, channels: 4, depth: 8 });
  }
  return { statistics: stats.result(options.context, seg.dims, seg.affine), previewPng };
}
