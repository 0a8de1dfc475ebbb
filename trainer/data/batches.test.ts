import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ORGANS } from '../../shared/labels/labelmap.ts';
import type { BatchSpec } from './batches.ts';
import { decodeCase, encodeCase } from './case.ts';
import { phantomCase, writeCases } from './phantom-cases.ts';
import { createBatchSource } from './prefetch.ts';
import type { CaseEntry } from './store.ts';

let dir: string;
let entries: CaseEntry[];

const spec: BatchSpec = {
  seed: 5,
  patchSize: [16, 16, 16],
  casesPerStep: 2,
  cropsPerCase: 2,
  crops: { tumor: 1, organ: 1, body: 1, air: 0 },
  spacing: [12, 12, 12],
  augment: true,
  synthesis: 'organ',
  plansPerCrop: 2,
  tumorType: 'tiny',
  organs: ORGANS,
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ft-batch-'));
  entries = await writeCases(
    dir,
    [31, 32, 33].map((seed) => phantomCase({ seed, size: [24, 24, 20], spacing: 12 })),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function collect(workers: number, steps: number[], batchSpec: BatchSpec = spec) {
  const source = await createBatchSource({
    entries,
    spec: batchSpec,
    workers,
    prefetch: 2,
    lastStep: Math.max(...steps),
  });
  const out = [];
  for (const s of steps) out.push(await source.next(s));
  await source.close();
  return out;
}

describe('batches', () => {
  it('case files round-trip', async () => {
    const c = phantomCase({ seed: 31, size: [24, 24, 20], spacing: 12 });
    const back = decodeCase(encodeCase(c));
    expect(back.dims).toEqual(c.dims);
    expect(Array.from(back.image)).toEqual(Array.from(c.image));
    expect(Array.from(back.label)).toEqual(Array.from(c.label));
    const path = join(dir, 'broken.ftcase');
    await writeFile(path, (await readFile(entries[0].path)).subarray(0, 100));
    expect(() => decodeCase(new Uint8Array(readFileSync(path)))).toThrow(/corrupt/);
  });

  it('a step gives the same batch inline, from worker threads, and when resumed mid-run', async () => {
    const inline = await collect(0, [0, 1, 2, 3]);
    const threaded = await collect(2, [0, 1, 2, 3]);
    const resumed = await collect(1, [2, 3]);
    for (let i = 0; i < 4; i++) {
      expect(threaded[i].images).toEqual(inline[i].images);
      expect(threaded[i].labels).toEqual(inline[i].labels);
      expect(threaded[i].plans[1].weight).toEqual(inline[i].plans[1].weight);
    }
    expect(resumed[0].images).toEqual(inline[2].images);
    expect(resumed[1].plans[0].label).toEqual(inline[3].plans[0].label);
    expect(inline[0].images).not.toEqual(inline[1].images);
    // Two independent plans per crop (G step and D step differ).
    const withPlan = inline.flatMap((b) => Array.from(b.plans[0].has)).filter((h) => h).length;
    expect(withPlan).toBeGreaterThan(0);
    expect(inline[0].plans[0].weight).not.toEqual(inline[0].plans[1].weight);
  });

  it('draws a contrast factor per planned crop in its range, shifting no other draw', async () => {
    const plain = await collect(0, [0, 1, 2]);
    const faint = await collect(0, [0, 1, 2], { ...spec, contrast: [0.5, 0.8] });
    const factors: number[] = [];
    for (let s = 0; s < 3; s++) {
      expect(faint[s].images).toEqual(plain[s].images);
      for (let p = 0; p < 2; p++) {
        expect(faint[s].plans[p].weight).toEqual(plain[s].plans[p].weight);
        expect(faint[s].plans[p].difference).toEqual(plain[s].plans[p].difference);
        expect(Array.from(plain[s].plans[p].contrast).every((c) => c === 1)).toBe(true);
        faint[s].plans[p].has.forEach((h, b) => {
          const c = faint[s].plans[p].contrast[b];
          if (!h) expect(c).toBe(1);
          else factors.push(c);
        });
      }
    }
    expect(factors.length).toBeGreaterThan(3);
    for (const c of factors) expect(c >= 0.5 && c <= 0.8).toBe(true);
    expect(new Set(factors).size).toBe(factors.length);
  });

  it('visits every case once per epoch', async () => {
    const batches = await collect(0, [0]);
    const oneCasePerStep = {
      ...spec,
      casesPerStep: 1,
      cropsPerCase: 1,
      synthesis: 'none' as const,
      plansPerCrop: 0,
    };
    const source = await createBatchSource({
      entries,
      spec: oneCasePerStep,
      workers: 0,
      prefetch: 1,
      lastStep: 5,
    });
    const ids = [];
    for (let s = 0; s < 6; s++) ids.push((await source.next(s)).caseIds[0]);
    expect(new Set(ids.slice(0, 3)).size).toBe(3);
    expect(new Set(ids.slice(3, 6)).size).toBe(3);
    expect(batches[0].size).toBe(4);
  });
});
