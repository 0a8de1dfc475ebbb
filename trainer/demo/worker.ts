/**
 * The Worker, run locally as a developer runs it: `wrangler dev` on a free port with the demo's R2
 * state, in its own process group so that stopping it also stops the workerd it starts. `stop` is
 * idempotent; an `exit` hook kills the group if the demo ends without calling it (an uncaught error).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StageSkip } from './stages.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface LocalWorker {
  base: string;
  /** Process group id (wrangler's pid): the test checks it is gone after stop. */
  pgid: number;
  stop(): Promise<void>;
}

export interface WorkerStartOptions {
  persistDir: string;
  /** Worker vars (API key hashes, limits), passed as `--var NAME:value`. */
  vars: Record<string, string>;
  timeoutMs: number;
  /** Polled while waiting: true aborts the start (Ctrl-C). */
  interrupted?: () => boolean;
  /** Expose the cron trigger at /cdn-cgi/handler/scheduled (`--test-scheduled`). */
  testScheduled?: boolean;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** True while any process of the group is alive. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function startLocalWorker(o: WorkerStartOptions): Promise<LocalWorker> {
  const wrangler = join(REPO_ROOT, 'node_modules', '.bin', 'wrangler');
  if (!existsSync(wrangler)) throw new StageSkip('wrangler is not installed (npm install)');
  const [port, inspector] = [await freePort(), await freePort()];
  const args = [
    'dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--inspector-port',
    String(inspector),
    '--persist-to',
    o.persistDir,
    '--show-interactive-dev-session=false',
    ...(o.testScheduled ? ['--test-scheduled'] : []),
    ...Object.entries(o.vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]),
  ];
  const child: ChildProcess = spawn(wrangler, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: '1', NO_COLOR: '1' },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pgid = child.pid as number;
  let output = '';
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const onExit = () => {
    if (groupAlive(pgid)) process.kill(-pgid, 'SIGKILL');
  };
  process.on('exit', onExit);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (groupAlive(pgid)) {
      process.kill(-pgid, 'SIGTERM');
      const end = Date.now() + 5000;
      while (groupAlive(pgid) && Date.now() < end) await sleep(100);
      if (groupAlive(pgid)) process.kill(-pgid, 'SIGKILL');
      const hard = Date.now() + 3000;
      while (groupAlive(pgid) && Date.now() < hard) await sleep(50);
    }
    child.stdout?.destroy();
    child.stderr?.destroy();
    process.off('exit', onExit);
  };

  const base = `http://127.0.0.1:${port}`;
  try {
    const end = Date.now() + o.timeoutMs;
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`wrangler dev exited (${child.exitCode}): ${lastLines(output)}`);
      if (o.interrupted?.()) throw new Error('interrupted');
      if (Date.now() > end)
        throw new Error(
          `wrangler dev did not answer /health within ${o.timeoutMs / 1000} s: ${lastLines(output)}`,
        );
      try {
        const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(5000) });
        if (res.ok) break;
      } catch {
        // not listening yet
      }
      await sleep(300);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { base, pgid, stop };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-5).join(' | ').slice(-800);
}
