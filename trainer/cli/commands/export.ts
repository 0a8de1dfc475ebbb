/**
 * `freetumor export --run RUN --out DIR [--quantize int8|none] [--role R ...] [--json]`: the run's
 * models as ONNX (fp32, plus int8 weights by default) with their manifests, `DIR/<role>/...`.
 */
import type { Command } from 'commander';
import type { ModelRole } from '../../../shared/model/manifest.ts';
import { CliError, log, printResult } from '../output.ts';

interface ExportCliOptions {
  run: string;
  out: string;
  quantize: 'int8' | 'none';
  role?: ModelRole[];
  checkpoint: 'best' | 'last';
  version?: string;
  overlap?: number;
  json?: boolean;
}

const ROLES = ['segmentor', 'discriminator', 'generator'];

export function register(program: Command): void {
  program
    .command('export')
    .description("export a training run's models to ONNX (fp32 + int8 weights) with manifests")
    .requiredOption('--run <dir>', 'training run folder (config.json, best.ckpt / checkpoint.ckpt)')
    .requiredOption('--out <dir>', 'output folder; models go to <dir>/<role>/')
    .option('--quantize <mode>', 'int8 (also write int8 weights) or none', parseQuantize, 'int8')
    .option('--role <role...>', `only these roles (${ROLES.join(', ')})`, collectRole)
    .option('--checkpoint <which>', 'best (default, when present) or last', parseCheckpoint, 'best')
    .option('--version <v>', 'model version (default: UTC time and step)')
    .option('--overlap <x>', 'sliding-window overlap to record in the manifest (default 0.5)', parseOverlap)
    .option('--json', 'print one JSON object')
    .action(async (opts: ExportCliOptions) => {
      const { exportRun } = await import('../../export/from-run.ts');
      const exported = await exportRun(opts.run, opts.out, {
        quantize: opts.quantize,
        roles: opts.role,
        checkpoint: opts.checkpoint,
        version: opts.version,
        overlap: opts.overlap,
        log,
      });
      const out = {
        models: exported.map((e) => ({
          role: e.role,
          version: e.manifest.version,
          manifest: e.manifestPath,
          files: e.manifest.files.map((f) => ({
            path: f.path,
            precision: f.precision,
            bytes: f.bytes,
            sha256: f.sha256,
          })),
        })),
      };
      printResult(opts.json === true, out, () =>
        out.models
          .map(
            (m) =>
              `${m.role.padEnd(13)} ${m.version}  ${m.files.map((f) => `${f.precision} ${f.bytes} B`).join(', ')}`,
          )
          .join('\n'),
      );
    });
}

function parseQuantize(value: string): 'int8' | 'none' {
  if (value !== 'int8' && value !== 'none')
    throw new CliError(`--quantize must be int8 or none, got ${JSON.stringify(value)}`);
  return value;
}

function parseCheckpoint(value: string): 'best' | 'last' {
  if (value !== 'best' && value !== 'last')
    throw new CliError(`--checkpoint must be best or last, got ${JSON.stringify(value)}`);
  return value;
}

function parseOverlap(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n >= 1)
    throw new CliError(`--overlap must be in [0, 1), got ${JSON.stringify(value)}`);
  return n;
}

function collectRole(value: string, previous: ModelRole[] | undefined): ModelRole[] {
  if (!ROLES.includes(value))
    throw new CliError(`--role must be one of ${ROLES.join(', ')}, got ${JSON.stringify(value)}`);
  return [...(previous ?? []), value as ModelRole];
}
