/**
 * The stack configuration: every account id, name, size and schedule the program needs, read once
 * from `Pulumi.<stack>.yaml` and checked here, so that resource code only sees typed values. Secrets
 * (API key hashes, R2 credentials) stay `Output`s marked secret from the moment they are read.
 */
import * as pulumi from '@pulumi/pulumi';

/** The project name in Pulumi.yaml; config keys are `<project>:<key>`. */
export const PROJECT = 'freetumor-infra';

export interface CustomDomain {
  /** Hostname served by the Worker, e.g. `api.example.com`. */
  hostname: string;
  zoneId: string;
}

export interface CloudflareConfig {
  accountId: string;
  /** R2 bucket for models (`models/...`) and data manifests (`data/...`). */
  bucketName: string;
  /** R2 location hint (apac, eeur, enam, weur, wnam, oc); absent -> Cloudflare picks. */
  bucketLocation?: string;
  workerName: string;
  /**
   * Folder of the built Worker (`wrangler deploy --dry-run --outdir dist/edge`): the ES-module entry
   * plus the .wasm modules wrangler emitted beside it.
   */
  workerBundleDir: string;
  /** The entry module's file name inside workerBundleDir. */
  workerMainModule: string;
  compatibilityDate: string;
  /** Cron expressions of the Worker's scheduled handler. */
  workerCrons: string[];
  /** A custom domain; absent -> the workers.dev subdomain is enabled. */
  customDomain?: CustomDomain;
  /** The Workers rate limiting binding: requests per period per API key. */
  rateLimit: { namespaceId: string; limit: number; periodSeconds: 10 | 60 };
  /** Plain-text vars (limits, CORS) passed to the Worker as-is. */
  workerVars: Record<string, string>;
  apiKeyHashes: pulumi.Output<string>;
  adminKeyHashes: pulumi.Output<string>;
  r2AccessKeyId: pulumi.Output<string>;
  r2SecretAccessKey: pulumi.Output<string>;
}

export interface TrainingConfig {
  awsAccountId: string;
  awsRegion: string;
  subnetIds: string[];
  securityGroupIds: string[];
  /** GPU instance types for the compute environment, e.g. ["g4dn.xlarge"]. */
  instanceTypes: string[];
  /** Spot capacity (cheap, may be interrupted: the job resumes from its R2 checkpoints). */
  spot: boolean;
  maxVcpus: number;
  /** The ECS-optimized GPU AMI family Batch launches (ECS_AL2023_NVIDIA or ECS_AL2_NVIDIA). */
  imageType: string;
  jobVcpus: number;
  jobMemoryMiB: number;
  jobGpus: number;
  jobTimeoutSeconds: number;
  /** Attempts per job, spot interruptions included. */
  jobAttempts: number;
  imageTag: string;
  /** EventBridge Scheduler expression: `cron(...)` (6 fields) or `rate(...)`. */
  schedule: string;
  scheduleTimezone: string;
  /** Key of the data manifest in the R2 bucket. */
  dataManifestKey: string;
  logRetentionDays: number;
}

/** The CPU array job that runs synthesize-dataset (infra/synthesis.ts). */
export interface SynthesisConfig {
  /** CPU instance types (c*, m*, r* families), e.g. ["c7i.2xlarge", "c6i.2xlarge"]. */
  instanceTypes: string[];
  maxVcpus: number;
  jobVcpus: number;
  jobMemoryMiB: number;
  jobTimeoutSeconds: number;
  jobAttempts: number;
  /** Defaults of the job's parameters: input and output URIs, variants per case, tumor type. */
  dataUri: string;
  outUri: string;
  variants: number;
  tumorType: string;
  /** Array size the schedule submits (one shard per child). */
  shards: number;
  /** EventBridge Scheduler expression; absent -> no schedule (submit it by hand). */
  schedule?: string;
  scheduleTimezone: string;
}

export interface StackConfig {
  stack: string;
  cloudflare: CloudflareConfig;
  training: TrainingConfig;
  synthesis: SynthesisConfig;
}

const DEFAULT_WORKER_VARS: Record<string, string> = { MODEL_PREFIX: 'models' };

/** Reads and checks the stack configuration (throws with the key name when one is missing or wrong). */
export function loadConfig(): StackConfig {
  const cfg = new pulumi.Config(PROJECT);
  const aws = new pulumi.Config('aws');
  const stack = pulumi.getStack();
  const customHost = cfg.get('customDomain');
  const training: TrainingConfig = {
    awsAccountId: cfg.require('awsAccountId', { pattern: /^\d{12}$/ }),
    awsRegion: aws.require('region'),
    subnetIds: cfg.requireObject<string[]>('subnetIds'),
    securityGroupIds: cfg.requireObject<string[]>('securityGroupIds'),
    instanceTypes: cfg.getObject<string[]>('instanceTypes') ?? ['g4dn.xlarge'],
    spot: cfg.getBoolean('spot') ?? true,
    maxVcpus: cfg.getNumber('maxVcpus', { min: 1 }) ?? 16,
    imageType: cfg.get('imageType') ?? 'ECS_AL2023_NVIDIA',
    jobVcpus: cfg.getNumber('jobVcpus', { min: 1 }) ?? 4,
    jobMemoryMiB: cfg.getNumber('jobMemoryMiB', { min: 1024 }) ?? 15_000,
    jobGpus: cfg.getNumber('jobGpus', { min: 1 }) ?? 1,
    jobTimeoutSeconds: Math.round((cfg.getNumber('jobTimeoutHours', { min: 0.1 }) ?? 12) * 3600),
    jobAttempts: cfg.getNumber('jobAttempts', { min: 1, max: 10 }) ?? 3,
    // The repository is tag-immutable: the pipeline passes the commit it built (no moving `latest`).
    imageTag: cfg.require('imageTag'),
    schedule: cfg.get('schedule') ?? 'cron(0 3 ? * SUN *)',
    scheduleTimezone: cfg.get('scheduleTimezone') ?? 'UTC',
    dataManifestKey: cfg.get('dataManifestKey') ?? 'data/manifest.json',
    logRetentionDays: cfg.getNumber('logRetentionDays', { min: 1 }) ?? 30,
  };
  const cloudflare: CloudflareConfig = {
    accountId: cfg.require('cloudflareAccountId', { pattern: /^[0-9a-f]{32}$/ }),
    bucketName: cfg.get('bucketName') ?? `freetumor-${stack}`,
    bucketLocation: cfg.get('bucketLocation'),
    workerName: cfg.get('workerName') ?? `freetumor-${stack}`,
    workerBundleDir: cfg.get('workerBundleDir') ?? '../dist/edge',
    workerMainModule: cfg.get('workerMainModule') ?? 'index.js',
    compatibilityDate: cfg.get('compatibilityDate') ?? '2026-11-01',
    workerCrons: cfg.getObject<string[]>('workerCrons') ?? ['*/30 * * * *'],
    customDomain: customHost ? { hostname: customHost, zoneId: cfg.require('zoneId') } : undefined,
    rateLimit: {
      namespaceId: cfg.get('rateLimitNamespaceId') ?? '1001',
      limit: cfg.getNumber('rateLimitPerPeriod', { min: 1 }) ?? 120,
      periodSeconds: cfg.getNumber('rateLimitPeriodSeconds') === 10 ? 10 : 60,
    },
    workerVars: { ...DEFAULT_WORKER_VARS, ...(cfg.getObject<Record<string, string>>('workerVars') ?? {}) },
    apiKeyHashes: cfg.requireSecret('apiKeyHashes'),
    adminKeyHashes: cfg.getSecret('adminKeyHashes') ?? pulumi.secret(''),
    r2AccessKeyId: cfg.requireSecret('r2AccessKeyId'),
    r2SecretAccessKey: cfg.requireSecret('r2SecretAccessKey'),
  };
  const synthesis: SynthesisConfig = {
    instanceTypes: cfg.getObject<string[]>('synthesisInstanceTypes') ?? [
      'c7i.2xlarge',
      'c6i.2xlarge',
      'c5.2xlarge',
    ],
    maxVcpus: cfg.getNumber('synthesisMaxVcpus', { min: 1 }) ?? 256,
    jobVcpus: cfg.getNumber('synthesisJobVcpus', { min: 1 }) ?? 2,
    jobMemoryMiB: cfg.getNumber('synthesisJobMemoryMiB', { min: 1024 }) ?? 7_000,
    jobTimeoutSeconds: Math.round((cfg.getNumber('synthesisJobTimeoutHours', { min: 0.1 }) ?? 6) * 3600),
    jobAttempts: cfg.getNumber('synthesisJobAttempts', { min: 1, max: 10 }) ?? 5,
    dataUri: cfg.get('synthesisDataUri') ?? `s3://${cloudflare.bucketName}/data/unlabeled`,
    outUri: cfg.get('synthesisOutUri') ?? `s3://${cloudflare.bucketName}/data/synthetic`,
    variants: cfg.getNumber('synthesisVariants', { min: 1, max: 1000 }) ?? 1,
    tumorType: cfg.get('synthesisTumorType') ?? 'random',
    shards: cfg.getNumber('synthesisShards', { min: 2, max: 10_000 }) ?? 50,
    schedule: cfg.get('synthesisSchedule'),
    scheduleTimezone: cfg.get('scheduleTimezone') ?? 'UTC',
  };
  return { stack, cloudflare, training, synthesis };
}
