/**
 * "Retrain now": submits the training job to AWS Batch from the Worker, SigV4-signed with aws4fetch
 * (the AWS SDK does not fit a Worker). The scheduled runs come from EventBridge Scheduler; this is
 * the on-demand path behind the admin route. The key it uses may only call batch:SubmitJob on the
 * one queue and job definition (infra/training.ts).
 */
import { AwsClient } from 'aws4fetch';

export interface BatchEnv {
  AWS_ACCESS_KEY_ID?: string;
  AWS_SECRET_ACCESS_KEY?: string;
  AWS_REGION?: string;
  BATCH_JOB_QUEUE?: string;
  BATCH_JOB_DEFINITION?: string;
  /** Overrides `https://batch.<region>.amazonaws.com` (tests, VPC endpoints). */
  BATCH_ENDPOINT?: string;
}

export interface RetrainParams {
  /** Batch job name; default `freetumor-retrain-<timestamp>`. Letters, digits, '-' and '_', up to 128. */
  jobName?: string;
  /** Who or what asked (kept as a job tag, never user data). */
  reason?: string;
  /** Another data manifest key than the job definition's default. */
  dataManifestKey?: string;
  /** Train and publish even when a run with the same inputs already finished. */
  force?: boolean;
}

export interface SubmittedJob {
  jobId: string;
  jobName: string;
  jobArn?: string;
}

/** Why a submission failed: `status` is Batch's HTTP status (0 when not configured or unreachable). */
export class BatchSubmitError extends Error {
  readonly status: number;
  readonly awsCode: string;
  constructor(status: number, awsCode: string, message: string) {
    super(message);
    this.name = 'BatchSubmitError';
    this.status = status;
    this.awsCode = awsCode;
  }
}

const JOB_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
const MANIFEST_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,511}$/;
const REQUIRED = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_REGION',
  'BATCH_JOB_QUEUE',
  'BATCH_JOB_DEFINITION',
] as const;

function defaultJobName(now: Date): string {
  return `freetumor-retrain-${now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}`;
}

/** The SubmitJob request body (Batch REST API, camelCase). */
export function submitJobBody(
  env: BatchEnv,
  params: RetrainParams,
  now = new Date(),
): Record<string, unknown> {
  const jobName = params.jobName ?? defaultJobName(now);
  if (!JOB_NAME.test(jobName)) {
    throw new BatchSubmitError(
      0,
      'InvalidJobName',
      'jobName must be 1-128 letters, digits, - or _, starting with a letter or digit',
    );
  }
  const environment: Array<{ name: string; value: string }> = [];
  if (params.dataManifestKey !== undefined) {
    if (!MANIFEST_KEY.test(params.dataManifestKey) || params.dataManifestKey.includes('..')) {
      throw new BatchSubmitError(
        0,
        'InvalidManifestKey',
        'dataManifestKey must be an object key of at most 512 safe characters',
      );
    }
    environment.push({ name: 'FREETUMOR_DATA_MANIFEST', value: params.dataManifestKey });
  }
  if (params.force) environment.push({ name: 'FREETUMOR_FORCE', value: '1' });
  const body: Record<string, unknown> = {
    jobName,
    jobQueue: env.BATCH_JOB_QUEUE,
    jobDefinition: env.BATCH_JOB_DEFINITION,
    tags: { trigger: 'retrain-now', ...(params.reason ? { reason: params.reason.slice(0, 256) } : {}) },
    propagateTags: true,
  };
  if (environment.length > 0) body.containerOverrides = { environment };
  return body;
}

export async function submitRetrainJob(env: BatchEnv, params: RetrainParams = {}): Promise<SubmittedJob> {
  const missing = REQUIRED.filter((k) => !env[k]);
  if (missing.length > 0) {
    throw new BatchSubmitError(
      0,
      'NotConfigured',
      `retraining is not configured (missing ${missing.join(', ')})`,
    );
  }
  const region = env.AWS_REGION as string;
  const endpoint = (env.BATCH_ENDPOINT ?? `https://batch.${region}.amazonaws.com`).replace(/\/+$/, '');
  const client = new AwsClient({
    accessKeyId: env.AWS_ACCESS_KEY_ID as string,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY as string,
    region,
    service: 'batch',
    // SubmitJob is not idempotent: a blind retry could start two GPU jobs.
    retries: 0,
  });
  let res: Response;
  try {
    res = await client.fetch(`${endpoint}/v1/submitjob`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(submitJobBody(env, params)),
    });
  } catch (e) {
    if (e instanceof BatchSubmitError) throw e;
    throw new BatchSubmitError(0, 'NetworkError', `AWS Batch is unreachable (${(e as Error).name})`);
  }
  const text = await res.text();
  const json = parseJson(text);
  if (!res.ok) {
    // AWS error bodies: {"__type": "ClientException", "message": "..."} (some use "Message").
    const awsCode = String(json.__type ?? res.headers.get('x-amzn-errortype') ?? 'Error').split(':')[0];
    const message = String(json.message ?? json.Message ?? res.statusText);
    throw new BatchSubmitError(
      res.status,
      awsCode,
      `AWS Batch rejected the job (${res.status} ${awsCode}): ${message}`,
    );
  }
  if (typeof json.jobId !== 'string' || typeof json.jobName !== 'string') {
    throw new BatchSubmitError(res.status, 'InvalidResponse', 'AWS Batch answered without a jobId');
  }
  return {
    jobId: json.jobId,
    jobName: json.jobName,
    jobArn: typeof json.jobArn === 'string' ? json.jobArn : undefined,
  };
}

function parseJson(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
