/**
 * The cases of a run: preprocessed case files in the cache, read on demand with a bounded number
 * kept in memory (each patch worker has its own store).
 */
import { readFileSync } from 'node:fs';
import { decodeCase, type TrainingCase } from './case.ts';

export interface CaseEntry {
  /** Path of the preprocessed case file. */
  path: string;
  labeled: boolean;
  /** Times the case appears per epoch. */
  repeat: number;
}

export class CaseStore {
  readonly entries: readonly CaseEntry[];
  private readonly maxCached: number;
  private readonly cache = new Map<number, TrainingCase>();

  constructor(entries: readonly CaseEntry[], maxCached = 8) {
    this.entries = entries;
    this.maxCached = Math.max(1, maxCached);
  }

  get(index: number): TrainingCase {
    const hit = this.cache.get(index);
    if (hit) {
      // Refresh LRU position.
      this.cache.delete(index);
      this.cache.set(index, hit);
      return hit;
    }
    const c = decodeCase(new Uint8Array(readFileSync(this.entries[index].path)));
    this.cache.set(index, c);
    while (this.cache.size > this.maxCached) this.cache.delete(this.cache.keys().next().value as number);
    return c;
  }
}
