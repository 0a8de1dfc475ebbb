/**
 * `npm run bench [-- GROUP ...] [--json] [--quick]`: runs benchmark groups and prints one table
 * of values with their same-run baselines and ratios, or one JSON object per line with --json.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BenchContext, BenchGroup, BenchResult } from './harness.ts';

const GROUPS: Record<string, () => Promise<{ run: BenchGroup }>> = {
  nifti: () => import('./nifti.bench.ts'),
  kernels: () => import('./kernels.bench.ts'),
  edge: () => import('./edge.bench.ts'),
  infer: () => import('./infer.bench.ts'),
  train: () => import('./train.bench.ts'),
  synthesis: () => import('./synthesis.bench.ts'),
  dataset: () => import('./dataset.bench.ts'),
};

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const quick = argv.includes('--quick');
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !(n in GROUPS));
  if (unknown.length > 0) {
    process.stderr.write(
      `bench: unknown group ${unknown.join(', ')}; groups: ${Object.keys(GROUPS).join(', ')}\n`,
    );
    return 2;
  }
  const shared = fileURLToPath(new URL('../../shared/data', import.meta.url));
  const ctx: BenchContext = {
    quick,
    sharedData: existsSync(shared) ? shared : null,
    log: (m) => process.stderr.write(`${m}\n`),
  };
  const rows: BenchResult[] = [];
  for (const name of names.length > 0 ? names : Object.keys(GROUPS)) {
    ctx.log(`bench: ${name}`);
    const { run } = await GROUPS[name]();
    const out = run(ctx);
    const results = Symbol.asyncIterator in out ? out : (await out)[Symbol.iterator]();
    for await (const r of results as AsyncIterable<BenchResult>) {
      rows.push(r);
      if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
    }
  }
  if (!json) printTable(rows);
  return 0;
}

function fmt(v: number | null): string {
  if (v === null) return '-';
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

function printTable(rows: BenchResult[]): void {
  const header = ['group', 'name', 'value', 'unit', 'baseline', 'baseline is', 'ratio'];
  const cells = rows.map((r) => [
    r.group,
    r.name,
    fmt(r.value),
    r.unit,
    fmt(r.baseline),
    r.baselineName ?? '-',
    fmt(r.ratio),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((s, i) => s.padEnd(widths[i])).join('  ');
  process.stdout.write(`${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const c of cells) process.stdout.write(`${line(c)}\n`);
}

process.exitCode = await main(process.argv.slice(2));
