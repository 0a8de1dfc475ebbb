/**
 * `freetumor evaluate --pred MASK --truth LABEL [--organ O] [--truth-label-map MAP]
 * [--pred-label-map MAP] [--tolerance MM] [--json]`: tumor and organ Dice, NSD at a tolerance,
 * lesion detection and volumes in ml (shared/metrics, the same code the trainer validates with).
 * Both masks must share one grid. Each mask has its own label map: the truth's is decided like
 * every label input (dataset.json beside it, else detected from its ids), the prediction's
 * defaults to what `freetumor segment` writes (1 organ, 2 tumor). Both are brought to the merged
 * scheme of one organ before scoring.
 */
import type { Command } from 'commander';
import { LABEL_MAP_HELP } from '../../../shared/labels/labelmap.ts';
import { isOrganName, ORGAN_CHOICES } from '../../../shared/labels/organs.ts';
import { readVolume } from '../../io/volume-input.ts';
import { CliError, positiveNumber, printResult } from '../output.ts';

interface EvaluateCliOptions {
  pred: string;
  truth: string;
  tolerance: number;
  organ?: string;
  truthLabelMap: string;
  predLabelMap: string;
  minLesionMl: number;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('evaluate')
    .description('score a predicted mask against a reference: Dice, NSD, lesion detection, volumes')
    .requiredOption('--pred <mask>', 'predicted label mask (.nii/.nii.gz, or a DICOM series folder/zip)')
    .requiredOption('--truth <label>', 'reference label mask on the same grid')
    .option('--organ <name>', `${ORGAN_CHOICES} (default: the one organ the reference holds)`)
    .option('--truth-label-map <map>', `the reference's ids: ${LABEL_MAP_HELP}`, 'auto')
    .option(
      '--pred-label-map <map>',
      "the prediction's ids, as for --truth-label-map (default msd: 1 organ, 2 tumor, what segment writes)",
      'msd',
    )
    .option('--tolerance <mm>', 'NSD tolerance in mm', positiveNumber('--tolerance'), 2)
    .option('--min-lesion-ml <ml>', 'ignore lesions smaller than this (both sides)', parseMl, 0)
    .option('--json', 'print one JSON object')
    .action(async (opts: EvaluateCliOptions) => {
      const { affinesClose } = await import('../../../shared/geometry/affine.ts');
      const { evaluateCase } = await import('../../../shared/metrics/evaluate.ts');
      const { FreeTumorError } = await import('../../../shared/errors.ts');
      const { presentOrgan } = await import('../../../shared/labels/detect.ts');
      const { MERGED, organLabels, toMergedScheme } = await import('../../../shared/labels/labelmap.ts');
      const { resolveCliLabelMap } = await import('../label-map.ts');
      if (opts.organ !== undefined && !isOrganName(opts.organ))
        throw new CliError(`--organ must be one of ${ORGAN_CHOICES}`);
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
      const truthMap = await resolveCliLabelMap(opts.truth, truth.data, {
        spec: opts.truthLabelMap,
        option: '--truth-label-map',
      });
      const organ = opts.organ ?? presentOrgan(truthMap.map, truthMap.found);
      // Both maps are checked against the organ only now that it is known.
      const t = await resolveCliLabelMap(opts.truth, truth.data, {
        spec: opts.truthLabelMap,
        organ,
        option: '--truth-label-map',
      });
      const p = await resolveCliLabelMap(opts.pred, pred.data, {
        spec: opts.predLabelMap,
        option: '--pred-label-map',
      });
      // An empty prediction scores 0; one whose ids are all foreign to the organ is a misread map.
      const own = new Set([...organLabels(p.map, organ).organ, ...organLabels(p.map, organ).tumor]);
      if (p.found.ids.length > 0 && !p.found.ids.some((id) => own.has(id))) {
        throw new CliError(
          `the prediction holds ids ${p.found.ids.slice(0, 5).join(', ')}${p.found.ids.length > 5 ? ', ...' : ''} but none is the ${organ} or its tumor under ${p.map.name}: pass --pred-label-map`,
        );
      }
      const r = evaluateCase(
        toMergedScheme(pred.data, p.map, organ),
        toMergedScheme(truth.data, t.map, organ),
        truth.dims,
        truth.affine,
        {
          organLabel: MERGED.organ,
          tumorLabel: MERGED.realTumor,
          tolerance: opts.tolerance,
          minLesionMl: opts.minLesionMl,
        },
      );
      const labelMaps = { organ, truth: `${t.map.name} (${t.reason})`, pred: `${p.map.name} (${p.reason})` };
      printResult(opts.json === true, { ...r, labelMaps }, () => {
        const f = (x: number) => x.toFixed(4);
        const l = r.lesions;
        return [
          `tumor   Dice ${f(r.tumor.dice)}  NSD@${r.tolerance}mm ${f(r.tumor.nsd)}  pred ${r.tumor.predictedMl.toFixed(2)} ml  true ${r.tumor.trueMl.toFixed(2)} ml`,
          `organ   Dice ${f(r.organ.dice)}  NSD@${r.tolerance}mm ${f(r.organ.nsd)}  pred ${r.organ.predictedMl.toFixed(2)} ml  true ${r.organ.trueMl.toFixed(2)} ml`,
          `lesions ${l.detected}/${l.trueLesions} detected (sensitivity ${l.sensitivity === null ? 'n/a' : f(l.sensitivity)}), ${l.falsePositives} false positive(s)`,
          `organ ${organ}; truth ids: ${labelMaps.truth}; prediction ids: ${labelMaps.pred}`,
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
