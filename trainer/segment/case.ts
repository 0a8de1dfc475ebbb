/**
 * One `segment` case with an opened model: read the input, run the shared pipeline, and write what
 * was asked: the mask as NIfTI (with ITK-SNAP and Slicer label tables beside it) or as a DICOM-SEG,
 * the statistics JSON, the preview PNG. A NIfTI file streams through the Worker's pipeline
 * (nifti-case.ts); a DICOM folder or zip is read whole (the one input reader) and segmented in
 * memory. Used by the single-image form and by `--input-dir` batches alike, so both write the same
 * files.
 */
import type { DicomSource } from '../../shared/dicom/read-series.ts';
import type { Lesion } from '../../shared/inference/pipeline.ts';
import type { OrganName } from '../../shared/labels/labelmap.ts';
import { voxelMl } from '../../shared/metrics/dice.ts';
import { maskStructures, type Structure } from '../../shared/segmentation/structures.ts';
import type { Affine, Dims3, Volume } from '../../shared/volume/volume.ts';
import { log, writeOutput } from '../cli/output.ts';
import { type InputKind, readVolumeInput } from '../io/volume-input.ts';
import type { LocalModel } from '../runners/local-model.ts';
import { PACKAGE_NAME, VERSION } from '../version.ts';

export type OutputType = 'nifti' | 'dicom-seg';

export interface SegmentCaseOptions {
  organ?: string;
  organConstraint: boolean;
  minLesionMl: number;
  batchSize: number;
  series?: string;
  outputType: OutputType;
  onProgress?: (done: number, total: number) => void;
}

export interface CaseTargets {
  /** The mask: .nii.gz / .nii, or the DICOM-SEG file. */
  mask: string;
  statistics?: string;
  preview?: string;
}

const round = (x: number) => Math.round(x * 1000) / 1000;

export async function segmentCase(
  input: string,
  model: LocalModel,
  o: SegmentCaseOptions,
  targets: CaseTargets,
) {
  // A NIfTI file streams (nifti-case.ts): a 1000-slice CT is never held whole.
  const { isNiftiFile, segmentNiftiCase } = await import('./nifti-case.ts');
  if (await isNiftiFile(input)) return segmentNiftiCase(input, model, o, targets);
  const { segmentVolume } = await import('../../shared/inference/pipeline.ts');
  const read = await readVolumeInput(input, 'image', { series: o.series });
  const volume = read.volume;
  const manifest = model.manifest;
  const organ = (o.organ ?? manifest.organs[0]) as OrganName;
  const t0 = performance.now();
  const result = await segmentVolume(volume, manifest, model.runner, {
    organ: o.organ,
    organConstraint: o.organConstraint,
    minLesionMl: o.minLesionMl,
    batchSize: o.batchSize,
    onProgress: o.onProgress,
  });
  const seconds = (performance.now() - t0) / 1000;
  const structures = maskStructures(manifest.labels, organ);
  let outputs: Record<string, unknown> = {};
  if (o.outputType === 'dicom-seg') {
    outputs = await writeSegOutput(targets.mask, result.mask, structures, read.dicom ?? null, manifest);
  } else {
    const { writeNifti } = await import('../../shared/volume/nifti.ts');
    const gzip = /\.gz$/i.test(targets.mask);
    await writeOutput(targets.mask, writeNifti(result.mask, { gzip, datatype: 'uint8' }));
    await writeLabelTables(targets.mask, structures);
  }
  const { segmentationStatistics, segmentationStatisticsSchema } = await import(
    '../../shared/segmentation/statistics.ts'
  );
  const stats = segmentationStatistics(volume, result.mask, structures, {
    model: { name: manifest.name, version: manifest.version },
    organ,
  });
  if (targets.statistics) {
    await writeOutput(
      targets.statistics,
      `${JSON.stringify(segmentationStatisticsSchema.parse(stats), null, 2)}\n`,
    );
  }
  if (targets.preview) {
    const { renderSegmentPreviewPng } = await import('../../shared/segmentation/preview.ts');
    const largest = stats.lesions[0];
    await writeOutput(
      targets.preview,
      renderSegmentPreviewPng(volume, result.mask, structures, {
        focusMm: largest?.centroidMm,
        window: manifest.preprocessing.window,
      }),
    );
  }
  return caseSummary(model, read.kind, {
    dims: result.mask.dims,
    affine: result.mask.affine,
    modelDims: result.modelDims,
    organVoxels: stats.organVoxels,
    tumorVoxels: stats.tumorVoxels,
    lesions: result.lesions,
    seconds,
    outputs,
  });
}

/** The summary a case prints (and a batch lists), whichever path segmented it. */
export function caseSummary(
  model: LocalModel,
  input: InputKind,
  r: {
    dims: Dims3;
    affine: Affine;
    modelDims: Dims3;
    organVoxels: number;
    tumorVoxels: number;
    lesions: Lesion[];
    seconds: number;
    outputs: Record<string, unknown>;
  },
) {
  const manifest = model.manifest;
  const ml = voxelMl(r.affine);
  return {
    model: { name: manifest.name, version: manifest.version, precision: model.precision },
    engine: model.engine,
    input,
    dims: r.dims,
    modelDims: r.modelDims,
    organVoxels: r.organVoxels,
    tumorVoxels: r.tumorVoxels,
    organMl: round(r.organVoxels * ml),
    tumorMl: round(r.tumorVoxels * ml),
    lesions: r.lesions.map((l) => ({ ...l, volumeMl: round(l.volumeMl) })),
    seconds: round(r.seconds),
    ...r.outputs,
  };
}

/** The ITK-SNAP and Slicer label tables beside a NIfTI mask. */
export async function writeLabelTables(maskPath: string, structures: Structure[]): Promise<void> {
  const { itkSnapLabels, labelTablePaths, slicerColorTable } = await import(
    '../../shared/segmentation/label-tables.ts'
  );
  const tables = labelTablePaths(maskPath);
  await writeOutput(tables.itkSnap, itkSnapLabels(structures));
  await writeOutput(tables.slicer, slicerColorTable(structures));
}

/** The mask as a DICOM-SEG (referencing the DICOM input, else a new study); the summary's dicomSeg. */
export async function writeSegOutput(
  path: string,
  mask: Volume<Uint8Array>,
  structures: Structure[],
  dicom: DicomSource | null,
  manifest: LocalModel['manifest'],
): Promise<Record<string, unknown>> {
  const { writeDicomSeg } = await import('../../shared/dicom/seg.ts');
  const seg = writeDicomSeg(mask, structures, dicom, {
    software: { name: PACKAGE_NAME, version: VERSION },
    algorithm: { name: manifest.name, version: manifest.version },
  });
  await writeOutput(path, seg.bytes);
  if (seg.newStudy) {
    log(
      'segment: the input is not DICOM, so the DICOM-SEG starts a new study, series and frame of reference (new UIDs) and has no patient attributes',
    );
  }
  return {
    dicomSeg: {
      frames: seg.frames,
      segments: structures.length,
      newStudy: seg.newStudy,
      referencedSeries: dicom?.seriesInstanceUid ?? null,
    },
  };
}

export type CaseSummary = Awaited<ReturnType<typeof segmentCase>>;
