/**
 * Per-key rate limiting (the Workers rate limiting binding), CORS, the admin retrain route against a
 * local stand-in for the AWS Batch endpoint, and the typed client from Node: one Worker configured
 * with a low limit, CORS origins and Batch settings.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEdgeClient, EdgeApiError } from '../../edge/client.ts';
import { generatePhantom } from '../../shared/phantom/phantom.ts';
import { writeNifti } from '../../shared/volume/nifti.ts';
import { buildModelFixture, publish } from './fixtures.ts';
import { bearer, buildWorker, KEYS, startWorker } from './harness.ts';

const LIMIT = 4;
let mf: ReturnType<typeof startWorker>;
let batch: Server;
const batchCalls: Array<{ headers: IncomingHttpHeaders; body: string; url: string }> = [];

async function call(
  path: string,
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<Response> {
  // Why the cast: Miniflare's fetch uses undici's Request/Response types, the same API as the DOM ones.
  return (await mf.dispatchFetch(`http://edge.test${path}`, init as never)) as unknown as Response;
}

beforeAll(async () => {
  batch = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      batchCalls.push({ headers: req.headers, body, url: req.url ?? '' });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ jobId: 'job-123', jobName: JSON.parse(body).jobName }));
    });
  });
  await new Promise<void>((r) => batch.listen(0, '127.0.0.1', r));
  const port = (batch.address() as AddressInfo).port;
  mf = startWorker(buildWorker('dist/edge-test-policy'), {
    rateLimit: LIMIT,
    vars: {
      CORS_ORIGINS: 'https://app.example',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      AWS_REGION: 'eu-west-1',
      BATCH_JOB_QUEUE: 'freetumor-gpu',
      BATCH_JOB_DEFINITION: 'freetumor-train',
      BATCH_ENDPOINT: `http://127.0.0.1:${port}`,
    },
  });
  await mf.ready;
});

afterAll(async () => {
  await mf?.dispose();
  await new Promise((r) => batch?.close(r));
});

describe('edge policies in workerd', () => {
  it('limits each API key separately and answers 429 with Retry-After', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT + 2; i++)
      statuses.push((await call('/v1/models', { headers: bearer(KEYS.limited) })).status);
    // 503: nothing is published in this Worker; the limiter runs before the route.
    expect(statuses.slice(0, LIMIT)).toEqual(Array(LIMIT).fill(503));
    expect(statuses.slice(LIMIT)).toEqual([429, 429]);
    const limited = await call('/v1/models', { headers: bearer(KEYS.limited) });
    expect(limited.headers.get('retry-after')).toBe('60');
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
    expect((await call('/v1/models', { headers: bearer(KEYS.other) })).status).toBe(503);
  });

  it('answers CORS preflights for the configured origin only', async () => {
    const pre = await call('/v1/segment', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/authorization/);
    const other = await call('/health', { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('submits a signed retraining job for an admin key', async () => {
    const res = await call('/v1/admin/retrain', {
      method: 'POST',
      headers: { ...bearer(KEYS.admin), 'content-type': 'application/json' },
      body: JSON.stringify({ jobName: 'edge-test-job', force: true }),
    } as never);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ submitted: true, jobId: 'job-123', jobName: 'edge-test-job' });
    expect(batchCalls).toHaveLength(1);
    expect(batchCalls[0].url).toBe('/v1/submitjob');
    expect(batchCalls[0].headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/batch\//,
    );
    expect(JSON.parse(batchCalls[0].body)).toMatchObject({
      jobName: 'edge-test-job',
      jobQueue: 'freetumor-gpu',
    });
    const bad = await call('/v1/admin/retrain', {
      method: 'POST',
      headers: { ...bearer(KEYS.admin), 'content-type': 'application/json' },
      body: JSON.stringify({ jobName: 'has spaces' }),
    } as never);
    expect(bad.status).toBe(400);
  });

  it('works through the typed client from Node', async () => {
    const fetcher = ((input: RequestInfo | URL, init?: RequestInit) =>
      mf.dispatchFetch(
        String(input instanceof Request ? input.url : input),
        init as never,
      )) as unknown as typeof fetch;
    const client = createEdgeClient('http://edge.test', KEYS.user, { fetch: fetcher });
    const err = await client.models().catch((e) => e);
    expect(err).toBeInstanceOf(EdgeApiError);
    expect(err).toMatchObject({ status: 503, code: 'model_unavailable' });

    const fixture = await buildModelFixture({ version: 'c1', seed: 5 });
    await publish((await mf.getR2Bucket('MODELS')) as never, [fixture]);
    await new Promise((r) => setTimeout(r, 1100)); // the empty pointer read above is cached for 1 s
    const health = await client.health();
    expect(health.models).toEqual({ segmentor: 'c1' });
    expect((await client.models()).models.segmentor.version).toBe('c1');
    const p = generatePhantom({ seed: 4, spacing: 6, size: [32, 28, 20], noiseHU: 0 });
    const summary = await client.segmentJson(writeNifti(p.ct), 'liver');
    expect(summary.dims).toEqual(p.ct.dims);
    expect(summary.model.version).toBe('c1');
    const admin = createEdgeClient('http://edge.test', KEYS.admin, { fetch: fetcher });
    expect((await admin.retrain({ jobName: 'from-client' })).jobId).toBe('job-123');
    const forbidden = await client.retrain().catch((e) => e);
    expect(forbidden).toMatchObject({ status: 403, code: 'forbidden' });
  });
});
