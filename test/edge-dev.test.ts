/**
 * End to end through `wrangler dev`: the real dev server on a free port, local R2 seeded with
 * `wrangler r2 object put --local`, HTTP calls with fetch, the cron handler through the dev server's
 * scheduled endpoint, then the server is stopped.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePhantom } from '../shared/phantom/phantom.ts';
import { readNifti, writeNifti } from '../shared/volume/nifti.ts';
import { buildModelFixture, latestPointer } from './edge/fixtures.ts';
import { KEYS, ROOT, sha256Hex } from './edge/harness.ts';

const run = promisify(execFile);
const WRANGLER = join(ROOT, 'node_modules/.bin/wrangler');
const ENV = { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: '1', NO_COLOR: '1' };

let dir: string;
let dev: ChildProcess | null = null;
let base: string;
let output = '';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (dev?.exitCode !== null) throw new Error(`wrangler dev exited: ${output.slice(-2000)}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`wrangler dev did not answer within ${timeoutMs} ms: ${output.slice(-2000)}`);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ft-edge-dev-'));
  const persist = join(dir, 'state');
  const fixture = await buildModelFixture({ version: 'd1', seed: 2, int8: true });
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
  const [port, inspector] = [await freePort(), await freePort()];
  dev = spawn(
    WRANGLER,
    [
      'dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--inspector-port',
      String(inspector),
      '--persist-to',
      persist,
      '--test-scheduled',
      '--show-interactive-dev-session=false',
      '--var',
      `API_KEY_HASHES:${sha256Hex(KEYS.user)}`,
    ],
    { cwd: ROOT, env: ENV, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  dev.stdout?.on('data', (d) => {
    output += d;
  });
  dev.stderr?.on('data', (d) => {
    output += d;
  });
  base = `http://127.0.0.1:${port}`;
  await waitReady(`${base}/health`, 45_000);
});

afterAll(async () => {
  if (dev?.pid && dev.exitCode === null) {
    const exited = new Promise((r) => dev?.once('exit', r));
    process.kill(-dev.pid, 'SIGTERM'); // the process group this test started (wrangler and its workerd)
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  }
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
});
