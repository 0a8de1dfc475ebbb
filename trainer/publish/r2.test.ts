import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestPointerSchema, parseManifest } from '../../shared/model/manifest.ts';
import { Rng } from '../../shared/random.ts';
import { type ManifestFields, sha256, writeModelDir } from '../export/manifest-writer.ts';
import { testManifestFields } from '../export/test-model.ts';
import { type LocalS3, startLocalS3 } from './local-s3.ts';
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

  it('refuses to re-publish a version, and a tampered file leaves latest.json untouched', async () => {
    const client = createR2Client({ bucket: 'weights', endpoint: s3.endpoint, credentials: s3.credentials });
    await expect(
      publishModels(dir, { bucket: 'weights', endpoint: s3.endpoint }, { client }),
    ).rejects.toThrow(/already published/);
    const before = await getText(client, 'models/latest.json');

    const other = mkdtempSync(join(tmpdir(), 'ft-publish-bad-'));
    try {
      await writeModelDir(other, fields('segmentor', '2026.2'), { fp32: randomBytes(2000, 4) });
      writeFileSync(join(other, 'segmentor', 'model.fp32.onnx'), randomBytes(2000, 5));
      const order = recordWrites(client);
      await expect(
        publishModels(other, { bucket: 'weights', endpoint: s3.endpoint }, { client }),
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
