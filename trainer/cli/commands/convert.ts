/**
 * `freetumor convert IN OUT [--spacing S | --spacing x,y,z] [--orient CODES] [--nearest | --linear]
 * [--datatype T] [--series UID] [--json]`: read a NIfTI file or a DICOM series (folder or zip),
 * reorient (exactly: flips and permutations), then resample, then write NIfTI-1 in the datatype
 * asked for (`.nii.gz` or `.nii`, by OUT's name).
 *
 * Interpolation: a label volume (integer voxels, none negative, at most 1024 distinct values:
 * shared/labels/detect.ts) is resampled with nearest neighbour on its own, because trilinear
 * would invent ids between neighbours (60 TotalSegmentator classes became 105 values). A CT
 * (negative air, thousands of values) gets trilinear. The choice and its reason are printed;
 * --nearest or --linear override it. Refusing label volumes without --nearest would only make
 * every user type it, and the wrong guess can only be a CT without air, shown in the output.
 */
import type { Command } from 'commander';
import {
  applyReorientation,
  axcodes,
  isAxcodes,
  reorientationTo,
} from '../../../shared/geometry/orientation.ts';
import { resampleToSpacing } from '../../../shared/geometry/resample.ts';
import { labelVolumeEvidence } from '../../../shared/labels/detect.ts';
import { DATATYPE_NAMES, isDataTypeName } from '../../../shared/volume/datatype.ts';
import { writeNiftiAsync } from '../../../shared/volume/nifti.ts';
import { type DataTypeName, type Dims3, spacingOf, type Volume } from '../../../shared/volume/volume.ts';
import { readVolume, SERIES_OPTION_HELP } from '../../io/volume-input.ts';
import { CliError, printResult, writeOutput } from '../output.ts';

interface ConvertOptions {
  spacing?: Dims3;
  orient?: string;
  nearest?: boolean;
  linear?: boolean;
  datatype?: DataTypeName;
  series?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('convert')
    .description('convert a NIfTI volume or a DICOM series to NIfTI: reorient, resample, re-encode')
    .argument('<in>', 'input .nii / .nii.gz, or a DICOM series folder or .zip')
    .argument('<out>', 'output .nii.gz (or .nii, uncompressed)')
    .option('--spacing <mm>', 'resample to this voxel size: S (isotropic) or x,y,z', parseSpacing)
    .option('--orient <codes>', 'reorient to these axis codes, e.g. RAS or LPS', parseOrient)
    .option('--nearest', 'nearest-neighbour resampling (default for label volumes)')
    .option('--linear', 'trilinear resampling (default for images)')
    .option(
      '--datatype <type>',
      `datatype to write: ${DATATYPE_NAMES.join(', ')} (default: the input's)`,
      parseDatatype,
    )
    .option('--series <uid>', SERIES_OPTION_HELP)
    .option('--json', 'print one JSON object')
    .action(async (input: string, output: string, opts: ConvertOptions) => {
      const gzip = outputIsGzip(output);
      if (opts.nearest && opts.linear) throw new CliError('--nearest and --linear exclude each other');
      let vol: Volume = await readVolume(input, 'input', { series: opts.series });
      const from = { dims: vol.dims, spacing: spacingOf(vol.affine), orientation: axcodes(vol.affine) };
      const interpolation = opts.spacing ? chooseInterpolation(vol, opts) : null;
      if (opts.orient) vol = applyReorientation(vol, reorientationTo(vol.affine, opts.orient));
      if (opts.spacing && interpolation) vol = resampleToSpacing(vol, opts.spacing, interpolation.mode);
      const datatype = opts.datatype ?? vol.datatype;
      const bytes = await writeNiftiAsync(vol, { gzip, datatype });
      await writeOutput(output, bytes);
      const result = {
        from,
        to: { dims: vol.dims, spacing: spacingOf(vol.affine), orientation: axcodes(vol.affine), datatype },
        interpolation,
        bytes: bytes.length,
        gzip,
      };
      printResult(opts.json === true, result, () =>
        [
          `dims         ${from.dims.join(' x ')} -> ${result.to.dims.join(' x ')}`,
          `spacing      ${from.spacing.map((s) => s.toFixed(3)).join(' x ')} -> ${result.to.spacing.map((s) => s.toFixed(3)).join(' x ')} mm`,
          `orientation  ${from.orientation} -> ${result.to.orientation}`,
          ...(interpolation ? [`resampling   ${interpolation.mode} (${interpolation.reason})`] : []),
          `datatype     ${datatype}, ${bytes.length} bytes written`,
        ].join('\n'),
      );
    });
}

function outputIsGzip(path: string): boolean {
  if (/\.nii\.gz$/i.test(path)) return true;
  if (/\.nii$/i.test(path)) return false;
  throw new CliError('the output name must end in .nii.gz or .nii');
}

function parseSpacing(value: string): Dims3 {
  const parts = value.split(',').map((p) => Number(p.trim()));
  const ok =
    (parts.length === 1 || parts.length === 3) && parts.every((n) => Number.isFinite(n) && n > 0 && n <= 100);
  if (!ok)
    throw new CliError(
      `--spacing must be S or x,y,z in mm (each > 0 and <= 100), got ${JSON.stringify(value.slice(0, 40))}`,
    );
  return (parts.length === 1 ? [parts[0], parts[0], parts[0]] : parts) as Dims3;
}

function parseOrient(value: string): string {
  const codes = value.toUpperCase();
  if (!isAxcodes(codes))
    throw new CliError(
      `--orient must be 3 axis letters such as RAS or LPS, got ${JSON.stringify(value.slice(0, 10))}`,
    );
  return codes;
}

function parseDatatype(value: string): DataTypeName {
  if (!isDataTypeName(value)) throw new CliError(`--datatype must be one of ${DATATYPE_NAMES.join(', ')}`);
  return value;
}

function chooseInterpolation(
  vol: Volume,
  opts: ConvertOptions,
): { mode: 'nearest' | 'linear'; reason: string } {
  if (opts.nearest) return { mode: 'nearest', reason: '--nearest' };
  if (opts.linear) return { mode: 'linear', reason: '--linear' };
  const e = labelVolumeEvidence(vol.data);
  return e.isLabel
    ? { mode: 'nearest', reason: `label volume: ${e.reason}; --linear to override` }
    : { mode: 'linear', reason: `image: ${e.reason}; --nearest to override` };
}
