/**
 * The Cloudflare side: the private R2 bucket that holds models and data manifests, the Worker with
 * its bindings (bucket, secrets, vars), its cron trigger, and where it is served (workers.dev or a
 * custom domain).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import * as cloudflare from '@pulumi/cloudflare';
import type * as pulumi from '@pulumi/pulumi';
import type { CloudflareConfig } from './config.ts';

/** What the Worker needs to submit a "retrain now" Batch job (edge/jobs/batch.ts). */
export interface RetrainAccess {
  accessKeyId: pulumi.Output<string>;
  secretAccessKey: pulumi.Output<string>;
  region: string;
  jobQueue: pulumi.Input<string>;
  jobDefinition: pulumi.Input<string>;
}

export interface EdgeResources {
  bucket: cloudflare.R2Bucket;
  bucketPublicAccess: cloudflare.R2ManagedDomain;
  bucketLifecycle: cloudflare.R2BucketLifecycle;
  worker: cloudflare.WorkersScript;
  cron: cloudflare.WorkersCronTrigger;
  subdomain?: cloudflare.WorkersScriptSubdomain;
  customDomain?: cloudflare.WorkersCustomDomain;
}

const MODULE_TYPES: Record<string, string> = {
  '.wasm': 'application/wasm',
  '.js': 'application/javascript+module',
  '.mjs': 'application/javascript+module',
};

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The Worker's extra modules (the .wasm files wrangler emits beside the entry), keyed by part name. */
function bundleFiles(dir: string, main: string): Record<string, cloudflare.types.input.WorkersScriptFiles> {
  const files: Record<string, cloudflare.types.input.WorkersScriptFiles> = {};
  for (const name of readdirSync(dir).sort()) {
    const contentType = MODULE_TYPES[extname(name)];
    if (name === main || contentType === undefined) continue;
    const path = join(dir, name);
    files[name] = { contentFile: path, contentSha256: sha256File(path), contentType };
  }
  return files;
}

export function createEdge(cfg: CloudflareConfig, retrain: RetrainAccess): EdgeResources {
  const { accountId } = cfg;
  const bucket = new cloudflare.R2Bucket('models', {
    accountId,
    name: cfg.bucketName,
    location: cfg.bucketLocation,
    storageClass: 'Standard',
  });
  // Declared so that the r2.dev public URL stays off: models and data are read only through the
  // Worker binding (authenticated) and the trainer's S3 credentials.
  const bucketPublicAccess = new cloudflare.R2ManagedDomain('models-r2dev', {
    accountId,
    bucketName: bucket.name,
    enabled: false,
  });

  // A backstop for what a killed writer leaves: multipart uploads abandoned for a day are aborted
  // (the publisher also aborts its own on retry, after an hour).
  const bucketLifecycle = new cloudflare.R2BucketLifecycle('models-lifecycle', {
    accountId,
    bucketName: bucket.name,
    rules: [
      {
        id: 'abort-incomplete-multipart-uploads',
        enabled: true,
        conditions: { prefix: '' },
        abortMultipartUploadsTransition: { condition: { type: 'Age', maxAge: 86_400 } },
      },
    ],
  });

  const bundleDir = resolve(cfg.workerBundleDir);
  const mainPath = join(bundleDir, cfg.workerMainModule);
  const secret = (name: string, text: pulumi.Input<string>) => ({ type: 'secret_text', name, text });
  const plain = (name: string, text: pulumi.Input<string>) => ({ type: 'plain_text', name, text });
  const worker = new cloudflare.WorkersScript('edge', {
    accountId,
    scriptName: cfg.workerName,
    mainModule: cfg.workerMainModule,
    contentFile: mainPath,
    contentSha256: sha256File(mainPath),
    files: bundleFiles(bundleDir, cfg.workerMainModule),
    compatibilityDate: cfg.compatibilityDate,
    observability: { enabled: true },
    bindings: [
      { type: 'r2_bucket', name: 'MODELS', bucketName: bucket.name },
      // Per-API-key request limit (the edge falls back to an in-isolate limiter without it).
      {
        type: 'ratelimit',
        name: 'RATE_LIMITER',
        namespaceId: cfg.rateLimit.namespaceId,
        simple: { limit: cfg.rateLimit.limit, period: cfg.rateLimit.periodSeconds },
      },
      secret('API_KEY_HASHES', cfg.apiKeyHashes),
      secret('ADMIN_KEY_HASHES', cfg.adminKeyHashes),
      secret('AWS_ACCESS_KEY_ID', retrain.accessKeyId),
      secret('AWS_SECRET_ACCESS_KEY', retrain.secretAccessKey),
      plain('AWS_REGION', retrain.region),
      plain('BATCH_JOB_QUEUE', retrain.jobQueue),
      plain('BATCH_JOB_DEFINITION', retrain.jobDefinition),
      ...Object.entries(cfg.workerVars).map(([name, text]) => plain(name, text)),
    ],
  });

  const cron = new cloudflare.WorkersCronTrigger('edge-cron', {
    accountId,
    scriptName: worker.scriptName,
    schedules: cfg.workerCrons.map((cronExpr) => ({ cron: cronExpr })),
  });

  if (cfg.customDomain) {
    const customDomain = new cloudflare.WorkersCustomDomain('edge-domain', {
      accountId,
      hostname: cfg.customDomain.hostname,
      zoneId: cfg.customDomain.zoneId,
      service: worker.scriptName,
    });
    return { bucket, bucketPublicAccess, bucketLifecycle, worker, cron, customDomain };
  }
  const subdomain = new cloudflare.WorkersScriptSubdomain('edge-workers-dev', {
    accountId,
    scriptName: worker.scriptName,
    enabled: true,
    previewsEnabled: false,
  });
  return { bucket, bucketPublicAccess, bucketLifecycle, worker, cron, subdomain };
}
