/**
 * Policy pack entry point (run by the Pulumi CLI only: the constructor talks to the engine).
 */
import { PolicyPack } from '@pulumi/policy';
import { stackPolicies } from './stack-policies.ts';

new PolicyPack('freetumor', { policies: stackPolicies });
