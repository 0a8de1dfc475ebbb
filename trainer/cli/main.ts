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
const COMMAND_MODULES: Array<() => Promise<Registrar>> = [
  () => import('./commands/info.ts'),
  () => import('./commands/convert.ts'),
  () => import('./commands/phantom.ts'),
  () => import('./commands/synthesize.ts'),
  () => import('./commands/synthesize-dataset.ts'),
  () => import('./commands/train.ts'),
  () => import('./commands/job.ts'),
  () => import('./commands/export.ts'),
  () => import('./commands/segment.ts'),
  () => import('./commands/score.ts'),
  () => import('./commands/evaluate.ts'),
  () => import('./commands/publish.ts'),
  () => import('./commands/demo.ts'),
];

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
  for (const load of COMMAND_MODULES) {
    (await load()).register(program);
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
