import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { writeNifti } from '../../../shared/volume/nifti.ts';
import { TOTALSEG_CT } from '../../../test/shared-data.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'bin/freetumor.js');
const work = mkdtempSync(join(tmpdir(), 'freetumor-info-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function freetumor(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A 4x3x2 int16 LPS volume with values 0..23 (min 0, max 23, mean 11.5). */
function smallFile(name: string): string {
  const path = join(work, name);
  const affine = Float64Array.from([-0.5, 0, 0, 10, 0, -0.5, 0, 20, 0, 0, 2, -30, 0, 0, 0, 1]);
  const data = Int16Array.from({ length: 24 }, (_, i) => i);
  writeFileSync(
    path,
    writeNifti({ dims: [4, 3, 2], data, affine, datatype: 'int16' }, { gzip: name.endsWith('.gz') }),
  );
  return path;
}

describe('freetumor info', () => {
  it('prints one JSON object with dims, spacing, datatype, orientation, affine and intensities', () => {
    const r = freetumor('info', smallFile('small.nii.gz'), '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const info = JSON.parse(lines[0]);
    expect(info).toMatchObject({
      niftiVersion: 1,
      gzip: true,
      dims: [4, 3, 2],
      spacing: [0.5, 0.5, 2],
      datatype: 'int16',
      orientation: 'LPS',
      affineSource: 'sform',
      scaled: false,
      intensity: { min: 0, max: 23, mean: 11.5 },
    });
    expect(info.affine).toEqual([
      [-0.5, 0, 0, 10],
      [0, -0.5, 0, 20],
      [0, 0, 2, -30],
      [0, 0, 0, 1],
    ]);
    expect(info.voxelVolumeMl).toBeCloseTo(0.0005, 12);
  });

  it('prints a readable summary without --json, for .nii too', () => {
    const r = freetumor('info', smallFile('small.nii'));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/dims\s+4 x 3 x 2/);
    expect(r.stdout).toMatch(/orientation\s+LPS/);
    expect(r.stdout).toMatch(/min 0\s+max 23/);
  });

  it('reports a missing file in one line with exit 2, without echoing the name', () => {
    const missing = join(work, 'no-such-PATIENT.nii.gz');
    const r = freetumor('info', missing);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/not found/);
    expect(r.stderr).not.toContain('PATIENT');
  });

  it('reports a corrupt file in one line with exit 2, no stack, no name', () => {
    const bad = join(work, 'corrupt-PATIENT.nii.gz');
    const good = writeNifti({
      dims: [8, 8, 8],
      data: new Int16Array(512),
      affine: Float64Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]),
      datatype: 'int16',
    });
    writeFileSync(bad, good.subarray(0, 40));
    for (const file of [bad, smallFileWithGarbage()]) {
      const r = freetumor('info', file);
      expect(r.code).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^freetumor: /);
      expect(r.stderr).not.toMatch(/\bat .*\.ts:\d+/);
      expect(r.stderr).not.toContain('PATIENT');
    }
  });

  it.skipIf(!TOTALSEG_CT)('describes the real TotalSegmentator CT', () => {
    const r = freetumor('info', TOTALSEG_CT as string, '--json');
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info).toMatchObject({
      dims: [122, 101, 112],
      spacing: [3, 3, 3],
      datatype: 'int32',
      orientation: 'RAS',
    });
    expect(info.intensity.min).toBe(-1207);
    expect(info.intensity.max).toBe(3382);
  });
});

function smallFileWithGarbage(): string {
  const path = join(work, 'garbage-PATIENT.nii');
  writeFileSync(path, new TextEncoder().encode('this is not a NIfTI file, PATIENT name inside'));
  return path;
}
