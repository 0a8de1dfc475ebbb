/**
 * Test support: Pulumi mocks that capture every resource's inputs (what `pulumi up` would send to
 * the providers) and answer with the computed outputs the program reads (ARNs, URLs, ids), in the
 * shapes AWS and Cloudflare use, so that the policies see realistic values.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { PROJECT } from './config.ts';
import { type ResourceInputs, unwrapSecrets } from './policies.ts';

export const ACCOUNT = '123456789012';
export const REGION = 'eu-west-1';
export const CF_ACCOUNT = '0123456789abcdef0123456789abcdef';

export interface Captured {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}

function computedState(type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> {
  const physical = typeof inputs.name === 'string' ? inputs.name : `${name}-a1b2c3`;
  const arn = (service: string, resource: string, region = REGION) =>
    `arn:aws:${service}:${region}:${ACCOUNT}:${resource}`;
  switch (type) {
    case 'aws:batch/jobQueue:JobQueue':
      return { name: physical, arn: arn('batch', `job-queue/${physical}`) };
    case 'aws:batch/jobDefinition:JobDefinition':
      return {
        name: physical,
        revision: 1,
        arn: arn('batch', `job-definition/${physical}:1`),
        arnPrefix: arn('batch', `job-definition/${physical}`),
      };
    case 'aws:batch/computeEnvironment:ComputeEnvironment':
      return { name: physical, arn: arn('batch', `compute-environment/${physical}`) };
    case 'aws:ecr/repository:Repository':
      return {
        name: physical,
        arn: arn('ecr', `repository/${physical}`),
        repositoryUrl: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/${physical}`,
      };
    case 'aws:secretsmanager/secret:Secret':
      return { arn: arn('secretsmanager', `secret:${physical}-AbCdEf`) };
    case 'aws:cloudwatch/logGroup:LogGroup':
      return { name: physical, arn: arn('logs', `log-group:${physical}`) };
    case 'aws:iam/role:Role':
      return { name: physical, arn: `arn:aws:iam::${ACCOUNT}:role/${physical}` };
    case 'aws:iam/instanceProfile:InstanceProfile':
      return { name: physical, arn: `arn:aws:iam::${ACCOUNT}:instance-profile/${physical}` };
    case 'aws:iam/user:User':
      return { name: physical, arn: `arn:aws:iam::${ACCOUNT}:user/${physical}` };
    case 'aws:iam/accessKey:AccessKey':
      return { secret: 'mock-secret-access-key' };
    case 'aws:ec2/launchTemplate:LaunchTemplate':
      return { latestVersion: 1 };
    case 'aws:scheduler/schedule:Schedule':
      return { arn: arn('scheduler', `schedule/default/${physical}`) };
    default:
      return {};
  }
}

/**
 * Installs the mocks and config for one test process. Order matters (findings/pulumi-r2-batch.md):
 * config first, then mocks, then build the program.
 */
export async function installMocks(
  config: Record<string, string>,
  secretKeys: string[],
): Promise<Captured[]> {
  const captured: Captured[] = [];
  const prefixed = Object.fromEntries(
    Object.entries(config).map(([k, v]) => [k.includes(':') ? k : `${PROJECT}:${k}`, v]),
  );
  pulumi.runtime.setAllConfig(
    prefixed,
    secretKeys.map((k) => `${PROJECT}:${k}`),
  );
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        captured.push({ type: args.type, name: args.name, inputs: args.inputs });
        const id = args.type === 'aws:iam/accessKey:AccessKey' ? 'AKIAMOCKRETRAIN00001' : `${args.name}-id`;
        return { id, state: { ...args.inputs, ...computedState(args.type, args.name, args.inputs) } };
      },
      call: (args) => args.inputs,
    },
    PROJECT,
    'test',
    false,
  );
  return captured;
}

/** The stack config a test deploys: every required key, with secrets among them. */
export function baseConfig(bundleDir: string): { config: Record<string, string>; secrets: string[] } {
  return {
    config: {
      'aws:region': REGION,
      cloudflareAccountId: CF_ACCOUNT,
      awsAccountId: ACCOUNT,
      subnetIds: JSON.stringify(['subnet-0a', 'subnet-0b']),
      securityGroupIds: JSON.stringify(['sg-0a']),
      instanceTypes: JSON.stringify(['g4dn.xlarge', 'g5.xlarge']),
      imageTag: 'abc1234',
      schedule: 'cron(0 3 ? * SUN *)',
      workerBundleDir: bundleDir,
      workerVars: JSON.stringify({ MAX_VOXELS: '8000000' }),
      apiKeyHashes: 'a'.repeat(64),
      adminKeyHashes: 'b'.repeat(64),
      r2AccessKeyId: 'r2-key-id',
      r2SecretAccessKey: 'r2-secret',
    },
    secrets: ['apiKeyHashes', 'adminKeyHashes', 'r2AccessKeyId', 'r2SecretAccessKey'],
  };
}

/** A stand-in for the wrangler build: an entry module and one compiled wasm module beside it. */
export function fakeWorkerBundle(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ft-worker-'));
  writeFileSync(join(dir, 'index.js'), 'export default { fetch() { return new Response("ok"); } };\n');
  writeFileSync(join(dir, 'ort-wasm-simd.wasm'), new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
  writeFileSync(join(dir, 'README.md'), 'not a module\n');
  return dir;
}

/** Resolves a Pulumi input/output to its value (mocks resolve everything, preview=false). */
export function value<T>(o: pulumi.Input<T>): Promise<T> {
  return new Promise<T>((resolve) => {
    pulumi.output(o).apply((v) => {
      resolve(v as T);
      return v;
    });
  });
}

/** Waits until every resource in a (nested) object has been registered with the mock engine. */
export async function settled(tree: object): Promise<void> {
  const urns: Promise<string>[] = [];
  const walk = (node: unknown) => {
    if (node instanceof pulumi.Resource) urns.push(value(node.urn));
    else if (node && typeof node === 'object') Object.values(node).forEach(walk);
  };
  walk(tree);
  await Promise.all(urns);
}

/** The captured resources in the form the policies read. */
export function toPolicyInputs(captured: readonly Captured[]): ResourceInputs[] {
  return captured.map((c) => {
    const { value: props, secrets } = unwrapSecrets(c.inputs);
    return { type: c.type, name: c.name, props: props as Record<string, unknown>, secretPaths: secrets };
  });
}
