/**
 * `freetumor info FILE [--json]`: the facts of a NIfTI volume: dims, spacing, datatype,
 * orientation codes, affine and intensity min / max / mean. Header strings (descrip, ...)
 * are never printed: they may hold patient data.
 */
import type { Command } from 'commander';
import { axcodes } from '../../../shared/geometry/orientation.ts';
import { voxelVolumeMl } from '../../../shared/labels/components.ts';
import { readNiftiAsync, readNiftiHeader } from '../../../shared/volume/nifti.ts';
import { spacingOf, type VoxelArray } from '../../../shared/volume/volume.ts';
import { printResult, readInput } from '../output.ts';

export interface VolumeInfo {
  niftiVersion: 1 | 2;
  gzip: boolean;
  dims: [number, number, number];
  spacing: [number, number, number];
  datatype: string;
  orientation: string;
  /** Row-major 4x4, voxel -> world (mm, RAS+). */
  affine: number[][];
  affineSource: 'sform' | 'qform' | 'base';
  scaled: boolean;
  voxelVolumeMl: number;
  intensity: { min: number; max: number; mean: number };
}

export function register(program: Command): void {
  program
    .command('info')
    .description(
      'print the facts of a NIfTI volume: dims, spacing, datatype, orientation, affine, intensities',
    )
    .argument('<file>', '.nii or .nii.gz')
    .option('--json', 'print one JSON object')
    .action(async (file: string, opts: { json?: boolean }) => {
      const bytes = await readInput(file, 'input');
      const header = readNiftiHeader(bytes);
      const vol = await readNiftiAsync(bytes);
      const info: VolumeInfo = {
        niftiVersion: header.version,
        gzip: header.gzip,
        dims: vol.dims,
        spacing: spacingOf(vol.affine).map(round6) as [number, number, number],
        datatype: vol.datatype,
        orientation: axcodes(vol.affine),
        affine: [0, 1, 2, 3].map((r) => Array.from(vol.affine.subarray(r * 4, r * 4 + 4))),
        affineSource: header.affineSource,
        scaled: header.scaling !== null,
        voxelVolumeMl: voxelVolumeMl(vol.affine),
        intensity: intensityStats(vol.data),
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
  return [
    `format       NIfTI-${i.niftiVersion}${i.gzip ? ' (gzip)' : ''}`,
    `dims         ${i.dims.join(' x ')}`,
    `spacing      ${i.spacing.map(fmt).join(' x ')} mm`,
    `datatype     ${i.datatype}${i.scaled ? ' (scaled by scl_slope/scl_inter)' : ''}`,
    `orientation  ${i.orientation}`,
    `affine       (${i.affineSource})`,
    ...i.affine.map((row) => `  ${row.map((x) => fmt(x).padStart(12)).join(' ')}`),
    `voxel        ${i.voxelVolumeMl.toPrecision(4)} ml`,
    `intensity    min ${fmt(i.intensity.min)}  max ${fmt(i.intensity.max)}  mean ${i.intensity.mean.toFixed(2)}`,
  ].join('\n');
}
