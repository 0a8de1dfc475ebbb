/**
 * The job's parts one by one: the data manifest's checks and identity, the promotion gate, the
 * ownership rule, and the checkpoint mirror against a real S3 server. (test/job.test.ts runs the
 * whole job end to end.)
 */
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../shared/model/manifest.ts';
import { type LocalS3, startLocalS3 } from '../publish/local-s3.ts';
import { canonicalJson, jobIdOf, parseDataManifest } from './data-manifest.ts';
import { decidePromotion } from './promotion.ts';
import { mergeConfig } from './run.ts';
import { heldByOther, type JobState, readState, writeStateIf } from './state.ts';
import { FolderMirror, S3Store } from './storage.ts';

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

function manifestWith(cases: unknown[], extra: Record<string, unknown> = {}) {
  return { schemaVersion: 1, name: 'set', organ: 'liver', cases, ...extra };
}
const c = (id: string, split: 'train' | 'validation', labeled = true, image = `data/${id}.nii.gz`) => ({
  id,
  image,
  label: `data/${id}-label.nii.gz`,
  labeled,
  split,
});

describe('data manifest', () => {
  it('parses a valid manifest with defaults', () => {
    const m = parseDataManifest(
      enc(manifestWith([c('a', 'train'), c('u', 'train', false), c('v', 'validation')])),
    );
    expect(m.labelMap).toBe('freetumor');
    expect(m.promotion).toEqual({ metric: 'tumorDice', minImprovement: 0 });
    expect(m.synthesis).toBeUndefined();
  });

  it.each([
    ['not JSON', new TextEncoder().encode('{'), 'not valid JSON'],
    ['duplicate ids', enc(manifestWith([c('a', 'train'), c('a', 'validation')])), 'duplicate case id a'],
    [
      'no validation case',
      enc(manifestWith([c('a', 'train'), c('b', 'train')])),
      'no labeled validation case',
    ],
    [
      'no labeled training case',
      enc(manifestWith([c('a', 'train', false), c('v', 'validation')])),
      'no labeled training case',
    ],
    [
      'a key escaping the prefix',
      enc(manifestWith([c('a', 'train', true, 'data/../../etc/x'), c('v', 'validation')])),
      '".."',
    ],
    [
      'an absolute key',
      enc(manifestWith([c('a', 'train', true, '/abs'), c('v', 'validation')])),
      'relative object key',
    ],
    [
      'an unknown field',
      enc(manifestWith([c('a', 'train'), c('v', 'validation')], { extra: 1 })),
      'invalid data manifest',
    ],
    [
      'an unknown metric',
      enc(manifestWith([c('a', 'train'), c('v', 'validation')], { promotion: { metric: 'accuracy' } })),
      'promotion.metric',
    ],
  ])('rejects %s', (_what, bytes, message) => {
    expect(() => parseDataManifest(bytes)).toThrow(message);
  });

  it('gives the same job id whatever the key order, a different one for other inputs', () => {
    const a = parseDataManifest(enc(manifestWith([c('a', 'train'), c('v', 'validation')])));
    const reordered = parseDataManifest(
      new TextEncoder().encode(
        JSON.stringify({
          cases: [c('a', 'train'), c('v', 'validation')],
          organ: 'liver',
          name: 'set',
          schemaVersion: 1,
        }),
      ),
    );
    expect(jobIdOf(a, { overrides: [] })).toBe(jobIdOf(reordered, { overrides: [] }));
    expect(jobIdOf(a, { overrides: ['steps=2'] })).not.toBe(jobIdOf(a, { overrides: [] }));
    const more = parseDataManifest(
      enc(manifestWith([c('a', 'train'), c('b', 'train'), c('v', 'validation')])),
    );
    expect(jobIdOf(more, { overrides: [] })).not.toBe(jobIdOf(a, { overrides: [] }));
    expect(canonicalJson({ b: 1, a: [2, { d: 3, c: undefined }] })).toBe('{"a":[2,{"d":3}],"b":1}');
  });
});

describe('promotion gate', () => {
  const active = (metrics: Record<string, number>) =>
    parseManifest({
      schemaVersion: 1,
      name: 'seg',
      role: 'segmentor',
      version: 'v1',
      created: '2026-11-01T00:00:00.000Z',
      organs: ['liver'],
      files: [{ path: 'model.fp32.onnx', sha256: 'a'.repeat(64), bytes: 10, precision: 'fp32' }],
      inputs: [{ name: 'x', shape: ['N', 1, 'D', 'H', 'W'], dtype: 'float32' }],
      outputs: [{ name: 'y', shape: ['N', 3, 'D', 'H', 'W'], dtype: 'float32' }],
      preprocessing: {
        spacing: [1.5, 1.5, 1.5],
        window: [-175, 250],
        orientation: 'RAS',
        patchSize: [96, 96, 96],
        overlap: 0.5,
        blending: 'gaussian',
      },
      labels: ['background', 'organ', 'tumor'],
      outputActivation: 'softmax',
      metrics,
    });

  it.each([
    ['no active model', { tumorDice: 0.1 }, null, 0, true, 'no active model'],
    ['a better candidate', { tumorDice: 0.6 }, { tumorDice: 0.5 }, 0, true, 'beats'],
    ['an equal candidate', { tumorDice: 0.5 }, { tumorDice: 0.5 }, 0, false, 'does not beat'],
    ['a worse candidate', { tumorDice: 0.4 }, { tumorDice: 0.5 }, 0, false, 'does not beat'],
    [
      'better, but within the margin',
      { tumorDice: 0.505 },
      { tumorDice: 0.5 },
      0.01,
      false,
      'by more than 0.01',
    ],
    [
      'an active model without the metric',
      { tumorDice: 0.2 },
      { organDice: 0.9 },
      0,
      true,
      'records no tumorDice',
    ],
    [
      'a candidate without the metric',
      { organDice: 0.9 },
      { tumorDice: 0.5 },
      0,
      false,
      'no finite tumorDice',
    ],
  ])('%s', (_what, candidate, activeMetrics, margin, promote, reason) => {
    const d = decidePromotion(candidate, activeMetrics ? active(activeMetrics) : null, 'tumorDice', margin);
    expect(d.promote).toBe(promote);
    expect(d.reason).toContain(reason);
  });
});

describe('job ownership', () => {
  const state = (owner: string, status: JobState['status'], ageMs: number): JobState => ({
    jobId: 'j',
    status,
    dataManifestKey: 'k',
    version: 'v',
    attempts: 1,
    owner,
    startedAt: new Date(0).toISOString(),
    heartbeatAt: new Date(1_000_000 - ageMs).toISOString(),
    phase: 'train',
  });
  it.each([
    ['no record', null, false],
    ['a live run of another owner', state('other', 'running', 1000), true],
    ['a stale run of another owner (a dead instance)', state('other', 'running', 60_000), false],
    ['our own earlier attempt (a Batch retry)', state('me', 'running', 1000), false],
    ['a failed run', state('other', 'failed', 1000), false],
  ])('%s -> %s', (_what, s, held) => {
    expect(heldByOther(s, 'me', 1_000_000, 30_000)).toBe(held);
  });
});

describe('run config merge', () => {
  it('merges nested objects and replaces arrays and scalars', () => {
    const merged = mergeConfig(
      { steps: 10, data: { spacing: [1, 1, 1], workers: 1 } },
      { data: { spacing: [2, 2, 2] }, steps: 5 },
    );
    expect(merged).toEqual({ steps: 5, data: { spacing: [2, 2, 2], workers: 1 } });
    expect(Object.getPrototypeOf(mergeConfig({}, JSON.parse('{"__proto__": {"polluted": 1}}')))).toBe(
      Object.prototype,
    );
  });
});

describe('checkpoint mirror (s3rver)', () => {
  let s3: LocalS3;
  let store: S3Store;
  let dir: string;

  beforeAll(async () => {
    s3 = await startLocalS3(['mirror']);
    store = new S3Store({ endpoint: s3.endpoint, bucket: 'mirror', ...s3.credentials, forcePathStyle: true });
    dir = await mkdtemp(join(tmpdir(), 'ft-mirror-'));
  });
  afterAll(async () => {
    store.client.destroy();
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('uploads changed files only, skips temporary and excluded files, and restores a fresh folder', async () => {
    const run = join(dir, 'run');
    await mkdir(join(run, 'cache'), { recursive: true });
    await writeFile(join(run, 'checkpoint.ckpt'), 'step 1');
    await writeFile(join(run, 'metrics.jsonl'), '{"step":1}\n');
    await writeFile(join(run, 'checkpoint.ckpt.tmp-123'), 'half written');
    await writeFile(join(run, 'cache', 'case.bin'), 'derived');
    const mirror = new FolderMirror(store, run, 'jobs/x/runs/seg', (rel) => !rel.startsWith('cache/'));
    expect(await mirror.push()).toBe(2);
    expect(await mirror.push()).toBe(0);
    await writeFile(join(run, 'checkpoint.ckpt'), 'step 2!');
    await utimes(join(run, 'checkpoint.ckpt'), new Date(), new Date(Date.now() + 5000));
    expect(await mirror.push()).toBe(1);
    expect((await store.list('jobs/x/runs/seg/')).sort()).toEqual([
      'jobs/x/runs/seg/checkpoint.ckpt',
      'jobs/x/runs/seg/metrics.jsonl',
    ]);

    const fresh = join(dir, 'fresh');
    const restored = new FolderMirror(store, fresh, 'jobs/x/runs/seg');
    expect(await restored.pull()).toBe(2);
    expect(await readFile(join(fresh, 'checkpoint.ckpt'), 'utf8')).toBe('step 2!');
    // Pulled files count as uploaded: nothing goes back up until they change.
    expect(await restored.push()).toBe(0);
    expect(await store.get('jobs/x/none')).toBeNull();
  });
});

describe('job claims by compare-and-swap on the local S3 server', () => {
  let s3: LocalS3;
  let store: S3Store;
  beforeAll(async () => {
    s3 = await startLocalS3(['claims']);
    store = new S3Store({ endpoint: s3.endpoint, bucket: 'claims', ...s3.credentials, forcePathStyle: true });
  });
  afterAll(async () => {
    store.client.destroy();
    await s3.close();
  });
  const record = (owner: string): JobState => ({
    jobId: 'job-a',
    status: 'running',
    dataManifestKey: 'data/m.json',
    version: 'v',
    attempts: 1,
    owner,
    startedAt: new Date().toISOString(),
    heartbeatAt: new Date().toISOString(),
    phase: 'download',
  });

  it('of two processes claiming a new job at once exactly one wins', async () => {
    const results = await Promise.all(['a', 'b', 'c'].map((o) => writeStateIf(store, record(o), null)));
    expect(results.filter((e) => e !== null)).toHaveLength(1);
    const winner = ['a', 'b', 'c'][results.findIndex((e) => e !== null)];
    expect((await readState(store, 'job-a'))?.state.owner).toBe(winner);
  });

  it('a process whose stale job was taken over cannot write its record again', async () => {
    const current = await readState(store, 'job-a');
    const mine = current?.etag as string;
    // Another owner takes the job over on the record it read (a stale heartbeat).
    const taken = await writeStateIf(store, record('taker'), mine);
    expect(taken).not.toBeNull();
    // The old owner's next heartbeat is conditional on what it last wrote: refused.
    expect(await writeStateIf(store, { ...record('old'), phase: 'train' }, mine)).toBeNull();
    expect((await readState(store, 'job-a'))?.state.owner).toBe('taker');
  });
});
