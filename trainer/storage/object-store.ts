/**
 * One view of "a place that holds objects" for every bucket writer (the scheduled job, the
 * publisher, synthesize-dataset): an S3/R2 bucket, or a local folder with the same semantics.
 * Writes of one object are atomic (S3 by nature; locally a temporary file renamed into place), and
 * `putIf` is a compare-and-swap on the object's ETag (S3/R2 conditional writes: If-Match /
 * If-None-Match), which is what makes read-then-write updates (latest.json, job claims, run
 * options) safe when two processes race.
 *
 * Client settings follow Cloudflare's aws-sdk-js-v3 example (docs/findings/pulumi-r2-batch.md §5):
 * region "auto" and checksums only when an operation requires them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { FreeTumorError } from '../../shared/errors.ts';

/** A write's precondition: the current ETag, or `*` for "the key must not exist". */
export type WriteCondition = { ifMatch: string } | { ifNoneMatch: '*' };

export interface ObjectStore {
  /** The object's bytes, or null when there is no such key. */
  get(key: string): Promise<Uint8Array | null>;
  /** The object's bytes and ETag, or null when there is no such key. */
  getVersioned(key: string): Promise<{ bytes: Uint8Array; etag: string } | null>;
  put(key: string, body: Uint8Array | string, contentType?: string): Promise<void>;
  /** Writes only when the condition holds; the new ETag, or null when it did not hold. */
  putIf(
    key: string,
    body: Uint8Array | string,
    condition: WriteCondition,
    contentType?: string,
  ): Promise<string | null>;
  /** Keys under the prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  delete(key: string): Promise<void>;
}

export interface S3StoreOptions {
  endpoint?: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region?: string;
  /** Path-style URLs (local S3 servers); R2 works either way. */
  forcePathStyle?: boolean;
}

/** Objects above this size go up as multipart uploads. */
const MULTIPART_BYTES = 16 * 1024 * 1024;

export function createS3Client(opts: Omit<S3StoreOptions, 'bucket'>): S3Client {
  return new S3Client({
    endpoint: opts.endpoint,
    region: opts.region ?? 'auto',
    credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey },
    forcePathStyle: opts.forcePathStyle ?? false,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

function statusOf(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function isMissing(e: unknown): boolean {
  return e instanceof NoSuchKey || (e instanceof S3ServiceException && statusOf(e) === 404);
}

/** 412 PreconditionFailed, or 409 ConditionalRequestConflict (S3: a concurrent conditional write). */
export function isPreconditionFailure(e: unknown): boolean {
  const status = statusOf(e);
  return status === 412 || (status === 409 && (e as Error).name === 'ConditionalRequestConflict');
}

export class S3Store implements ObjectStore {
  readonly client: S3Client;
  readonly bucket: string;

  constructor(opts: S3StoreOptions | { client: S3Client; bucket: string }) {
    this.client = 'client' in opts ? opts.client : createS3Client(opts);
    this.bucket = opts.bucket;
  }

  async get(key: string): Promise<Uint8Array | null> {
    return (await this.getVersioned(key))?.bytes ?? null;
  }

  async getVersioned(key: string): Promise<{ bytes: Uint8Array; etag: string } | null> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const bytes = res.Body ? await res.Body.transformToByteArray() : new Uint8Array(0);
      return { bytes, etag: res.ETag ?? '' };
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
  }

  async put(key: string, body: Uint8Array | string, contentType = 'application/octet-stream'): Promise<void> {
    const size = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
    if (size > MULTIPART_BYTES) {
      // lib-storage aborts its multipart upload on error; a killed process leaves the parts,
      // which the publisher's cleanup and the bucket's lifecycle rule remove.
      await new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: key, Body: body, ContentType: contentType },
        partSize: MULTIPART_BYTES,
        queueSize: 4,
      }).done();
      return;
    }
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType }),
    );
  }

  async putIf(
    key: string,
    body: Uint8Array | string,
    condition: WriteCondition,
    contentType = 'application/json',
  ): Promise<string | null> {
    try {
      const res = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: contentType,
          ...('ifMatch' in condition ? { IfMatch: condition.ifMatch } : { IfNoneMatch: '*' }),
        }),
      );
      return res.ETag ?? '';
    } catch (e) {
      if (isPreconditionFailure(e)) return null;
      // If-Match on a missing key: S3 answers 404 NoSuchKey.
      if ('ifMatch' in condition && isMissing(e)) return null;
      throw e;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const res = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of res.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }
}

const TMP = /\.tmp-[0-9a-f]+$/;

function etagOf(bytes: Uint8Array): string {
  return `"${createHash('md5').update(bytes).digest('hex')}"`;
}

function toBytes(body: Uint8Array | string): Uint8Array {
  return typeof body === 'string' ? new TextEncoder().encode(body) : body;
}

/**
 * A local folder as an object store. Keys map to paths below the root ('/'-separated); writes go to
 * a temporary file renamed into place, so a reader never sees half an object and a killed writer
 * leaves at most a temporary file (ignored by `list`). The ETag is the content's MD5, as S3's is
 * for single-part objects. Conditional writes take an exclusive lock file per key.
 */
export class LocalStore implements ObjectStore {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  path(key: string): string {
    if (key === '' || key.startsWith('/') || key.split('/').some((p) => p === '..' || p === '')) {
      throw new FreeTumorError('invalid_argument', 'object key must be a relative path without ".."');
    }
    return join(this.root, ...key.split('/'));
  }

  async get(key: string): Promise<Uint8Array | null> {
    try {
      return new Uint8Array(await readFile(this.path(key)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async getVersioned(key: string): Promise<{ bytes: Uint8Array; etag: string } | null> {
    const bytes = await this.get(key);
    return bytes === null ? null : { bytes, etag: etagOf(bytes) };
  }

  async #writeTmp(path: string, bytes: Uint8Array): Promise<string> {
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
    await writeFile(tmp, bytes);
    return tmp;
  }

  async put(key: string, body: Uint8Array | string): Promise<void> {
    const path = this.path(key);
    const tmp = await this.#writeTmp(path, toBytes(body));
    await rename(tmp, path);
  }

  async putIf(key: string, body: Uint8Array | string, condition: WriteCondition): Promise<string | null> {
    const path = this.path(key);
    const bytes = toBytes(body);
    const tmp = await this.#writeTmp(path, bytes);
    try {
      if ('ifNoneMatch' in condition) {
        // link() fails when the target exists: an atomic create-if-absent.
        try {
          await link(tmp, path);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') return null;
          throw e;
        }
        return etagOf(bytes);
      }
      const lock = `${path}.lock`;
      let handle: Awaited<ReturnType<typeof open>>;
      try {
        handle = await open(lock, 'wx');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return null; // a concurrent writer
        throw e;
      }
      try {
        const current = await this.getVersioned(key);
        if (current === null || current.etag !== condition.ifMatch) return null;
        await rename(tmp, path);
        return etagOf(bytes);
      } finally {
        await handle.close();
        await unlink(lock).catch(() => {});
      }
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string) => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR')
          return;
        throw e;
      }
      for (const e of entries) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile() && !TMP.test(e.name) && !e.name.endsWith('.lock')) {
          const key = relative(this.root, p).split(sep).join('/');
          if (key.startsWith(prefix)) out.push(key);
        }
      }
    };
    // Start from the deepest folder the prefix names.
    const folder = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    await walk(folder === '' ? this.root : join(this.root, ...folder.split('/')));
    return out.sort();
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  /** Whether the folder exists (a missing input folder is a user error, not an empty data set). */
  async exists(): Promise<boolean> {
    return (await stat(this.root).catch(() => null))?.isDirectory() === true;
  }
}

/** A data location: a store and a key prefix in it ('' or ending in '/'). */
export interface Location {
  store: ObjectStore;
  prefix: string;
  /** `s3://bucket/prefix` or the local folder, for messages (never user file names in logs). */
  kind: 's3' | 'local';
  close(): void;
}

export interface S3Settings {
  /** S3 endpoint (R2: https://<account>.r2.cloudflarestorage.com; s3rver: http://127.0.0.1:port). */
  endpoint?: string;
}

/** `s3://bucket/prefix` -> bucket and prefix ('' or ending in '/'), else null. */
export function parseS3Uri(uri: string): { bucket: string; prefix: string } | null {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!m) return null;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(m[1])) {
    throw new FreeTumorError('invalid_argument', 'the S3 URI has no valid bucket name');
  }
  const prefix = m[2].replace(/\/+$/, '');
  if (prefix.split('/').includes('..')) {
    throw new FreeTumorError('invalid_argument', 'the S3 URI prefix must not contain ".."');
  }
  return { bucket: m[1], prefix: prefix === '' ? '' : `${prefix}/` };
}

/**
 * The endpoint and credentials of an S3 location: --endpoint, else FREETUMOR_S3_ENDPOINT, else R2's
 * from R2_ACCOUNT_ID (AWS S3 itself when none is set); keys from R2_ACCESS_KEY_ID /
 * R2_SECRET_ACCESS_KEY or the AWS_ names. Credentials come only from the environment.
 */
export function s3ClientFromEnv(settings: S3Settings = {}, env = process.env): S3Client {
  const endpoint =
    settings.endpoint ??
    env.FREETUMOR_S3_ENDPOINT ??
    (env.R2_ACCOUNT_ID ? `https://${env.R2_ACCOUNT_ID}.r2.cloudflarestorage.com` : undefined);
  const accessKeyId = env.R2_ACCESS_KEY_ID ?? env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.R2_SECRET_ACCESS_KEY ?? env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new FreeTumorError(
      'invalid_argument',
      'no S3 credentials: set R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)',
    );
  }
  const hosted = endpoint === undefined || /\.(r2\.cloudflarestorage|amazonaws)\.com/.test(endpoint);
  return createS3Client({
    endpoint,
    region: endpoint === undefined ? (env.AWS_REGION ?? 'us-east-1') : 'auto',
    accessKeyId,
    secretAccessKey,
    forcePathStyle: !hosted,
  });
}

/** Opens a local folder or an `s3://bucket/prefix` URI as a location. */
export function openLocation(where: string, settings: S3Settings = {}): Location {
  const s3 = parseS3Uri(where);
  if (s3) {
    const client = s3ClientFromEnv(settings);
    return {
      store: new S3Store({ client, bucket: s3.bucket }),
      prefix: s3.prefix,
      kind: 's3',
      close: () => client.destroy(),
    };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(where)) {
    throw new FreeTumorError('invalid_argument', 'only local folders and s3:// URIs are supported');
  }
  return { store: new LocalStore(where), prefix: '', kind: 'local', close: () => {} };
}
