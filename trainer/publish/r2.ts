/**
 * Publishing exported models to R2 (or any S3 API): every file under a versioned key
 * `<prefix>/<role>/<version>/...`, model files first, then each manifest, and `<prefix>/latest.json`
 * (shared latestPointerSchema) strictly last, so a reader that follows the pointer never sees a
 * half-published version. Files are checked against their manifest's sha256 before any upload.
 *
 * R2 specifics (docs/findings/pulumi-r2-batch.md §5): region "auto", checksums only WHEN_REQUIRED
 * (R2 rejects some of the SDK's default multipart checksums), multipart via lib-storage for large files.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { FreeTumorError } from '../../shared/errors.ts';
import {
  type LatestPointer,
  latestPointerSchema,
  MODEL_ROLES,
  type ModelManifest,
  type ModelRole,
  parseManifest,
} from '../../shared/model/manifest.ts';

export interface R2Target {
  bucket: string;
  /** S3 endpoint; default https://<R2_ACCOUNT_ID>.r2.cloudflarestorage.com. */
  endpoint?: string;
  /** Key prefix (no trailing slash). Default "models". */
  prefix?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Path-style URLs (local S3 servers); default true when an endpoint is given. */
  forcePathStyle?: boolean;
}

export interface PublishOptions {
  /** Multipart part size in bytes (S3 minimum 5 MiB). Files up to one part go up in one PUT. */
  partSize?: number;
  /** Re-publish a version whose manifest already exists (default: refuse). */
  overwrite?: boolean;
  log?: (message: string) => void;
  /** A client to use instead of one built from the target (tests observe its requests). */
  client?: S3Client;
}

export interface PublishResult {
  models: Partial<Record<ModelRole, { version: string; manifest: string; files: string[] }>>;
  latestKey: string;
  uploadedBytes: number;
}

export const MIN_PART_SIZE = 5 * 1024 * 1024;

/** The pointer schema under the name the job and the demo import (shared's schema now names only published roles). */
export const publishedPointerSchema = latestPointerSchema;
export type PublishedPointer = LatestPointer;

export function createR2Client(target: R2Target): S3Client {
  const account = process.env.R2_ACCOUNT_ID;
  const endpoint = target.endpoint ?? (account ? `https://${account}.r2.cloudflarestorage.com` : undefined);
  if (!endpoint)
    throw new FreeTumorError('invalid_argument', 'no S3 endpoint: pass --endpoint or set R2_ACCOUNT_ID');
  const accessKeyId =
    target.credentials?.accessKeyId ?? process.env.R2_ACCESS_KEY_ID ?? process.env.AWS_ACCESS_KEY_ID;
  const secretAccessKey =
    target.credentials?.secretAccessKey ??
    process.env.R2_SECRET_ACCESS_KEY ??
    process.env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new FreeTumorError(
      'invalid_argument',
      'no S3 credentials: set R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)',
    );
  }
  return new S3Client({
    endpoint,
    region: 'auto',
    credentials: { accessKeyId, secretAccessKey },
    forcePathStyle: target.forcePathStyle ?? target.endpoint !== undefined,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Reads and checks every `<dir>/<role>/manifest.json` present; throws if none is. */
export async function readModelDirs(
  dir: string,
): Promise<Array<{ role: ModelRole; manifest: ModelManifest; root: string }>> {
  const found: Array<{ role: ModelRole; manifest: ModelManifest; root: string }> = [];
  for (const role of MODEL_ROLES) {
    const root = join(dir, role);
    let text: string;
    try {
      text = await readFile(join(root, 'manifest.json'), 'utf8');
    } catch {
      continue;
    }
    let manifest: ModelManifest;
    try {
      manifest = parseManifest(JSON.parse(text));
    } catch {
      throw new FreeTumorError('model_integrity', `the ${role} manifest is not a valid model manifest`);
    }
    if (manifest.role !== role) {
      throw new FreeTumorError('model_integrity', `the manifest in ${role}/ describes a ${manifest.role}`);
    }
    found.push({ role, manifest, root });
  }
  if (found.length === 0) {
    throw new FreeTumorError(
      'not_found',
      `no <role>/manifest.json under the models folder (roles: ${MODEL_ROLES.join(', ')})`,
    );
  }
  return found;
}

export async function publishModels(
  dir: string,
  target: R2Target,
  options: PublishOptions = {},
): Promise<PublishResult> {
  const client = options.client ?? createR2Client(target);
  const prefix = (target.prefix ?? 'models').replace(/\/+$/, '');
  const partSize = Math.max(MIN_PART_SIZE, options.partSize ?? 16 * 1024 * 1024);
  const log = options.log ?? (() => {});
  const models = await readModelDirs(dir);

  // Everything is read and verified before the first byte goes out.
  const staged: Array<{
    role: ModelRole;
    manifest: ModelManifest;
    files: Array<{ path: string; bytes: Uint8Array }>;
  }> = [];
  for (const { role, manifest, root } of models) {
    const files: Array<{ path: string; bytes: Uint8Array }> = [];
    for (const f of manifest.files) {
      if (f.path.includes('..') || f.path.startsWith('/')) {
        throw new FreeTumorError('model_integrity', `the ${role} manifest names a file outside its folder`);
      }
      const bytes = new Uint8Array(
        await readFile(join(root, f.path)).catch(() => {
          throw new FreeTumorError('not_found', `the ${role} model file ${f.path} is missing`);
        }),
      );
      if (bytes.byteLength !== f.bytes || createHash('sha256').update(bytes).digest('hex') !== f.sha256) {
        throw new FreeTumorError(
          'model_integrity',
          `the ${role} model file ${f.path} does not match its manifest`,
        );
      }
      files.push({ path: f.path, bytes });
    }
    staged.push({ role, manifest, files });
  }

  const result: PublishResult = { models: {}, latestKey: `${prefix}/latest.json`, uploadedBytes: 0 };
  const put = async (key: string, body: Uint8Array, contentType: string) => {
    await new Upload({
      client,
      params: { Bucket: target.bucket, Key: key, Body: body, ContentType: contentType },
      partSize,
      queueSize: 4,
      leavePartsOnError: false,
    }).done();
    result.uploadedBytes += body.byteLength;
  };

  for (const { role, manifest, files } of staged) {
    const base = `${role}/${manifest.version}`;
    const manifestKey = `${prefix}/${base}/manifest.json`;
    if (!options.overwrite && (await exists(client, target.bucket, manifestKey))) {
      throw new FreeTumorError(
        'invalid_argument',
        `${role} version ${manifest.version} is already published`,
      );
    }
    const keys: string[] = [];
    for (const f of files) {
      const key = `${prefix}/${base}/${f.path}`;
      log(`publish: ${role} ${f.path} (${f.bytes.byteLength} bytes)`);
      await put(key, f.bytes, 'application/octet-stream');
      keys.push(key);
    }
    await put(
      manifestKey,
      new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`),
      'application/json',
    );
    result.models[role] = { version: manifest.version, manifest: manifestKey, files: keys };
  }

  // The pointer keeps roles this run did not touch.
  const previous = await readLatest(client, target.bucket, result.latestKey);
  const pointer = latestPointerSchema.parse({
    schemaVersion: 1,
    updated: new Date().toISOString(),
    models: {
      ...(previous?.models ?? {}),
      ...Object.fromEntries(
        staged.map(({ role, manifest }) => [
          role,
          { version: manifest.version, manifest: `${role}/${manifest.version}/manifest.json` },
        ]),
      ),
    },
  });
  await put(
    result.latestKey,
    new TextEncoder().encode(`${JSON.stringify(pointer, null, 2)}\n`),
    'application/json',
  );
  log(`publish: ${result.latestKey} updated`);
  return result;
}

async function exists(client: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (e) {
    const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404 || (e as Error).name === 'NotFound' || (e as Error).name === 'NoSuchKey') return false;
    throw e;
  }
}

/** The current latest pointer, or null when there is none (or it is not valid). */
export async function readLatest(
  client: S3Client,
  bucket: string,
  key: string,
): Promise<LatestPointer | null> {
  try {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const text = await out.Body?.transformToString();
    const parsed = latestPointerSchema.safeParse(JSON.parse(text ?? ''));
    return parsed.success ? parsed.data : null;
  } catch (e) {
    const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404 || (e as Error).name === 'NoSuchKey') return null;
    if (e instanceof SyntaxError) return null;
    throw e;
  }
}
