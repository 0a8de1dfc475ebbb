/**
 * The organs FreeTumor synthesizes tumors in and segments: the one list. zod enums, CLI help,
 * the edge's OpenAPI schemas and the label schemes are all built from it.
 */
export const ORGANS = ['liver', 'pancreas', 'kidney'] as const;
export type OrganName = (typeof ORGANS)[number];

export function isOrganName(value: unknown): value is OrganName {
  return typeof value === 'string' && (ORGANS as readonly string[]).includes(value);
}

/** "liver, pancreas or kidney" (for help texts and error messages). */
export function listWords(words: readonly string[], last = 'or'): string {
  return words.length <= 1 ? words.join('') : `${words.slice(0, -1).join(', ')} ${last} ${words.at(-1)}`;
}

export const ORGAN_CHOICES = listWords(ORGANS);
