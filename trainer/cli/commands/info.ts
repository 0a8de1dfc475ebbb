/**
 * `freetumor info INPUT [--series UID] [--json]`: the facts of a volume (NIfTI file, DICOM series
 * folder or zip): dims, spacing, datatype, orientation codes, affine and intensity min / max / mean;
 * for DICOM also the series UID, modality, slice count and transfer syntax. Header strings (descrip,
 * patient and study attributes) are never printed: they may hold patient data.
 */
import type { Command } from 'commander';
import { axcodes } from '../../../shared/geometry/orientation.ts';
import { voxelVolumeMl } from '../../../shared/labels/components.ts';
import { spacingOf, type VoxelArray } from '../../../shared/volume/volume.ts';
import { readVolumeInput, SERIES_OPTION_HELP } from '../../io/volume-input.ts';
import { printResult } from '../output.ts';

export interface VolumeInfo {
  format: 'nifti' | 'dicom';
  /** NIfTI only. */
  niftiVersion?: 1 | 2;
  gzip?: boolean;
  dims: [number, number, number];
  spacing: [number, number, number];
  datatype: string;
  orientation: string;
  /** Row-major 4x4, voxel -> world (mm, RAS+). */
  affine: number[][];
  affineSource: 'sform' | 'qform' | 'base' | 'dicom';
  /** NIfTI scl_slope / scl_inter, or DICOM RescaleSlope / Intercept applied. */
  scaled: boolean;
  /** DICOM only: the series read (no patient or study attributes). */
  dicom?: {
    container: 'folder' | 'zip';
    seriesInstanceUid: string;
    modality: string;
    slices: number;
    transferSyntax: string;
    otherSeries: number;
    skippedFiles: number;
  };
  voxelVolumeMl: number;
  intensity: { min: number; max: number; mean: number };
}

export function register(program: Command): void {
  program
    .command('info')
    .description(
      'print the facts of a volume (NIfTI or DICOM series): dims, spacing, datatype, orientation, affine, intensities',
    )
    .argument('<input>', '.nii / .nii.gz, or a DICOM series folder or .zip')
    .option('--series <uid>', SERIES_OPTION_HELP)
    .option('--json', 'print one JSON object')
    .action(async (file: string, opts: { json?: boolean; series?: string }) => {
      const input = await readVolumeInput(file, 'input', { series: opts.series });
      const vol = input.volume;
      const header = input.nifti;
      const dicom = input.dicom;
      const info: VolumeInfo = {
        format: header ? 'nifti' : 'dicom',
        ...(header ? { niftiVersion: header.version, gzip: header.gzip } : {}),
        dims: vol.dims,
        spacing: spacingOf(vol.affine).map(round6) as [number, number, number],
        datatype: vol.datatype,
        orientation: axcodes(vol.affine),
        affine: [0, 1, 2, 3].map((r) => Array.from(vol.affine.subarray(r * 4, r * 4 + 4))),
        affineSource: header ? header.affineSource : 'dicom',
        scaled: header ? header.scaling !== null : dicom!.rescaled,
        voxelVolumeMl: voxelVolumeMl(vol.affine),
        intensity: intensityStats(vol.data),
        ...(dicom
          ? {
              dicom: {
                container: input.kind === 'dicom-zip' ? ('zip' as const) : ('folder' as const),
                seriesInstanceUid: dicom.seriesInstanceUid,
                modality: dicom.modality,
                slices: dicom.slices.length,
                transferSyntax: dicom.transferSyntax,
                otherSeries: dicom.otherSeries.length,
                skippedFiles: dicom.skippedFiles,
              },
            }
          : {}),
      };
      printResult(opts.json === true, info, () => formatInfo(info));
    });
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/** min / max / mean over the finite voxels (NaN and inf in float data are skipped). */
export function intensityStats(data: VoxelArray): { min: number; max: number; mean: number } {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let sum = 0;
  let n = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    n++;
  }
  if (n === 0) return { min: Number.NaN, max: Number.NaN, mean: Number.NaN };
  return { min, max, mean: sum / n };
}

function formatInfo(i: VolumeInfo): string {
  const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(4));
  const d = i.dicom;
  const format = d
    ? `DICOM series (${d.container}): ${d.modality || '?'}, ${d.slices} slices, transfer syntax ${d.transferSyntax}`
    : `NIfTI-${i.niftiVersion}${i.gzip ? ' (gzip)' : ''}`;
  return [
    `format       ${format}`,
    ...(d
      ? [
          `series       ${d.seriesInstanceUid}${d.otherSeries ? ` (${d.otherSeries} other series in the input)` : ''}`,
        ]
      : []),
    `dims         ${i.dims.join(' x ')}`,
    `spacing      ${i.spacing.map(fmt).join(' x ')} mm`,
    `datatype     ${i.datatype}${i.scaled ? (d ? ' (rescaled by RescaleSlope/Intercept)' : ' (scaled by scl_slope/scl_inter)') : ''}`,
    `orientation  ${i.orientation}`,
    `affine       (${i.affineSource})`,
    ...i.affine.map((row) => `  ${row.map((x) => fmt(x).padStart(12)).join(' ')}`),
    `voxel        ${i.voxelVolumeMl.toPrecision(4)} ml`,
    `intensity    min ${fmt(i.intensity.min)}  max ${fmt(i.intensity.max)}  mean ${i.intensity.mean.toFixed(2)}`,
  ].join('\n');
}
