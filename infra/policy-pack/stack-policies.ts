/**
 * The policies of ../policies.ts as @pulumi/policy stack policies, so that a networked pipeline
 * enforces the same checks the unit tests run: `pulumi preview --policy-pack infra/policy-pack`.
 */
import type { ReportViolation, StackValidationArgs, StackValidationPolicy } from '@pulumi/policy';
import { type Policy, policies, type ResourceInputs } from '../policies.ts';

export function toStackPolicy(policy: Policy): StackValidationPolicy {
  return {
    name: policy.name,
    description: policy.description,
    enforcementLevel: 'mandatory',
    validateStack(args: StackValidationArgs, report: ReportViolation) {
      // The engine hands over plain values (secrets already revealed to the analyzer), so the
      // secret-marker check falls back to binding names and value shapes.
      const resources: ResourceInputs[] = args.resources.map((r) => ({
        type: r.type,
        name: r.name,
        props: r.props,
        secretPaths: new Set<string>(),
      }));
      policy.validate(resources, (resource, message) => report(`${resource}: ${message}`));
    },
  };
}

export const stackPolicies: StackValidationPolicy[] = policies.map(toStackPolicy);
