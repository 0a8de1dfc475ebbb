/**
 * The stack under Pulumi mocks: which resources a `pulumi up` would create, with which inputs, and
 * whether those inputs pass the policies. No CLI, no cloud: the mocks stand in for the providers.
 */
import * as pulumi from '@pulumi/pulumi';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { runPolicies, TYPES } from './policies.ts';
import { createStack, type Stack } from './program.ts';
import {
  ACCOUNT,
  baseConfig,
  type Captured,
  fakeWorkerBundle,
  installMocks,
  REGION,
  settled,
  toPolicyInputs,
  value,
} from './testing.ts';

let stack: Stack;
let captured: Captured[];

beforeAll(async () => {
  const { config, secrets } = baseConfig(fakeWorkerBundle());
  captured = await installMocks(config, secrets);
  stack = createStack(loadConfig());
  await settled(stack);
});

function inputsOf(type: string): Record<string, unknown>[] {
  return captured.filter((c) => c.type === type).map((c) => c.inputs);
}

describe('cloudflare side', () => {
  it('declares one R2 bucket named from the stack and its r2.dev access off', async () => {
    expect(await value(stack.edge.bucket.name)).toBe('freetumor-test');
    expect(await value(stack.edge.bucketPublicAccess.enabled)).toBe(false);
    expect(await value(stack.edge.bucketPublicAccess.bucketName)).toBe('freetumor-test');
  });

  it('aborts multipart uploads abandoned for a day (a backstop for killed publishes)', async () => {
    expect(await value(stack.edge.bucketLifecycle.bucketName)).toBe('freetumor-test');
    expect(await value(stack.edge.bucketLifecycle.rules)).toEqual([
      {
        id: 'abort-incomplete-multipart-uploads',
        enabled: true,
        conditions: { prefix: '' },
        abortMultipartUploadsTransition: { condition: { type: 'Age', maxAge: 86_400 } },
      },
    ]);
  });

  it('binds the bucket, secrets as secret_text and vars as plain_text to the Worker', async () => {
    const bindings = await value(stack.edge.worker.bindings);
    const byName = new Map((bindings ?? []).map((b) => [b.name, b]));
    expect(byName.get('MODELS')).toMatchObject({ type: 'r2_bucket', bucketName: 'freetumor-test' });
    expect(byName.get('RATE_LIMITER')).toMatchObject({
      type: 'ratelimit',
      simple: { limit: 120, period: 60 },
    });
    for (const name of ['API_KEY_HASHES', 'ADMIN_KEY_HASHES', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
      expect(byName.get(name)?.type, name).toBe('secret_text');
    }
    expect(byName.get('API_KEY_HASHES')?.text).toBe('a'.repeat(64));
    expect(byName.get('AWS_ACCESS_KEY_ID')?.text).toBe('AKIAMOCKRETRAIN00001');
    expect(byName.get('AWS_REGION')).toMatchObject({ type: 'plain_text', text: REGION });
    expect(byName.get('BATCH_JOB_QUEUE')).toMatchObject({
      type: 'plain_text',
      text: 'freetumor-test-training',
    });
    expect(byName.get('BATCH_JOB_DEFINITION')).toMatchObject({ text: 'freetumor-test-training' });
    expect(byName.get('MAX_VOXELS')).toMatchObject({ type: 'plain_text', text: '8000000' });
    expect(byName.get('MODEL_PREFIX')).toMatchObject({ type: 'plain_text', text: 'models' });
    expect(await pulumi.isSecret(stack.edge.worker.bindings)).toBe(true);
  });

  it('uploads the built ES-module bundle with its wasm module and a content hash', async () => {
    const w = inputsOf(TYPES.workersScript)[0];
    expect(w.mainModule).toBe('index.js');
    expect(w.contentSha256).toMatch(/^[0-9a-f]{64}$/);
    const files = w.files as Record<string, { contentType: string; contentSha256: string }>;
    expect(Object.keys(files)).toEqual(['ort-wasm-simd.wasm']);
    expect(files['ort-wasm-simd.wasm'].contentType).toBe('application/wasm');
    expect(w.compatibilityDate).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  it('schedules the Worker cron and serves on workers.dev when no custom domain is configured', async () => {
    expect(await value(stack.edge.cron.schedules)).toEqual([{ cron: '*/30 * * * *' }]);
    expect(stack.edge.customDomain).toBeUndefined();
    expect(await value(stack.edge.subdomain?.enabled)).toBe(true);
    expect(await value(stack.edge.subdomain?.scriptName)).toBe('freetumor-test');
  });
});

describe('training side', () => {
  it('runs on a GPU compute environment that scales to zero', async () => {
    const cr = await value(stack.training.computeEnvironment.computeResources);
    expect(cr?.minVcpus).toBe(0);
    expect(cr?.type).toBe('SPOT');
    expect(cr?.instanceTypes).toEqual(['g4dn.xlarge', 'g5.xlarge']);
    expect(cr?.ec2Configurations).toEqual([{ imageType: 'ECS_AL2023_NVIDIA' }]);
    expect(cr?.subnets).toEqual(['subnet-0a', 'subnet-0b']);
    expect(cr?.instanceRole).toBe(`arn:aws:iam::${ACCOUNT}:instance-profile/batch-instance-a1b2c3`);
    expect(cr?.launchTemplate).toEqual({ launchTemplateId: 'gpu-hosts-id', version: '1' });
    const userData = Buffer.from(
      (await value(stack.training.hostLaunchTemplate.userData)) as string,
      'base64',
    ).toString();
    expect(userData).toContain('ECS_ENABLE_SPOT_INSTANCE_DRAINING=true');
    expect(userData).toMatch(/ECS_CONTAINER_STOP_TIMEOUT=(\d+)s/);
    // The job's SIGTERM grace (90 s) must fit in the agent's stop timeout.
    expect(Number(/ECS_CONTAINER_STOP_TIMEOUT=(\d+)s/.exec(userData)?.[1])).toBeGreaterThan(90);
    expect(userData).toMatch(/^MIME-Version: 1\.0\nContent-Type: multipart\/mixed; boundary="==FREETUMOR=="/);
    expect((await value(stack.training.hostLaunchTemplate.metadataOptions))?.httpTokens).toBe('required');
    const orders = await value(stack.training.jobQueue.computeEnvironmentOrders);
    expect(orders?.[0].computeEnvironment).toBe(await value(stack.training.computeEnvironment.arn));
  });

  it('defines a GPU job with the pinned image, R2 access from Secrets Manager, retries and a timeout', async () => {
    const cp = JSON.parse(
      await value(stack.training.jobDefinition.containerProperties as pulumi.Output<string>),
    );
    expect(cp.resourceRequirements).toEqual([
      { type: 'GPU', value: '1' },
      { type: 'VCPU', value: '4' },
      { type: 'MEMORY', value: '15000' },
    ]);
    expect(cp.image).toBe(`${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/freetumor-test-trainer:abc1234`);
    const secretArn = await value(stack.training.r2Secret.arn);
    expect(cp.secrets).toEqual([
      { name: 'R2_ACCESS_KEY_ID', valueFrom: `${secretArn}:accessKeyId::` },
      { name: 'R2_SECRET_ACCESS_KEY', valueFrom: `${secretArn}:secretAccessKey::` },
    ]);
    const env = Object.fromEntries(
      cp.environment.map((e: { name: string; value: string }) => [e.name, e.value]),
    );
    expect(env).toMatchObject({
      FREETUMOR_S3_ENDPOINT: 'https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com',
      FREETUMOR_BUCKET: 'freetumor-test',
      FREETUMOR_DATA_MANIFEST: 'data/manifest.json',
      FREETUMOR_BACKEND: 'tensorflow',
    });
    expect(cp.executionRoleArn).toBe(await value(stack.training.executionRole.arn));
    expect(JSON.stringify(cp)).not.toContain('r2-secret');
    expect(await value(stack.training.jobDefinition.platformCapabilities)).toEqual(['EC2']);
    const retry = await value(stack.training.jobDefinition.retryStrategy);
    expect(retry?.attempts).toBe(3);
    expect(retry?.evaluateOnExits?.[0]).toEqual({ onStatusReason: 'Host EC2*', action: 'RETRY' });
    expect((await value(stack.training.jobDefinition.timeout))?.attemptDurationSeconds).toBe(12 * 3600);
  });

  it('keeps the R2 credentials secret in Secrets Manager', async () => {
    expect(await pulumi.isSecret(stack.training.r2SecretVersion.secretString)).toBe(true);
    const json = JSON.parse((await value(stack.training.r2SecretVersion.secretString)) as string);
    expect(json).toEqual({ accessKeyId: 'r2-key-id', secretAccessKey: 'r2-secret' });
  });

  it('submits the job on a schedule through the universal target with a role limited to batch:SubmitJob', async () => {
    expect(await value(stack.training.schedule.scheduleExpression)).toBe('cron(0 3 ? * SUN *)');
    const target = await value(stack.training.schedule.target);
    expect(target.arn).toBe('arn:aws:scheduler:::aws-sdk:batch:submitJob');
    expect(target.roleArn).toBe(await value(stack.training.schedulerRole.arn));
    const input = JSON.parse(target.input as string);
    expect(input).toEqual({
      JobName: 'freetumor-test-scheduled',
      JobQueue: await value(stack.training.jobQueue.arn),
      JobDefinition: await value(stack.training.jobDefinition.arnPrefix),
    });
    const doc = JSON.parse(await value(stack.training.schedulerPolicy.policy as pulumi.Output<string>));
    expect(doc.Statement).toEqual([
      {
        Effect: 'Allow',
        Action: ['batch:SubmitJob'],
        Resource: [
          await value(stack.training.jobQueue.arn),
          `arn:aws:batch:${REGION}:${ACCOUNT}:job-definition/freetumor-test-training`,
          `arn:aws:batch:${REGION}:${ACCOUNT}:job-definition/freetumor-test-training:*`,
        ],
      },
    ]);
    const trust = JSON.parse(await value(stack.training.schedulerRole.assumeRolePolicy));
    expect(trust.Statement[0].Principal).toEqual({ Service: 'scheduler.amazonaws.com' });
    expect(trust.Statement[0].Condition).toEqual({ StringEquals: { 'aws:SourceAccount': ACCOUNT } });
  });

  it('gives the Worker its own key that may only submit the same job', async () => {
    const doc = JSON.parse(await value(stack.training.retrainPolicy.policy as pulumi.Output<string>));
    expect(doc.Statement.map((s: { Action: string[] }) => s.Action)).toEqual([['batch:SubmitJob']]);
  });

  it('has a tag-immutable, scanned image repository', async () => {
    expect(await value(stack.training.repository.imageTagMutability)).toBe('IMMUTABLE');
    expect((await value(stack.training.repository.imageScanningConfiguration))?.scanOnPush).toBe(true);
  });
});

describe('synthesis side (synthesize-dataset as a Batch array job)', () => {
  it('runs on CPU spot instances that scale to zero, with the trainer image and R2 from Secrets Manager', async () => {
    const cr = await value(stack.synthesis.computeEnvironment.computeResources);
    expect(cr).toMatchObject({ type: 'SPOT', minVcpus: 0, maxVcpus: 256 });
    expect(cr?.instanceTypes?.every((t) => /^c\d/.test(t))).toBe(true);
    expect(cr?.ec2Configurations).toEqual([{ imageType: 'ECS_AL2023' }]);
    const orders = await value(stack.synthesis.jobQueue.computeEnvironmentOrders);
    expect(orders?.[0].computeEnvironment).toBe(await value(stack.synthesis.computeEnvironment.arn));
    const cp = JSON.parse(
      await value(stack.synthesis.jobDefinition.containerProperties as pulumi.Output<string>),
    );
    expect(cp.image).toBe(`${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/freetumor-test-trainer:abc1234`);
    expect(cp.command.slice(0, 5)).toEqual([
      'synthesize-dataset',
      '--data',
      'Ref::data',
      '--out',
      'Ref::out',
    ]);
    expect(cp.command).not.toContain('--shard');
    expect(cp.resourceRequirements.map((q: { type: string }) => q.type)).toEqual(['VCPU', 'MEMORY']);
    expect(cp.secrets.map((x: { name: string }) => x.name)).toEqual([
      'R2_ACCESS_KEY_ID',
      'R2_SECRET_ACCESS_KEY',
    ]);
    expect(await value(stack.synthesis.jobDefinition.parameters)).toEqual({
      data: 's3://freetumor-test/data/unlabeled',
      out: 's3://freetumor-test/data/synthetic',
      variants: '1',
      type: 'random',
    });
    const retry = await value(stack.synthesis.jobDefinition.retryStrategy);
    expect(retry?.evaluateOnExits?.[0]).toEqual({ onStatusReason: 'Host EC2*', action: 'RETRY' });
    // No schedule unless synthesisSchedule is configured.
    expect(stack.synthesis.schedule).toBeUndefined();
  });

  it('the training job runs `job --json` on the CLI entrypoint', async () => {
    const cp = JSON.parse(
      await value(stack.training.jobDefinition.containerProperties as pulumi.Output<string>),
    );
    expect(cp.command).toEqual(['job', '--json']);
  });
});

describe('policies on the captured stack', () => {
  it('registers exactly the expected resource types', () => {
    const types = new Set(captured.map((c) => c.type));
    for (const t of [
      TYPES.r2Bucket,
      TYPES.r2ManagedDomain,
      TYPES.r2Lifecycle,
      TYPES.workersScript,
      TYPES.workersCron,
      'cloudflare:index/workersScriptSubdomain:WorkersScriptSubdomain',
      TYPES.computeEnvironment,
      'aws:batch/jobQueue:JobQueue',
      TYPES.jobDefinition,
      TYPES.schedule,
      'aws:secretsmanager/secret:Secret',
      'aws:ecr/repository:Repository',
    ]) {
      expect(types, t).toContain(t);
    }
    // Current classes only: the deprecated singular Worker* aliases must not appear.
    expect([...types].filter((t) => /workerScript:|workerCronTrigger:/.test(t))).toEqual([]);
  });

  it('the stack passes every policy', () => {
    expect(runPolicies(toPolicyInputs(captured))).toEqual([]);
  });

  it('sees the secret inputs the runtime marked', () => {
    const worker = toPolicyInputs(captured).find((r) => r.type === TYPES.workersScript);
    expect([...(worker?.secretPaths ?? [])].some((p) => p.startsWith('bindings'))).toBe(true);
  });
});
