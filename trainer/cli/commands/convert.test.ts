import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { axcodes } from '../../../shared/geometry/orientation.ts';
import { readNifti, writeNifti } from '../../../shared/volume/nifti.ts';
import { spacingOf } from '../../../shared/volume/volume.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'bin/freetumor.js');
const work = mkdtempSync(join(tmpdir(), 'freetumor-convert-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function freetumor(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const read = (p: string) => readNifti(new Uint8Array(readFileSync(p)));

/** A 10x8x6 LPS 3 mm label map with a block of 2s. */
function labelFile(): string {
  const path = join(work, 'labels.nii.gz');
  const data = new Uint8Array(480);
  for (let k = 1; k < 4; k++)
    for (let j = 2; j < 6; j++) for (let i = 3; i < 7; i++) data[i + 10 * (j + 8 * k)] = 2;
  const affine = Float64Array.from([-3, 0, 0, 50, 0, -3, 0, 40, 0, 0, 3, -10, 0, 0, 0, 1]);
  writeFileSync(path, writeNifti({ dims: [10, 8, 6], data, affine, datatype: 'uint8' }));
  return path;
}

describe('freetumor convert', () => {
  it('reorients to RAS and resamples with nearest, printing one JSON object', () => {
    const input = labelFile();
    const out = join(work, 'out', 'ras.nii.gz');
    const r = freetumor('convert', input, out, '--orient', 'RAS', '--spacing', '1.5', '--nearest', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.from).toEqual({ dims: [10, 8, 6], spacing: [3, 3, 3], orientation: 'LPS' });
    expect(summary.to).toMatchObject({ dims: [20, 16, 12], orientation: 'RAS', datatype: 'uint8' });
    const vol = read(out);
    expect(vol.dims).toEqual([20, 16, 12]);
    expect(axcodes(vol.affine)).toBe('RAS');
    expect(spacingOf(vol.affine)).toEqual([1.5, 1.5, 1.5]);
    expect(new Set(vol.data)).toEqual(new Set([0, 2]));
    let twos = 0;
    for (const v of vol.data) if (v === 2) twos++;
    expect(twos).toBe(4 * 4 * 3 * 8);
  });

  it('changes the datatype and writes .nii uncompressed; x,y,z spacing', () => {
    const out = join(work, 'f.nii');
    const r = freetumor('convert', labelFile(), out, '--datatype', 'float32', '--spacing', '3,6,3');
    expect(r.code).toBe(0);
    const bytes = new Uint8Array(readFileSync(out));
    expect(bytes[0]).toBe(92); // sizeof_hdr 348, not gzip
    const vol = read(out);
    expect(vol.datatype).toBe('float32');
    expect(vol.dims).toEqual([10, 4, 6]);
  });

  it('rejects bad options, a missing file and a corrupt file in one line with exit 2', () => {
    const input = labelFile();
    for (const args of [
      ['--spacing', '0'],
      ['--spacing', '1,2'],
      ['--orient', 'RRS'],
      ['--datatype', 'complex64'],
    ]) {
      const r = freetumor('convert', input, join(work, 'x.nii.gz'), ...args);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
    }
    expect(freetumor('convert', input, join(work, 'x.png')).code).toBe(2);
    const missing = freetumor('convert', join(work, 'missing-PATIENT.nii'), join(work, 'y.nii.gz'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).not.toContain('PATIENT');
    const corrupt = join(work, 'corrupt-PATIENT.nii.gz');
    writeFileSync(corrupt, readFileSync(input).subarray(0, 50));
    const c = freetumor('convert', corrupt, join(work, 'z.nii.gz'));
    expect(c.code).toBe(2);
    expect(c.stderr.trim().split('\n')).toHaveLength(1);
    expect(c.stderr).not.toContain('PATIENT');
  });
});
