import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseLabelMap } from '../../../shared/labels/labelmap.ts';
import { Rng } from '../../../shared/random.ts';
import { synthesizeVolume } from '../../../shared/synthesis/whole-volume.ts';
import { readNifti, writeNifti } from '../../../shared/volume/nifti.ts';
import type { Dims3, Volume } from '../../../shared/volume/volume.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'bin/freetumor.js');
const work = mkdtempSync(join(tmpdir(), 'freetumor-synth-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function freetumor(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A small int16 CT at 3 mm (FreeTumor labels: liver 1, kidney 5), written as .nii.gz. */
function writeCase(imagePath: string, labelPath: string, shift = 0): { image: Volume; label: Volume } {
  const dims: Dims3 = [36, 32, 28];
  const n = dims[0] * dims[1] * dims[2];
  const image = new Int16Array(n);
  const label = new Uint8Array(n);
  for (let k = 0; k < dims[2]; k++)
    for (let j = 0; j < dims[1]; j++)
      for (let i = 0; i < dims[0]; i++) {
        const v = i + dims[0] * (j + dims[1] * k);
        image[v] = -60 + ((i + 2 * j + 3 * k) % 9);
        if (((i - 14 - shift) / 11) ** 2 + ((j - 16) / 10) ** 2 + ((k - 14) / 9) ** 2 < 1) {
          label[v] = 1;
          image[v] = 55 + ((i * j + k) % 7);
        }
        if (((i - 30) / 4) ** 2 + ((j - 16) / 4) ** 2 + ((k - 14) / 4) ** 2 < 1) label[v] = 5;
      }
  const affine = Float64Array.from([-3, 0, 0, 50, 0, -3, 0, 40, 0, 0, 3, -100, 0, 0, 0, 1]);
  const img: Volume = { dims, data: image, affine, datatype: 'int16' };
  const lab: Volume = { dims, data: label, affine: Float64Array.from(affine), datatype: 'uint8' };
  writeFileSync(imagePath, writeNifti(img));
  writeFileSync(labelPath, writeNifti(lab));
  return { image: img, label: lab };
}

describe('freetumor synthesize', () => {
  const ct = join(work, 'ct.nii.gz');
  const seg = join(work, 'seg.nii.gz');
  const input = writeCase(ct, seg);

  it('writes ct, label, summary and preview on the input grid, and one JSON object', () => {
    const out = join(work, 'out');
    const r = freetumor(
      'synthesize',
      '--image',
      ct,
      '--label',
      seg,
      '--organ',
      'liver',
      '--type',
      'small',
      '--count',
      '2',
      '--seed',
      '3',
      '--out',
      out,
      '--preview',
      '--json',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]);
    expect(result.files).toEqual(['ct.nii.gz', 'label.nii.gz', 'summary.json', 'preview.png']);
    expect(result.tumors).toHaveLength(2);
    expect(result.seed).toBe(3);
    expect(result.tumorLabel).toBe(2);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.tumors[0]).toHaveProperty('centroidMm');
    expect(summary.tumors[0]).toHaveProperty('meanHuBefore');
    const outCt = readNifti(new Uint8Array(readFileSync(join(out, 'ct.nii.gz'))));
    const outSeg = readNifti(new Uint8Array(readFileSync(join(out, 'label.nii.gz'))));
    expect(outCt.dims).toEqual(input.image.dims);
    expect(outCt.affine).toEqual(input.image.affine);
    expect(outCt.datatype).toBe('int16');
    expect(outSeg.datatype).toBe('uint8');
    let bad = 0;
    let tumor = 0;
    for (let v = 0; v < outCt.data.length; v++) {
      if (outCt.data[v] !== input.image.data[v] && input.label.data[v] !== 1) bad++;
      if (outSeg.data[v] !== input.label.data[v]) {
        if (!(input.label.data[v] === 1 && outSeg.data[v] === 2)) bad++;
        tumor++;
      }
    }
    expect(bad).toBe(0);
    expect(tumor).toBe(summary.inputTumorVoxels);
    expect([...readFileSync(join(out, 'preview.png')).subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    // Same seed, same voxels (the gzip header's mtime may differ).
    const again = join(work, 'again');
    expect(
      freetumor(
        'synthesize',
        '--image',
        ct,
        '--label',
        seg,
        '--organ',
        'liver',
        '--type',
        'small',
        '--count',
        '2',
        '--seed',
        '3',
        '--out',
        again,
      ).code,
    ).toBe(0);
    expect(readNifti(new Uint8Array(readFileSync(join(again, 'ct.nii.gz')))).data).toEqual(outCt.data);
  });

  it('an invented tumor id the label holds: largest id + 1 from the ids read for the map, as the library', () => {
    // `liver=1` invents 2; one voxel of 2 outside the liver makes it a collision: 5 + 1.
    const data = Uint8Array.from(input.label.data);
    data[0] = 2;
    const label: Volume = { ...input.label, data };
    const clashSeg = join(work, 'seg-clash.nii.gz');
    writeFileSync(clashSeg, writeNifti(label));
    const out = join(work, 'clash');
    const r = freetumor(
      'synthesize',
      '--image',
      ct,
      '--label',
      clashSeg,
      '--organ',
      'liver',
      '--label-map',
      'liver=1',
      '--type',
      'small',
      '--seed',
      '5',
      '--out',
      out,
      '--json',
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ tumorLabel: 6, tumorLabelAssigned: true });
    // The library computing the ids itself gives the same voxels.
    const whole = synthesizeVolume(
      input.image,
      label,
      { organ: 'liver', labelMap: parseLabelMap('liver=1'), type: 'small' },
      new Rng(5),
    );
    expect(readNifti(new Uint8Array(readFileSync(join(out, 'label.nii.gz')))).data).toEqual(whole.label.data);
    expect(readNifti(new Uint8Array(readFileSync(join(out, 'ct.nii.gz')))).data).toEqual(whole.image.data);
  });

  it.each([
    [['--organ', 'lung'], '--organ must be one of'],
    [['--organ', 'liver', '--type', 'huge'], '--type must be one of'],
    [['--organ', 'liver', '--label-map', 'liver=x'], 'label ids must be integers'],
    [['--organ', 'pancreas'], 'no pancreas in the label'],
    [['--organ', 'liver', '--difference', '3'], '--difference must be a number in 0..1'],
    [['--organ', 'liver', '--generator', 'nowhere/g.onnx'], 'no generator manifest.json in the model folder'],
    [['--organ', 'liver', '--generator', 'g.onnx', '--difference', '0.3'], 'exclude each other'],
  ])('rejects %j with one line and exit 2', (args, message) => {
    const r = freetumor('synthesize', '--image', ct, '--label', seg, '--out', join(work, 'bad'), ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(
      r.stderr
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('(')),
    ).toHaveLength(1);
    expect(r.stderr).not.toContain(work);
  });
});

describe('freetumor synthesize-dataset', () => {
  it('writes N variants per case in the nnU-Net layout, dataset.json, and resumes', () => {
    const data = join(work, 'ds');
    mkdirSync(join(data, 'imagesTr'), { recursive: true });
    mkdirSync(join(data, 'labelsTr'), { recursive: true });
    writeCase(join(data, 'imagesTr', 'a_0000.nii.gz'), join(data, 'labelsTr', 'a.nii.gz'));
    writeCase(join(data, 'imagesTr', 'b_0000.nii.gz'), join(data, 'labelsTr', 'b.nii.gz'), 2);
    writeFileSync(join(data, 'imagesTr', '._a_0000.nii.gz'), 'macOS metadata');
    const out = join(work, 'ds-out');
    const r = freetumor(
      'synthesize-dataset',
      '--data',
      data,
      '--out',
      out,
      '--variants',
      '2',
      '--workers',
      '2',
      '--type',
      'tiny',
      '--json',
    );
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({
      cases: 2,
      shard: { index: 0, count: 1 },
      variants: 4,
      done: 4,
      skipped: 0,
      failed: 0,
      merge: { counts: { synthesized: 4, accepted: 0, rejected: 0, failed: 0 }, acceptRate: null },
    });
    for (const id of ['a_syn0', 'a_syn1', 'b_syn0', 'b_syn1']) {
      expect(existsSync(join(out, 'imagesTr', `${id}_0000.nii.gz`))).toBe(true);
      expect(existsSync(join(out, 'labelsTr', `${id}.nii.gz`))).toBe(true);
    }
    const dataset = JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8'));
    expect(dataset.numTraining).toBe(4);
    expect(dataset.labels.liver_tumor).toBe(2);
    expect(dataset.channel_names).toEqual({ '0': 'CT' });
    // Variants differ from each other; a rerun with one more variant only does the new ones.
    const voxels = (f: string) => readNifti(new Uint8Array(readFileSync(join(out, 'imagesTr', f)))).data;
    const a0 = voxels('a_syn0_0000.nii.gz');
    expect(voxels('a_syn1_0000.nii.gz')).not.toEqual(a0);
    const again = freetumor(
      'synthesize-dataset',
      '--data',
      data,
      '--out',
      out,
      '--variants',
      '3',
      '--workers',
      '1',
      '--type',
      'tiny',
      '--json',
    );
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ variants: 6, done: 2, skipped: 4 });
    expect(voxels('a_syn0_0000.nii.gz')).toEqual(a0);
    const other = freetumor(
      'synthesize-dataset',
      '--data',
      data,
      '--out',
      out,
      '--variants',
      '1',
      '--type',
      'small',
    );
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('other options');
  });
});

describe('freetumor synthesize --generator', () => {
  it('uses the exported generator: the organ channel, Blur7, on the input grid', async () => {
    const { testManifestFields, tinyUNet } = await import('../../export/test-model.ts');
    const { exportToOnnx } = await import('../../export/onnx.ts');
    const { writeModelDir } = await import('../../export/manifest-writer.ts');
    const graph = tinyUNet({ outChannels: 3, head: 'tanh', seed: 3 });
    const models = join(work, 'models');
    await writeModelDir(
      models,
      testManifestFields({
        name: 'test-generator',
        role: 'generator',
        version: 'g1',
        organs: ['liver', 'pancreas', 'kidney'],
        inputs: [{ name: 'image', shape: ['N', 1, 'D', 'H', 'W'], dtype: 'float32' }],
        labels: ['liver', 'pancreas', 'kidney'],
        outputActivation: 'tanh',
        preprocessing: { patchSize: [32, 32, 32], overlap: 0.25, divisor: 4 },
      }),
      { fp32: exportToOnnx(graph) },
    );
    const ct = join(work, 'g-ct.nii.gz');
    const seg = join(work, 'g-seg.nii.gz');
    const input = writeCase(ct, seg);
    const out = join(work, 'g-out');
    const r = freetumor(
      'synthesize',
      '--image',
      ct,
      '--label',
      seg,
      '--organ',
      'liver',
      '--type',
      'medium',
      '--count',
      '1',
      '--seed',
      '2',
      '--generator',
      join(models, 'generator', 'model.fp32.onnx'),
      '--out',
      out,
      '--json',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.difference).toBe('map');
    const outCt = readNifti(new Uint8Array(readFileSync(join(out, 'ct.nii.gz'))));
    let changed = 0;
    let bad = 0;
    for (let v = 0; v < outCt.data.length; v++) {
      if (outCt.data[v] !== input.image.data[v]) {
        changed++;
        if (input.label.data[v] !== 1) bad++;
      }
    }
    expect(bad).toBe(0);
    expect(changed).toBeGreaterThan(0);
  });
});
