/**
 * `freetumor job`: one scheduled training run (the trainer container's entrypoint on AWS Batch).
 * Every option also reads an environment variable, so the job definition configures it without a
 * command line; credentials come only from the environment (never argv, which `ps` shows).
 */
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { BACKEND_NAMES, type BackendName } from '../../backend.ts';
import { CliError, integer, log, printResult } from '../output.ts';

interface JobCliOptions {
  manifest: string;
  bucket?: string;
  endpoint?: string;
  prefix: string;
  backend: string;
  workDir: string;
  set: string[];
  force: boolean;
  syncSeconds: number;
  staleSeconds: number;
  graceSeconds: number;
  json?: boolean;
}

const env = process.env;

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function register(program: Command): void {
  program
    .command('job')
    .description(
      'run one scheduled training job: data manifest from R2/S3 -> train -> evaluate -> publish if better',
    )
    .option(
      '--manifest <key>',
      'data manifest key in the bucket [FREETUMOR_DATA_MANIFEST]',
      env.FREETUMOR_DATA_MANIFEST ?? 'data/manifest.json',
    )
    .option('--bucket <name>', 'R2/S3 bucket [FREETUMOR_BUCKET]', env.FREETUMOR_BUCKET)
    .option(
      '--endpoint <url>',
      'S3 endpoint [FREETUMOR_S3_ENDPOINT; default https://$R2_ACCOUNT_ID.r2.cloudflarestorage.com]',
      env.FREETUMOR_S3_ENDPOINT,
    )
    .option(
      '--prefix <prefix>',
      'key prefix of published models [FREETUMOR_MODEL_PREFIX]',
      env.FREETUMOR_MODEL_PREFIX ?? 'models',
    )
    .option(
      '--backend <name>',
      `tfjs backend: ${BACKEND_NAMES.join(', ')} [FREETUMOR_BACKEND]`,
      env.FREETUMOR_BACKEND ?? 'auto',
    )
    .option(
      '--work-dir <dir>',
      'local scratch folder [FREETUMOR_WORK_DIR]',
      env.FREETUMOR_WORK_DIR ?? join(tmpdir(), 'freetumor-job'),
    )
    .option(
      '--set <key=value>',
      'run-config override for every training run (repeatable), e.g. steps=2',
      collect,
      [],
    )
    .option(
      '--force',
      'train again even if this data manifest was already trained [FREETUMOR_FORCE=1]',
      env.FREETUMOR_FORCE === '1',
    )
    .option('--sync-seconds <s>', 'seconds between checkpoint uploads', integer('--sync-seconds', 1), 60)
    .option(
      '--stale-seconds <s>',
      'take over a running job whose heartbeat is older than this',
      integer('--stale-seconds', 1),
      900,
    )
    .option(
      '--grace-seconds <s>',
      'after SIGTERM, exit within this many seconds',
      integer('--grace-seconds', 1),
      90,
    )
    .option('--json', 'print one JSON object')
    .action(async (opts: JobCliOptions) => {
      if (!opts.bucket) throw new CliError('--bucket (or FREETUMOR_BUCKET) is required');
      if (!(BACKEND_NAMES as readonly string[]).includes(opts.backend)) {
        throw new CliError(`--backend must be one of ${BACKEND_NAMES.join(', ')}`);
      }
      const accessKeyId = env.R2_ACCESS_KEY_ID ?? env.AWS_ACCESS_KEY_ID;
      const secretAccessKey = env.R2_SECRET_ACCESS_KEY ?? env.AWS_SECRET_ACCESS_KEY;
      if (!accessKeyId || !secretAccessKey) {
        throw new CliError(
          'set R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY (the bucket credentials) in the environment',
        );
      }
      const endpoint =
        opts.endpoint ??
        (env.R2_ACCOUNT_ID ? `https://${env.R2_ACCOUNT_ID}.r2.cloudflarestorage.com` : undefined);
      if (!endpoint) throw new CliError('--endpoint (or FREETUMOR_S3_ENDPOINT or R2_ACCOUNT_ID) is required');

      const [{ S3Store }, { runJob }, { defaultJobDeps }] = await Promise.all([
        import('../../job/storage.ts'),
        import('../../job/run.ts'),
        import('../../job/default-trainer.ts'),
      ]);
      const local = !endpoint.includes('.r2.cloudflarestorage.com') && !endpoint.includes('amazonaws.com');
      const store = new S3Store({
        endpoint,
        bucket: opts.bucket,
        accessKeyId,
        secretAccessKey,
        forcePathStyle: local,
      });
      let flush: (() => Promise<void>) | null = null;
      let stopRequested = false;
      // Spot reclaim and Batch termination send SIGTERM about two minutes ahead: stop after the
      // current step with a checkpoint, upload it, exit 143. If that takes too long (a slow step, or
      // not training), upload what exists and exit anyway.
      const onTerm = () => {
        stopRequested = true;
        log('SIGTERM: stopping after this step, then uploading checkpoints');
        const exit = () => process.exit(143);
        setTimeout(() => {
          log('SIGTERM: grace period over, uploading what exists');
          (flush ? flush() : Promise.resolve()).then(exit, exit);
        }, opts.graceSeconds * 1000).unref();
      };
      process.once('SIGTERM', onTerm);
      try {
        const result = await runJob(
          {
            store,
            dataManifestKey: opts.manifest,
            workRoot: opts.workDir,
            backend: opts.backend as BackendName,
            modelPrefix: opts.prefix.replace(/\/+$/, ''),
            force: opts.force,
            overrides: opts.set,
            owner: env.AWS_BATCH_JOB_ID ?? `${hostname()}:${process.pid}`,
            syncSeconds: opts.syncSeconds,
            staleSeconds: opts.staleSeconds,
            log,
            onFlush: (f) => {
              flush = f;
            },
            shouldStop: () => stopRequested,
          },
          defaultJobDeps(store, opts.prefix.replace(/\/+$/, ''), log),
        );
        printResult(opts.json === true, result, () => {
          const lines = [
            `job ${result.jobId}: ${result.status} (version ${result.version}, attempt ${result.attempts})`,
          ];
          if (result.decision) lines.push(`gate: ${result.decision.reason}`);
          return lines.join('\n');
        });
        if (result.status === 'interrupted') process.exit(143);
      } finally {
        process.removeListener('SIGTERM', onTerm);
        store.client.destroy();
      }
    });
}
