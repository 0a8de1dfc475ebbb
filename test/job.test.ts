/**
 * `freetumor job` end to end against a real S3 server (s3rver): phantom cases and a data manifest
 * go into the bucket, the job trains tiny models on the cpu backend, evaluates on the held-out
 * split and publishes; a second run with the same inputs does nothing; a run whose model does not
 * beat the active one is not promoted; a killed run resumes from the checkpoints it uploaded.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../shared/model/manifest.ts';
import { generatePhantom } from '../shared/phantom/phantom.ts';
import { writeNifti } from '../shared/volume/nifti.ts';
import type { DataManifest } from '../trainer/job/data-manifest.ts';
import type { JobResult } from '../trainer/job/run.ts';
import type { JobState } from '../trainer/job/state.ts';
import { getJson, putJson, S3Store } from '../trainer/job/storage.ts';
import { type LocalS3, startLocalS3 } from '../trainer/publish/local-s3.ts';
import { publishedPointerSchema } from '../trainer/publish/r2.ts';
import { decodeCheckpoint } from '../trainer/train/checkpoint.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const BUCKET = 'freetumor';
/** Tiny settings: 10 mm phantoms (36x30x24 voxels), 16^3 patches, 4 base channels, depth 2. */
const TINY = [
  'steps=2',
  'patchSize=16',
  'casesPerStep=1',
  'cropsPerCase=1',
  'data.spacing=[10,10,10]',
  'data.workers=0',
  'data.prefetch=1',
  'model.baseChannels=4',
  'model.depth=2',
];

let s3: LocalS3;
let store: S3Store;
let workRoot: string;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runJob(args: string[], env: Record<string, string> = {}, onStderr?: (text: string) => void) {
  const child = spawn(
    process.execPath,
    [
      'bin/freetumor.js',
      'job',
      '--bucket',
      BUCKET,
      '--endpoint',
      s3.endpoint,
      '--backend',
      'cpu',
      '--work-dir',
      workRoot,
      '--json',
      ...TINY.flatMap((s) => ['--set', s]),
      ...args,
    ],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        R2_ACCESS_KEY_ID: s3.credentials.accessKeyId,
        R2_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
        AWS_BATCH_JOB_ID: '',
        ...env,
      },
    },
  );
  const out: Run = { code: null, signal: null, stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => {
    out.stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    out.stderr += d.toString();
    onStderr?.(out.stderr);
  });
  const done = new Promise<Run>((resolve) => {
    child.on('close', (code, signal) => {
      out.code = code;
      out.signal = signal;
      resolve(out);
    });
  });
  return { child, done };
}

async function runToEnd(args: string[], env: Record<string, string> = {}): Promise<JobResult> {
  const r = await runJob(args, env).done;
  if (r.code !== 0) throw new Error(`job exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as JobResult;
}

/** Phantom cases in the bucket (NIfTI, FreeTumor labels) and a data manifest naming them. */
async function uploadDataset(
  name: string,
  seeds: number[],
  validationSeeds: number[],
  options: { unlabeledSeeds?: number[]; extra?: Record<string, unknown> } = {},
): Promise<string> {
  const cases: DataManifest['cases'] = [];
  const unlabeled = options.unlabeledSeeds ?? [];
  for (const seed of [...seeds, ...validationSeeds, ...unlabeled]) {
    // Unlabeled cases: organ masks without tumor annotations (a tumor-free phantom's labels).
    const tumors = unlabeled.includes(seed) ? [] : [{ organ: 'liver' as const, count: 2 }];
    const p = generatePhantom({ seed, spacing: 10, tumors });
    const id = `phantom_${seed}`;
    await store.put(`data/${name}/${id}_0000.nii.gz`, writeNifti(p.ct));
    await store.put(`data/${name}/${id}.nii.gz`, writeNifti(p.label));
    cases.push({
      id,
      image: `data/${name}/${id}_0000.nii.gz`,
      label: `data/${name}/${id}.nii.gz`,
      labeled: !unlabeled.includes(seed),
      split: validationSeeds.includes(seed) ? 'validation' : 'train',
    });
  }
  const key = `data/${name}.json`;
  await putJson(store, key, {
    schemaVersion: 1,
    name,
    organ: 'liver',
    labelMap: 'freetumor',
    cases,
    segmentation: { checkpointEvery: 1 },
    ...options.extra,
  });
  return key;
}

beforeAll(async () => {
  s3 = await startLocalS3([BUCKET]);
  store = new S3Store({ endpoint: s3.endpoint, bucket: BUCKET, ...s3.credentials, forcePathStyle: true });
  workRoot = mkdtempSync(join(tmpdir(), 'ft-job-'));
});

afterAll(async () => {
  store?.client.destroy();
  await s3?.close();
  rmSync(workRoot, { recursive: true, force: true });
});

describe('freetumor job', () => {
  let first: JobResult;
  let manifestKey: string;

  it('trains, evaluates on the held-out split and publishes the first model', async () => {
    manifestKey = await uploadDataset('abdomen-a', [11, 12], [13], { unlabeledSeeds: [14] });
    first = await runToEnd(['--manifest', manifestKey]);
    expect(first.status).toBe('published');
    expect(first.decision).toMatchObject({ promote: true, reason: 'no active model' });
    const latest = publishedPointerSchema.parse(await getJson(store, 'models/latest.json'));
    expect(latest.models.segmentor?.version).toBe(first.version);
    const manifest = parseManifest(await getJson(store, `models/${latest.models.segmentor?.manifest}`));
    expect(manifest.metrics.validationCases).toBe(1);
    expect(manifest.metrics.tumorDice).toBeGreaterThanOrEqual(0);
    expect(manifest.metrics.tumorDice).toBe(first.metrics?.tumorDice);
    for (const f of manifest.files) {
      expect(await store.get(`models/segmentor/${first.version}/${f.path}`), f.path).not.toBeNull();
    }
    const state = await getJson<JobState>(store, `jobs/${first.jobId}/state.json`);
    expect(state).toMatchObject({ status: 'published', attempts: 1, phase: 'done' });
    expect(await store.list(`jobs/${first.jobId}/runs/segmentation/`)).toContain(
      `jobs/${first.jobId}/runs/segmentation/checkpoint.ckpt`,
    );
  });

  it('does nothing new when run again with the same inputs', async () => {
    const latestBefore = await store.get('models/latest.json');
    const keysBefore = (await store.list('models/')).sort();
    const again = await runToEnd(['--manifest', manifestKey]);
    expect(again).toMatchObject({
      jobId: first.jobId,
      status: 'unchanged',
      version: first.version,
      attempts: 1,
    });
    expect(await store.get('models/latest.json')).toEqual(latestBefore);
    expect((await store.list('models/')).sort()).toEqual(keysBefore);
  });

  it('does not promote a model that does not beat the active one', async () => {
    // The active model scores a perfect validation Dice: no candidate can beat it.
    const activeKey = `models/segmentor/${first.version}/manifest.json`;
    const active = parseManifest(await getJson(store, activeKey));
    await putJson(store, activeKey, { ...active, metrics: { ...active.metrics, tumorDice: 1 } });
    const latestBefore = await store.get('models/latest.json');
    const key = await uploadDataset('abdomen-b', [21, 22], [23]);
    const second = await runToEnd(['--manifest', key]);
    expect(second.jobId).not.toBe(first.jobId);
    expect(second.status).toBe('rejected');
    expect(second.decision).toMatchObject({ promote: false, active: 1 });
    expect(await store.get('models/latest.json')).toEqual(latestBefore);
    expect(await store.list(`models/segmentor/${second.version}/`)).toEqual([]);
    expect(await getJson<JobState>(store, `jobs/${second.jobId}/state.json`)).toMatchObject({
      status: 'rejected',
    });
  });

  it('resumes from the uploaded checkpoint after being killed', async () => {
    const key = await uploadDataset('abdomen-c', [31, 32], [33]);
    const env = { AWS_BATCH_JOB_ID: 'batch-job-resume' };
    // Enough steps that the run is still training when the first upload round lands, even on a fast machine.
    const args = ['--manifest', key, '--set', 'steps=400', '--sync-seconds', '1'];
    const seen: { jobId: string | null } = { jobId: null };
    const { child, done } = runJob(args, env, (err) => {
      seen.jobId ??= /job ([0-9a-f]{24}) attempt/.exec(err)?.[1] ?? null;
    });
    let exited = false;
    void done.then(() => {
      exited = true;
    });
    // SIGKILL (no chance to flush) right after an upload round finished (the heartbeat is written
    // last in a round), so that no request is in flight, once the bucket holds a step >= 2 checkpoint.
    const deadline = Date.now() + 60_000;
    let lastBeat: string | undefined;
    while (Date.now() < deadline && !exited) {
      await new Promise((r) => setTimeout(r, 200));
      const jobId = seen.jobId;
      if (!jobId) continue;
      // s3rver (unlike R2) can serve an object while it is being rewritten: a torn read is "not yet".
      const beat = (await getJson<JobState>(store, `jobs/${jobId}/state.json`).catch(() => null))
        ?.heartbeatAt;
      if (beat === undefined) continue;
      if (beat === lastBeat) continue;
      lastBeat = beat;
      const metrics = await store.get(`jobs/${jobId}/runs/segmentation/metrics.jsonl`);
      const lines = metrics ? new TextDecoder().decode(metrics).trim().split('\n').length : 0;
      if (lines >= 2 && (await store.get(`jobs/${jobId}/runs/segmentation/checkpoint.ckpt`))) break;
    }
    child.kill('SIGKILL');
    const killed = await done;
    expect(killed.signal, killed.stderr.slice(-1500)).toBe('SIGKILL');
    const jobId = seen.jobId as string;
    expect(jobId).toMatch(/^[0-9a-f]{24}$/);
    const before = await getJson<JobState>(store, `jobs/${jobId}/state.json`);
    expect(before?.status).toBe('running');

    // An empty work dir (same path, as FREETUMOR_WORK_DIR on a new spot instance): everything must
    // come back from the bucket.
    rmSync(join(workRoot, jobId), { recursive: true, force: true });
    const resumed = await runToEnd(args, env);
    expect(resumed.jobId).toBe(jobId);
    expect(resumed.attempts).toBe(2);
    expect(resumed.resumedFrom.segmentation).toBeGreaterThanOrEqual(1);
    expect(resumed.resumedFrom.segmentation).toBeLessThan(400);
    expect(['published', 'rejected']).toContain(resumed.status);
  });

  it('on SIGTERM (spot reclaim notice) stops at a step boundary, checkpoints, uploads and exits 143', async () => {
    const key = await uploadDataset('abdomen-e', [51, 52], [53]);
    // Hourly sync and no periodic checkpoint: only the stop itself can have put a checkpoint there.
    const args = [
      '--manifest',
      key,
      '--set',
      'steps=500',
      '--set',
      'checkpointEvery=1000',
      '--sync-seconds',
      '3600',
    ];
    let training = false;
    const { child, done } = runJob(args, {}, (err) => {
      training ||= err.includes('phase: train-segmentation');
    });
    const deadline = Date.now() + 60_000;
    while (!training && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 3000));
    child.kill('SIGTERM');
    const r = await done;
    expect(r.code, r.stderr.slice(-1500)).toBe(143);
    const stoppedAt = Number(/stopped at step (\d+)/.exec(r.stderr)?.[1]);
    expect(stoppedAt).toBeGreaterThanOrEqual(1);
    expect(stoppedAt).toBeLessThan(500);
    const result = JSON.parse(r.stdout.trim().split('\n').pop() as string) as JobResult;
    expect(result.status).toBe('interrupted');
    const state = await getJson<JobState>(store, `jobs/${result.jobId}/state.json`);
    expect(state).toMatchObject({ status: 'running', phase: 'interrupted-segmentation' });
    const ckpt = await store.get(`jobs/${result.jobId}/runs/segmentation/checkpoint.ckpt`);
    expect(ckpt).not.toBeNull();
    expect(decodeCheckpoint(ckpt as Uint8Array).step).toBe(stoppedAt);
  });

  it('killed mid-publish, twice, succeeds on its retry with the same version and nothing left over', async () => {
    const key = await uploadDataset('abdomen-k', [61, 62], [63]);
    const env = { AWS_BATCH_JOB_ID: 'batch-job-publish' };
    const args = ['--manifest', key, '--prefix', 'models-k'];
    /** Runs the job until the bucket holds a matching request, then SIGKILLs it. */
    const killAt = async (match: (k: string) => boolean) => {
      let held = false;
      s3.hold(
        (r) => r.method === 'PUT' && match(r.key),
        () => {
          held = true;
        },
      );
      const { child, done } = runJob(args, env);
      const deadline = Date.now() + 120_000;
      while (!held && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      child.kill('SIGKILL');
      const r = await done;
      s3.release();
      expect(held, r.stderr.slice(-1500)).toBe(true);
      expect(r.signal).toBe('SIGKILL');
    };
    // 1: after the model files, before the segmentor's manifest.
    await killAt((k) => /^models-k\/segmentor\/[^/]+\/manifest\.json$/.test(k));
    const versions = async () => [
      ...new Set((await store.list('models-k/segmentor/')).map((k) => k.split('/')[2])),
    ];
    expect(await versions()).toHaveLength(1);
    expect(await store.get('models-k/latest.json')).toBeNull();
    // 2: the retry resumes that version, and is killed as it moves latest.json.
    await killAt((k) => k === 'models-k/latest.json');
    expect(await store.get('models-k/latest.json')).toBeNull();
    const result = await runToEnd(args, env);
    expect(result).toMatchObject({ status: 'published', attempts: 3 });
    expect(await versions()).toEqual([result.version]);
    const latest = publishedPointerSchema.parse(await getJson(store, 'models-k/latest.json'));
    expect(latest.models.segmentor?.version).toBe(result.version);
    const manifest = parseManifest(await getJson(store, `models-k/${latest.models.segmentor?.manifest}`));
    for (const f of manifest.files) {
      const bytes = await store.get(`models-k/segmentor/${result.version}/${f.path}`);
      expect(bytes?.byteLength, f.path).toBe(f.bytes);
    }
    const state = await getJson<JobState>(store, `jobs/${result.jobId}/state.json`);
    expect(state).toMatchObject({ status: 'published', attempts: 3, version: result.version });
    // A retry after the pointer moved but before the state said so is published, not gated against itself.
    await putJson(store, `jobs/${result.jobId}/state.json`, {
      ...state,
      status: 'running',
      phase: 'publish',
    });
    const again = await runToEnd(args, env);
    expect(again).toMatchObject({ status: 'published', version: result.version, attempts: 4 });
    expect(again.decision?.reason).toContain('published by an earlier attempt');
  }, 300_000);

  it('runs the FreeTumor sequence when synthesis is configured and publishes all three roles', async () => {
    const key = await uploadDataset('abdomen-d', [41, 42], [43], {
      unlabeledSeeds: [44],
      extra: {
        synthesis: { checkpointEvery: 1, synthesis: { sampleEvery: 0 } },
        promotion: { metric: 'organDice', minImprovement: 0 },
      },
    });
    // Its own model prefix: no active model there, so the gate promotes and all roles get published.
    const result = await runToEnd(['--manifest', key, '--prefix', 'models-d']);
    expect(result.status).toBe('published');
    const runs = (await store.list(`jobs/${result.jobId}/runs/`)).map((k) => k.split('/')[3]);
    expect([...new Set(runs)].sort()).toEqual(['baseline', 'segmentation', 'synthesis']);
    const config = await getJson<{
      segmentation: { mode: string; synthesisRun: string; qcSegmentorRun: string; initFrom: string };
    }>(store, `jobs/${result.jobId}/runs/segmentation/config.json`);
    expect(config?.segmentation.mode).toBe('freetumor');
    expect(config?.segmentation.synthesisRun).toMatch(/runs\/synthesis$/);
    expect(config?.segmentation.qcSegmentorRun).toMatch(/runs\/baseline$/);
    // The FreeTumor segmentor starts from the baseline's weights (trainer/train/sequence.ts).
    expect(config?.segmentation.initFrom).toBe(config?.segmentation.qcSegmentorRun);
    const latest = publishedPointerSchema.parse(await getJson(store, 'models-d/latest.json'));
    expect(Object.keys(latest.models).sort()).toEqual(['discriminator', 'generator', 'segmentor']);
    expect(latest.models.generator?.version).toBe(result.version);
    const generator = parseManifest(await getJson(store, `models-d/${latest.models.generator?.manifest}`));
    expect(generator.outputActivation).toBe('tanh');
  });
});
