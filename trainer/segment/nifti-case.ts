/**
 * `segment` on a NIfTI file, streamed: the CT goes through the Worker's streaming pipeline
 * (shared/inference/stream-segment.ts), so memory holds a few slices, one band of model slabs and the
 * run-length-coded class ids, never the volume (a 512 x 512 x 1000 CT is 500 MB of int16, 1 GB as
 * float32). The mask streams to its file (or, for a DICOM-SEG, is gathered as one uint8 volume).
 * Statistics and the preview need the CT's HU under the final mask: the CT file is read a second
 * time, slice by slice, with the mask replayed beside it; the numbers equal the whole-volume path's.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { isDicomPart10 } from '../../shared/dicom/detect.ts';
import { isZip } from '../../shared/dicom/zip.ts';
import { segmentNiftiStream } from '../../shared/inference/stream-segment.ts';
import type { OrganName } from '../../shared/labels/labelmap.ts';
import { segmentationStatisticsSchema } from '../../shared/segmentation/statistics.ts';
import { maskCentroid, secondPass } from '../../shared/segmentation/stream-outputs.ts';
import { maskStructures } from '../../shared/segmentation/structures.ts';
import { DEFAULT_SLICE_LIMITS, NiftiSliceReader } from '../../shared/volume/nifti-slices.ts';
import { gzipNiftiSliceStream, niftiSliceStream } from '../../shared/volume/nifti-write-stream.ts';
import type { Volume } from '../../shared/volume/volume.ts';
import { writeOutput, writeOutputStream } from '../cli/output.ts';
import type { LocalModel } from '../runners/local-model.ts';
import {
  type CaseTargets,
  caseSummary,
  type SegmentCaseOptions,
  writeLabelTables,
  writeSegOutput,
} from './case.ts';

/** Bytes the input kind is told from: zip magic (4), DICOM preamble + "DICM" (132). */
const HEAD_BYTES = 132;

/** Whether `path` is a file that is neither a zip nor a DICOM file: what the input reader takes as NIfTI. */
export async function isNiftiFile(path: string): Promise<boolean> {
  const info = await stat(path).catch(() => null);
  if (!info?.isFile()) return false;
  const fh = await open(path, 'r');
  try {
    const head = new Uint8Array(Math.min(HEAD_BYTES, info.size));
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const bytes = head.subarray(0, bytesRead);
    return !isZip(bytes) && !isDicomPart10(bytes);
  } finally {
    await fh.close();
  }
}

async function openCt(path: string): Promise<NiftiSliceReader> {
  const stream = Readable.toWeb(createReadStream(path, { highWaterMark: 1 << 20 }));
  return NiftiSliceReader.open(stream as ReadableStream<Uint8Array>, { limits: DEFAULT_SLICE_LIMITS });
}

export async function segmentNiftiCase(
  input: string,
  model: LocalModel,
  o: SegmentCaseOptions,
  targets: CaseTargets,
) {
  const manifest = model.manifest;
  const organ = (o.organ ?? manifest.organs[0]) as OrganName;
  const structures = maskStructures(manifest.labels, organ);
  const t0 = performance.now();
  const seg = await segmentNiftiStream(await openCt(input), manifest, model.runner, {
    organ: o.organ,
    organConstraint: o.organConstraint,
    minLesionMl: o.minLesionMl,
    batchSize: o.batchSize,
    onProgress: o.onProgress,
  });
  const seconds = (performance.now() - t0) / 1000;

  // Pass 1: the mask goes out; lesions, class counts and the organ centroid are taken on the way.
  const centroid = maskCentroid(seg, structures);
  const slices = (function* () {
    for (const s of seg.slices()) {
      centroid.add(s);
      yield s;
    }
  })();
  let outputs: Record<string, unknown> = {};
  if (o.outputType === 'dicom-seg') {
    const plane = seg.dims[0] * seg.dims[1];
    const data = new Uint8Array(plane * seg.dims[2]);
    let k = 0;
    for (const s of slices) data.set(s, plane * k++);
    const mask: Volume<Uint8Array> = { dims: seg.dims, data, affine: seg.affine, datatype: 'uint8' };
    outputs = await writeSegOutput(targets.mask, mask, structures, null, manifest);
  } else {
    const gzip = /\.gz$/i.test(targets.mask);
    const write = gzip ? gzipNiftiSliceStream : niftiSliceStream;
    await writeOutputStream(targets.mask, write(seg.dims, seg.affine, 'uint8', slices));
    await writeLabelTables(targets.mask, structures);
  }
  const counts = seg.classVoxels();
  const organClass = structures.find((s) => s.kind === 'organ')?.classId;
  const tumorClass = structures.find((s) => s.kind === 'tumor')?.classId;

  // Pass 2 (statistics, preview): the CT file again, slice by slice, beside the replayed mask.
  if (targets.statistics || targets.preview) {
    const { statistics, previewPng } = await secondPass(seg, await openCt(input), structures, {
      context: { model: { name: manifest.name, version: manifest.version }, organ },
      preview: targets.preview
        ? { window: manifest.preprocessing.window, organCentroid: centroid }
        : undefined,
    });
    if (targets.statistics) {
      await writeOutput(
        targets.statistics,
        `${JSON.stringify(segmentationStatisticsSchema.parse(statistics), null, 2)}\n`,
      );
    }
    if (targets.preview && previewPng) await writeOutput(targets.preview, previewPng);
  }
  return caseSummary(model, 'nifti', {
    dims: seg.dims,
    affine: seg.affine,
    modelDims: seg.modelDims,
    organVoxels: organClass === undefined ? 0 : counts[organClass],
    tumorVoxels: tumorClass === undefined ? 0 : counts[tumorClass],
    lesions: seg.lesions(),
    seconds,
    outputs,
  });
}
