import { describe, expect, it } from 'vitest';
import { policyNeeds, policyUses, QUALITY_RULE_POLICIES } from './quality.ts';

describe('quality policies: the models needed and used', () => {
  it('`either` needs neither model alone but uses both; the others use what they need', () => {
    const table = Object.fromEntries(QUALITY_RULE_POLICIES.map((p) => [p, [policyNeeds(p), policyUses(p)]]));
    const pair = (segmentor: boolean, discriminator: boolean) => ({ segmentor, discriminator });
    expect(table).toEqual({
      segmentor: [pair(true, false), pair(true, false)],
      discriminator: [pair(false, true), pair(false, true)],
      both: [pair(true, true), pair(true, true)],
      either: [pair(false, false), pair(true, true)],
      none: [pair(false, false), pair(false, false)],
    });
  });
});
