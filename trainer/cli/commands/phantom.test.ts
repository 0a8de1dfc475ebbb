import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { labelVolumesMl } from '../../../shared/phantom/phantom.ts';
import { readNifti } from '../../../shared/volume/nifti.ts';
import { spacingOf, type Volume } from '../../../shared/volume/volume.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'bin/freetumor.js');
const work = mkdtempSync(join(tmpdir(), 'freetumor-phantom-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function freetumor(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function read(path: string): Volume {
  return readNifti(new Uint8Array(readFileSync(path)));
}

// Small grids keep each run well under a second.
const SMALL = ['--size', '48,40,40', '--spacing', '7'];

describe('freetumor phantom', () => {
  it('writes ct.nii.gz (int16) and label.nii.gz (uint8) and prints one JSON object with --json', () => {
    const out = join(work, 'single');
    const r = freetumor('phantom', '--out', out, '--seed', '5', ...SMALL, '--tumors', 'liver:1', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]);
    const ct = read(join(out, 'ct.nii.gz'));
    const label = read(join(out, 'label.nii.gz')) as Volume<Uint8Array>;
    expect(ct.datatype).toBe('int16');
    expect(label.datatype).toBe('uint8');
    expect(ct.dims).toEqual([48, 40, 40]);
    expect(spacingOf(ct.affine)).toEqual([7, 7, 7]);
    expect(Array.from(label.affine)).toEqual(Array.from(ct.affine));
    expect(summary).toMatchObject({
      seed: 5,
      dims: [48, 40, 40],
      spacingMm: 7,
      files: ['ct.nii.gz', 'label.nii.gz'],
    });
    expect(summary.volumesMl).toEqual(labelVolumesMl(label));
    expect(summary.volumesMl.liver).toBeGreaterThan(500);
    expect(summary.tumors).toHaveLength(1);
    expect(new Set(label.data).has(2)).toBe(true);
    expect(existsSync(join(out, 'organs.nii.gz'))).toBe(false);
  });

  it('is deterministic per seed through the CLI, and prints a readable summary without --json', () => {
    const a = join(work, 'a');
    const b = join(work, 'b');
    const ra = freetumor('phantom', '--out', a, '--seed', '9', ...SMALL, '--organs');
    const rb = freetumor('phantom', '--out', b, '--seed', '9', ...SMALL);
    expect(ra.code).toBe(0);
    expect(rb.code).toBe(0);
    expect(ra.stdout).toMatch(/^phantom seed 9: 48x40x40 voxels at 7 mm/);
    expect(ra.stdout).toMatch(/liver [\d.]+ ml, pancreas [\d.]+ ml, kidneys [\d.]+ ml/);
    expect(Array.from(read(join(a, 'ct.nii.gz')).data)).toEqual(Array.from(read(join(b, 'ct.nii.gz')).data));
    expect(Array.from(read(join(a, 'label.nii.gz')).data)).toEqual(
      Array.from(read(join(b, 'label.nii.gz')).data),
    );
    expect(read(join(a, 'organs.nii.gz')).datatype).toBe('uint8');
  });

  it('writes --cases K in the nnU-Net layout with seeds seed..seed+K-1', () => {
    const out = join(work, 'dataset');
    const r = freetumor('phantom', '--out', out, '--seed', '20', '--cases', '2', ...SMALL, '--json');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.numTraining).toBe(2);
    expect(summary.cases.map((c: { id: string; seed: number }) => [c.id, c.seed])).toEqual([
      ['case_000', 20],
      ['case_001', 21],
    ]);
    const dataset = JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8'));
    expect(dataset).toMatchObject({ channel_names: { '0': 'CT' }, numTraining: 2, file_ending: '.nii.gz' });
    expect(dataset.labels).toMatchObject({
      background: 0,
      liver: 1,
      liver_tumor: 2,
      kidney: 5,
      kidney_tumor: 6,
    });
    const img0 = read(join(out, 'imagesTr/case_000_0000.nii.gz'));
    const img1 = read(join(out, 'imagesTr/case_001_0000.nii.gz'));
    const lab0 = read(join(out, 'labelsTr/case_000.nii.gz'));
    expect(img0.dims).toEqual([48, 40, 40]);
    expect(lab0.datatype).toBe('uint8');
    expect(Array.from(img0.data)).not.toEqual(Array.from(img1.data));
    // Case 0 is the same patient as a single phantom with seed 20.
    const single = join(work, 'seed20');
    expect(freetumor('phantom', '--out', single, '--seed', '20', ...SMALL).code).toBe(0);
    expect(Array.from(read(join(single, 'ct.nii.gz')).data)).toEqual(Array.from(img0.data));
  });

  it.each([
    [['--size', '64,64'], /--size/],
    [['--size', '0,10,10'], /--size/],
    [['--spacing', '-1'], /--spacing/],
    [['--seed', '-3'], /--seed/],
    [['--seed', 'abc'], /--seed/],
    [['--tumors', 'lung:1'], /tumors/],
    [['--noise', 'loud'], /--noise/],
    [['--cases', '0'], /--cases/],
    [['--size', '2000,2000,2000'], /voxel count/],
  ])('rejects %j with exit code 2 and one line on stderr', (args, message) => {
    const r = freetumor('phantom', '--out', join(work, 'bad'), ...args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toMatch(message);
    // commander may add its "(run with --help for usage)" hint on a second line, never a stack trace.
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(work, 'bad', 'ct.nii.gz'))).toBe(false);
  });

  it('needs --out', () => {
    const r = freetumor('phantom', '--seed', '1');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--out/);
  });
});
