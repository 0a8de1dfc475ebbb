/**
 * Each policy catches the mistake it exists for: a passing stack is captured under mocks, one
 * input is broken, and exactly that policy must report it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import {
  isValidScheduleExpression,
  isValidWorkersCron,
  policies,
  type ResourceInputs,
  runPolicies,
  TYPES,
} from './policies.ts';
import { createStack } from './program.ts';
import { baseConfig, fakeWorkerBundle, installMocks, settled, toPolicyInputs } from './testing.ts';

let good: ResourceInputs[];

beforeAll(async () => {
  const { config, secrets } = baseConfig(fakeWorkerBundle());
  const captured = await installMocks(config, secrets);
  await settled(createStack(loadConfig()));
  good = toPolicyInputs(captured);
});

/** A deep copy of the good stack with one resource's inputs changed. */
function broken(
  type: string,
  change: (props: Record<string, unknown>) => void,
  pick: (r: ResourceInputs) => boolean = () => true,
): ResourceInputs[] {
  const copy = good.map((r) => ({
    ...r,
    props: structuredClone(r.props),
    secretPaths: new Set(r.secretPaths),
  }));
  const target = copy.find((r) => r.type === type && pick(r));
  if (!target) throw new Error(`no ${type} in the stack`);
  change(target.props);
  return copy;
}

function policyNames(resources: ResourceInputs[]): string[] {
  return [...new Set(runPolicies(resources).map((v) => v.policy))];
}

type Bindings = Array<Record<string, unknown>>;
type Doc = { Statement: Array<{ Action: string[]; Resource: string[] }> };

describe('policies catch bad inputs', () => {
  it('the good stack passes (baseline for every case below)', () => {
    expect(runPolicies(good)).toEqual([]);
    expect(policies.map((p) => p.name).sort()).toEqual([
      'buckets-abort-incomplete-uploads',
      'buckets-private',
      'compute-scales-to-zero',
      'least-privilege-iam',
      'schedules-valid',
      'synthesis-on-cpu-spot',
      'training-requests-gpu',
      'worker-secrets-are-secret-text',
    ]);
  });

  const cases: Array<[string, string, () => ResourceInputs[]]> = [
    [
      'an API key hash bound as plain_text',
      'worker-secrets-are-secret-text',
      () =>
        broken(TYPES.workersScript, (p) => {
          const b = (p.bindings as Bindings).find((x) => x.name === 'API_KEY_HASHES');
          if (b) b.type = 'plain_text';
        }),
    ],
    [
      'an AWS key pasted into an innocently named var',
      'worker-secrets-are-secret-text',
      () =>
        broken(TYPES.workersScript, (p) => {
          (p.bindings as Bindings).push({
            type: 'plain_text',
            name: 'DEBUG_INFO',
            text: 'AKIAABCDEFGHIJKLMNOP',
          });
        }),
    ],
    [
      'a job definition without a GPU',
      'training-requests-gpu',
      () =>
        broken(TYPES.jobDefinition, (p) => {
          const cp = JSON.parse(p.containerProperties as string);
          cp.resourceRequirements = cp.resourceRequirements.filter((q: { type: string }) => q.type !== 'GPU');
          p.containerProperties = JSON.stringify(cp);
        }),
    ],
    [
      'CPU instance types',
      'training-requests-gpu',
      () =>
        broken(TYPES.computeEnvironment, (p) => {
          (p.computeResources as Record<string, unknown>).instanceTypes = ['m5.xlarge'];
        }),
    ],
    [
      'a non-GPU AMI',
      'training-requests-gpu',
      () =>
        broken(TYPES.computeEnvironment, (p) => {
          (p.computeResources as Record<string, unknown>).ec2Configurations = [{ imageType: 'ECS_AL2023' }];
        }),
    ],
    [
      'a bucket that keeps abandoned multipart uploads forever',
      'buckets-abort-incomplete-uploads',
      () =>
        broken(TYPES.r2Lifecycle, (p) => {
          p.rules = [];
        }),
    ],
    [
      'the synthesis job asking for a GPU',
      'synthesis-on-cpu-spot',
      () =>
        broken(
          TYPES.jobDefinition,
          (p) => {
            const cp = JSON.parse(p.containerProperties as string);
            cp.resourceRequirements.push({ type: 'GPU', value: '1' });
            p.containerProperties = JSON.stringify(cp);
          },
          (r) => r.name === 'synthesis',
        ),
    ],
    [
      'a fixed shard in the array job',
      'synthesis-on-cpu-spot',
      () =>
        broken(
          TYPES.jobDefinition,
          (p) => {
            const cp = JSON.parse(p.containerProperties as string);
            cp.command.push('--shard', '0/1');
            p.containerProperties = JSON.stringify(cp);
          },
          (r) => r.name === 'synthesis',
        ),
    ],
    [
      'on-demand CPU instances for synthesis',
      'synthesis-on-cpu-spot',
      () =>
        broken(
          TYPES.computeEnvironment,
          (p) => {
            (p.computeResources as Record<string, unknown>).type = 'EC2';
          },
          (r) => r.name === 'cpu',
        ),
    ],
    [
      'synthesis instances kept warm',
      'compute-scales-to-zero',
      () =>
        broken(
          TYPES.computeEnvironment,
          (p) => {
            (p.computeResources as Record<string, unknown>).minVcpus = 2;
          },
          (r) => r.name === 'cpu',
        ),
    ],
    [
      'instances kept warm',
      'compute-scales-to-zero',
      () =>
        broken(TYPES.computeEnvironment, (p) => {
          (p.computeResources as Record<string, unknown>).minVcpus = 4;
        }),
    ],
    [
      'a job without a timeout',
      'compute-scales-to-zero',
      () =>
        broken(TYPES.jobDefinition, (p) => {
          delete p.timeout;
        }),
    ],
    [
      'r2.dev public access on',
      'buckets-private',
      () =>
        broken(TYPES.r2ManagedDomain, (p) => {
          p.enabled = true;
        }),
    ],
    [
      'a bucket without its r2.dev declaration',
      'buckets-private',
      () => good.filter((r) => r.type !== TYPES.r2ManagedDomain),
    ],
    [
      'a Scheduler cron with 5 fields',
      'schedules-valid',
      () =>
        broken(TYPES.schedule, (p) => {
          p.scheduleExpression = 'cron(0 3 * * 0)';
        }),
    ],
    [
      'a Worker cron with an out-of-range hour',
      'schedules-valid',
      () =>
        broken(TYPES.workersCron, (p) => {
          p.schedules = [{ cron: '0 25 * * *' }];
        }),
    ],
    [
      'a wildcard action',
      'least-privilege-iam',
      () =>
        broken(
          TYPES.rolePolicy,
          (p) => {
            const doc = JSON.parse(p.policy as string) as Doc;
            doc.Statement[0].Action = ['batch:*'];
            p.policy = JSON.stringify(doc);
          },
          (r) => r.name === 'scheduler-submit',
        ),
    ],
    [
      'SubmitJob on every resource',
      'least-privilege-iam',
      () =>
        broken(TYPES.userPolicy, (p) => {
          const doc = JSON.parse(p.policy as string) as Doc;
          doc.Statement[0].Resource = ['*'];
          p.policy = JSON.stringify(doc);
        }),
    ],
    [
      'an administrator managed policy',
      'least-privilege-iam',
      () =>
        broken(TYPES.rolePolicyAttachment, (p) => {
          p.policyArn = 'arn:aws:iam::aws:policy/AdministratorAccess';
        }),
    ],
  ];

  it.each(cases)('%s -> %s', (_what, policy, make) => {
    expect(policyNames(make())).toEqual([policy]);
  });
});

describe('schedule expressions', () => {
  it.each([
    ['cron(0 3 ? * SUN *)', true],
    ['cron(15 2 1 * ? *)', true],
    ['cron(0/30 8-18 ? * MON-FRI *)', true],
    ['cron(0 3 ? * 2#1 *)', true],
    ['rate(1 day)', true],
    ['rate(12 hours)', true],
    ['at(2027-01-01T03:00:00)', true],
    ['cron(0 3 * * ? *)', true],
    ['cron(0 3 * * * *)', false], // both day fields set
    ['cron(0 3 ? * ? *)', false], // neither
    ['cron(60 3 ? * SUN *)', false],
    ['cron(0 3 ? * FUNDAY *)', false],
    ['rate(1 days)', false],
    ['rate(0 hours)', false],
    ['rate(5 weeks)', false],
    ['0 3 * * 0', false],
  ])('%s -> %s', (expr, ok) => {
    expect(isValidScheduleExpression(expr)).toBe(ok);
  });

  it.each([
    ['*/30 * * * *', true],
    ['0 3 * * SUN', true],
    ['0 0 1 JAN-JUN *', true],
    ['5,35 9-17 * * 1-5', true],
    ['0 0 L * *', true],
    ['0 3 * *', false],
    ['61 * * * *', false],
    ['0 12-3 * * *', false],
    ['*/0 * * * *', false],
  ])('workers cron %s -> %s', (expr, ok) => {
    expect(isValidWorkersCron(expr)).toBe(ok);
  });
});
