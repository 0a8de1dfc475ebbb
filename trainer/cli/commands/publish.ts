/**
 * `freetumor publish --models DIR --bucket B [--endpoint URL] [--prefix P] [--json]`: uploads the
 * exported models and manifests to R2 (or any S3 API) under versioned keys, `latest.json` last.
 * Credentials come from the environment (R2_ACCESS_KEY_ID / R2_SECRET_ACCESS_KEY, or the AWS_ names),
 * the endpoint from --endpoint or R2_ACCOUNT_ID.
 */
import type { Command } from 'commander';
import { CliError, integer, log, printResult } from '../output.ts';

interface PublishCliOptions {
  models: string;
  bucket: string;
  endpoint?: string;
  prefix: string;
  partSize: number;
  overwrite?: boolean;
  orphanGraceSeconds: number;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('publish')
    .description('upload exported models to R2/S3 (versioned keys, latest.json written last)')
    .requiredOption('--models <dir>', 'folder written by `freetumor export` (<role>/manifest.json ...)')
    .requiredOption('--bucket <name>', 'bucket name')
    .option('--endpoint <url>', 'S3 endpoint (default https://$R2_ACCOUNT_ID.r2.cloudflarestorage.com)')
    .option('--prefix <p>', 'key prefix', 'models')
    .option('--part-size <mib>', 'multipart part size in MiB (>= 5)', integer('--part-size', 5), 16)
    .option('--overwrite', 'replace the files of a version latest.json already names')
    .option(
      '--orphan-grace-seconds <s>',
      'remove version folders without a manifest and abandoned multipart uploads older than this',
      integer('--orphan-grace-seconds', 0),
      3600,
    )
    .option('--json', 'print one JSON object')
    .action(async (opts: PublishCliOptions) => {
      if (opts.endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(opts.endpoint)) {
        throw new CliError('--endpoint must be an http(s) URL');
      }
      if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(opts.bucket))
        throw new CliError('--bucket is not a valid bucket name');
      const { publishModels } = await import('../../publish/r2.ts');
      const r = await publishModels(
        opts.models,
        { bucket: opts.bucket, endpoint: opts.endpoint, prefix: opts.prefix },
        {
          partSize: opts.partSize * 1024 * 1024,
          overwrite: opts.overwrite,
          orphanGraceSeconds: opts.orphanGraceSeconds,
          log,
        },
      );
      printResult(opts.json === true, r, () =>
        [
          ...Object.entries(r.models).map(([role, m]) => `${role.padEnd(13)} ${m.version}  ${m.manifest}`),
          `latest        ${r.latestKey} (${r.uploadedBytes} bytes uploaded)`,
        ].join('\n'),
      );
    });
}
