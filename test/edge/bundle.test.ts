/**
 * `wrangler deploy --dry-run` builds the deployable Worker offline (no account, no network): the
 * bundle CI would upload. It must hold the app and ORT's wasm as a separate module, and nothing of
 * the trainer (edge/ never imports trainer/).
 */
import { readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildWorker } from './harness.ts';

describe('wrangler deploy --dry-run', () => {
  it('bundles the Worker with ORT wasm as its own module, within the Workers size limit', () => {
    const { script, wasm, wasmModules } = buildWorker('dist/edge');
    // The kernels engine's one-thread build rides along as a module of its own.
    expect(wasmModules.some((f) => f.endsWith('kernels-st.wasm'))).toBe(true);
    const js = readFileSync(script, 'utf8');
    const wasmBytes = statSync(wasm).size;
    // esbuild marks each bundled source file with a `// path` comment.
    const sources = [...js.matchAll(/^\/\/ ((?:edge|shared|trainer)\/\S+\.ts)$/gm)].map((m) => m[1]);
    expect(sources).toContain('edge/index.ts');
    expect(sources).toContain('shared/inference/pipeline.ts');
    expect(sources.filter((s) => s.startsWith('trainer/'))).toEqual([]);
    expect(sources.filter((s) => /\.test\.ts$/.test(s))).toEqual([]);
    expect(js).not.toMatch(/@tensorflow\/tfjs/);
    // The wasm is imported as a module, never inlined as bytes.
    expect(statSync(script).size).toBeLessThan(4 * 1024 * 1024);
    expect(wasmBytes).toBeGreaterThan(1024 * 1024);
    // Workers' current limit: 64 MiB uncompressed for the whole upload.
    const allWasm = wasmModules.reduce((sum, f) => sum + statSync(f).size, 0);
    expect(statSync(script).size + allWasm).toBeLessThan(64 * 1024 * 1024);
  });
});
