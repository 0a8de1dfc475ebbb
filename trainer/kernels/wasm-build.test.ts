import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('./wasm/build.sh', import.meta.url));
const COMMITTED = fileURLToPath(new URL('./wasm/conv3d.wasm', import.meta.url));
const clang = spawnSync('clang', ['--version'], { encoding: 'utf8' });
const clangVersion = clang.status === 0 ? clang.stdout : null;
const hasLinker = spawnSync('wasm-ld', ['--version']).status === 0;
/** The committed module was built with this clang; other versions emit different (valid) bytes. */
const SAME_CLANG = clangVersion?.includes('clang version 14.') ?? false;

// Needs Debian's clang and lld (apt-get install clang lld); without them the committed module is used as is.
describe.skipIf(clangVersion === null || !hasLinker)('wasm/conv3d.wasm is built from wasm/conv3d.c', () => {
  it('rebuilds from source into a valid module, byte-identical with the same clang', () => {
    const dir = mkdtempSync(join(tmpdir(), 'conv3d-wasm-'));
    try {
      const out = join(dir, 'conv3d.wasm');
      execFileSync('sh', [SCRIPT, out], { stdio: 'pipe' });
      const built = readFileSync(out);
      expect(WebAssembly.validate(built)).toBe(true);
      if (SAME_CLANG) expect(Buffer.compare(built, readFileSync(COMMITTED))).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
