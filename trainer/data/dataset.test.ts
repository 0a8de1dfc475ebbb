import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePhantom } from '../../shared/phantom/phantom.ts';
import { writeNifti } from '../../shared/volume/nifti.ts';
import { decodeCase } from './case.ts';
import { listDataset } from './dataset.ts';
import { preprocessToCache } from './preprocess.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ft-ds-'));
  await mkdir(join(dir, 'msd', 'imagesTr'), { recursive: true });
  await mkdir(join(dir, 'msd', 'labelsTr'), { recursive: true });
  await mkdir(join(dir, 'msd', 'imagesUnlabeled'), { recursive: true });
  await mkdir(join(dir, 'msd', 'labelsUnlabeled'), { recursive: true });
  for (const [i, part] of [
    [0, 'Tr'],
    [1, 'Tr'],
    [2, 'Unlabeled'],
  ] as const) {
    const p = generatePhantom({
      seed: 40 + i,
      spacing: 12,
      tumors: part === 'Tr' ? [{ organ: 'liver', count: 1 }] : [],
    });
    await writeFile(join(dir, 'msd', `images${part}`, `case_${i}_0000.nii.gz`), writeNifti(p.ct));
    await writeFile(join(dir, 'msd', `labels${part}`, `case_${i}.nii.gz`), writeNifti(p.label));
  }
  await writeFile(
    join(dir, 'list.json'),
    JSON.stringify({
      labeled: [{ image: 'msd/imagesTr/case_0_0000.nii.gz', label: 'msd/labelsTr/case_0.nii.gz' }],
      unlabeled: [],
    }),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ds = { name: 'p', labelMap: 'freetumor', organ: 'liver' as const, repeat: 1, unlabeled: true };

describe('data sets', () => {
  it('lists the nnU-Net/MSD layout with its unlabeled part, and JSON lists', async () => {
    const msd = await listDataset({ ...ds, format: 'msd', path: join(dir, 'msd') });
    expect(msd.map((c) => [c.id, c.labeled])).toEqual([
      ['case_0', true],
      ['case_1', true],
      ['case_2', false],
    ]);
    const list = await listDataset({ ...ds, format: 'list', path: join(dir, 'list.json') });
    expect(list).toHaveLength(1);
    expect(list[0].image).toBe(join(dir, 'msd/imagesTr/case_0_0000.nii.gz'));
    await expect(listDataset({ ...ds, format: 'msd', path: join(dir, 'nope') })).rejects.toThrow(
      /folder not found/,
    );
  });

  it('preprocesses with shared/ (RAS, spacing, window, merged labels) and caches by content', async () => {
    const [c] = await listDataset({ ...ds, format: 'msd', path: join(dir, 'msd') });
    const params = {
      spacing: [6, 6, 6] as [number, number, number],
      window: [-175, 250] as [number, number],
      labelMap: 'freetumor',
      organ: 'liver' as const,
    };
    const cache = join(dir, 'cache');
    const t0 = performance.now();
    const path = await preprocessToCache(c, params, cache);
    const first = performance.now() - t0;
    const again = await preprocessToCache(c, params, cache);
    expect(again).toBe(path);
    const other = await preprocessToCache(c, { ...params, spacing: [8, 8, 8] }, cache);
    expect(other).not.toBe(path);
    const tc = decodeCase(new Uint8Array(await (await import('node:fs/promises')).readFile(path)));
    expect(Math.max(...tc.image)).toBeLessThanOrEqual(1);
    expect(Math.min(...tc.image)).toBeGreaterThanOrEqual(0);
    expect(new Set(tc.label)).toEqual(new Set([0, 1, 2]));
    // 12 mm -> 6 mm doubles the grid (before the foreground crop).
    expect(tc.dims[0]).toBeGreaterThan(30);
    expect(first).toBeGreaterThan(0);
  });
});
