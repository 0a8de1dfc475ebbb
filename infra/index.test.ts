/**
 * The entry point as `pulumi up` runs it (module import under mocks), with the other config
 * branches: a custom domain instead of workers.dev, on-demand instead of spot; and config errors.
 */
import * as pulumi from '@pulumi/pulumi';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, PROJECT } from './config.ts';
import { policies, runPolicies } from './policies.ts';
import {
  baseConfig,
  type Captured,
  fakeWorkerBundle,
  installMocks,
  toPolicyInputs,
  value,
} from './testing.ts';

let captured: Captured[];
let program: typeof import('./index.ts');

beforeAll(async () => {
  const { config, secrets } = baseConfig(fakeWorkerBundle());
  captured = await installMocks(
    { ...config, customDomain: 'api.example.com', zoneId: 'zone123', spot: 'false', jobTimeoutHours: '2' },
    secrets,
  );
  program = await import('./index.ts');
  await value(program.schedule);
  await value(program.url);
});

describe('index.ts under mocks', () => {
  it('exports the operator outputs', async () => {
    expect(await value(program.url)).toBe('https://api.example.com');
    expect(await value(program.bucket)).toBe('freetumor-test');
    expect(await value(program.jobQueue)).toBe('freetumor-test-training');
    expect(await value(program.trainerRepository)).toMatch(
      /\.dkr\.ecr\.eu-west-1\.amazonaws\.com\/freetumor-test-trainer$/,
    );
    expect(await value(program.schedule)).toBe('cron(0 3 ? * SUN *)');
  });

  it('serves on the custom domain instead of workers.dev', () => {
    const types = captured.map((c) => c.type);
    expect(types).toContain('cloudflare:index/workersCustomDomain:WorkersCustomDomain');
    expect(types).not.toContain('cloudflare:index/workersScriptSubdomain:WorkersScriptSubdomain');
    const domain = captured.find(
      (c) => c.type === 'cloudflare:index/workersCustomDomain:WorkersCustomDomain',
    );
    expect(domain?.inputs).toMatchObject({
      hostname: 'api.example.com',
      zoneId: 'zone123',
      service: 'freetumor-test',
    });
  });

  it('uses on-demand capacity and the configured timeout when asked', () => {
    const ce = captured.find((c) => c.type === 'aws:batch/computeEnvironment:ComputeEnvironment');
    expect(ce?.inputs.computeResources).toMatchObject({
      type: 'EC2',
      allocationStrategy: 'BEST_FIT_PROGRESSIVE',
    });
    const jd = captured.find((c) => c.type === 'aws:batch/jobDefinition:JobDefinition');
    expect(jd?.inputs.timeout).toEqual({ attemptDurationSeconds: 7200 });
  });

  it('still passes every policy', () => {
    expect(runPolicies(toPolicyInputs(captured), policies)).toEqual([]);
  });
});

describe('config errors name the key', () => {
  it.each([
    ['awsAccountId', '12345'],
    ['cloudflareAccountId', 'not-an-account'],
  ])('a malformed %s is rejected', (key, bad) => {
    const { config } = baseConfig('/nonexistent');
    pulumi.runtime.setAllConfig({ ...prefixed(config), [`${PROJECT}:${key}`]: bad });
    expect(() => loadConfig()).toThrow(key);
  });

  it('a missing imageTag is rejected', () => {
    const { config } = baseConfig('/nonexistent');
    const all = prefixed(config);
    delete all[`${PROJECT}:imageTag`];
    pulumi.runtime.setAllConfig(all);
    // setAllConfig merges; clear the key explicitly.
    pulumi.runtime.setConfig(`${PROJECT}:imageTag`, undefined as unknown as string);
    expect(() => loadConfig()).toThrow('imageTag');
  });
});

function prefixed(config: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config).map(([k, v]) => [k.includes(':') ? k : `${PROJECT}:${k}`, v]),
  );
}
