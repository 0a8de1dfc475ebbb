/**
 * DICOM series input, cross-checked against independent code: series written by pydicom (and
 * transcoded by GDCM) from the real sample CT, read by our reader (trainer/io/volume-input.ts) and by
 * a pydicom + numpy reader: same grid, same world coordinates, same HU. Also the refusals (gantry
 * tilt, a missing slice, two series, an unsupported transfer syntax) and that no error or printed
 * result carries the patient's name, ID or birth date. Skipped when /usr/bin/python3 lacks pydicom.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { affinesClose, applyAffine } from '../shared/geometry/affine.ts';
import { cropOrPad } from '../shared/geometry/crop.ts';
import { applyReorientation, axcodes, reorientationTo, toCanonical } from '../shared/geometry/orientation.ts';
import { readNifti } from '../shared/volume/nifti.ts';
import type { Volume } from '../shared/volume/volume.ts';
import { readVolumeInput } from '../trainer/io/volume-input.ts';
import { hasGdcm, hasPydicom, PYTHON, readWithPydicom, writeSeries } from './dicom/fixtures.ts';
import { TOTALSEG_CT } from './shared-data.ts';

const PATIENT = { patient_name: 'Secretname^Jane', patient_id: 'PID-778899', birth_date: '19451231' };
const SECRETS = ['Secretname', 'PID-778899', '19451231'];

function expectNoPatientData(text: string): void {
  for (const s of SECRETS) expect(text).not.toContain(s);
}

/** Same world-space volume: identical voxels once both are in canonical (RAS) order, affines within DS precision. */
function expectSameWorldVolume(a: Volume, b: Volume, tol = 1e-4): void {
  const ca = toCanonical(a).volume;
  const cb = toCanonical(b).volume;
  expect(ca.dims).toEqual(cb.dims);
  expect(affinesClose(ca.affine, cb.affine, tol)).toBe(true);
  expect(Array.from(ca.data)).toEqual(Array.from(cb.data));
}

const BIN = fileURLToPath(new URL('../bin/freetumor.js', import.meta.url));

function cli(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
}

async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe.skipIf(!hasPydicom || !TOTALSEG_CT)('DICOM series input (pydicom cross-check)', () => {
  let dir: string;
  let ct: Volume;
  let small: Volume;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ft-dicom-'));
    ct = readNifti(readFileSync(TOTALSEG_CT!));
    small = cropOrPad(ct, [30, 25, 40], [48, 40, 24]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('an axial LPS series of the real CT reads as the NIfTI it came from, and as pydicom reads it', async () => {
    const lps = applyReorientation(ct, reorientationTo(ct.affine, 'LPS'));
    const folder = join(dir, 'axial');
    writeSeries(lps, folder, { stored: 'int16', file_order: 'reversed', ...PATIENT });
    const input = await readVolumeInput(folder, 'image');
    expect(input.kind).toBe('dicom-folder');
    expect(input.volume.datatype).toBe('int16');
    expect(input.volume.dims).toEqual(lps.dims);
    expect(affinesClose(input.volume.affine, lps.affine, 1e-4)).toBe(true);
    expect(Array.from(input.volume.data)).toEqual(Array.from(lps.data));
    expectSameWorldVolume(input.volume, ct);

    const py = readWithPydicom(folder);
    expect(py.dims).toEqual(input.volume.dims);
    expect(affinesClose(py.affine, input.volume.affine, 1e-9)).toBe(true);
    expect(Array.from(py.data)).toEqual(Array.from(input.volume.data, Number));
    // World coordinates of a few voxels agree between the two readers.
    for (const v of [
      [0, 0, 0],
      [121, 100, 111],
      [60, 7, 93],
    ]) {
      const ours = applyAffine(input.volume.affine, v);
      const theirs = applyAffine(py.affine, v);
      for (let a = 0; a < 3; a++) expect(ours[a]).toBeCloseTo(theirs[a], 9);
    }
    expect(input.dicom!.slices).toHaveLength(112);
    expect(input.dicom!.skippedFiles).toBe(0);
  });

  it.each([
    ['reversed slice order (LPI)', 'LPI'],
    ['sagittal', 'PIL'],
    ['coronal', 'LIP'],
    ['coronal, anterior first', 'RIA'],
  ])('%s: same world-space volume as the source and as pydicom', async (_name, codes) => {
    const oriented = applyReorientation(small, reorientationTo(small.affine, codes));
    expect(axcodes(oriented.affine)).toBe(codes);
    const folder = join(dir, `o-${codes}`);
    writeSeries(oriented, folder, { file_order: 'shuffled' });
    const input = await readVolumeInput(folder, 'image');
    expectSameWorldVolume(input.volume, small);
    const py = readWithPydicom(folder);
    expect(affinesClose(py.affine, input.volume.affine, 1e-9)).toBe(true);
    expect(Array.from(py.data)).toEqual(Array.from(input.volume.data, Number));
  });

  it('a zip of the series reads the same as the folder', async () => {
    const folder = join(dir, 'zipped');
    writeSeries(small, folder, {});
    const zip = join(dir, 'series.zip');
    const r = spawnSync(PYTHON, [
      '-c',
      'import shutil,sys; shutil.make_archive(sys.argv[1][:-4], "zip", sys.argv[2])',
      zip,
      folder,
    ]);
    expect(r.status).toBe(0);
    const fromZip = await readVolumeInput(zip, 'image');
    expect(fromZip.kind).toBe('dicom-zip');
    expectSameWorldVolume(fromZip.volume, small);
  });

  it.each([
    ['implicit VR', 'implicit'],
    ['deflated', 'deflated'],
    ['RLE Lossless', 'rle'],
  ] as const)('%s (pydicom) decodes to the same HU', async (_n, syntax) => {
    const folder = join(dir, `ts-${syntax}`);
    writeSeries(small, folder, { syntax, stored: 'uint16', intercept: -1024 });
    const input = await readVolumeInput(folder, 'image');
    expectSameWorldVolume(input.volume, small);
  });

  it.skipIf(!hasGdcm).each([
    ['JPEG Lossless SV1', 'jpeg-lossless', '1.2.840.10008.1.2.4.70'],
    ['JPEG-LS Lossless', 'jpeg-ls', '1.2.840.10008.1.2.4.80'],
    ['JPEG 2000 Lossless', 'jpeg2000', '1.2.840.10008.1.2.4.90'],
  ] as const)('%s (GDCM) decodes to the same HU with the cornerstone codecs', async (_n, syntax, uid) => {
    for (const stored of ['int16', 'uint16'] as const) {
      const folder = join(dir, `ts-${syntax}-${stored}`);
      writeSeries(small, folder, { syntax, stored, intercept: stored === 'uint16' ? -1024 : 0 });
      const input = await readVolumeInput(folder, 'image');
      expect(input.dicom!.transferSyntax).toBe(uid);
      expectSameWorldVolume(input.volume, small);
    }
  });

  it('files over the 64 KiB header read: pixel data inside the head, and a header longer than it', async () => {
    // 256 x 200 slices (100 KiB of pixels): the head read stops at the pixel data tag.
    const wide = cropOrPad(ct, [-70, -50, 40], [256, 200, 3], -1024);
    for (const [name, pad] of [
      ['big-slices', 0],
      ['big-header', 80_000],
    ] as const) {
      const folder = join(dir, name);
      writeSeries(wide, folder, pad ? { pad_bytes: pad } : {});
      const input = await readVolumeInput(folder, 'image');
      expectSameWorldVolume(input.volume, wide);
    }
  });

  it('a non-integer rescale gives float32 HU', async () => {
    const folder = join(dir, 'slope');
    const even = { ...small, data: Float32Array.from(small.data, (v) => 2 * Math.round(v / 2)) };
    writeSeries(even, folder, { stored: 'int16', slope: 0.5, intercept: 0.25 });
    const input = await readVolumeInput(folder, 'image');
    expect(input.volume.datatype).toBe('float32');
    const py = readWithPydicom(folder);
    expect(Array.from(input.volume.data)).toEqual(Array.from(py.data));
  });

  it('refuses gantry tilt, naming the limit', async () => {
    const folder = join(dir, 'tilt');
    writeSeries(small, folder, { tilt_mm: 0.5, ...PATIENT });
    const e = await errorOf(readVolumeInput(folder, 'image'));
    expect(e.message).toMatch(/gantry tilt .* degrees \(limit 0\.05\)/);
    expectNoPatientData(e.message);
  });

  it('refuses uneven spacing (a missing slice), naming the limit', async () => {
    const folder = join(dir, 'gap');
    writeSeries(small, folder, { drop_slice: 10 });
    const e = await errorOf(readVolumeInput(folder, 'image'));
    expect(e.message).toMatch(/uneven slice spacing.*limit 1% of the step; a slice may be missing/);
  });

  it('two series in one folder: refused with both listed; --series picks one', async () => {
    const folder = join(dir, 'two');
    writeSeries(small, folder, { series_uid: '1.2.826.0.1.3680043.8.498.1001', ...PATIENT });
    const half = cropOrPad(small, [0, 0, 0], [48, 40, 12]);
    writeSeries(half, folder, { series_uid: '1.2.826.0.1.3680043.8.498.1002', first_file: 100, ...PATIENT });
    writeFileSync(join(folder, 'README.txt'), 'not DICOM');
    const e = await errorOf(readVolumeInput(folder, 'image'));
    expect(e.message).toContain('holds 2 DICOM series');
    expect(e.message).toContain('1.2.826.0.1.3680043.8.498.1001 (CT, 24 instance(s))');
    expect(e.message).toContain('1.2.826.0.1.3680043.8.498.1002 (CT, 12 instance(s))');
    expect(e.message).toContain('--series');
    expectNoPatientData(e.message);
    const picked = await readVolumeInput(folder, 'image', { series: '1.2.826.0.1.3680043.8.498.1002' });
    expectSameWorldVolume(picked.volume, half);
    expect(picked.dicom!.skippedFiles).toBe(1);
    expect(picked.dicom!.otherSeries.map((s) => s.instances)).toEqual([24]);
    const missing = await errorOf(readVolumeInput(folder, 'image', { series: '1.2.3' }));
    expect(missing.message).toContain('DICOM series 1.2.3 is not in the input');
  });

  it('an unsupported transfer syntax is refused by name', async () => {
    const folder = join(dir, 'jpeg-baseline');
    writeSeries(small, folder, { label_syntax: '1.2.840.10008.1.2.4.50', ...PATIENT });
    const e = await errorOf(readVolumeInput(folder, 'image'));
    expect(e.message).toContain('JPEG Baseline (Process 1, lossy) (1.2.840.10008.1.2.4.50) is not supported');
    expect(e.message).toContain('lossy compression alters HU values');
  });

  it('freetumor convert: a DICOM series -> NIfTI with the world coordinates and HU pydicom reads', () => {
    const folder = join(dir, 'cli-convert');
    writeSeries(applyReorientation(small, reorientationTo(small.affine, 'LPI')), folder, {
      stored: 'uint16',
      intercept: -1024,
      ...PATIENT,
    });
    const out = join(dir, 'converted.nii.gz');
    const r = cli('convert', folder, out, '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const nifti = readNifti(readFileSync(out));
    const py = readWithPydicom(folder);
    expect(nifti.dims).toEqual(py.dims);
    // The NIfTI sform is float32: world coordinates agree to float32 precision.
    expect(affinesClose(nifti.affine, py.affine, 1e-4)).toBe(true);
    expect(Array.from(nifti.data, Number)).toEqual(Array.from(py.data));
    const info = cli('info', folder, '--json');
    expect(info.status).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({
      format: 'dicom',
      dims: py.dims,
      orientation: 'LPS',
      scaled: true,
      dicom: { container: 'folder', modality: 'CT', slices: 24, transferSyntax: '1.2.840.10008.1.2.1' },
    });
    expectNoPatientData(info.stdout + info.stderr + r.stdout);
    const text = cli('info', folder);
    expect(text.stdout).toContain('DICOM series (folder): CT, 24 slices');
    expectNoPatientData(text.stdout);
  });

  it('a single DICOM file, an empty folder and a zip over the file limit are clear errors', async () => {
    const folder = join(dir, 'single');
    writeSeries(cropOrPad(small, [0, 0, 0], [48, 40, 2]), folder, {});
    const one = await errorOf(readVolumeInput(join(folder, 'IM00000.dcm'), 'image'));
    expect(one.message).toContain('single DICOM file (one slice)');
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    expect((await errorOf(readVolumeInput(empty, 'image'))).message).toContain('holds no files');
    const limited = await errorOf(readVolumeInput(folder, 'image', { dicomLimits: { maxFiles: 1 } }));
    expect(limited.message).toContain('files in the DICOM folder is over 1, over the limit of 1');
    const copy = join(dir, 'one-slice');
    mkdirSync(copy);
    cpSync(join(folder, 'IM00000.dcm'), join(copy, 'IM00000.dcm'));
    expect((await errorOf(readVolumeInput(copy, 'image'))).message).toContain('at least 2 slices');
  });
});
