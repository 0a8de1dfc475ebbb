/**
 * export -> segment -> evaluate / score -> publish through the real CLI (`node bin/freetumor.js`),
 * on a phantom CT and a run folder holding a real (tiny, untrained) checkpoint.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePhantom } from '../../../shared/phantom/phantom.ts';
import { readNifti, writeNifti } from '../../../shared/volume/nifti.ts';
import { makeVolume } from '../../../shared/volume/volume.ts';
import { buildUNet, type UNetConfig } from '../../models/unet.ts';
import { type LocalS3, startLocalS3 } from '../../publish/local-s3.ts';
import { saveCheckpoint } from '../../train/checkpoint.ts';
import { runConfigSchema } from '../../train/config.ts';

const BIN = join(import.meta.dirname, '../../../bin/freetumor.js');

function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const dir = mkdtempSync(join(tmpdir(), 'ft-cli-infer-'));
const run = join(dir, 'run');
const models = join(dir, 'models');
const ct = join(dir, 'ct.nii.gz');
const label = join(dir, 'label.nii.gz');
const synthLabel = join(dir, 'synth.nii.gz');
const mask = join(dir, 'mask.nii.gz');

beforeAll(async () => {
  await tf.setBackend('cpu');
  const phantom = generatePhantom({ seed: 1, spacing: 5, tumors: [{ organ: 'liver', count: 2 }] });
  writeFileSync(ct, writeNifti(phantom.ct));
  writeFileSync(label, writeNifti(phantom.label));
  // The phantom's liver tumors relabelled 3, the merged scheme's synthetic tumor (training's labels).
  const synth = Uint8Array.from(phantom.label.data, (v) => (v === 2 ? 3 : v === 1 ? 1 : 0));
  writeFileSync(synthLabel, writeNifti(makeVolume(phantom.label.dims, synth, phantom.label.affine, 'uint8')));

  const config = runConfigSchema.parse({
    kind: 'segmentation',
    steps: 1,
    patchSize: 16,
    data: {
      datasets: [{ name: 'phantom', format: 'msd', path: '/none', organ: 'liver' }],
      spacing: [5, 5, 5],
    },
    model: { baseChannels: 2, depth: 2, norm: 'instance' },
  });
  const unet: UNetConfig = {
    inChannels: 1,
    outChannels: 3,
    baseChannels: 2,
    depth: 2,
    norm: 'instance',
    head: 'softmax',
    seed: 3,
  };
  const net = buildUNet(unet);
  const weights = net
    .getWeights()
    .map((w) => ({ shape: [...w.shape], data: Float32Array.from(w.dataSync()) }));
  net.dispose();
  await saveCheckpoint(join(run, 'checkpoint.ckpt'), {
    kind: 'segmentation',
    step: 1,
    config,
    models: { segmentor: { config: unet, weights } },
    optimizers: {},
    extra: {},
  });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('freetumor export / segment / evaluate / score / publish', () => {
  it('export writes fp32 and int8 files with a manifest', async () => {
    const r = await cli([
      'export',
      '--run',
      run,
      '--out',
      models,
      '--version',
      'v1',
      '--overlap',
      '0.25',
      '--json',
    ]);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.models[0].role).toBe('segmentor');
    expect(out.models[0].files.map((f: { precision: string }) => f.precision).sort()).toEqual([
      'fp32',
      'int8',
    ]);
    const manifest = JSON.parse(readFileSync(join(models, 'segmentor', 'manifest.json'), 'utf8'));
    expect(manifest.preprocessing.spacing).toEqual([5, 5, 5]);
    expect(manifest.preprocessing.patchSize).toEqual([16, 16, 16]);
    expect(manifest.preprocessing.divisor).toBe(2);
  });

  it('segment writes a mask on the input grid with the input affine', async () => {
    const r = await cli([
      'segment',
      '--model',
      models,
      '--image',
      ct,
      '--out',
      mask,
      '--threads',
      '1',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.model).toEqual({ name: 'freetumor-segmentor-liver', version: 'v1', precision: 'int8' });
    const input = readNifti(new Uint8Array(readFileSync(ct)));
    const m = readNifti(new Uint8Array(readFileSync(mask)));
    expect(m.dims).toEqual(input.dims);
    expect(m.affine).toEqual(input.affine);
    expect(m.datatype).toBe('uint8');
    expect(out.dims).toEqual(input.dims);
    expect(out.engine).toBe('kernels');
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('segment on onnxruntime-node (--engine ort) gives the kernels engine mask; a bad --engine exits 2', async () => {
    const ortMask = join(dir, 'mask-ort.nii.gz');
    const r = await cli([
      'segment',
      '--model',
      models,
      '--image',
      ct,
      '--out',
      ortMask,
      '--engine',
      'ort',
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).engine).toBe('ort');
    const a = readNifti(new Uint8Array(readFileSync(mask))).data as Uint8Array;
    const b = readNifti(new Uint8Array(readFileSync(ortMask))).data as Uint8Array;
    let differ = 0;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differ++;
    expect(differ).toBe(0);
    // Not a trivially equal pair of empty masks.
    expect(a.some((v) => v !== 0)).toBe(true);
    const bad = await cli(['segment', '--model', models, '--image', ct, '--out', ortMask, '--engine', 'gpu']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--engine must be auto, ort, kernels/);
  });

  it('evaluate reports Dice, NSD and lesions, and exits 2 on a grid mismatch', async () => {
    const self = await cli([
      'evaluate',
      '--pred',
      label,
      '--truth',
      label,
      '--pred-label-map',
      'freetumor',
      '--organ',
      'liver',
      '--json',
      '--tolerance',
      '5',
    ]);
    expect(self.code).toBe(0);
    const s = JSON.parse(self.stdout);
    expect(s.tumor.dice).toBe(1);
    expect(s.organ.nsd).toBe(1);
    expect(s.lesions.sensitivity).toBe(1);
    expect(s.lesions.trueLesions).toBeGreaterThanOrEqual(1);
    expect(s.tumor.trueMl).toBeGreaterThan(0);

    const vsMask = await cli(['evaluate', '--pred', mask, '--truth', label, '--organ', 'liver', '--json']);
    expect(vsMask.code).toBe(0);
    const v = JSON.parse(vsMask.stdout);
    expect(v.tumor.dice).toBeGreaterThanOrEqual(0);
    expect(v.tumor.dice).toBeLessThanOrEqual(1);

    const other = join(dir, 'other.nii.gz');
    writeFileSync(
      other,
      writeNifti(
        makeVolume(
          [4, 4, 4],
          new Uint8Array(64),
          Float64Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1),
          'uint8',
        ),
      ),
    );
    const bad = await cli(['evaluate', '--pred', other, '--truth', label]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/dims/);
    const missing = await cli(['evaluate', '--pred', join(dir, 'nope.nii.gz'), '--truth', label]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).not.toContain('nope');
  });

  it('score reports detection and acceptance for a synthetic-tumor label', async () => {
    const r = await cli([
      'score',
      '--model',
      models,
      '--image',
      ct,
      '--label',
      synthLabel,
      '--synthetic-label',
      '3',
      '--threads',
      '1',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.policy).toBe('segmentor');
    expect(s.syntheticVoxels).toBeGreaterThan(0);
    expect(s.detection).toBeGreaterThanOrEqual(0);
    expect(s.detection).toBeLessThanOrEqual(1);
    expect(s.accepted).toBe(s.detection > 0.7);
    expect(s.realism).toBeNull();
  });

  it('score defaults to the tumor id synthesize wrote, and refuses an id with no voxels', async () => {
    const out = join(dir, 'synth-out');
    const syn = await cli([
      'synthesize',
      '--image',
      ct,
      '--label',
      label,
      '--organ',
      'kidney',
      '--type',
      'small',
      '--count',
      '1',
      '--out',
      out,
      '--json',
    ]);
    expect(syn.code).toBe(0);
    const tumorLabel = JSON.parse(syn.stdout).tumorLabel;
    expect(tumorLabel).toBe(6);
    const common = [
      'score',
      '--model',
      models,
      '--image',
      join(out, 'ct.nii.gz'),
      '--threads',
      '1',
      '--json',
    ];
    const r = await cli([...common, '--label', join(out, 'label.nii.gz')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).syntheticLabel).toBe(6);
    // The phantom label (liver tumors 2) is not synthesize's output: the model's organ (liver)
    // under the detected FreeTumor scheme gives 2; an id with no voxels is refused.
    const plain = await cli([...common, '--label', label]);
    expect(plain.code).toBe(0);
    expect(JSON.parse(plain.stdout).syntheticLabel).toBe(2);
    const none = await cli([...common, '--label', label, '--synthetic-label', '9']);
    expect(none.code).toBe(2);
    expect(none.stderr.trim()).toBe(
      'freetumor: the label has no voxels of synthetic tumor id 9: pass --synthetic-label',
    );
  });

  it('segment refuses a model file whose sha256 does not match (exit 2, model_integrity)', async () => {
    const tampered = join(dir, 'tampered');
    const r0 = await cli([
      'export',
      '--run',
      run,
      '--out',
      tampered,
      '--quantize',
      'none',
      '--version',
      'v2',
    ]);
    expect(r0.code).toBe(0);
    const file = join(tampered, 'segmentor', 'model.fp32.onnx');
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(file, bytes);
    const r = await cli([
      'segment',
      '--model',
      tampered,
      '--image',
      ct,
      '--out',
      join(dir, 'x.nii.gz'),
      '--precision',
      'fp32',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/sha256/);
  });

  describe('publish', () => {
    let s3: LocalS3;
    beforeAll(async () => {
      s3 = await startLocalS3(['weights']);
    });
    afterAll(() => s3.close());

    it('uploads to a local S3 server with credentials from the environment', async () => {
      const env = { R2_ACCESS_KEY_ID: 'S3RVER', R2_SECRET_ACCESS_KEY: 'S3RVER' };
      const r = await cli(
        ['publish', '--models', models, '--bucket', 'weights', '--endpoint', s3.endpoint, '--json'],
        env,
      );
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.latestKey).toBe('models/latest.json');
      expect(out.models.segmentor.version).toBe('v1');
      // The same version again (a retry) is a no-op: nothing uploaded, latest.json unchanged.
      const again = await cli(
        ['publish', '--models', models, '--bucket', 'weights', '--endpoint', s3.endpoint, '--json'],
        env,
      );
      expect(again.code).toBe(0);
      expect(JSON.parse(again.stdout)).toMatchObject({
        uploadedBytes: 0,
        models: { segmentor: { version: 'v1' } },
      });
      const noCreds = await cli(
        ['publish', '--models', models, '--bucket', 'weights', '--endpoint', s3.endpoint],
        {
          R2_ACCESS_KEY_ID: '',
          R2_SECRET_ACCESS_KEY: '',
          AWS_ACCESS_KEY_ID: '',
          AWS_SECRET_ACCESS_KEY: '',
        },
      );
      expect(noCreds.code).toBe(2);
      expect(noCreds.stderr).toMatch(/credentials/);
    });
  });
});
