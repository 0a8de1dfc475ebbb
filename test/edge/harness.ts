/**
 * Runs the Worker in workerd exactly as deployed: the `wrangler deploy --dry-run` bundle, loaded by
 * Miniflare with an explicit module list (ORT's wasm as a CompiledWasm module), R2 seeded from Node.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertV4MiniflareOptions, Miniflare } from 'miniflare';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WRANGLER = join(ROOT, 'node_modules/.bin/wrangler');
export const COMPATIBILITY_DATE = '2026-11-01';

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The keys the tests use and the hashed secrets the Worker is given. */
export const KEYS = {
  user: 'ft-test-user-key-0123456789',
  other: 'ft-test-other-key-abcdefghij',
  admin: 'ft-test-admin-key-9876543210',
  limited: 'ft-test-rate-limited-key-xyz',
};

/** Bundles the Worker into `outdir` (relative to the repository) and returns the module paths. */
export function buildWorker(outdir: string): {
  script: string;
  wasm: string;
  wasmModules: string[];
  outdir: string;
} {
  const abs = join(ROOT, outdir);
  execFileSync(WRANGLER, ['deploy', '--dry-run', '--outdir', outdir], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: '1' },
  });
  const files = readdirSync(abs);
  // ORT's wasm, and the kernels engine's (shared/engine/wasm/kernels-st.wasm): both CompiledWasm modules.
  const wasmModules = files.filter((f) => f.endsWith('.wasm'));
  const wasm = wasmModules.find((f) => f.includes('ort-wasm'));
  if (!files.includes('index.js') || !wasm)
    throw new Error(`bundle in ${outdir} lacks index.js or the ORT wasm`);
  return {
    script: join(abs, 'index.js'),
    wasm: join(abs, wasm),
    wasmModules: wasmModules.map((f) => join(abs, f)),
    outdir: abs,
  };
}

export interface WorkerOptions {
  vars?: Record<string, string>;
  /** Receives every line the Worker logs (console.log), to check what it writes. */
  onLog?: (message: string) => void;
  rateLimit?: number;
  inspectorPort?: number;
}

export function startWorker(
  bundle: { script: string; wasmModules: string[]; outdir: string },
  options: WorkerOptions = {},
) {
  // Miniflare 5 takes a new options shape; the converter keeps the documented v4 one readable here.
  return new Miniflare(
    convertV4MiniflareOptions({
      modulesRoot: bundle.outdir,
      modules: [
        { type: 'ESModule', path: bundle.script },
        ...bundle.wasmModules.map((path) => ({ type: 'CompiledWasm' as const, path })),
      ],
      compatibilityDate: COMPATIBILITY_DATE,
      compatibilityFlags: ['enable_request_signal'],
      r2Buckets: ['MODELS'],
      ratelimits: {
        RATE_LIMITER: { namespace_id: '1001', simple: { limit: options.rateLimit ?? 1000, period: 60 } },
      },
      bindings: {
        API_KEY_HASHES: [sha256Hex(KEYS.user), sha256Hex(KEYS.other), sha256Hex(KEYS.limited)].join(','),
        ADMIN_KEY_HASHES: sha256Hex(KEYS.admin),
        LATEST_TTL_SECONDS: '1',
        ...options.vars,
      },
      ...(options.inspectorPort ? { inspectorPort: options.inspectorPort } : {}),
      // Worker log lines go to onLog (or nowhere) instead of cluttering the test output.
      handleStructuredLogs: (log: { message: string }) => options.onLog?.(log.message),
    }),
  );
}

/**
 * Waits until a log line satisfies `match`. workerd's log lines reach the test through its stdout,
 * after the response: on a loaded machine (CI runs test files side by side) a fixed pause is not
 * enough. Resolves false after `timeoutMs`, so the caller's assertion reports the miss.
 */
export async function logArrives(
  logs: readonly string[],
  match: (line: string) => boolean,
  timeoutMs = 10_000,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!logs.some(match)) {
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

export function bearer(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

/**
 * V8 heap of the Worker's isolate through workerd's inspector (`Runtime.getHeapUsage`): JS objects
 * and ArrayBuffer backing stores are counted by `totalSize`-style figures; ORT's wasm memory is read
 * separately from /health.
 */
export async function isolateHeap(inspectorPort: number): Promise<{ usedSize: number; totalSize: number }> {
  const list = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as Array<{
    id: string;
    webSocketDebuggerUrl: string;
  }>;
  const target = list.find((t) => t.id.startsWith('core:user:'));
  if (!target) throw new Error('no user worker on the inspector');
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  try {
    const reply = new Promise<{ usedSize: number; totalSize: number }>((resolve) => {
      ws.onmessage = (ev) => {
        const msg = JSON.parse(String(ev.data));
        if (msg.id === 1) resolve(msg.result);
      };
    });
    ws.send(JSON.stringify({ id: 1, method: 'Runtime.getHeapUsage' }));
    return await reply;
  } finally {
    ws.close();
  }
}

/** FormData encoded to bytes here: Miniflare's fetch does not encode Node's FormData bodies itself. */
export async function encodeForm(form: FormData): Promise<{ body: Uint8Array; contentType: string }> {
  const encoded = new Request('http://x/', { method: 'POST', body: form });
  return {
    body: new Uint8Array(await encoded.arrayBuffer()),
    contentType: encoded.headers.get('content-type')!,
  };
}
