/**
 * A real local S3 endpoint (s3rver, pure JS) for tests, benchmarks and the demo: it speaks the S3
 * HTTP API (including multipart), accepts the key id S3RVER with any secret, and keeps objects in a
 * folder.
 *
 * s3rver 3.7 lacks three S3 features the bucket writers rely on, and no local S3 server with them
 * can be installed here (checked: s3rver 3.7.1, @20minutes/s3rver 5.0.0 and fauxqs 2.4.1 evaluate
 * If-Match/If-None-Match on GET only; moto is in neither Debian 12 nor the PyPI mirror; MinIO is a
 * binary download). They are added in front of its router, on its own store, following AWS's API
 * reference:
 * - conditional writes: PutObject and CompleteMultipartUpload with `If-None-Match: *` (fail when the
 *   key exists) or `If-Match: <etag>` (fail when it is absent or has another ETag) answer
 *   412 PreconditionFailed; the check and the write run under one per-key lock, so of two racing
 *   conditional writes exactly one succeeds, as on S3 and R2;
 * - ListMultipartUploads (`GET /bucket?uploads[&prefix=]`);
 * - AbortMultipartUpload (`DELETE /bucket/key?uploadId=`).
 * Tests can also hold requests (`hold`) to stop a client process at a chosen point mid-upload.
 */
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

export interface HeldRequest {
  method: string;
  bucket: string;
  key: string;
  query: string;
}

export interface LocalS3 {
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /**
   * Requests for which `match` is true wait (never answered) until `release()`; `onHeld` sees each.
   * A client killed while one waits leaves exactly the state a network cut there would.
   */
  hold(match: (r: HeldRequest) => boolean, onHeld?: (r: HeldRequest) => void): void;
  /** Stops holding; held requests are dropped (their connection is closed unanswered). */
  release(): void;
  close(): Promise<void>;
}

interface KoaContext {
  method: string;
  path: string;
  querystring: string;
  query: Record<string, string | undefined>;
  headers: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
  type: string;
  req: { destroy(): void };
  set(name: string, value: string): void;
}

type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

interface S3rverStore {
  getMetadata(bucket: string, key: string): Promise<{ etag: string }>;
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
}

function s3Error(ctx: KoaContext, status: number, code: string, message: string): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** `/bucket/key...` of a path-style request. */
function parsePath(path: string): { bucket: string; key: string } {
  const [bucket = '', ...rest] = path.replace(/^\/+/, '').split('/');
  return { bucket: decodeURIComponent(bucket), key: rest.map(decodeURIComponent).join('/') };
}

function header(ctx: KoaContext, name: string): string | undefined {
  const v = ctx.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

async function uploadsOf(
  store: S3rverStore,
  bucket: string,
): Promise<Array<{ uploadId: string; key: string; initiated: Date }>> {
  const dir = store.getResourcePath(bucket, undefined, 'uploads');
  let ids: string[];
  try {
    ids = await readdir(dir);
  } catch {
    return [];
  }
  const out: Array<{ uploadId: string; key: string; initiated: Date }> = [];
  for (const uploadId of ids) {
    try {
      const key = await readFile(join(dir, uploadId, 'key'), 'utf8');
      out.push({ uploadId, key, initiated: (await stat(join(dir, uploadId, 'key'))).mtime });
    } catch {
      // an upload being created or completed right now
    }
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

function extensions(server: S3rver, state: { held: Held | null; pending: KoaContext[] }): Middleware {
  const store = (server as unknown as { store: S3rverStore }).store;
  const locks = new Map<string, Promise<void>>();
  const withLock = async (id: string, fn: () => Promise<void>) => {
    const previous = locks.get(id) ?? Promise.resolve();
    let unlock = () => {};
    const mine = new Promise<void>((r) => {
      unlock = r;
    });
    const chained = previous.then(() => mine);
    locks.set(id, chained);
    await previous;
    try {
      await fn();
    } finally {
      unlock();
      if (locks.get(id) === chained) locks.delete(id);
    }
  };

  return async (ctx, next) => {
    const { bucket, key } = parsePath(ctx.path);
    const request: HeldRequest = { method: ctx.method, bucket, key, query: ctx.querystring };
    if (state.held?.match(request)) {
      state.held.onHeld?.(request);
      state.pending.push(ctx);
      await new Promise<void>(() => {}); // never answered; release() closes the socket
    }
    const q = ctx.query;
    if (ctx.method === 'GET' && key === '' && 'uploads' in q) {
      const prefix = q.prefix ?? '';
      const uploads = (await uploadsOf(store, bucket)).filter((u) => u.key.startsWith(prefix));
      ctx.status = 200;
      ctx.type = 'application/xml';
      ctx.body =
        `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult><Bucket>${xmlEscape(bucket)}</Bucket>` +
        `<Prefix>${xmlEscape(prefix)}</Prefix><IsTruncated>false</IsTruncated>` +
        uploads
          .map(
            (u) =>
              `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${u.uploadId}</UploadId>` +
              `<Initiated>${u.initiated.toISOString()}</Initiated></Upload>`,
          )
          .join('') +
        '</ListMultipartUploadsResult>';
      return;
    }
    if (ctx.method === 'DELETE' && key !== '' && q.uploadId !== undefined) {
      const id = q.uploadId;
      if (!/^[0-9a-f]+$/.test(id)) return s3Error(ctx, 400, 'InvalidArgument', 'bad upload id');
      const dir = join(store.getResourcePath(bucket, undefined, 'uploads'), id);
      const exists = await stat(dir).then(
        () => true,
        () => false,
      );
      if (!exists) return s3Error(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist.');
      await rm(dir, { recursive: true, force: true });
      ctx.status = 204;
      ctx.body = null;
      return;
    }
    const isObjectWrite =
      key !== '' &&
      ((ctx.method === 'PUT' && !['uploadId', 'tagging', 'acl'].some((k) => k in q)) ||
        (ctx.method === 'POST' && q.uploadId !== undefined));
    if (!isObjectWrite) return next();
    await withLock(`${bucket}/${key}`, async () => {
      const ifNoneMatch = header(ctx, 'if-none-match');
      const ifMatch = header(ctx, 'if-match');
      if (ifNoneMatch !== undefined || ifMatch !== undefined) {
        const current = await store.getMetadata(bucket, key).then(
          (m) => m.etag,
          () => null,
        );
        if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') {
          return s3Error(ctx, 501, 'NotImplemented', 'If-None-Match on writes takes only *');
        }
        if (ifNoneMatch !== undefined && current !== null) {
          return s3Error(
            ctx,
            412,
            'PreconditionFailed',
            'At least one of the pre-conditions you specified did not hold',
          );
        }
        if (
          ifMatch !== undefined &&
          (current === null || current.replace(/"/g, '') !== ifMatch.replace(/"/g, ''))
        ) {
          return s3Error(
            ctx,
            412,
            'PreconditionFailed',
            'At least one of the pre-conditions you specified did not hold',
          );
        }
      }
      await next();
    });
  };
}

interface Held {
  match: (r: HeldRequest) => boolean;
  onHeld?: (r: HeldRequest) => void;
}

export async function startLocalS3(buckets: string[]): Promise<LocalS3> {
  const directory = await mkdtemp(join(tmpdir(), 'ft-s3-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const state: { held: Held | null; pending: KoaContext[] } = { held: null, pending: [] };
  // After s3rver's logger and XML encoder, before its router.
  const stack = (server as unknown as { middleware: Middleware[] }).middleware;
  stack.splice(2, 0, extensions(server, state));
  const { port } = await server.run();
  const release = () => {
    state.held = null;
    for (const ctx of state.pending.splice(0)) ctx.req.destroy();
  };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    hold(match, onHeld) {
      state.held = { match, onHeld };
    },
    release,
    async close() {
      release();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
