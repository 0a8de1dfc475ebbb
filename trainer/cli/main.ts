/**
 * The `freetumor` command line. Each command lives in `commands/<name>.ts` and exports
 * `register(program)`; command modules keep their top-level imports light and load heavy
 * dependencies (tfjs, onnxruntime) inside their action, so `freetumor info` starts fast.
 *
 * Contract (docs/architecture.md): `--json` prints one JSON object on stdout, logs and
 * progress go to stderr, exit 0 on success, 2 with one line on bad input, 1 on an
 * internal error (stack only with --verbose).
 */
import { Command, CommanderError } from 'commander';
import { isFreeTumorError } from '../../shared/errors.ts';
import { VERSION } from '../version.ts';
import { CliError } from './output.ts';

type Registrar = { register(program: Command): void };

// The commands, in the order `--help` lists them.
const COMMAND_MODULES: Record<string, () => Promise<Registrar>> = {
  info: () => import('./commands/info.ts'),
  convert: () => import('./commands/convert.ts'),
  phantom: () => import('./commands/phantom.ts'),
  synthesize: () => import('./commands/synthesize.ts'),
  'synthesize-dataset': () => import('./commands/synthesize-dataset.ts'),
  train: () => import('./commands/train.ts'),
  job: () => import('./commands/job.ts'),
  export: () => import('./commands/export.ts'),
  segment: () => import('./commands/segment.ts'),
  score: () => import('./commands/score.ts'),
  evaluate: () => import('./commands/evaluate.ts'),
  publish: () => import('./commands/publish.ts'),
  demo: () => import('./commands/demo.ts'),
};

export async function main(argv: string[]): Promise<number> {
  // Handled before commander: its program-level --version would also swallow `export --version V`.
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const program = new Command();
  program
    .name('freetumor')
    .description('Tumor synthesis, quality scoring and tumor segmentation for CT (FreeTumor, in TypeScript)')
    .option('--verbose', 'print stack traces on errors')
    .addHelpText('after', `\nfreetumor --version (or -V) prints the package version (${VERSION}).`)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  // Only the command being run is loaded (a module's top-level imports, e.g. tfjs for `train`,
  // would otherwise cost every command its start-up); help and unknown commands load them all.
  const name = argv.find((a) => !a.startsWith('-'));
  const only =
    name !== undefined && Object.hasOwn(COMMAND_MODULES, name) ? [name] : Object.keys(COMMAND_MODULES);
  for (const key of only) {
    (await COMMAND_MODULES[key]()).register(program);
  }
  const verbose = argv.includes('--verbose');
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    return reportError(e, verbose);
  }
}

function reportError(e: unknown, verbose: boolean): number {
  if (e instanceof CommanderError) {
    // commander has already printed its message (or the help text).
    return e.exitCode === 0 ? 0 : 2;
  }
  if (isFreeTumorError(e) || e instanceof CliError) {
    process.stderr.write(`freetumor: ${e.message}\n`);
    if (verbose && e.stack) process.stderr.write(`${e.stack}\n`);
    return 2;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(`freetumor: internal error: ${err.message}\n`);
  if (verbose && err.stack) process.stderr.write(`${err.stack}\n`);
  return 1;
}
