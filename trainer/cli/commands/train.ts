import type { Command } from 'commander';
import { CliError, integer, log, printResult, readInput } from '../output.ts';

interface TrainCliOptions {
  config: string;
  out: string;
  backend: string;
  steps?: number;
  workers?: number;
  set: string[];
  stockKernels?: boolean;
  json?: boolean;
}

const BACKENDS = ['auto', 'cpu', 'webgpu', 'tensorflow'];

export function register(program: Command): void {
  program
    .command('train')
    .description(
      'train the segmentor (baseline or FreeTumor mode) or the tumor synthesis GAN (G + D, frozen segmentor)',
    )
    .argument('<kind>', 'segmentation | synthesis')
    .requiredOption('--config <file>', 'run config JSON (see README: Training)')
    .requiredOption('--out <dir>', 'run folder (resumed when it holds a checkpoint)')
    .option('--backend <name>', 'tfjs backend: auto | cpu | webgpu | tensorflow', 'auto')
    .option('--steps <n>', 'override the number of steps', integer('--steps', 1))
    .option('--workers <n>', 'override the patch worker threads', integer('--workers', 0))
    .option(
      '--set <key=value>',
      'override a config field (repeatable), e.g. --set segmentation.mode=freetumor',
      collect,
      [],
    )
    .option('--stock-kernels', 'on cpu, use the stock tfjs kernels instead of the fast 3D kernels')
    .option('--json', 'print one JSON object')
    .action(async (kind: string, opts: TrainCliOptions) => {
      if (kind !== 'segmentation' && kind !== 'synthesis')
        throw new CliError(
          `train kind must be segmentation or synthesis, got ${JSON.stringify(kind.slice(0, 40))}`,
        );
      if (!BACKENDS.includes(opts.backend))
        throw new CliError(`--backend must be one of ${BACKENDS.join(', ')}`);
      await train(kind, opts);
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function train(kind: 'segmentation' | 'synthesis', opts: TrainCliOptions): Promise<void> {
  const { applyOverrides, parseRunConfig } = await import('../../train/config.ts');
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(await readInput(opts.config, 'config')));
  } catch (e) {
    if (e instanceof SyntaxError) throw new CliError(`config is not valid JSON (${e.message})`);
    throw e;
  }
  const overrides = [...opts.set];
  if (opts.steps !== undefined) overrides.push(`steps=${opts.steps}`);
  if (opts.workers !== undefined) overrides.push(`data.workers=${opts.workers}`);
  const withKind = applyOverrides(raw, overrides) as Record<string, unknown>;
  if (withKind.kind !== undefined && withKind.kind !== kind)
    throw new CliError(`config kind is ${JSON.stringify(withKind.kind)}, the command says ${kind}`);
  const config = parseRunConfig({ ...withKind, kind });

  const { selectBackend, releaseBackend } = await import('../../backend.ts');
  const backend = await selectBackend(opts.backend as 'auto', { fastCpuKernels: !opts.stockKernels });
  log(`backend: ${backend.name} (${backend.detail})`);

  const { trainInFolder } = await import('../../train/recipe.ts');

  let stopRequested = false;
  const onSignal = () => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    log('stopping after this step (checkpoint follows); press Ctrl-C again to abort');
  };
  process.on('SIGINT', onSignal);
  try {
    const r = await trainInFolder(config, opts.out, { log, shouldStop: () => stopRequested });
    const summary = r.summary;
    const result = {
      ...summary,
      backend: backend.name,
      backendDetail: backend.detail,
      run: opts.out,
      cases: r.cases,
      validationCases: r.validationCases,
      qcSegmentorCheck: r.qcCheck,
    };
    printResult(opts.json === true, result, () =>
      [
        `${kind} run: ${summary.steps}/${config.steps} steps${summary.resumedFrom !== null ? ` (resumed at ${summary.resumedFrom})` : ''} in ${summary.seconds.toFixed(1)} s on ${backend.name}`,
        `last: ${Object.entries(summary.last)
          .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toPrecision(4)}`)
          .join(' ')}`,
        summary.best !== null
          ? `best validation score (tumor Dice on cases with a tumor + 0.01 organ Dice): ${summary.best.toFixed(4)}`
          : '',
      ]
        .filter(Boolean)
        .join('\n'),
    );
  } finally {
    process.off('SIGINT', onSignal);
    releaseBackend();
  }
}
