/**
 * `freetumor evaluate --pred MASK --truth LABEL [--json] [--tolerance MM] [--organ-label N]
 * [--tumor-label N]`: tumor and organ Dice, NSD at a tolerance, lesion detection and volumes in ml
 * (shared/metrics, the same code the trainer validates with). Both masks must share one grid.
 */
import type { Command } from 'commander';
import { readVolume } from '../../io/volume-input.ts';
import { CliError, integer, positiveNumber, printResult } from '../output.ts';

interface EvaluateCliOptions {
  pred: string;
  truth: string;
  tolerance: number;
  organLabel: number;
  tumorLabel: number;
  minLesionMl: number;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('evaluate')
    .description('score a predicted mask against a reference: Dice, NSD, lesion detection, volumes')
    .requiredOption('--pred <mask>', 'predicted label mask (.nii/.nii.gz, or a DICOM series folder/zip)')
    .requiredOption('--truth <label>', 'reference label mask on the same grid')
    .option('--tolerance <mm>', 'NSD tolerance in mm', positiveNumber('--tolerance'), 2)
    .option('--organ-label <n>', 'organ label value in both masks', integer('--organ-label', 0), 1)
    .option('--tumor-label <n>', 'tumor label value in both masks', integer('--tumor-label', 0), 2)
    .option('--min-lesion-ml <ml>', 'ignore lesions smaller than this (both sides)', parseMl, 0)
    .option('--json', 'print one JSON object')
    .action(async (opts: EvaluateCliOptions) => {
      const { affinesClose } = await import('../../../shared/geometry/affine.ts');
      const { evaluateCase } = await import('../../../shared/metrics/evaluate.ts');
      const { FreeTumorError } = await import('../../../shared/errors.ts');
      const pred = await readVolume(opts.pred, 'prediction');
      const truth = await readVolume(opts.truth, 'reference');
      if (pred.dims.some((d, a) => d !== truth.dims[a])) {
        throw new FreeTumorError(
          'invalid_geometry',
          `prediction dims ${pred.dims.join('x')} differ from reference dims ${truth.dims.join('x')}`,
        );
      }
      if (!affinesClose(pred.affine, truth.affine, 1e-3)) {
        throw new FreeTumorError(
          'invalid_geometry',
          'prediction and reference affines differ (not the same grid)',
        );
      }
      const r = evaluateCase(pred.data, truth.data, truth.dims, truth.affine, {
        organLabel: opts.organLabel,
        tumorLabel: opts.tumorLabel,
        tolerance: opts.tolerance,
        minLesionMl: opts.minLesionMl,
      });
      printResult(opts.json === true, r, () => {
        const f = (x: number) => x.toFixed(4);
        const l = r.lesions;
        return [
          `tumor   Dice ${f(r.tumor.dice)}  NSD@${r.tolerance}mm ${f(r.tumor.nsd)}  pred ${r.tumor.predictedMl.toFixed(2)} ml  true ${r.tumor.trueMl.toFixed(2)} ml`,
          `organ   Dice ${f(r.organ.dice)}  NSD@${r.tolerance}mm ${f(r.organ.nsd)}  pred ${r.organ.predictedMl.toFixed(2)} ml  true ${r.organ.trueMl.toFixed(2)} ml`,
          `lesions ${l.detected}/${l.trueLesions} detected (sensitivity ${l.sensitivity === null ? 'n/a' : f(l.sensitivity)}), ${l.falsePositives} false positive(s)`,
        ].join('\n');
      });
    });
}

function parseMl(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0)
    throw new CliError(`--min-lesion-ml must be a number >= 0, got ${JSON.stringify(value)}`);
  return n;
}
