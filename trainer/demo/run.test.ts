import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimOutputFolder } from './run.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ft-demo-out-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('demo output folder', () => {
  it('takes a new or empty folder and marks it, so a second run may replace its subfolders', async () => {
    const fresh = join(dir, 'fresh');
    await claimOutputFolder(fresh);
    expect(existsSync(join(fresh, '.freetumor-demo'))).toBe(true);
    await mkdir(join(fresh, 'runs'));
    await expect(claimOutputFolder(fresh)).resolves.toBeUndefined();
  });

  it('refuses a folder holding other data (nothing is deleted)', async () => {
    const other = join(dir, 'other');
    await mkdir(join(other, 'data'), { recursive: true });
    await writeFile(join(other, 'data', 'keep.txt'), 'x');
    await expect(claimOutputFolder(other)).rejects.toThrow(/other content/);
    expect(existsSync(join(other, 'data', 'keep.txt'))).toBe(true);
  });
});
