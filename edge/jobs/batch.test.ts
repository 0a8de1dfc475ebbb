/**
 * submitRetrainJob against a local stand-in for the Batch API that verifies SigV4 itself, computed
 * here by hand from the AWS specification (not with the library under test): the canonical request,
 * the string to sign, the derived key chain and the signature must all match, or it answers 403
 * like AWS does.
 */
import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BatchEnv, BatchSubmitError, submitJobBody, submitRetrainJob } from './batch.ts';

const KEY_ID = 'AKIATESTRETRAIN00001';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const REGION = 'eu-west-1';

interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const hmac = (key: Buffer | string, s: string) => createHmac('sha256', key).update(s).digest();

/** SigV4 check of one request, as the AWS docs describe it. Returns why it fails, or null. */
function verifySigV4(req: Received, secret: string, keyId: string): string | null {
  const auth = String(req.headers.authorization ?? '');
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (!m) return 'malformed Authorization header';
  const [, id, date, region, service, signedHeaders, signature] = m;
  if (id !== keyId) return 'unknown access key';
  if (service !== 'batch' || region !== REGION) return `wrong scope ${region}/${service}`;
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  if (!amzDate.startsWith(date)) return 'x-amz-date does not match the credential date';
  const skewMs = Math.abs(
    Date.now() -
      Date.parse(amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z')),
  );
  if (!(skewMs < 5 * 60_000)) return 'request time too skewed';
  const names = signedHeaders.split(';');
  for (const required of ['host', 'x-amz-date'])
    if (!names.includes(required)) return `${required} not signed`;
  const payloadHash = sha256(req.body);
  const declared = req.headers['x-amz-content-sha256'];
  if (declared !== undefined && declared !== payloadHash) return 'payload hash mismatch';
  const [path, query = ''] = req.path.split('?');
  const canonicalRequest = [
    req.method,
    path,
    query,
    ...names.map(
      (n) =>
        `${n}:${String(req.headers[n] ?? '')
          .trim()
          .replace(/\s+/g, ' ')}`,
    ),
    '',
    signedHeaders,
    payloadHash,
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
  const expected = createHmac('sha256', key).update(stringToSign).digest('hex');
  return expected === signature ? null : 'signature does not match';
}

let server: Server;
let endpoint: string;
const received: Received[] = [];
/** Per-test override of what the fake Batch answers after a valid signature. */
let answer: (req: Received) => { status: number; body: unknown } = (req) => {
  const body = JSON.parse(req.body);
  return {
    status: 200,
    body: { jobArn: `arn:aws:batch:${REGION}:123456789012:job/abc`, jobName: body.jobName, jobId: 'job-123' },
  };
};

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      received.push(r);
      const failure =
        r.method === 'POST' && r.path === '/v1/submitjob' ? verifySigV4(r, SECRET, KEY_ID) : 'no such route';
      const out = failure
        ? { status: 403, body: { __type: 'InvalidSignatureException', message: failure } }
        : answer(r);
      res.writeHead(out.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(out.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function env(overrides: Partial<BatchEnv> = {}): BatchEnv {
  return {
    AWS_ACCESS_KEY_ID: KEY_ID,
    AWS_SECRET_ACCESS_KEY: SECRET,
    AWS_REGION: REGION,
    BATCH_JOB_QUEUE: 'freetumor-prod-training',
    BATCH_JOB_DEFINITION: 'freetumor-prod-training',
    BATCH_ENDPOINT: endpoint,
    ...overrides,
  };
}

describe('submitRetrainJob', () => {
  it('submits a correctly signed SubmitJob and returns the job id', async () => {
    const before = received.length;
    const job = await submitRetrainJob(env(), {
      jobName: 'retrain-1',
      reason: 'admin',
      dataManifestKey: 'data/v2.json',
    });
    expect(job).toEqual({
      jobId: 'job-123',
      jobName: 'retrain-1',
      jobArn: `arn:aws:batch:${REGION}:123456789012:job/abc`,
    });
    const req = received[before];
    expect(req.headers['content-type']).toBe('application/json');
    expect(JSON.parse(req.body)).toEqual({
      jobName: 'retrain-1',
      jobQueue: 'freetumor-prod-training',
      jobDefinition: 'freetumor-prod-training',
      tags: { trigger: 'retrain-now', reason: 'admin' },
      propagateTags: true,
      containerOverrides: { environment: [{ name: 'FREETUMOR_DATA_MANIFEST', value: 'data/v2.json' }] },
    });
    // The stand-in really checks: the same request with one byte of the body changed fails (the
    // payload hash is part of the canonical request).
    expect(verifySigV4(req, SECRET, KEY_ID)).toBeNull();
    expect(verifySigV4({ ...req, body: req.body.replace('retrain-1', 'retrain-2') }, SECRET, KEY_ID)).toBe(
      'signature does not match',
    );
  });

  it('is rejected when signed with the wrong secret', async () => {
    const err = await submitRetrainJob(env({ AWS_SECRET_ACCESS_KEY: `${SECRET.slice(0, -1)}X` })).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(BatchSubmitError);
    expect(err.status).toBe(403);
    expect(err.awsCode).toBe('InvalidSignatureException');
    expect(err.message).toContain('signature does not match');
  });

  it('is rejected when signed for another region', async () => {
    const err = await submitRetrainJob(env({ AWS_REGION: 'us-east-1' })).catch((e) => e);
    expect(err.status).toBe(403);
    expect(err.message).toContain('wrong scope');
  });

  it('names a default job and passes Batch errors through with their code', async () => {
    const saved = answer;
    answer = () => ({
      status: 400,
      body: { __type: 'ClientException', message: 'JobQueue freetumor-x not found' },
    });
    try {
      const err = await submitRetrainJob(env({ BATCH_JOB_QUEUE: 'freetumor-x' }), { force: true }).catch(
        (e) => e,
      );
      expect(err).toBeInstanceOf(BatchSubmitError);
      expect(err.status).toBe(400);
      expect(err.awsCode).toBe('ClientException');
      expect(err.message).toContain('not found');
      const body = JSON.parse(received[received.length - 1].body);
      expect(body.jobName).toMatch(/^freetumor-retrain-\d{8}T\d{6}$/);
      expect(body.containerOverrides).toEqual({ environment: [{ name: 'FREETUMOR_FORCE', value: '1' }] });
    } finally {
      answer = saved;
    }
  });

  it('refuses to run unconfigured or with unsafe parameters, without calling AWS', async () => {
    const before = received.length;
    await expect(
      submitRetrainJob(env({ AWS_SECRET_ACCESS_KEY: undefined, BATCH_JOB_QUEUE: '' })),
    ).rejects.toThrow('missing AWS_SECRET_ACCESS_KEY, BATCH_JOB_QUEUE');
    await expect(submitRetrainJob(env(), { jobName: 'bad name!' })).rejects.toThrow('jobName');
    await expect(submitRetrainJob(env(), { dataManifestKey: '../../etc/passwd' })).rejects.toThrow(
      'dataManifestKey',
    );
    expect(received.length).toBe(before);
  });

  it('reports an unreachable endpoint as a typed error', async () => {
    const err = await submitRetrainJob(env({ BATCH_ENDPOINT: 'http://127.0.0.1:1' })).catch((e) => e);
    expect(err).toBeInstanceOf(BatchSubmitError);
    expect(err.awsCode).toBe('NetworkError');
  });

  it('builds the body with no overrides when none are asked for', () => {
    const body = submitJobBody(env(), {}, new Date('2026-11-28T07:00:00.123Z'));
    expect(body.jobName).toBe('freetumor-retrain-20261128T070000');
    expect(body.containerOverrides).toBeUndefined();
  });
});
