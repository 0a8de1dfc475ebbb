/**
 * synthesize-dataset as AWS Batch array jobs would run it, against a real local S3 server: phantom
 * cases in a bucket, one 1-shard run, and a 3-shard run whose shard 1 is killed (SIGKILL) mid-way,
 * a merge that refuses while that shard is missing, the shard rerun (it redoes only what had no
 * marker), the merge, and every output object byte-identical to the 1-shard run's.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePhantom } from '../shared/phantom/phantom.ts';
import { writeNifti } from '../shared/volume/nifti.ts';
import { type LocalS3, startLocalS3 } from '../trainer/publish/local-s3.ts';
import { S3Store } from '../trainer/storage/object-store.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CASES = 6;

let s3: LocalS3;
let store: S3Store;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function freetumor(
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(process.execPath, ['bin/freetumor.js', ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      R2_ACCESS_KEY_ID: s3.credentials.accessKeyId,
      R2_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
      AWS_BATCH_JOB_ARRAY_INDEX: '',
      ...env,
    },
  });
  const out: Run = { code: null, signal: null, stdout: '', stderr: '' };
  child.stdout?.on('data', (d: Buffer) => {
    out.stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out.stderr += d.toString();
  });
  const done = new Promise<Run>((resolve) =>
    child.on('close', (code, signal) => resolve({ ...out, code, signal })),
  );
  return { child, done };
}

const synth = (out: string, extra: string[] = []) => [
  'synthesize-dataset',
  '--data',
  's3://freetumor/in',
  '--out',
  `s3://freetumor/${out}`,
  '--endpoint',
  s3.endpoint,
  '--type',
  'small',
  '--workers',
  '1',
  '--json',
  ...extra,
];

async function ok(args: string[], env: Record<string, string> = {}) {
  const r = await freetumor(args, env).done;
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.slice(-1500)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string);
}

/** Every object under a prefix (minus the shard bookkeeping), by relative key. */
async function objects(prefix: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const key of await store.list(prefix)) {
    if (key.includes('.freetumor-synthesis/shards/')) continue;
    out.set(key.slice(prefix.length), (await store.get(key)) as Uint8Array);
  }
  return out;
}

beforeAll(async () => {
  s3 = await startLocalS3(['freetumor']);
  store = new S3Store({
    endpoint: s3.endpoint,
    bucket: 'freetumor',
    ...s3.credentials,
    forcePathStyle: true,
  });
  for (let i = 0; i < CASES; i++) {
    const p = generatePhantom({ seed: 100 + i, spacing: 8, tumors: [] });
    await store.put(`in/imagesTr/case${i}_0000.nii.gz`, writeNifti(p.ct));
    await store.put(`in/labelsTr/case${i}.nii.gz`, writeNifti(p.label));
  }
});

afterAll(async () => {
  store?.client.destroy();
  await s3?.close();
});

describe('synthesize-dataset over S3 in shards', () => {
  it('3 shards with one killed and rerun merge to the same bytes as 1 shard', async () => {
    const one = await ok(synth('one'));
    expect(one).toMatchObject({ shard: { index: 0, count: 1 }, done: CASES, failed: 0 });
    expect(one.merge.counts.synthesized).toBe(CASES);

    // Shards 0 and 2 (the latter from Batch's array variables) finish.
    expect(await ok(synth('three', ['--shard', '0/3']))).toMatchObject({ shardCases: 2, done: 2 });
    expect(
      await ok(synth('three'), { AWS_BATCH_JOB_ARRAY_INDEX: '2', AWS_BATCH_JOB_ARRAY_SIZE: '3' }),
    ).toMatchObject({ shard: { index: 2, count: 3 }, done: 2 });

    // Shard 1 (cases 1 and 4) is killed while it writes case 4's marker: case 4's CT and label are
    // in the bucket, its marker is not.
    let held = false;
    s3.hold(
      (r) => r.method === 'PUT' && r.key === 'three/.freetumor-synthesis/cases/case4_syn0.json',
      () => {
        held = true;
      },
    );
    const killed = freetumor(synth('three', ['--shard', '1/3']));
    const deadline = Date.now() + 60_000;
    while (!held && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(held).toBe(true);
    killed.child.kill('SIGKILL');
    expect((await killed.done).signal).toBe('SIGKILL');
    s3.release();
    expect(await store.get('three/imagesTr/case4_syn0_0000.nii.gz')).not.toBeNull();
    expect(await store.get('three/.freetumor-synthesis/cases/case1_syn0.json')).not.toBeNull();

    const early = await freetumor([
      'synthesize-dataset',
      'merge',
      '--out',
      's3://freetumor/three',
      '--endpoint',
      s3.endpoint,
    ]).done;
    expect(early.code).toBe(2);
    expect(early.stderr).toContain('1 of 6 variants have no marker yet (shards 1/3 of 3)');
    expect(await store.get('three/dataset.json')).toBeNull();

    // The retry redoes only the case that had no marker, and, being the last shard, merges.
    const last = await ok(synth('three', ['--shard', '1/3']));
    expect(last).toMatchObject({ done: 1, skipped: 1, merge: { variants: CASES } });
    const merged = await ok([
      'synthesize-dataset',
      'merge',
      '--out',
      's3://freetumor/three',
      '--endpoint',
      s3.endpoint,
      '--json',
    ]);
    expect(merged).toMatchObject({ variants: CASES, counts: { synthesized: CASES, failed: 0 } });

    const a = await objects('one/');
    const b = await objects('three/');
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    expect(a.size).toBe(CASES * 3 + 4); // CT, label, marker per case; plan, dataset, state, summary
    for (const [key, bytes] of a) expect(Buffer.compare(bytes, b.get(key) as Uint8Array), key).toBe(0);
    const dataset = JSON.parse(new TextDecoder().decode(a.get('dataset.json')));
    expect(dataset.numTraining).toBe(CASES);
    expect(dataset.synthesis[0]).toEqual({
      id: 'case0_syn0',
      status: 'synthesized',
      attempts: 1,
      detection: null,
      realism: null,
    });
  }, 240_000);

  it('training reads the merged data set from S3 through the data-set reader, with a content-keyed cache', async () => {
    const { listDataset } = await import('../trainer/data/dataset.ts');
    const { preprocessToCache } = await import('../trainer/data/preprocess.ts');
    const work = mkdtempSync(join(tmpdir(), 'ft-s3-data-'));
    const saved = { ...process.env };
    Object.assign(process.env, {
      FREETUMOR_S3_ENDPOINT: s3.endpoint,
      R2_ACCESS_KEY_ID: 'S3RVER',
      R2_SECRET_ACCESS_KEY: 'S3RVER',
      FREETUMOR_DATA_DIR: join(work, 'downloads'),
    });
    try {
      const d = {
        name: 'syn',
        format: 'msd' as const,
        path: 's3://freetumor/one',
        labelMap: 'freetumor',
        organ: 'liver' as const,
        repeat: 1,
        unlabeled: true,
      };
      const cases = await listDataset(d);
      expect(cases.map((c) => c.id)).toEqual([0, 1, 2, 3, 4, 5].map((i) => `case${i}_syn0`));
      expect(cases.every((c) => c.labeled)).toBe(true);
      const params = {
        spacing: [8, 8, 8] as [number, number, number],
        window: [-175, 250] as [number, number],
        labelMap: 'freetumor',
        organ: 'liver' as const,
      };
      const first = await preprocessToCache(cases[0], params, join(work, 'cache'));
      // Listed again (a new download folder): the same content hits the same cache entry.
      process.env.FREETUMOR_DATA_DIR = join(work, 'downloads-2');
      const again = await listDataset(d);
      expect(again[0].image).not.toBe(cases[0].image);
      expect(await preprocessToCache(again[0], params, join(work, 'cache'))).toBe(first);
    } finally {
      process.env = saved;
      rmSync(work, { recursive: true, force: true });
    }
  }, 60_000);

  it('refuses a bad shard and other options on the same output with one line', async () => {
    const bad = await freetumor(synth('one', ['--shard', '3/3'])).done;
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('--shard must be I/N');
    const other = await freetumor(synth('one', ['--type', 'tiny'])).done;
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('other options');
  }, 60_000);
});
