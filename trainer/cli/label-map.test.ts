/**
 * Label maps that cannot be misread, through the real CLI: detection on the real TotalSegmentator
 * sample, dataset.json beside a label, separate maps in evaluate, nearest for label volumes in convert.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readNifti, writeNifti } from '../../shared/volume/nifti.ts';
import { type Dims3, makeVolume } from '../../shared/volume/volume.ts';
import { TOTALSEG_CT, TOTALSEG_SEG } from '../../test/shared-data.ts';

const BIN = join(import.meta.dirname, '../../bin/freetumor.js');
const work = mkdtempSync(join(tmpdir(), 'ft-labelmap-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function freetumor(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const read = (path: string) => readNifti(new Uint8Array(readFileSync(path)));
const AFFINE = Float64Array.of(2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1);

/** A CT and a label with an ellipsoid organ of id `organ` and a small tumor of id `tumor` inside. */
function writeCase(dir: string, organ: number, tumor: number): { ct: string; label: string } {
  mkdirSync(dir, { recursive: true });
  const dims: Dims3 = [40, 36, 32];
  const n = dims[0] * dims[1] * dims[2];
  const ct = new Int16Array(n).fill(-900);
  const label = new Uint8Array(n);
  for (let k = 0; k < dims[2]; k++)
    for (let j = 0; j < dims[1]; j++)
      for (let i = 0; i < dims[0]; i++) {
        const v = i + dims[0] * (j + dims[1] * k);
        if (((i - 20) / 14) ** 2 + ((j - 18) / 12) ** 2 + ((k - 16) / 11) ** 2 < 1) {
          label[v] = organ;
          ct[v] = 60 + ((i + j + k) % 5);
        }
        if (((i - 14) / 3) ** 2 + ((j - 18) / 3) ** 2 + ((k - 16) / 3) ** 2 < 1) label[v] = tumor;
      }
  const paths = { ct: join(dir, 'ct.nii.gz'), label: join(dir, 'label.nii.gz') };
  writeFileSync(paths.ct, writeNifti(makeVolume(dims, ct, AFFINE, 'int16')));
  writeFileSync(paths.label, writeNifti(makeVolume(dims, label, AFFINE, 'uint8')));
  return paths;
}

describe.skipIf(!TOTALSEG_CT || !TOTALSEG_SEG)(
  'synthesize on TotalSegmentator labels without --label-map',
  () => {
    it.each([
      ['small', '3'],
      ['large', '4'],
    ])('puts the %s tumor (seed %s) only in the liver (id 5), written as 201', (type, seed) => {
      const out = join(work, `ts-${type}`);
      const r = freetumor(
        'synthesize',
        '--image',
        TOTALSEG_CT as string,
        '--label',
        TOTALSEG_SEG as string,
        '--organ',
        'liver',
        '--type',
        type,
        '--count',
        '1',
        '--seed',
        seed,
        '--out',
        out,
        '--json',
      );
      expect(r.stderr.trim()).toBe(
        'note: totalseg has no liver tumor class; synthetic tumors are written as 201',
      );
      expect(r.code).toBe(0);
      const summary = JSON.parse(r.stdout);
      expect(summary).toMatchObject({ labelMap: 'totalseg', tumorLabel: 201 });
      expect(summary.labelMapFrom).toBe('detected from label ids 1-104');
      const before = read(TOTALSEG_SEG as string).data;
      const after = read(join(out, 'label.nii.gz')).data;
      const ctBefore = read(TOTALSEG_CT as string).data;
      const ctAfter = read(join(out, 'ct.nii.gz')).data;
      let tumor = 0;
      for (let v = 0; v < after.length; v++) {
        if (after[v] === 201) {
          tumor++;
          expect(before[v]).toBe(5);
        } else expect(after[v]).toBe(before[v]);
        if (ctAfter[v] !== ctBefore[v]) expect(before[v]).toBe(5);
      }
      expect(tumor).toBe(summary.inputTumorVoxels);
      expect(tumor).toBeGreaterThan(0);
    });

    it('refuses the FreeTumor scheme and an unversioned pancreas on them, naming --label-map', () => {
      const common = ['synthesize', '--image', TOTALSEG_CT as string, '--label', TOTALSEG_SEG as string];
      const a = freetumor(
        ...common,
        '--organ',
        'liver',
        '--label-map',
        'freetumor',
        '--out',
        join(work, 'x'),
      );
      expect(a.code).toBe(2);
      expect(a.stderr.trim()).toBe(
        'freetumor: label ids 1-104 do not fit --label-map freetumor (ids up to 6); it looks like totalseg: pass the right --label-map',
      );
      const b = freetumor(...common, '--organ', 'pancreas', '--out', join(work, 'y'));
      expect(b.code).toBe(2);
      expect(b.stderr.trim().split('\n')).toHaveLength(1);
      expect(b.stderr).toMatch(/pass --label-map totalseg-v1 or totalseg-v2/);
    });
  },
);

describe('dataset.json beside the label', () => {
  it('names the classes of an MSD pancreas label; without it the label is refused', () => {
    const bare = writeCase(join(work, 'bare'), 1, 2);
    const refused = freetumor(
      'synthesize',
      '--image',
      bare.ct,
      '--label',
      bare.label,
      '--organ',
      'pancreas',
      '--out',
      join(work, 'o1'),
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/pass --label-map msd if 1 is the pancreas, or a dataset.json/);

    const task = join(work, 'Task07_Pancreas');
    const c = writeCase(join(task, 'labelsTr'), 1, 2);
    writeFileSync(
      join(task, 'dataset.json'),
      JSON.stringify({ labels: { '0': 'background', '1': 'pancreas', '2': 'cancer' } }),
    );
    const out = join(work, 'o2');
    const r = freetumor(
      'synthesize',
      '--image',
      c.ct,
      '--label',
      c.label,
      '--organ',
      'pancreas',
      '--type',
      'small',
      '--count',
      '1',
      '--out',
      out,
      '--json',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({
      labelMap: 'dataset.json',
      tumorLabel: 2,
      labelMapFrom: 'dataset.json beside the label',
    });
  });
});

describe('evaluate with separate label maps', () => {
  it('scores a 1/2 prediction against a 5/201 reference, and asks for --organ when two organs are there', () => {
    const truth = writeCase(join(work, 'ev-truth'), 5, 201);
    const pred = writeCase(join(work, 'ev-pred'), 1, 2);
    const r = freetumor(
      'evaluate',
      '--pred',
      pred.label,
      '--truth',
      truth.label,
      '--organ',
      'liver',
      '--json',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const e = JSON.parse(r.stdout);
    expect(e.tumor.dice).toBe(1);
    expect(e.organ.dice).toBe(1);
    expect(e.labelMaps).toEqual({
      organ: 'liver',
      truth: 'totalseg (detected from label ids 5-201)',
      pred: 'msd (--pred-label-map msd)',
    });
    // The same prediction read with the truth's ids holds no liver at all: refused, not scored 0.
    const wrong = freetumor(
      'evaluate',
      '--pred',
      pred.label,
      '--truth',
      truth.label,
      '--organ',
      'liver',
      '--pred-label-map',
      'totalseg',
    );
    expect(wrong.code).toBe(2);
    expect(wrong.stderr.trim()).toBe(
      'freetumor: the prediction holds ids 1, 2 but none is the liver or its tumor under totalseg: pass --pred-label-map',
    );

    const multi = join(work, 'multi');
    const m = writeCase(multi, 1, 5);
    const ask = freetumor('evaluate', '--pred', m.label, '--truth', m.label);
    expect(ask.code).toBe(2);
    expect(ask.stderr.trim()).toBe('freetumor: the label holds liver and kidney: pass --organ');
  });
});

describe('convert: nearest for label volumes', () => {
  it('keeps the ids of a label volume unless --linear is asked for, and resamples a CT linearly', () => {
    const c = writeCase(join(work, 'conv'), 5, 201);
    const out = join(work, 'conv-out.nii.gz');
    const r = freetumor('convert', c.label, out, '--spacing', '3.3', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).interpolation.mode).toBe('nearest');
    expect([...new Set(read(out).data)].sort((a, b) => a - b)).toEqual([0, 5, 201]);
    const lin = freetumor('convert', c.label, out, '--spacing', '3.3', '--linear', '--json');
    expect(JSON.parse(lin.stdout).interpolation.mode).toBe('linear');
    expect(new Set(read(out).data).size).toBeGreaterThan(3);
    const ct = freetumor('convert', c.ct, out, '--spacing', '3.3', '--json');
    expect(JSON.parse(ct.stdout).interpolation).toEqual({
      mode: 'linear',
      reason: 'image: negative values; --nearest to override',
    });
  });
});
