/**
 * The policy-pack adapter: the stack policies the CLI would run see the same violations as the
 * functions, when fed resources the way the analyzer hands them over.
 */
import type { PolicyResource, ReportViolation } from '@pulumi/policy';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.ts';
import { TYPES } from '../policies.ts';
import { createStack } from '../program.ts';
import { baseConfig, fakeWorkerBundle, installMocks, settled, toPolicyInputs } from '../testing.ts';
import { stackPolicies } from './stack-policies.ts';

let resources: PolicyResource[];

beforeAll(async () => {
  const { config, secrets } = baseConfig(fakeWorkerBundle());
  const captured = await installMocks(config, secrets);
  await settled(createStack(loadConfig()));
  resources = toPolicyInputs(captured).map(
    (r) =>
      ({
        type: r.type,
        name: r.name,
        props: r.props,
        urn: `urn:pulumi:test::freetumor-infra::${r.type}::${r.name}`,
      }) as PolicyResource,
  );
});

async function violations(input: PolicyResource[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of stackPolicies) {
    const report: ReportViolation = (message) => out.push(`${p.name}: ${message}`);
    await p.validateStack({ resources: input } as Parameters<typeof p.validateStack>[0], report);
  }
  return out;
}

describe('policy pack', () => {
  it('is mandatory for every policy and passes the stack', async () => {
    expect(stackPolicies.map((p) => p.enforcementLevel)).toEqual(stackPolicies.map(() => 'mandatory'));
    expect(await violations(resources)).toEqual([]);
  });

  it('reports a plain_text credential and a public bucket', async () => {
    const bad = resources.map((r) => {
      if (r.type === TYPES.workersScript) {
        const bindings = (r.props.bindings as Array<Record<string, unknown>>).map((b) =>
          b.name === 'AWS_SECRET_ACCESS_KEY' ? { ...b, type: 'plain_text' } : b,
        );
        return { ...r, props: { ...r.props, bindings } };
      }
      if (r.type === TYPES.r2ManagedDomain) return { ...r, props: { ...r.props, enabled: true } };
      return r;
    });
    const v = await violations(bad);
    expect(v).toEqual([
      'worker-secrets-are-secret-text: edge: binding AWS_SECRET_ACCESS_KEY holds a credential but is plain_text, not secret_text',
      'buckets-private: models-r2dev: r2.dev public access is enabled',
    ]);
  });
});
