/**
 * Benchmark plumbing. A group module exports `run(ctx)` that yields results; each result is
 * a measured value with, where the group has one, the same quantity measured for a baseline
 * in the same run (so ratios do not compare different machines or days).
 */
export interface BenchResult {
  group: string;
  name: string;
  value: number;
  unit: string;
  /** Baseline value measured in the same run (same unit), or null when none could be measured. */
  baseline: number | null;
  /** What the baseline is (e.g. "nibabel", "tfjs stock cpu kernels"). */
  baselineName?: string;
  /** value / baseline for time-like units (lower is better): how many times the baseline's cost. */
  ratio: number | null;
}

export interface BenchContext {
  /** Shorter runs (fewer repetitions), for smoke tests of the bench code itself. */
  quick: boolean;
  /** Path of ../shared/data when present, else null (groups then use generated data). */
  sharedData: string | null;
  log(message: string): void;
}

export type BenchGroup = (ctx: BenchContext) => AsyncIterable<BenchResult> | Promise<BenchResult[]>;

export function result(
  group: string,
  name: string,
  value: number,
  unit: string,
  baseline: number | null = null,
  baselineName?: string,
): BenchResult {
  return { group, name, value, unit, baseline, baselineName, ratio: baseline ? value / baseline : null };
}

/** Median wall time in ms of `fn` over `reps` runs after `warmup` runs. */
export async function timeMedian(
  fn: () => unknown | Promise<unknown>,
  reps: number,
  warmup = 1,
): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}
