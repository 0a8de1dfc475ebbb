/**
 * Stateless seeding: every random draw of a run comes from an Rng seeded by (run seed, step,
 * stream, ...). Resuming at step s therefore needs no saved generator state, and patch workers
 * produce the same batch whatever order they finish in.
 */
import { Rng } from '../../shared/random.ts';

/** Mixes integers into one 32-bit seed (murmur3 finaliser per part). */
export function streamSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    let k = Math.imul(p | 0, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Named streams, so that adding a new use of randomness does not shift the others. */
export const STREAM = {
  order: 1,
  crop: 2,
  plan: 3,
  cutmix: 4,
  qc: 5,
  difference: 6,
  validation: 7,
  contrast: 8,
} as const;

export function stepRng(seed: number, stream: number, ...parts: number[]): Rng {
  return new Rng(streamSeed(seed, stream, ...parts));
}
