/**
 * `freetumor synthesize-dataset`: synthetic tumor variants of a whole nnU-Net/MSD data set, local or
 * on S3/R2, sharded (`--shard I/N` or an AWS Batch array job), with the trained generator and
 * quality control when given; `synthesize-dataset merge` joins the shards. This file only parses
 * options: the work is in trainer/data/synthesize-dataset/.
 */
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { ORGAN_CHOICES } from '../../../shared/labels/organs.ts';
import { CliError, integer, log, printResult } from '../output.ts';

interface DatasetCliOptions {
  data: string;
  out: string;
  variants: number;
  workers?: number;
  organ: string;
  labelMap: string;
  type: string;
  count?: number;
  seed: number;
  mode: string;
  generator?: string;
  quality?: string;
  attempts: number;
  shard?: string;
  endpoint?: string;
  json?: boolean;
}

function endpoint(value: string): string {
  if (!/^https?:\/\/[^\s/]+/.test(value)) throw new CliError('--endpoint must be an http(s) URL');
  return value;
}

export function register(program: Command): void {
  const command = program
    .command('synthesize-dataset')
    .description(
      'synthetic tumor variants of a whole nnU-Net/MSD data set (local or s3://), sharded, resumable, with optional generator and quality control',
    )
    .option('--data <dir|s3://bucket/prefix>', 'input data set with imagesTr/ and labelsTr/ (required)')
    .option(
      '--out <dir|s3://bucket/prefix>',
      'output (same layout, plus dataset.json after the merge) (required)',
    )
    .option('--variants <n>', 'variants per case', integer('--variants', 1), 1)
    .option('--workers <k>', 'worker threads (default: CPU cores)', integer('--workers', 1))
    .option('--organ <name>', ORGAN_CHOICES, 'liver')
    .option(
      '--label-map <map>',
      'freetumor, totalseg, or ids like liver=5,kidney=2+3,pancreas=10',
      'freetumor',
    )
    .option('--type <type>', 'tiny, small, medium, large, mix or random', 'random')
    .option('--count <n>', 'number of tumors per variant', integer('--count', 1))
    .option('--seed <n>', 'base random seed', integer('--seed', 0), 0)
    .option('--mode <mode>', 'darken (abdomen) or brighten', 'darken')
    .option(
      '--generator <dir>',
      'exported generator folder or s3:// prefix (published models with latest.json): its learned difference map',
    )
    .option(
      '--quality <dir>',
      'models folder or s3:// prefix with a segmentor (and/or discriminator): keep a tumor only if QC accepts it',
    )
    .option(
      '--attempts <n>',
      'QC attempts per variant before the original is kept',
      integer('--attempts', 1),
      10,
    )
    .option('--shard <I/N>', 'this shard of N (default: AWS_BATCH_JOB_ARRAY_INDEX/_SIZE, else 0/1)')
    .option(
      '--endpoint <url>',
      'S3 endpoint for s3:// URIs [FREETUMOR_S3_ENDPOINT; R2 from R2_ACCOUNT_ID]',
      endpoint,
    )
    .option('--json', 'print one JSON object')
    .action(async (opts: DatasetCliOptions) => {
      // Checked here, not by commander: it would demand them of the `merge` subcommand too.
      if (!opts.data) throw new CliError("required option '--data <dir|s3://bucket/prefix>' not specified");
      if (!opts.out) throw new CliError("required option '--out <dir|s3://bucket/prefix>' not specified");
      const { synthesizeDataset } = await import('../../data/synthesize-dataset/run.ts');
      const { shardFrom } = await import('../../data/synthesize-dataset/plan.ts');
      const bar = await progressBar();
      const r = await synthesizeDataset({
        ...opts,
        workers: opts.workers ?? availableParallelism(),
        shard: shardFrom(opts.shard),
        log,
        onProgress: (done, total) => bar?.(done, total),
      });
      bar?.(-1, 0);
      printResult(opts.json === true, r, () => {
        const lines = [
          `shard ${r.shard.index}/${r.shard.count}: ${r.done} variant(s) of ${r.shardCases} case(s) in ${r.seconds} s` +
            ` (${r.skipped} already done, ${r.failed} failed)`,
        ];
        if (r.merge) lines.push(mergeText(r.merge));
        else lines.push('run `freetumor synthesize-dataset merge --out ...` once every shard has finished');
        return lines.join('\n');
      });
    });

  // `merge` takes the parent's --out, --endpoint and --json (commander hands every option of the
  // parent to it wherever it stands on the line).
  command
    .command('merge')
    .description(
      'join finished shards: dataset.json, the state file and summary.json (refuses while shards are missing); takes --out [--endpoint] [--json]',
    )
    .action(async (_: unknown, cmd: Command) => {
      const opts = cmd.parent?.opts() as { out?: string; endpoint?: string; json?: boolean };
      if (!opts.out) throw new CliError("required option '--out <dir|s3://bucket/prefix>' not specified");
      const { openLocation } = await import('../../storage/object-store.ts');
      const { mergeRun } = await import('../../data/synthesize-dataset/merge.ts');
      const out = openLocation(opts.out, opts);
      try {
        const r = await mergeRun(out.store, out.prefix);
        printResult(opts.json === true, r, () => mergeText(r));
      } finally {
        out.close();
      }
    });
}

function mergeText(r: import('../../data/synthesize-dataset/merge.ts').MergeResult): string {
  const c = r.counts;
  const rate = r.acceptRate === null ? '' : `, accept rate ${(r.acceptRate * 100).toFixed(1)}%`;
  return (
    `merged ${r.variants} variant(s) of ${r.cases} case(s): ${c.synthesized} synthesized, ${c.accepted} accepted,` +
    ` ${c.rejected} rejected (original kept), ${c.failed} failed${rate}; wrote ${r.written.join(', ')}`
  );
}

/** A progress bar on a terminal (non-TTY runs print only the result). */
async function progressBar(): Promise<((done: number, total: number) => void) | null> {
  if (!process.stderr.isTTY) return null;
  const { SingleBar, Presets } = await import('cli-progress');
  const bar = new SingleBar(
    { stream: process.stderr, format: 'synthesis [{bar}] {value}/{total} variants | {eta_formatted} left' },
    Presets.shades_classic,
  );
  let started = false;
  return (done, total) => {
    if (done < 0) {
      if (started) bar.stop();
      return;
    }
    if (!started) {
      bar.start(total, 0);
      started = true;
    }
    bar.update(done);
  };
}
