/**
 * End to end through `wrangler dev`: the real dev server on a free port, local R2 seeded with
 * `wrangler r2 object put --local`, HTTP calls with fetch, the cron handler through the dev server's
 * scheduled endpoint, then the server is stopped.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePhantom } from '../shared/phantom/phantom.ts';
import { readNifti, writeNifti } from '../shared/volume/nifti.ts';
import { gzipStream } from '../shared/volume/nifti-write-stream.ts';
import { type LocalWorker, startLocalWorker } from '../trainer/demo/worker.ts';
import { buildModelFixture, latestPointer } from './edge/fixtures.ts';
import { fullResCt } from './edge/fullres-ct.ts';
import { KEYS, ROOT, sha256Hex } from './edge/harness.ts';
import { mib, rssBytes, workerdPids } from './edge/probe.ts';

const run = promisify(execFile);
const WRANGLER = join(ROOT, 'node_modules/.bin/wrangler');
const ENV = { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: '1', NO_COLOR: '1' };

let dir: string;
let dev: LocalWorker | null = null;
let base: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ft-edge-dev-'));
  const persist = join(dir, 'state');
  // The demo's model size (24^3 windows at 3 mm).
  const fixture = await buildModelFixture({ version: 'd1', seed: 2, int8: true, patchSize: [24, 24, 24] });
  const files: Array<[string, Uint8Array | string]> = [
    // The registry reads the int8 file; the fp32 one is not needed to serve.
    ...[...fixture.objects].filter(([k]) => !k.endsWith('fp32.onnx')),
    ['models/latest.json', JSON.stringify(latestPointer([fixture]))],
  ];
  for (const [i, [key, bytes]] of files.entries()) {
    const path = join(dir, `object-${i}`);
    await writeFile(path, bytes);
    await run(
      WRANGLER,
      ['r2', 'object', 'put', `freetumor-models/${key}`, '--file', path, '--local', '--persist-to', persist],
      { cwd: ROOT, env: ENV },
    );
  }
  dev = await startLocalWorker({
    persistDir: persist,
    vars: { API_KEY_HASHES: sha256Hex(KEYS.user) },
    timeoutMs: 45_000,
    testScheduled: true,
  });
  base = dev.base;
});

afterAll(async () => {
  await dev?.stop(); // the process group this test started (wrangler and its workerd)
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('wrangler dev (local)', () => {
  it('serves health, models, segmentation and the cron trigger over HTTP', async () => {
    const health = (await (await fetch(`${base}/health`)).json()) as { models: Record<string, string> };
    expect(health.models).toEqual({ segmentor: 'd1' });
    const auth = { authorization: `Bearer ${KEYS.user}` };
    expect((await fetch(`${base}/v1/models`)).status).toBe(401);
    const models = (await (await fetch(`${base}/v1/models`, { headers: auth })).json()) as {
      models: { segmentor: { version: string } };
    };
    expect(models.models.segmentor.version).toBe('d1');

    const p = generatePhantom({ seed: 5, spacing: 6, size: [32, 28, 20], noiseHU: 0 });
    const res = await fetch(`${base}/v1/segment`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: writeNifti(p.ct) as BodyInit,
    });
    expect(res.status).toBe(200);
    const mask = readNifti(new Uint8Array(await res.arrayBuffer()));
    expect(mask.dims).toEqual(p.ct.dims);
    expect([...mask.affine]).toEqual([...p.ct.affine]);

    const cron = await fetch(`${base}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent('*/30 * * * *')}`);
    expect(cron.status).toBe(200);
    const after = (await (await fetch(`${base}/health`)).json()) as { isolate: { sessions: number } };
    expect(after.isolate.sessions).toBe(1);
  });

  it('answers 200 to a real-sized CT (512x512x129, streamed) with a mask on its grid, and workerd RSS does not keep growing', async () => {
    const auth = { authorization: `Bearer ${KEYS.user}` };
    const ct = fullResCt(129, 2.5);
    const send = async () => {
      const res = await fetch(`${base}/v1/segment`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/octet-stream' },
        body: gzipStream(ct.stream()),
        duplex: 'half',
      } as RequestInit);
      return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) };
    };
    const first = await send();
    expect(first.status).toBe(200);
    const mask = readNifti(first.bytes);
    expect(mask.dims).toEqual(ct.dims);
    expect(mask.datatype).toBe('uint8');
    const pids = workerdPids(dev?.pgid);
    const rss = () => pids.reduce((n, p) => n + rssBytes(p), 0);
    const afterFirst = rss();
    for (let i = 0; i < 3; i++) expect((await send()).status).toBe(200);
    const afterFour = rss();
    console.log(
      JSON.stringify({ workerdRssMiB: { afterFirst: mib(afterFirst), afterFour: mib(afterFour) } }),
    );
    // Before streaming, RSS grew by hundreds of MB over a session and never came back down.
    expect(afterFour - afterFirst).toBeLessThan(96 * 1024 * 1024);
  }, 600_000);
});
