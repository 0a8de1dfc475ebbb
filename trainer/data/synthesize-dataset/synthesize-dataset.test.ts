/**
 * The generator + quality-control path of synthesize-dataset on local folders, with exported tiny
 * ONNX models: a generator (tanh, one channel per organ) and two segmentors whose head is fixed so
 * that one labels every voxel tumor and the other none. QC accepts the first variant with the
 * former; with the latter every attempt is rejected and the original CT and label are kept byte for
 * byte. The records reach the markers, dataset.json and the summary; a run with other models on the
 * same output is refused.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor, zerosLike } from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePhantom } from '../../../shared/phantom/phantom.ts';
import { writeNifti } from '../../../shared/volume/nifti.ts';
import { writeModelDir } from '../../export/manifest-writer.ts';
import { exportToOnnx } from '../../export/onnx.ts';
import { testManifestFields, tinyUNet } from '../../export/test-model.ts';
import { startLocalS3 } from '../../publish/local-s3.ts';
import { publishModels } from '../../publish/r2.ts';
import { attemptSeed, parseShard, shardFrom, variantSeed } from './plan.ts';
import { synthesizeDataset } from './run.ts';

let work: string;
const pre = {
  spacing: [4, 4, 4] as [number, number, number],
  patchSize: [16, 16, 16] as [number, number, number],
  divisor: 4,
};

/** A segmentor whose softmax always picks `cls` (zero head kernel, one large bias). */
async function fixedSegmentor(dir: string, cls: number): Promise<void> {
  const net = tinyUNet({ outChannels: 3, seed: 5 });
  const head = net.getLayer('head');
  const [kernel] = head.getWeights();
  const bias = [0, 0, 0];
  bias[cls] = 10;
  head.setWeights([zerosLike(kernel), tensor(bias)]);
  await writeModelDir(dir, testManifestFields({ version: `s${cls}`, preprocessing: pre }), {
    fp32: exportToOnnx(net),
  });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ft-synds-'));
  const data = join(work, 'data');
  mkdirSync(join(data, 'imagesTr'), { recursive: true });
  mkdirSync(join(data, 'labelsTr'), { recursive: true });
  for (const i of [0, 1]) {
    const p = generatePhantom({ seed: 700 + i, spacing: 8, tumors: [] });
    writeFileSync(join(data, 'imagesTr', `c${i}_0000.nii.gz`), writeNifti(p.ct));
    writeFileSync(join(data, 'labelsTr', `c${i}.nii.gz`), writeNifti(p.label));
  }
  const generator = tinyUNet({ outChannels: 3, head: 'tanh', seed: 3 });
  await writeModelDir(
    join(work, 'gen'),
    testManifestFields({
      name: 'test-generator',
      role: 'generator',
      version: 'g1',
      organs: ['liver', 'pancreas', 'kidney'],
      inputs: [{ name: 'image', shape: ['N', 1, 'D', 'H', 'W'], dtype: 'float32' }],
      labels: ['liver', 'pancreas', 'kidney'],
      outputActivation: 'tanh',
      preprocessing: pre,
    }),
    { fp32: exportToOnnx(generator) },
  );
  await fixedSegmentor(join(work, 'always'), 2);
  await fixedSegmentor(join(work, 'never'), 0);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

const base = () => ({
  data: join(work, 'data'),
  variants: 1,
  workers: 1,
  organ: 'liver',
  labelMap: 'freetumor',
  type: 'medium',
  seed: 0,
  mode: 'darken',
  generator: join(work, 'gen'),
  shard: { index: 0, count: 1 },
});

const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

describe('synthesize-dataset with a generator and quality control', () => {
  it('accepts at the first attempt when the QC segmentor detects the tumor', async () => {
    const out = join(work, 'accepted');
    const r = await synthesizeDataset({ ...base(), out, quality: join(work, 'always') });
    expect(r.merge).toMatchObject({ counts: { accepted: 2, rejected: 0 }, acceptRate: 1, meanAttempts: 1 });
    const marker = json(join(out, '.freetumor-synthesis/cases/c0_syn0.json'));
    expect(marker).toMatchObject({ status: 'accepted', attempts: 1, detection: 1, realism: null });
    expect(marker.tumorVoxels).toBeGreaterThan(0);
    const dataset = json(join(out, 'dataset.json'));
    expect(dataset.numTraining).toBe(2);
    expect(dataset.synthesis[1]).toEqual({
      id: 'c1_syn0',
      status: 'accepted',
      attempts: 1,
      detection: 1,
      realism: null,
    });
    expect(json(join(out, '.freetumor-synthesis-state.json')).variants.c0_syn0.status).toBe('accepted');
    expect(readFileSync(join(out, 'imagesTr/c0_syn0_0000.nii.gz'))).not.toEqual(
      readFileSync(join(work, 'data/imagesTr/c0_0000.nii.gz')),
    );
  }, 120_000);

  it('retries up to --attempts, then keeps the original CT and label', async () => {
    const out = join(work, 'rejected');
    const r = await synthesizeDataset({ ...base(), out, quality: join(work, 'never'), attempts: 3 });
    expect(r.merge).toMatchObject({ counts: { accepted: 0, rejected: 2 }, acceptRate: 0, meanAttempts: 3 });
    expect(json(join(out, '.freetumor-synthesis/cases/c1_syn0.json'))).toMatchObject({
      status: 'rejected',
      attempts: 3,
      detection: 0,
      tumors: 0,
    });
    expect(readFileSync(join(out, 'imagesTr/c1_syn0_0000.nii.gz'))).toEqual(
      readFileSync(join(work, 'data/imagesTr/c1_0000.nii.gz')),
    );
    expect(readFileSync(join(out, 'labelsTr/c1_syn0.nii.gz'))).toEqual(
      readFileSync(join(work, 'data/labelsTr/c1.nii.gz')),
    );
    // The same output with other QC models is another run: refused.
    await expect(
      synthesizeDataset({ ...base(), out, quality: join(work, 'always'), attempts: 3 }),
    ).rejects.toThrow(/other options or models/);
  }, 120_000);
});

describe('models from S3', () => {
  it('uses the published (latest.json) generator and QC segmentor of an s3:// prefix', async () => {
    const s3 = await startLocalS3(['models']);
    const saved = { ...process.env };
    Object.assign(process.env, { R2_ACCESS_KEY_ID: 'S3RVER', R2_SECRET_ACCESS_KEY: 'S3RVER' });
    try {
      const target = { bucket: 'models', endpoint: s3.endpoint, credentials: s3.credentials };
      await publishModels(join(work, 'gen'), target);
      await publishModels(join(work, 'always'), target);
      const out = join(work, 'from-s3');
      const r = await synthesizeDataset({
        ...base(),
        out,
        generator: 's3://models/models',
        quality: 's3://models/models',
        endpoint: s3.endpoint,
      });
      expect(r.merge).toMatchObject({ counts: { accepted: 2 }, acceptRate: 1 });
      // The same models as the local run: the same bytes.
      expect(readFileSync(join(out, 'imagesTr/c0_syn0_0000.nii.gz'))).toEqual(
        readFileSync(join(work, 'accepted/imagesTr/c0_syn0_0000.nii.gz')),
      );
    } finally {
      process.env = saved;
      await s3.close();
    }
  }, 120_000);
});

describe('shards and seeds', () => {
  it('parses I/N and the Batch array variables, and refuses bad ones', () => {
    expect(parseShard('2/5')).toEqual({ index: 2, count: 5 });
    expect(() => parseShard('5/5')).toThrow(/--shard must be I\/N/);
    expect(() => parseShard('1')).toThrow(/--shard/);
    expect(shardFrom(undefined, {})).toEqual({ index: 0, count: 1 });
    expect(shardFrom(undefined, { AWS_BATCH_JOB_ARRAY_INDEX: '7', AWS_BATCH_JOB_ARRAY_SIZE: '10' })).toEqual({
      index: 7,
      count: 10,
    });
    expect(() => shardFrom(undefined, { AWS_BATCH_JOB_ARRAY_INDEX: '7' })).toThrow(/ARRAY_SIZE/);
    expect(shardFrom('1/2', { AWS_BATCH_JOB_ARRAY_INDEX: '7', AWS_BATCH_JOB_ARRAY_SIZE: '10' })).toEqual({
      index: 1,
      count: 2,
    });
  });

  it('derives seeds from the case alone: attempt 0 keeps the variant seed, retries differ', () => {
    const s = variantSeed(0, 'c0', 0);
    expect(variantSeed(0, 'c0', 0)).toBe(s);
    expect(variantSeed(0, 'c1', 0)).not.toBe(s);
    expect(attemptSeed(s, 0)).toBe(s);
    const retries = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9].map((a) => attemptSeed(s, a)));
    expect(retries.size).toBe(9);
    expect(retries.has(s)).toBe(false);
  });
});
