/**
 * `freetumor segment` as a user runs it (a process through bin/freetumor.js) with a tiny exported
 * model: DICOM series in -> DICOM-SEG out that references it (read back by pydicom), statistics that
 * agree with the mask and the CT, the preview, label tables beside NIfTI masks, and batches (a failed
 * case does not stop the others; exit 2 at the end). Patient data never reach stdout or stderr.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decode } from 'fast-png';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePhantom } from '../../shared/phantom/phantom.ts';
import { renderSegmentPreviewPng } from '../../shared/segmentation/preview.ts';
import {
  segmentationStatistics,
  segmentationStatisticsSchema,
} from '../../shared/segmentation/statistics.ts';
import { maskStructures } from '../../shared/segmentation/structures.ts';
import { readNifti, writeNifti } from '../../shared/volume/nifti.ts';
import type { Volume } from '../../shared/volume/volume.ts';
import { flipXY, hasPydicom, PYTHON, readWithPydicom, writeSeries } from '../../test/dicom/fixtures.ts';
import { readVolumeInput } from '../io/volume-input.ts';
import { BIN, exportTinySegmentor } from './test-model.ts';

const READ_SEG = fileURLToPath(new URL('../../test/dicom/read_seg.py', import.meta.url));
const SECRETS = ['Cliname', 'CLI-PID-42', '19330303'];

function freetumor(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
let models: string;
let ct: Volume;
const phantomCt = () => join(dir, 'ct.nii.gz');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ft-segment-'));
  models = await exportTinySegmentor(dir, 6);
  ct = generatePhantom({ seed: 1, spacing: 6, tumors: [{ organ: 'liver', count: 2 }] }).ct;
  writeFileSync(phantomCt(), writeNifti(ct));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Statistics recomputed the plain way from the mask file and the CT values. */
function expectStatisticsAgree(statsPath: string, mask: Volume, image: ArrayLike<number>): void {
  const stats = segmentationStatisticsSchema.parse(JSON.parse(readFileSync(statsPath, 'utf8')));
  const voxelMl = Math.abs(mask.affine[0] * mask.affine[5] * mask.affine[10]) / 1000;
  for (const s of stats.structures) {
    const hu: number[] = [];
    for (let v = 0; v < mask.data.length; v++) if (mask.data[v] === s.classId) hu.push(image[v]);
    expect(s.voxels).toBe(hu.length);
    expect(s.volumeMl).toBeCloseTo(hu.length * voxelMl, 6);
    if (hu.length === 0) continue;
    const mean = hu.reduce((a, b) => a + b, 0) / hu.length;
    const sd = Math.sqrt(hu.reduce((a, b) => a + (b - mean) ** 2, 0) / hu.length);
    expect(s.hu!.mean).toBeCloseTo(mean, 1);
    expect(s.hu!.sd).toBeCloseTo(sd, 1);
    expect(s.hu!.min).toBe(Math.min(...hu));
    expect(s.hu!.max).toBe(Math.max(...hu));
  }
  const tumor = stats.structures.find((s) => s.name === 'liver tumor')!;
  expect(stats.lesions.reduce((a, l) => a + l.voxels, 0)).toBe(tumor.voxels);
  expect(stats.lesions.map((l) => l.id)).toEqual(stats.lesions.map((_, i) => i + 1));
  for (let i = 1; i < stats.lesions.length; i++)
    expect(stats.lesions[i].voxels).toBeLessThanOrEqual(stats.lesions[i - 1].voxels);
}

describe('freetumor segment outputs', () => {
  it('NIfTI mask with ITK-SNAP and Slicer label tables, statistics and preview', () => {
    const out = join(dir, 'nifti', 'mask.nii.gz');
    const r = freetumor(
      'segment',
      '--model',
      models,
      '--image',
      phantomCt(),
      '--out',
      out,
      '--threads',
      '1',
      '--statistics',
      join(dir, 'nifti', 'stats.json'),
      '--preview',
      join(dir, 'nifti', 'preview.png'),
      '--json',
    );
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code).toBe(0);
    const mask = readNifti(readFileSync(out));
    expect(mask.affine).toEqual(readNifti(readFileSync(phantomCt())).affine);
    expect(readFileSync(join(dir, 'nifti', 'mask.label.txt'), 'utf8')).toMatch(
      / {4}2 +230 +40 +40 +1 +1 +1 +"liver tumor"/,
    );
    expect(readFileSync(join(dir, 'nifti', 'mask.ctbl'), 'utf8')).toContain('1 liver 221 130 101 255');
    expectStatisticsAgree(join(dir, 'nifti', 'stats.json'), mask, ct.data);
    // The NIfTI path streams (a second pass over the CT for these): the same statistics and preview
    // as the whole-volume functions on the written mask and the CT file, to the last digit and pixel.
    const ctRead = readNifti(readFileSync(phantomCt()));
    const structures = maskStructures(['background', 'organ', 'tumor'], 'liver');
    const stats = JSON.parse(readFileSync(join(dir, 'nifti', 'stats.json'), 'utf8'));
    const whole = segmentationStatistics(ctRead, mask as Volume<Uint8Array>, structures, {
      model: { name: stats.model.name, version: stats.model.version },
      organ: 'liver',
    });
    expect(stats).toEqual(segmentationStatisticsSchema.parse(whole));
    const wholePng = renderSegmentPreviewPng(ctRead, mask as Volume<Uint8Array>, structures, {
      focusMm: whole.lesions[0]?.centroidMm,
      window: [-175, 250],
    });
    expect(readFileSync(join(dir, 'nifti', 'preview.png')).equals(Buffer.from(wholePng))).toBe(true);
    const png = decode(readFileSync(join(dir, 'nifti', 'preview.png')));
    expect(png.width).toBeGreaterThan(png.height);
    const summary = JSON.parse(r.stdout);
    expect(summary.input).toBe('nifti');
    expect(summary.tumorVoxels).toBe(mask.data.filter((v) => v === 2).length);
  });

  it('usage errors are one line with exit 2', () => {
    const both = freetumor(
      'segment',
      '--model',
      models,
      '--image',
      phantomCt(),
      '--input-dir',
      dir,
      '--out',
      'x.nii.gz',
    );
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('not both');
    const ext = freetumor(
      'segment',
      '--model',
      models,
      '--image',
      phantomCt(),
      '--out',
      join(dir, 'x.nii.gz'),
      '--output-type',
      'dicom-seg',
    );
    expect(ext.code).toBe(2);
    expect(ext.stderr.trim()).toBe('freetumor: --out must end in .dcm for a DICOM-SEG');
    const type = freetumor(
      'segment',
      '--model',
      models,
      '--image',
      phantomCt(),
      '--out',
      'x',
      '--output-type',
      'rtstruct',
    );
    expect(type.code).toBe(2);
  });

  it('NIfTI input -> DICOM-SEG: new study UIDs, said on stderr', () => {
    const out = join(dir, 'from-nifti.dcm');
    const r = freetumor(
      'segment',
      '--model',
      models,
      '--image',
      phantomCt(),
      '--out',
      out,
      '--output-type',
      'dicom-seg',
      '--threads',
      '1',
      '--json',
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('new study, series and frame of reference');
    expect(JSON.parse(r.stdout).dicomSeg).toMatchObject({
      newStudy: true,
      referencedSeries: null,
      segments: 2,
    });
    expect(readFileSync(out).subarray(128, 132).toString()).toBe('DICM');
  });
});

describe.skipIf(!hasPydicom)('freetumor segment on a DICOM series', () => {
  it('writes a DICOM-SEG that references the series, and statistics that agree with it', async () => {
    const series = join(dir, 'series');
    writeSeries(ct, series, {
      stored: 'uint16',
      intercept: -1024,
      file_order: 'shuffled',
      patient_name: 'Cliname^Pat',
      patient_id: 'CLI-PID-42',
      birth_date: '19330303',
    });
    const seg = join(dir, 'dicom', 'seg.dcm');
    const stats = join(dir, 'dicom', 'stats.json');
    const r = freetumor(
      'segment',
      '--model',
      models,
      '--image',
      series,
      '--out',
      seg,
      '--output-type',
      'dicom-seg',
      '--statistics',
      stats,
      '--threads',
      '1',
      '--json',
    );
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code).toBe(0);
    for (const s of SECRETS) expect(r.stdout + r.stderr).not.toContain(s);
    const summary = JSON.parse(r.stdout);
    const input = await readVolumeInput(series, 'image');
    expect(summary.input).toBe('dicom-folder');
    expect(summary.dicomSeg).toMatchObject({
      newStudy: false,
      referencedSeries: input.dicom!.seriesInstanceUid,
    });

    // The same case as NIfTI: the mask the SEG must hold.
    const maskPath = join(dir, 'dicom', 'mask.nii.gz');
    expect(
      freetumor('segment', '--model', models, '--image', series, '--out', maskPath, '--threads', '1').code,
    ).toBe(0);
    const mask = readNifti(readFileSync(maskPath));
    expect(mask.dims).toEqual(input.volume.dims);

    const grid = join(dir, 'dicom', 'grid.json');
    writeFileSync(grid, JSON.stringify({ dims: mask.dims, affine_lps: flipXY(input.volume.affine) }));
    const raw = join(dir, 'dicom', 'seg.raw');
    const read = spawnSync(PYTHON, [READ_SEG, seg, grid, raw, series], { encoding: 'utf8' });
    expect(read.stderr).toBe('');
    const segSummary = JSON.parse(read.stdout);
    expect(segSummary.referencedSeries).toEqual([input.dicom!.seriesInstanceUid]);
    expect(segSummary.study).toBe(input.dicom!.studyInstanceUid);
    expect(segSummary.patientId).toBe('CLI-PID-42');
    expect(Array.from(new Uint8Array(readFileSync(raw)))).toEqual(Array.from(mask.data));

    // Statistics against the mask and against the HU pydicom reads from the series.
    const hu = readWithPydicom(series).data;
    expectStatisticsAgree(stats, mask, hu);
  });
});

describe('freetumor segment --input-dir', () => {
  it('segments every case with one model load; a broken case fails alone (exit 2, summary)', async () => {
    const inDir = join(dir, 'batch-in');
    const outDir = join(dir, 'batch-out');
    mkdirSync(inDir);
    writeFileSync(join(inDir, 'case_a.nii.gz'), writeNifti(ct));
    const other = generatePhantom({ seed: 2, spacing: 6, tumors: [{ organ: 'liver', count: 1 }] }).ct;
    writeFileSync(join(inDir, 'case_b.nii'), writeNifti(other, { gzip: false }));
    writeFileSync(join(inDir, 'case_c.nii.gz'), new Uint8Array([1, 2, 3, 4]));
    writeFileSync(join(inDir, 'notes.txt'), 'not a case');
    if (hasPydicom) writeSeries(other, join(inDir, 'case_d'), {});
    const r = freetumor(
      'segment',
      '--model',
      models,
      '--input-dir',
      inDir,
      '--output-dir',
      outDir,
      '--statistics',
      '--preview',
      '--threads',
      '1',
      '--json',
    );
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^freetumor: 1 of [34] case\(s\) failed$/);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('segment: case '));
    expect(lines).toHaveLength(hasPydicom ? 4 : 3);
    expect(lines[2]).toMatch(/^segment: case 3\/[34] failed: /);
    expect(r.stderr).not.toContain('case_c');
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ cases: hasPydicom ? 4 : 3, failed: 1, skippedFiles: 1 });
    for (const id of ['case_a', 'case_b', ...(hasPydicom ? ['case_d'] : [])]) {
      expect(existsSync(join(outDir, `${id}.nii.gz`))).toBe(true);
      expect(existsSync(join(outDir, `${id}.label.txt`))).toBe(true);
      expect(existsSync(join(outDir, `${id}.statistics.json`))).toBe(true);
      expect(existsSync(join(outDir, `${id}.preview.png`))).toBe(true);
    }
    const b = readNifti(readFileSync(join(outDir, 'case_b.nii.gz')));
    expect(b.dims).toEqual(other.dims);
    expect(summary.results.find((x: { case: string }) => x.case === 'case_c')).toMatchObject({ ok: false });
  });
});
