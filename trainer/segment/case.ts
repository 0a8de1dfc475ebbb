/**
 * One `segment` case with an opened model: read the input (NIfTI, DICOM folder or zip: the one input
 * reader), run the shared pipeline, and write what was asked: the mask as NIfTI (with ITK-SNAP and
 * Slicer label tables beside it) or as a DICOM-SEG, the statistics JSON, the preview PNG. Used by the
 * single-image form and by `--input-dir` batches alike, so both write the same files.
 */
import type { OrganName } from '../../shared/labels/labelmap.ts';
import { voxelMl } from '../../shared/metrics/dice.ts';
import { maskStructures } from '../../shared/segmentation/structures.ts';
import { log, writeOutput } from '../cli/output.ts';
import { readVolumeInput } from '../io/volume-input.ts';
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
  const { segmentVolume } = await import('../../shared/inference/pipeline.ts');
  const { writeNifti } = await import('../../shared/volume/nifti.ts');
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
  const outputs: Record<string, unknown> = {};
  if (o.outputType === 'dicom-seg') {
    const { writeDicomSeg } = await import('../../shared/dicom/seg.ts');
    const seg = writeDicomSeg(result.mask, structures, read.dicom ?? null, {
      software: { name: PACKAGE_NAME, version: VERSION },
      algorithm: { name: manifest.name, version: manifest.version },
    });
    await writeOutput(targets.mask, seg.bytes);
    if (seg.newStudy) {
      log(
        'segment: the input is not DICOM, so the DICOM-SEG starts a new study, series and frame of reference (new UIDs) and has no patient attributes',
      );
    }
    outputs.dicomSeg = {
      frames: seg.frames,
      segments: structures.length,
      newStudy: seg.newStudy,
      referencedSeries: read.dicom?.seriesInstanceUid ?? null,
    };
  } else {
    const { itkSnapLabels, labelTablePaths, slicerColorTable } = await import(
      '../../shared/segmentation/label-tables.ts'
    );
    const gzip = /\.gz$/i.test(targets.mask);
    await writeOutput(targets.mask, writeNifti(result.mask, { gzip, datatype: 'uint8' }));
    const tables = labelTablePaths(targets.mask);
    await writeOutput(tables.itkSnap, itkSnapLabels(structures));
    await writeOutput(tables.slicer, slicerColorTable(structures));
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
  const ml = voxelMl(result.mask.affine);
  return {
    model: { name: manifest.name, version: manifest.version, precision: model.precision },
    input: read.kind,
    dims: result.mask.dims,
    modelDims: result.modelDims,
    organVoxels: stats.organVoxels,
    tumorVoxels: stats.tumorVoxels,
    organMl: round(stats.organVoxels * ml),
    tumorMl: round(stats.tumorVoxels * ml),
    lesions: result.lesions.map((l) => ({ ...l, volumeMl: round(l.volumeMl) })),
    seconds: round(seconds),
    ...outputs,
  };
}

export type CaseSummary = Awaited<ReturnType<typeof segmentCase>>;
