/**
 * `freetumor score --model DIR --image CT --label MASK [--json]`: quality of a synthetic tumor
 * (shared/inference/quality.ts): the segmentor's detection proportion and the discriminator's
 * realism over the synthetic voxels, and whether the policy accepts it.
 *
 * The synthetic tumor's id: --synthetic-label, else the id `synthesize` wrote (its summary.json
 * beside its label.nii.gz), else the id `synthesize` would write for the organ under the label's
 * map (--label-map, default auto). An id with no voxels is refused, never scored as empty.
 */
import type { Command } from 'commander';
import type { LabelIds } from '../../../shared/labels/detect.ts';
import { LABEL_MAP_HELP } from '../../../shared/labels/labelmap.ts';
import { isOrganName, ORGAN_CHOICES, type OrganName } from '../../../shared/labels/organs.ts';
import { readVolume, SERIES_OPTION_HELP } from '../../io/volume-input.ts';
import { CliError, integer, printResult } from '../output.ts';
import { parsePrecision } from './segment.ts';

const POLICIES = ['segmentor', 'discriminator', 'both', 'either'] as const;
type Policy = (typeof POLICIES)[number];

interface ScoreCliOptions {
  model: string;
  image: string;
  label: string;
  syntheticLabel?: number;
  labelMap: string;
  organ?: string;
  policy?: Policy;
  threshold?: number;
  precision: 'int8' | 'fp32';
  threads?: number;
  series?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('score')
    .description('score a synthetic tumor: segmentor detection, discriminator realism, accepted')
    .requiredOption('--model <dir>', 'exported models folder (segmentor/ and/or discriminator/)')
    .requiredOption(
      '--image <ct>',
      'CT with the synthetic tumor (.nii/.nii.gz in HU, or a DICOM series folder/zip)',
    )
    .requiredOption('--label <mask>', 'its label on the same grid')
    .option(
      '--synthetic-label <n>',
      "label value of the synthetic tumor (default: synthesize's summary.json beside label.nii.gz, else the map's tumor id)",
      integer('--synthetic-label', 1),
    )
    .option(
      '--label-map <map>',
      `the label's ids when --synthetic-label is not given: ${LABEL_MAP_HELP}`,
      'auto',
    )
    .option('--organ <name>', `${ORGAN_CHOICES} (default: the model's organ)`)
    .option(
      '--policy <p>',
      `acceptance policy: ${POLICIES.join(', ')} (default: the manifest's)`,
      parsePolicy,
    )
    .option('--threshold <x>', 'detection threshold (default: the manifest, else 0.7)', parseFraction)
    .option('--precision <p>', 'model files to use: int8 or fp32', parsePrecision, 'int8')
    .option('--threads <n>', 'onnxruntime intra-op threads', integer('--threads', 1))
    .option('--series <uid>', SERIES_OPTION_HELP)
    .option('--json', 'print one JSON object')
    .action(async (opts: ScoreCliOptions) => {
      const { scoreSynthetic } = await import('../../../shared/inference/quality.ts');
      const { openLocalModel } = await import('../../runners/local-model.ts');
      const image = await readVolume(opts.image, 'image', { series: opts.series });
      const label = await readVolume(opts.label, 'label');
      if (opts.organ !== undefined && !isOrganName(opts.organ))
        throw new CliError(`--organ must be one of ${ORGAN_CHOICES}`);
      const common = { precision: opts.precision, threads: opts.threads, required: false };
      const segmentor = await openLocalModel(opts.model, 'segmentor', common);
      const discriminator = await openLocalModel(opts.model, 'discriminator', common);
      if (!segmentor && !discriminator)
        throw new CliError('the model folder has neither a segmentor nor a discriminator');
      const model = (segmentor ?? discriminator)!.manifest;
      const syntheticLabel = await syntheticId(opts, label.data, model.organs);
      const score = await scoreSynthetic(image, label, {
        segmentor: segmentor ?? undefined,
        discriminator: discriminator ?? undefined,
        syntheticLabel,
        policy: opts.policy,
        detectionThreshold: opts.threshold,
      });
      await segmentor?.runner.release?.();
      await discriminator?.runner.release?.();
      const out = { ...score, syntheticLabel, model: { name: model.name, version: model.version } };
      printResult(opts.json === true, out, () => {
        const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(3));
        return [
          `detection  ${f(score.detection)} (threshold ${score.threshold.detection})`,
          `realism    ${f(score.realism)} (threshold ${score.threshold.realism})`,
          `accepted   ${score.accepted ? 'yes' : 'no'} (policy ${score.policy}, ${score.syntheticVoxels} synthetic voxels)`,
        ].join('\n');
      });
    });
}

function parsePolicy(value: string): Policy {
  if (!(POLICIES as readonly string[]).includes(value)) {
    throw new CliError(`--policy must be one of ${POLICIES.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as Policy;
}

function parseFraction(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1)
    throw new CliError(`--threshold must be in [0, 1], got ${JSON.stringify(value)}`);
  return n;
}

/** The synthetic tumor id (see the module comment). */
async function syntheticId(
  opts: ScoreCliOptions,
  labelData: ArrayLike<number>,
  modelOrgans: readonly OrganName[],
): Promise<number> {
  const { holdsLabelId, labelIds, presentOrgan } = await import('../../../shared/labels/detect.ts');
  const { organLabels } = await import('../../../shared/labels/labelmap.ts');
  const { resolveCliLabelMap, syntheticIdFromSummary } = await import('../label-map.ts');
  let id = opts.syntheticLabel ?? (await syntheticIdFromSummary(opts.label));
  let source = id === undefined ? '' : opts.syntheticLabel === undefined ? "synthesize's summary.json" : '';
  // The label's ids, read once: for its map when the id comes from it, then for the id's presence.
  let found: LabelIds | undefined;
  if (id === undefined) {
    const { map, found: ids } = await resolveCliLabelMap(opts.label, labelData, { spec: opts.labelMap });
    found = ids;
    const organ =
      (opts.organ as OrganName | undefined) ??
      (modelOrgans.length === 1 && map.organs[modelOrgans[0]] ? modelOrgans[0] : presentOrgan(map, ids));
    id = organLabels(map, organ).tumorOut;
    source = `${map.name}'s ${organ} tumor id`;
  }
  if (!holdsLabelId(found ?? labelIds(labelData), id)) {
    throw new CliError(
      `the label has no voxels of synthetic tumor id ${id}${source ? ` (${source})` : ''}: pass --synthetic-label`,
    );
  }
  return id;
}
