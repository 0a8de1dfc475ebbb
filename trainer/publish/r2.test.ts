import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestPointerSchema, parseManifest } from '../../shared/model/manifest.ts';
import { Rng } from '../../shared/random.ts';
import { type ManifestFields, sha256, writeModelDir } from '../export/manifest-writer.ts';
import { testManifestFields } from '../export/test-model.ts';
import { S3Store } from '../storage/object-store.ts';
import { type HeldRequest, type LocalS3, startLocalS3 } from './local-s3.ts';
import { createR2Client, publishModels } from './r2.ts';

function fields(role: 'segmentor' | 'discriminator', version: string): ManifestFields {
  return testManifestFields({
    name: `test-${role}`,
    role,
    version,
    preprocessing: { patchSize: [96, 96, 96], divisor: 8 },
  });
}

function randomBytes(n: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  return Uint8Array.from({ length: n }, () => rng.int(0, 255));
}

/** Records the object keys of completed writes, in order, by watching the client's requests. */
function recordWrites(client: S3Client): string[] {
  const order: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      if (
        context.commandName === 'PutObjectCommand' ||
        context.commandName === 'CompleteMultipartUploadCommand'
      ) {
        order.push((args.input as { Key: string }).Key);
      }
      return out;
    },
    { step: 'initialize', name: 'recordWrites' },
  );
  return order;
}

async function getText(client: S3Client, key: string): Promise<string> {
  const out = await client.send(new GetObjectCommand({ Bucket: 'weights', Key: key }));
  return (await out.Body?.transformToString()) ?? '';
}

describe('publish to a local S3 server (s3rver)', () => {
  let s3: LocalS3;
  const dir = mkdtempSync(join(tmpdir(), 'ft-publish-'));
  beforeAll(async () => {
    s3 = await startLocalS3(['weights']);
  });
  afterAll(async () => {
    await s3.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('uploads versioned keys (12 MiB file by multipart) and writes latest.json last', async () => {
    const big = randomBytes(12 * 1024 * 1024 + 17, 1);
    await writeModelDir(dir, fields('segmentor', '2026.1'), { fp32: big, int8: randomBytes(1000, 2) });
    await writeModelDir(dir, fields('discriminator', 'd1'), { fp32: randomBytes(3000, 3) });
    const client = createR2Client({ bucket: 'weights', endpoint: s3.endpoint, credentials: s3.credentials });
    const order = recordWrites(client);
    const multipart: string[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UploadPartCommand') multipart.push((args.input as { Key: string }).Key);
        return next(args);
      },
      { step: 'initialize', name: 'recordParts' },
    );
    const r = await publishModels(
      dir,
      { bucket: 'weights', endpoint: s3.endpoint },
      { client, partSize: 5 * 1024 * 1024 },
    );

    expect(order.at(-1)).toBe('models/latest.json');
    expect(order.indexOf('models/segmentor/2026.1/manifest.json')).toBeGreaterThan(
      order.indexOf('models/segmentor/2026.1/model.fp32.onnx'),
    );
    expect(new Set(multipart)).toEqual(new Set(['models/segmentor/2026.1/model.fp32.onnx']));
    expect(multipart).toHaveLength(3);
    expect(r.models.segmentor?.version).toBe('2026.1');

    const got = await client.send(
      new GetObjectCommand({ Bucket: 'weights', Key: 'models/segmentor/2026.1/model.fp32.onnx' }),
    );
    expect(sha256(await got.Body!.transformToByteArray())).toBe(sha256(big));
    const latest = latestPointerSchema.parse(JSON.parse(await getText(client, 'models/latest.json')));
    expect(latest.models.segmentor).toEqual({
      version: '2026.1',
      manifest: 'segmentor/2026.1/manifest.json',
    });
    expect(latest.models.discriminator?.version).toBe('d1');
    const manifest = parseManifest(
      JSON.parse(await getText(client, 'models/segmentor/2026.1/manifest.json')),
    );
    expect(manifest.files.find((f) => f.precision === 'fp32')?.sha256).toBe(sha256(big));
  });

  it('re-publishing the live version is a no-op, other files under it are refused, a tampered file leaves latest.json untouched', async () => {
    const client = createR2Client({ bucket: 'weights', endpoint: s3.endpoint, credentials: s3.credentials });
    const before = await getText(client, 'models/latest.json');
    const writes = recordWrites(client);
    const again = await publishModels(dir, { bucket: 'weights', endpoint: s3.endpoint }, { client });
    expect(writes).toEqual([]);
    expect(again.uploadedBytes).toBe(0);
    expect(await getText(client, 'models/latest.json')).toBe(before);
    const changed = mkdtempSync(join(tmpdir(), 'ft-publish-changed-'));
    try {
      await writeModelDir(changed, fields('segmentor', '2026.1'), { fp32: randomBytes(999, 9) });
      await expect(
        publishModels(changed, { bucket: 'weights', endpoint: s3.endpoint }, { client }),
      ).rejects.toThrow(/already published with other files/);
    } finally {
      rmSync(changed, { recursive: true, force: true });
    }

    const other = mkdtempSync(join(tmpdir(), 'ft-publish-bad-'));
    try {
      await writeModelDir(other, fields('segmentor', '2026.2'), { fp32: randomBytes(2000, 4) });
      writeFileSync(join(other, 'segmentor', 'model.fp32.onnx'), randomBytes(2000, 5));
      const fresh = createR2Client({ bucket: 'weights', endpoint: s3.endpoint, credentials: s3.credentials });
      const order = recordWrites(fresh);
      await expect(
        publishModels(other, { bucket: 'weights', endpoint: s3.endpoint }, { client: fresh }),
      ).rejects.toMatchObject({
        code: 'model_integrity',
      });
      expect(order).toEqual([]);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
    expect(await getText(client, 'models/latest.json')).toBe(before);
    const listed = await client.send(
      new ListObjectsV2Command({ Bucket: 'weights', Prefix: 'models/segmentor/2026.2/' }),
    );
    expect(listed.KeyCount ?? 0).toBe(0);
  });

  it('keeps the other roles in latest.json when one role is published', async () => {
    const only = mkdtempSync(join(tmpdir(), 'ft-publish-one-'));
    try {
      await writeModelDir(only, fields('segmentor', '2026.3'), { fp32: randomBytes(500, 6) });
      const client = createR2Client({
        bucket: 'weights',
        endpoint: s3.endpoint,
        credentials: s3.credentials,
      });
      await publishModels(only, { bucket: 'weights', endpoint: s3.endpoint }, { client });
      const latest = latestPointerSchema.parse(JSON.parse(await getText(client, 'models/latest.json')));
      expect(latest.models.segmentor?.version).toBe('2026.3');
      expect(latest.models.discriminator?.version).toBe('d1');
    } finally {
      rmSync(only, { recursive: true, force: true });
    }
  });
});

describe('a publish killed mid-upload, then run again (kill and retry on the local S3 server)', () => {
  let s3: LocalS3;
  const dir = mkdtempSync(join(tmpdir(), 'ft-publish-kill-'));
  const ROOT = fileURLToPath(new URL('../../', import.meta.url));
  beforeAll(async () => {
    s3 = await startLocalS3(['weights']);
  });
  afterAll(async () => {
    await s3.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const publish = (models: string, extra: string[] = []) => {
    const child = spawn(
      process.execPath,
      [
        'bin/freetumor.js',
        'publish',
        '--models',
        models,
        '--bucket',
        'weights',
        '--endpoint',
        s3.endpoint,
        '--part-size',
        '5',
        '--json',
        ...extra,
      ],
      {
        cwd: ROOT,
        env: { ...process.env, R2_ACCESS_KEY_ID: 'S3RVER', R2_SECRET_ACCESS_KEY: 'S3RVER' },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const done = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>(
      (resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
    );
    return { child, done };
  };

  /** Runs a publish until the local S3 server holds a matching request, then SIGKILLs it. */
  async function killAt(models: string, match: (r: HeldRequest) => boolean) {
    let held = false;
    s3.hold(match, () => {
      held = true;
    });
    const p = publish(models);
    const deadline = Date.now() + 30_000;
    while (!held && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    p.child.kill('SIGKILL');
    const r = await p.done;
    s3.release();
    expect(held, r.stderr).toBe(true);
    expect(r.signal).toBe('SIGKILL');
  }

  it('mid-multipart: the retry resumes the version, aborts the abandoned upload, latest.json names it', async () => {
    const client = createR2Client({ bucket: 'weights', endpoint: s3.endpoint, credentials: s3.credentials });
    const store = new S3Store({ client, bucket: 'weights' });
    const big = randomBytes(11 * 1024 * 1024, 11);
    await writeModelDir(dir, fields('segmentor', 'v1'), { fp32: big, int8: randomBytes(3000, 12) });
    // Killed while the big file's second part is in flight (its first part is stored).
    await killAt(dir, (r) => r.method === 'PUT' && /partNumber=2/.test(r.query));
    const abandoned = await client.send(
      new ListMultipartUploadsCommand({ Bucket: 'weights', Prefix: 'models/' }),
    );
    expect(abandoned.Uploads?.map((u) => u.Key)).toEqual(['models/segmentor/v1/model.fp32.onnx']);
    expect(await store.get('models/latest.json')).toBeNull();

    const retry = await publish(dir).done;
    expect(retry.code, retry.stderr).toBe(0);
    const r = JSON.parse(retry.stdout);
    expect(r.models.segmentor.version).toBe('v1');
    expect(r.cleaned.multipartUploads).toBe(1);
    const left = await client.send(new ListMultipartUploadsCommand({ Bucket: 'weights', Prefix: 'models/' }));
    expect(left.Uploads ?? []).toEqual([]);
    const latest = latestPointerSchema.parse(JSON.parse(await getText(client, 'models/latest.json')));
    expect(latest.models.segmentor?.version).toBe('v1');
    const got = await store.get('models/segmentor/v1/model.fp32.onnx');
    expect(sha256(got as Uint8Array)).toBe(sha256(big));
    client.destroy();
  }, 60_000);

  it('before latest.json: the retry keeps the uploaded files and only moves the pointer', async () => {
    const client = createR2Client({ bucket: 'weights', endpoint: s3.endpoint, credentials: s3.credentials });
    const v2 = mkdtempSync(join(tmpdir(), 'ft-publish-v2-'));
    await writeModelDir(v2, fields('segmentor', 'v2'), { fp32: randomBytes(4000, 13) });
    await killAt(v2, (r) => r.method === 'PUT' && r.key === 'models/latest.json');
    expect(JSON.parse(await getText(client, 'models/latest.json')).models.segmentor.version).toBe('v1');
    const retry = await publish(v2).done;
    expect(retry.code, retry.stderr).toBe(0);
    expect(JSON.parse(retry.stdout)).toMatchObject({ skippedFiles: 1, uploadedBytes: expect.any(Number) });
    expect(JSON.parse(await getText(client, 'models/latest.json')).models.segmentor.version).toBe('v2');
    rmSync(v2, { recursive: true, force: true });
    client.destroy();
  }, 60_000);

  it('an abandoned version folder without a manifest is removed by the next publish after the grace period', async () => {
    const client = createR2Client({ bucket: 'weights', endpoint: s3.endpoint, credentials: s3.credentials });
    const store = new S3Store({ client, bucket: 'weights' });
    const v3 = mkdtempSync(join(tmpdir(), 'ft-publish-v3-'));
    const v4 = mkdtempSync(join(tmpdir(), 'ft-publish-v4-'));
    await writeModelDir(v3, fields('segmentor', 'v3'), {
      fp32: randomBytes(4000, 14),
      int8: randomBytes(900, 15),
    });
    await writeModelDir(v4, fields('segmentor', 'v4'), { fp32: randomBytes(4000, 16) });
    // Killed after the first file: v3 is a folder without a manifest that nothing will resume.
    await killAt(v3, (r) => r.method === 'PUT' && r.key === 'models/segmentor/v3/model.fp32.onnx');
    expect(await store.list('models/segmentor/v3/')).toEqual(['models/segmentor/v3/model.int8.onnx']);
    const within = await publish(v4).done;
    expect(within.code, within.stderr).toBe(0);
    expect(await store.list('models/segmentor/v3/')).toHaveLength(1); // still within the grace period
    const after = await publish(v4, ['--orphan-grace-seconds', '0']).done;
    expect(after.code, after.stderr).toBe(0);
    expect(JSON.parse(after.stdout).cleaned).toMatchObject({ orphanVersions: 1, orphanObjects: 1 });
    expect(await store.list('models/segmentor/v3/')).toEqual([]);
    // Published versions (with a manifest) are history and stay.
    expect(await store.get('models/segmentor/v1/manifest.json')).not.toBeNull();
    rmSync(v3, { recursive: true, force: true });
    rmSync(v4, { recursive: true, force: true });
    client.destroy();
  }, 60_000);
});
