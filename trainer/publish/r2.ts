/**
 * Publishing exported models to R2 (or any S3 API): every file under a versioned key
 * `<prefix>/<role>/<version>/...`, model files first, then each manifest, and `<prefix>/latest.json`
 * (shared latestPointerSchema) strictly last, so a reader that follows the pointer never sees a
 * half-published version. Files are checked against their manifest's sha256 before any upload.
 *
 * Retries converge (a publish killed anywhere, then run again, ends published): a version that
 * latest.json does not name is resumed (files already there with their sha256 are kept, others
 * replaced), a named version with the same files is a no-op, latest.json moves by a conditional
 * write (If-Match), and what killed publishes left (version folders without a manifest, abandoned
 * multipart uploads) is removed once older than a grace period.
 *
 * R2 specifics (docs/findings/pulumi-r2-batch.md §5): region "auto", checksums only WHEN_REQUIRED
 * (R2 rejects some of the SDK's default multipart checksums), multipart via lib-storage for large files.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AbortMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
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
import { S3Store } from '../storage/object-store.ts';

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
  /**
   * Replace the files of a version that latest.json already names (default: refuse unless they are
   * the same files). Versions latest.json does not name are resumed or replaced without it.
   */
  overwrite?: boolean;
  /** Orphaned version folders and multipart uploads older than this are removed (default 3600). */
  orphanGraceSeconds?: number;
  log?: (message: string) => void;
  /** A client to use instead of one built from the target (tests observe its requests). */
  client?: S3Client;
}

export interface PublishResult {
  models: Partial<Record<ModelRole, { version: string; manifest: string; files: string[] }>>;
  latestKey: string;
  uploadedBytes: number;
  /** Files already in the bucket with the right sha256 (a resumed publish). */
  skippedFiles: number;
  cleaned: { orphanVersions: number; orphanObjects: number; multipartUploads: number };
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

  const result: PublishResult = {
    models: {},
    latestKey: `${prefix}/latest.json`,
    uploadedBytes: 0,
    skippedFiles: 0,
    cleaned: { orphanVersions: 0, orphanObjects: 0, multipartUploads: 0 },
  };
  const store = new S3Store({ client, bucket: target.bucket });
  const graceMs = (options.orphanGraceSeconds ?? 3600) * 1000;
  const put = async (key: string, body: Uint8Array, contentType: string, sha?: string) => {
    await new Upload({
      client,
      params: {
        Bucket: target.bucket,
        Key: key,
        Body: body,
        ContentType: contentType,
        ...(sha ? { Metadata: { sha256: sha } } : {}),
      },
      partSize,
      queueSize: 4,
      leavePartsOnError: false,
    }).done();
    result.uploadedBytes += body.byteLength;
  };

  const named = (await readLatest(client, target.bucket, result.latestKey))?.models ?? {};
  const publish: typeof staged = [];
  for (const entry of staged) {
    const { role, manifest } = entry;
    const base = `${prefix}/${role}/${manifest.version}`;
    const manifestKey = `${base}/manifest.json`;
    if (named[role]?.version === manifest.version) {
      // Live versions are immutable: the same files again is a no-op (a retry after the pointer
      // moved), other files need --overwrite.
      const remote = await store.get(manifestKey);
      const same = remote !== null && sameFiles(remote, manifest);
      if (same && !options.overwrite) {
        log(`publish: ${role} ${manifest.version} is already the published version`);
        result.models[role] = {
          version: manifest.version,
          manifest: manifestKey,
          files: manifest.files.map((f) => `${base}/${f.path}`),
        };
        continue;
      }
      if (!options.overwrite) {
        throw new FreeTumorError(
          'invalid_argument',
          `${role} version ${manifest.version} is already published with other files`,
        );
      }
    }
    publish.push(entry);
  }

  for (const { role, manifest, files } of publish) {
    const base = `${prefix}/${role}/${manifest.version}`;
    const manifestKey = `${base}/manifest.json`;
    // A version that latest.json does not name belongs to no reader: whatever an earlier, killed
    // attempt left there is resumed (files already there with the right sha256 are kept) or replaced.
    result.cleaned.multipartUploads += await abortUploads(client, target.bucket, `${base}/`, 0);
    const wanted = new Set(files.map((f) => `${base}/${f.path}`));
    const keys: string[] = [];
    for (const f of files) {
      const key = `${base}/${f.path}`;
      const sha = createHash('sha256').update(f.bytes).digest('hex');
      if ((await remoteSha256(client, target.bucket, key)) === sha) {
        log(`publish: ${role} ${f.path} is already uploaded`);
        result.skippedFiles++;
      } else {
        log(`publish: ${role} ${f.path} (${f.bytes.byteLength} bytes)`);
        await put(key, f.bytes, 'application/octet-stream', sha);
      }
      keys.push(key);
    }
    for (const key of await store.list(`${base}/`)) {
      if (!wanted.has(key) && key !== manifestKey) {
        await store.delete(key);
        result.cleaned.orphanObjects++;
      }
    }
    await put(
      manifestKey,
      new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`),
      'application/json',
    );
    result.models[role] = { version: manifest.version, manifest: manifestKey, files: keys };
  }

  if (publish.length > 0) {
    await movePointer(store, result.latestKey, (previous) =>
      latestPointerSchema.parse({
        schemaVersion: 1,
        updated: new Date().toISOString(),
        models: {
          ...(previous?.models ?? {}),
          ...Object.fromEntries(
            publish.map(({ role, manifest }) => [
              role,
              { version: manifest.version, manifest: `${role}/${manifest.version}/manifest.json` },
            ]),
          ),
        },
      }),
    );
    log(`publish: ${result.latestKey} updated`);
  }

  // Versions of these roles that a killed publish left without a manifest, and multipart uploads it
  // abandoned, once they are older than the grace period (a concurrent publish may still be writing).
  for (const { role } of staged) {
    const c = await collectOrphans(
      client,
      store,
      target.bucket,
      `${prefix}/${role}/`,
      result.latestKey,
      graceMs,
    );
    result.cleaned.orphanVersions += c.versions;
    result.cleaned.orphanObjects += c.objects;
    result.cleaned.multipartUploads += await abortUploads(
      client,
      target.bucket,
      `${prefix}/${role}/`,
      graceMs,
    );
  }
  return result;
}

function sameFiles(remoteManifest: Uint8Array, local: ModelManifest): boolean {
  try {
    const remote = parseManifest(JSON.parse(new TextDecoder().decode(remoteManifest)));
    const key = (m: ModelManifest) =>
      m.files
        .map((f) => `${f.path}:${f.sha256}`)
        .sort()
        .join('|');
    return key(remote) === key(local);
  } catch {
    return false;
  }
}

/** The sha256 a file was uploaded with (object metadata), or null when absent. */
async function remoteSha256(client: S3Client, bucket: string, key: string): Promise<string | null> {
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return head.Metadata?.sha256 ?? null;
  } catch (e) {
    const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404 || (e as Error).name === 'NotFound' || (e as Error).name === 'NoSuchKey') return null;
    throw e;
  }
}

/**
 * Read-modify-write of latest.json as a compare-and-swap (If-Match on the ETag read, If-None-Match
 * when there is none), retried on a conflict, so two publishers never lose each other's roles.
 */
export async function movePointer(
  store: S3Store,
  key: string,
  next: (previous: LatestPointer | null) => LatestPointer,
): Promise<LatestPointer> {
  for (let round = 0; round < 10; round++) {
    const current = await store.getVersioned(key);
    let previous: LatestPointer | null = null;
    if (current) {
      try {
        const parsed = latestPointerSchema.safeParse(JSON.parse(new TextDecoder().decode(current.bytes)));
        previous = parsed.success ? parsed.data : null;
      } catch {
        previous = null;
      }
    }
    const pointer = next(previous);
    const body = `${JSON.stringify(pointer, null, 2)}\n`;
    const written = await store.putIf(
      key,
      body,
      current ? { ifMatch: current.etag } : { ifNoneMatch: '*' },
      'application/json',
    );
    if (written !== null) return pointer;
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 200 * (round + 1)));
  }
  throw new FreeTumorError(
    'invalid_argument',
    `${key} kept changing under 10 conditional writes; retry later`,
  );
}

/** Aborts multipart uploads under the prefix started more than `olderThanMs` ago; returns how many. */
export async function abortUploads(
  client: S3Client,
  bucket: string,
  prefix: string,
  olderThanMs: number,
): Promise<number> {
  let aborted = 0;
  let keyMarker: string | undefined;
  let idMarker: string | undefined;
  do {
    const page = await client.send(
      new ListMultipartUploadsCommand({
        Bucket: bucket,
        Prefix: prefix,
        KeyMarker: keyMarker,
        UploadIdMarker: idMarker,
      }),
    );
    for (const u of page.Uploads ?? []) {
      if (!u.Key || !u.UploadId) continue;
      if (olderThanMs > 0 && u.Initiated && Date.now() - u.Initiated.getTime() < olderThanMs) continue;
      await client.send(
        new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }),
      );
      aborted++;
    }
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    idMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
  } while (keyMarker);
  return aborted;
}

/**
 * Deletes version folders under `<prefix>/<role>/` that have no manifest.json, that latest.json does
 * not name, and whose newest object is older than `graceMs`: what a publish killed mid-upload left.
 */
async function collectOrphans(
  client: S3Client,
  store: S3Store,
  bucket: string,
  rolePrefix: string,
  latestKey: string,
  graceMs: number,
): Promise<{ versions: number; objects: number }> {
  const folders = new Map<string, { keys: string[]; newest: number; manifest: boolean }>();
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: rolePrefix, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) {
      if (!o.Key) continue;
      const version = o.Key.slice(rolePrefix.length).split('/')[0];
      const f = folders.get(version) ?? { keys: [], newest: 0, manifest: false };
      f.keys.push(o.Key);
      f.newest = Math.max(f.newest, o.LastModified?.getTime() ?? Date.now());
      if (o.Key === `${rolePrefix}${version}/manifest.json`) f.manifest = true;
      folders.set(version, f);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const latest = await readLatest(client, bucket, latestKey);
  const live = new Set(Object.values(latest?.models ?? {}).map((m) => m?.version));
  let versions = 0;
  let objects = 0;
  for (const [version, f] of folders) {
    if (f.manifest || live.has(version) || Date.now() - f.newest < graceMs) continue;
    for (const key of f.keys) await store.delete(key);
    versions++;
    objects += f.keys.length;
  }
  return { versions, objects };
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
