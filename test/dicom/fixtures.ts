/**
 * DICOM test series written by pydicom (test/dicom/make_series.py) and read back by a pydicom +
 * numpy reader (read_series.py): both independent of shared/dicom. Tests skip when /usr/bin/python3
 * cannot import pydicom (CI installs Debian's python3-pydicom and python3-gdcm).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Affine, Dims3, Volume } from '../../shared/volume/volume.ts';

export const PYTHON = '/usr/bin/python3';
const HERE = fileURLToPath(new URL('.', import.meta.url));

export const hasPydicom =
  spawnSync(PYTHON, ['-c', 'import pydicom, numpy'], { encoding: 'utf8' }).status === 0;
export const hasGdcm =
  hasPydicom && spawnSync(PYTHON, ['-c', 'import gdcm'], { encoding: 'utf8' }).status === 0;

function run(script: string, args: string[]): string {
  const r = spawnSync(PYTHON, [join(HERE, script), ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${script} failed: ${r.stderr}`);
  return r.stdout;
}

/** RAS affine <-> LPS affine (x and y negated). */
export function flipXY(a: Affine): number[] {
  return Array.from(a, (v, i) => (i < 8 ? -v : v) + 0);
}

export interface SeriesOptions {
  syntax?: 'implicit' | 'explicit' | 'deflated' | 'rle' | 'jpeg-lossless' | 'jpeg-ls' | 'jpeg2000';
  stored?: 'int16' | 'uint16';
  intercept?: number;
  slope?: number;
  file_order?: 'sorted' | 'reversed' | 'shuffled';
  tilt_mm?: number;
  drop_slice?: number;
  series_uid?: string;
  study_uid?: string;
  frame_of_reference_uid?: string;
  modality?: string;
  first_file?: number;
  patient_name?: string;
  patient_id?: string;
  birth_date?: string;
  label_syntax?: string;
  pad_bytes?: number;
}

/** Writes `volume` (integer values) as a series in `dir`, slice k = the volume's k plane. */
export function writeSeries(volume: Volume, dir: string, options: SeriesOptions = {}): void {
  const raw = Int16Array.from(volume.data, (v) => Math.round(v));
  // Spec and voxels in a scratch folder of their own: nothing is added beside the series.
  const scratch = mkdtempSync(join(tmpdir(), 'ft-series-'));
  try {
    const rawPath = join(scratch, 'volume.raw');
    writeFileSync(rawPath, new Uint8Array(raw.buffer));
    const specPath = join(scratch, 'spec.json');
    const spec = { raw: rawPath, dims: volume.dims, affine_lps: flipXY(volume.affine), out: dir, ...options };
    writeFileSync(specPath, JSON.stringify(spec));
    run('make_series.py', [specPath]);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** The series as pydicom + numpy read it: RAS affine, float32 values. */
export function readWithPydicom(
  dir: string,
  seriesUid?: string,
): { dims: Dims3; affine: Affine; data: Float32Array } {
  const scratch = mkdtempSync(join(tmpdir(), 'ft-pyread-'));
  const out = join(scratch, 'volume.raw');
  const r = JSON.parse(run('read_series.py', [dir, out, ...(seriesUid ? [seriesUid] : [])]));
  const bytes = readFileSync(out);
  rmSync(scratch, { recursive: true, force: true });
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  return { dims: r.dims, affine: Float64Array.from(flipXY(Float64Array.from(r.affine_lps))), data };
}
