/**
 * `freetumor synthesize`: synthetic tumor(s) in one CT (method §2, handcrafted difference or a
 * given scalar, or the learned map of an exported generator with --generator). Writes DIR/ct.nii.gz (HU, the input grid, affine and datatype),
 * DIR/label.nii.gz (input labels plus the tumor id), DIR/summary.json and, with --preview,
 * DIR/preview.png (axial slice through the largest tumor).
 */
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { LABEL_MAP_HELP } from '../../../shared/labels/labelmap.ts';
import { ORGAN_CHOICES } from '../../../shared/labels/organs.ts';
import type {
  VolumeSynthesisOptions,
  VolumeSynthesisResult,
} from '../../../shared/synthesis/whole-volume.ts';
import { SERIES_OPTION_HELP } from '../../io/volume-input.ts';
import { CliError, integer, log, printResult, writeOutput } from '../output.ts';

interface SynthesizeCliOptions {
  image: string;
  label: string;
  organ: string;
  labelMap: string;
  type: string;
  count?: number;
  seed: number;
  difference?: number;
  mode: string;
  generator?: string;
  out: string;
  preview?: boolean;
  series?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('synthesize')
    .description('add synthetic tumor(s) to a CT: synthetic CT + label on the input grid, summary, preview')
    .requiredOption('--image <file>', 'CT volume (NIfTI in HU, or a DICOM series folder/zip)')
    .requiredOption('--label <file>', 'organ label map on the same grid (NIfTI)')
    .requiredOption('--organ <name>', ORGAN_CHOICES)
    .option('--label-map <map>', LABEL_MAP_HELP, 'auto')
    .option('--type <type>', 'tiny, small, medium, large, mix or random', 'random')
    .option('--count <n>', 'number of tumors (default: per type, 1 for random)', integer('--count', 1))
    .option('--seed <n>', 'random seed', integer('--seed', 0), 0)
    .option(
      '--difference <d>',
      'intensity difference in window units, 0..1 (default U(0.2, 0.7))',
      unitNumber,
    )
    .option('--mode <mode>', 'darken (abdomen) or brighten', 'darken')
    .option(
      '--generator <path>',
      'exported generator (model folder or its .onnx file) for a learned difference map',
    )
    .requiredOption('--out <dir>', 'output folder')
    .option('--preview', 'also write preview.png')
    .option('--series <uid>', SERIES_OPTION_HELP)
    .option('--json', 'print one JSON object')
    .action(async (opts: SynthesizeCliOptions) => {
      await run(opts);
    });
}

function unitNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) {
    throw new CliError(`--difference must be a number in 0..1, got ${JSON.stringify(value.slice(0, 20))}`);
  }
  return n;
}

async function run(opts: SynthesizeCliOptions): Promise<void> {
  const { parseLabelMap, ORGANS } = await import('../../../shared/labels/labelmap.ts');
  const { SYNTHESIS_TYPES } = await import('../../../shared/synthesis/tumors.ts');
  if (!ORGANS.includes(opts.organ as never))
    throw new CliError(`--organ must be one of ${ORGANS.join(', ')}`);
  if (!SYNTHESIS_TYPES.includes(opts.type as never)) {
    throw new CliError(`--type must be one of ${SYNTHESIS_TYPES.join(', ')}`);
  }
  if (opts.mode !== 'darken' && opts.mode !== 'brighten')
    throw new CliError('--mode must be darken or brighten');
  if (opts.generator !== undefined && opts.difference !== undefined) {
    throw new CliError(
      '--difference and --generator exclude each other (the generator gives the difference map)',
    );
  }
  // A custom map's syntax is checked before the volumes are read.
  if (opts.labelMap.trim().toLowerCase() !== 'auto') parseLabelMap(opts.labelMap);
  const { niftiGzAsync } = await import('../../io/nifti-node.ts');
  const { synthesizeVolume, synthesizeVolumeWith } = await import(
    '../../../shared/synthesis/whole-volume.ts'
  );
  const { Rng } = await import('../../../shared/random.ts');
  const { readVolume } = await import('../../io/volume-input.ts');
  // The CT inflates (on libuv's threads) while the label is read and its map resolved; an error
  // of the image still comes first, as when they were read one after the other.
  const pending = readVolume(opts.image, 'image', { series: opts.series });
  pending.catch(() => {});
  const imageFirst = async (e: unknown): Promise<never> => {
    await pending;
    throw e;
  };
  const organ = opts.organ as (typeof ORGANS)[number];
  const { resolveCliLabelMap } = await import('../label-map.ts');
  const label = await readVolume(opts.label, 'label').catch(imageFirst);
  const resolved = await resolveCliLabelMap(opts.label, label.data, { spec: opts.labelMap, organ }).catch(
    imageFirst,
  );
  const image = await pending;
  const labelMap = resolved.map;
  const options: VolumeSynthesisOptions = {
    organ,
    labelMap,
    type: opts.type as (typeof SYNTHESIS_TYPES)[number],
    count: opts.count,
    difference: opts.difference,
    mode: opts.mode,
    // The ids read to resolve the map choose the tumor id too: one pass over the label for its ids.
    labelIds: resolved.found,
  };
  const t0 = performance.now();
  let result: VolumeSynthesisResult;
  if (opts.generator === undefined) {
    result = synthesizeVolume(image, label, options, new Rng(opts.seed));
  } else {
    const { openLocalModel } = await import('../../runners/local-model.ts');
    const { generatorDifferenceInRegion } = await import('../../../shared/synthesis/generator.ts');
    // --generator names the model folder or a file in it (the manifest sits beside the model).
    const dir = /\.onnx$/i.test(opts.generator) ? dirname(opts.generator) : opts.generator;
    const model = await openLocalModel(dir, 'generator', { precision: 'fp32' });
    if (!model) throw new CliError('no generator in the model folder');
    const pre = model.manifest.preprocessing;
    if (pre.spacing[0] !== pre.spacing[1] || pre.spacing[1] !== pre.spacing[2]) {
      throw new CliError(
        'the generator manifest has an anisotropic spacing; synthesis works on an isotropic grid',
      );
    }
    options.spacing = pre.spacing[0];
    options.window = [pre.window[0], pre.window[1]];
    result = await synthesizeVolumeWith(image, label, options, new Rng(opts.seed), (input, region) =>
      generatorDifferenceInRegion(input, region, model.runner, model.manifest, organ),
    );
    await model.runner.release?.();
  }
  const seconds = (performance.now() - t0) / 1000;
  // Names inside the output folder only: user paths are not echoed.
  const files = ['ct.nii.gz', 'label.nii.gz', 'summary.json'];
  // Both files deflated at once, each in pieces on libuv's threads (niftiGzAsync).
  const [ctGz, labelGz] = await Promise.all([
    niftiGzAsync(result.image, { description: 'freetumor synthetic CT (HU)' }),
    niftiGzAsync(result.label, { description: 'freetumor labels + synthetic tumor' }),
  ]);
  await writeOutput(join(opts.out, 'ct.nii.gz'), ctGz);
  await writeOutput(join(opts.out, 'label.nii.gz'), labelGz);
  if (opts.preview) {
    files.push('preview.png');
    await writeOutput(join(opts.out, 'preview.png'), await result.preview());
  }
  const summary = {
    seed: opts.seed,
    ...result.summary,
    labelMapFrom: resolved.reason,
    seconds: Math.round(seconds * 1000) / 1000,
  };
  await writeOutput(join(opts.out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  if (result.summary.tumorLabelAssigned) {
    log(
      `note: ${labelMap.name} has no ${opts.organ} tumor class; synthetic tumors are written as ${result.summary.tumorLabel}`,
    );
  }
  printResult(opts.json === true, { ...summary, files }, () => {
    const lines = result.summary.tumors.map(
      (t, n) =>
        `  ${n + 1}. ${t.type}: ${t.volumeMl} ml, centroid ${t.centroidMm?.join(', ') ?? '-'} mm, ` +
        `mean HU ${t.meanHuBefore ?? '-'} -> ${t.meanHuAfter ?? '-'}`,
    );
    return [
      `synthesized ${result.summary.tumors.length} ${opts.organ} tumor(s) (label ${result.summary.tumorLabel}) in ${seconds.toFixed(2)} s`,
      `label map ${labelMap.name} (${resolved.reason})`,
      ...lines,
      `wrote ${files.join(', ')}`,
    ].join('\n');
  });
}
