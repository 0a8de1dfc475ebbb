/**
 * DICOM-SEG written by shared/dicom/seg.ts, read back by pydicom (and highdicom when importable) in
 * test/dicom/read_seg.py, which places every frame by its own ImagePositionPatient and checks its
 * ImageOrientationPatient: the label volume it rebuilds must equal the mask voxel for voxel. Covered
 * grids: a DICOM series of the phantom (axial LPS, sagittal, coronal), where every frame must also
 * reference the source slice at its position, and the raw RAS grid of a NIfTI mask, whose column
 * cosine is [0, -1, 0]: the case TotalSegmentator PR#598 mirrored anterior/posterior.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeDicomSeg } from '../shared/dicom/seg.ts';
import { applyReorientation, reorientationTo } from '../shared/geometry/orientation.ts';
import { generatePhantom } from '../shared/phantom/phantom.ts';
import { maskStructures } from '../shared/segmentation/structures.ts';
import { makeVolume, type Volume } from '../shared/volume/volume.ts';
import { readVolumeInput } from '../trainer/io/volume-input.ts';
import { flipXY, hasPydicom, PYTHON, writeSeries } from './dicom/fixtures.ts';

const READ_SEG = fileURLToPath(new URL('./dicom/read_seg.py', import.meta.url));
/** highdicom from PyPI, where .ci/run could install it (absent here: the check is skipped). */
const PYDEPS = fileURLToPath(new URL('../.cache/pydeps', import.meta.url));
const SOFTWARE = {
  software: { name: 'freetumor', version: '0.1.0' },
  algorithm: { name: 'test-model', version: 'v1' },
};

interface SegSummary {
  frames: Array<{ segment: number; k: number; ref: string | null }>;
  segments: Array<{
    number: number;
    label: string;
    category: string[];
    type: string[];
    region: string[] | null;
    lab: number[];
  }>;
  study: string;
  series: string;
  frameOfReference: string;
  patientName: string;
  patientId: string;
  referencedSeries: string[];
  referencedInstances: number;
  highdicom: { segments: number; frames: number } | null;
}

function readSeg(seg: string, grid: Volume, source?: string): { summary: SegSummary; labels: Uint8Array } {
  const gridPath = `${seg}.grid.json`;
  writeFileSync(gridPath, JSON.stringify({ dims: grid.dims, affine_lps: flipXY(grid.affine) }));
  const raw = `${seg}.labels.raw`;
  const r = spawnSync(PYTHON, [READ_SEG, seg, gridPath, raw, ...(source ? [source] : [])], {
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: PYDEPS },
  });
  if (r.status !== 0) throw new Error(`read_seg.py failed: ${r.stderr}`);
  return { summary: JSON.parse(r.stdout), labels: new Uint8Array(readFileSync(raw)) };
}

/** The phantom's FreeTumor labels as a segmentor's mask: 1 liver, 2 liver tumor, the rest background. */
function liverMask(label: Volume): Volume<Uint8Array> {
  const data = Uint8Array.from(label.data, (v) => (v === 1 ? 1 : v === 2 ? 2 : 0));
  return makeVolume(label.dims, data, label.affine, 'uint8');
}

const structures = maskStructures(['background', 'liver', 'liver_tumor'], 'liver');

describe.skipIf(!hasPydicom)('DICOM-SEG read back by pydicom', () => {
  let dir: string;
  let ct: Volume;
  let mask: Volume<Uint8Array>;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ft-seg-'));
    const phantom = generatePhantom({ seed: 4, spacing: 6, tumors: [{ organ: 'liver', count: 3 }] });
    ct = phantom.ct;
    mask = liverMask(phantom.label);
    expect(mask.data.includes(2)).toBe(true);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['axial LPS', 'LPS'],
    ['sagittal', 'PIL'],
    ['coronal', 'LIP'],
  ])('%s series: frames land on the source slices they reference', async (_name, codes) => {
    const r = reorientationTo(ct.affine, codes);
    const folder = join(dir, `src-${codes}`);
    writeSeries(applyReorientation(ct, r), folder, {
      file_order: 'shuffled',
      patient_name: 'Segtest^Pat',
      patient_id: 'SEG-PID-1',
    });
    const input = await readVolumeInput(folder, 'image');
    // The mask on the grid the reader built (same voxels as the reoriented phantom label).
    const onGrid = applyReorientation(mask, reorientationTo(mask.affine, codes));
    expect(input.volume.dims).toEqual(onGrid.dims);
    const gridMask = makeVolume(input.volume.dims, onGrid.data, input.volume.affine, 'uint8');
    const seg = writeDicomSeg(gridMask, structures, input.dicom!, SOFTWARE);
    expect(seg.newStudy).toBe(false);
    const path = join(dir, `seg-${codes}.dcm`);
    writeFileSync(path, seg.bytes);
    const { summary, labels } = readSeg(path, gridMask, folder);
    expect(Array.from(labels)).toEqual(Array.from(gridMask.data));
    expect(summary.study).toBe(input.dicom!.studyInstanceUid);
    expect(summary.frameOfReference).toBe(input.dicom!.frameOfReferenceUid);
    expect(summary.referencedSeries).toEqual([input.dicom!.seriesInstanceUid]);
    expect(summary.referencedInstances).toBe(input.volume.dims[2]);
    expect(summary.frames.every((f) => f.ref !== null)).toBe(true);
    expect(summary.frames).toHaveLength(seg.frames);
    // The patient is the source's (copied, so PACS files the SEG with its CT).
    expect(summary.patientName).toBe('Segtest^Pat');
    expect(summary.patientId).toBe('SEG-PID-1');
    expect(summary.segments).toEqual([
      {
        number: 1,
        label: 'liver',
        category: ['123037004', 'SCT', 'Anatomical Structure'],
        type: ['10200004', 'SCT', 'Liver'],
        region: null,
        lab: expect.any(Array),
      },
      {
        number: 2,
        label: 'liver tumor',
        category: ['49755003', 'SCT', 'Morphologically Altered Structure'],
        type: ['108369006', 'SCT', 'Neoplasm'],
        region: ['10200004', 'SCT', 'Liver'],
        lab: expect.any(Array),
      },
    ]);
    if (summary.highdicom) expect(summary.highdicom).toEqual({ segments: 2, frames: seg.frames });
  });

  it('a NIfTI grid (RAS: column cosine [0, -1, 0]) keeps anterior and posterior; new study UIDs', () => {
    const seg = writeDicomSeg(mask, structures, null, SOFTWARE);
    expect(seg.newStudy).toBe(true);
    const path = join(dir, 'seg-nifti.dcm');
    writeFileSync(path, seg.bytes);
    const { summary, labels } = readSeg(path, mask);
    expect(Array.from(labels)).toEqual(Array.from(mask.data));
    expect(summary.referencedSeries).toEqual([]);
    expect(summary.frames.every((f) => f.ref === null)).toBe(true);
    expect(summary.patientName).toBe('');
    // A mirrored SEG would put the liver (patient's right) on the left: check a frame's world side.
    const [nx, ny] = mask.dims;
    let right = 0;
    let left = 0;
    for (let v = 0; v < labels.length; v++) {
      if (labels[v] !== 1) continue;
      const i = v % nx;
      const x = mask.affine[0] * i + mask.affine[3]; // RAS x of the voxel column (no rotation here)
      if (x > 0) right++;
      else left++;
    }
    expect(right).toBeGreaterThan(left);
    expect(ny).toBeGreaterThan(0);
  });

  it('an empty mask gives a SEG without frames that still parses', () => {
    const empty = makeVolume(mask.dims, new Uint8Array(mask.data.length), mask.affine, 'uint8');
    const seg = writeDicomSeg(empty, structures, null, SOFTWARE);
    expect(seg.frames).toBe(0);
    const path = join(dir, 'seg-empty.dcm');
    writeFileSync(path, seg.bytes);
    const r = spawnSync(
      PYTHON,
      [
        '-c',
        'import pydicom,sys; d=pydicom.dcmread(sys.argv[1]); print(d.NumberOfFrames, len(d.SegmentSequence))',
        path,
      ],
      { encoding: 'utf8' },
    );
    expect(r.stdout.trim()).toBe('0 2');
  });
});
