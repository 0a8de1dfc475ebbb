import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('./wasm/build.sh', import.meta.url));
const BUILDS = ['kernels.wasm', 'kernels-st.wasm'];
const clang = spawnSync('clang-19', ['--version'], { encoding: 'utf8' });
const hasLinker = spawnSync('wasm-ld-19', ['--version']).status === 0;

// Needs Debian's clang-19 and lld-19 (apt-get install clang-19 lld-19); without them the committed modules are used as is.
describe.skipIf(clang.status !== 0 || !hasLinker)('wasm/kernels*.wasm are built from wasm/*.c', () => {
  it('rebuilds both builds from source, byte-identical with the committed ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kernels-wasm-'));
    try {
      execFileSync('sh', [SCRIPT, dir], { stdio: 'pipe' });
      for (const name of BUILDS) {
        const built = readFileSync(join(dir, name));
        expect(WebAssembly.validate(built)).toBe(true);
        const committed = readFileSync(fileURLToPath(new URL(`./wasm/${name}`, import.meta.url)));
        expect(Buffer.compare(built, committed), name).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the committed modules', () => {
  it('validate here (SIMD128 and relaxed-SIMD fused multiply-add)', () => {
    for (const name of BUILDS) {
      const bytes = readFileSync(fileURLToPath(new URL(`./wasm/${name}`, import.meta.url)));
      expect(WebAssembly.validate(bytes), name).toBe(true);
    }
  });
});
