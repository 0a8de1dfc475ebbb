/**
 * `freetumor score --model DIR --image CT --label MASK [--json]`: quality of a synthetic tumor
 * (shared/inference/quality.ts): the segmentor's detection proportion and the discriminator's
 * realism over the synthetic voxels, and whether the policy accepts it.
 */
import type { Command } from 'commander';
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
    .requiredOption('--label <mask>', 'its label on the same grid (synthetic tumor = 3, else 2)')
    .option('--synthetic-label <n>', 'label value of the synthetic tumor', integer('--synthetic-label', 1))
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
      const common = { precision: opts.precision, threads: opts.threads, required: false };
      const segmentor = await openLocalModel(opts.model, 'segmentor', common);
      const discriminator = await openLocalModel(opts.model, 'discriminator', common);
      if (!segmentor && !discriminator)
        throw new CliError('the model folder has neither a segmentor nor a discriminator');
      const score = await scoreSynthetic(image, label, {
        segmentor: segmentor ?? undefined,
        discriminator: discriminator ?? undefined,
        syntheticLabel: opts.syntheticLabel,
        policy: opts.policy,
        detectionThreshold: opts.threshold,
      });
      await segmentor?.runner.release?.();
      await discriminator?.runner.release?.();
      const model = (segmentor ?? discriminator)!.manifest;
      const out = { ...score, model: { name: model.name, version: model.version } };
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
