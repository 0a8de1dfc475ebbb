// A cache of the CLI's TypeScript with its types stripped, like Python's __pycache__: Node strips
// every .ts file it loads on each start (its built-in, WebAssembly stripper), which cost the
// `synthesize` command ~120 ms of CPU per run of ~30 modules; reading the stripped text back
// costs ~10. The stripped text is Node's own (module.stripTypeScriptTypes, mode strip: types
// become blanks, so lines and columns, and so stack traces, are unchanged), keyed by the sha1 of
// the Node version and the source, so an edited file is stripped again; nothing else changes.
// The cache lives in node_modules/.cache/freetumor-ts/ (delete it at any time); where it cannot
// be written (a read-only install), files are stripped as before. Node < 22.15 (no
// registerHooks) just runs without it.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../node_modules/.cache/freetumor-ts/', import.meta.url));
let writable = true;

function strip(source) {
  // The API warns that it is experimental; the CLI must keep stderr for its own lines.
  const emit = process.emitWarning;
  process.emitWarning = () => {};
  try {
    return nodeModule.stripTypeScriptTypes(source, { mode: 'strip' });
  } finally {
    process.emitWarning = emit;
  }
}

function cached(path) {
  const source = readFileSync(path, 'utf8');
  const key = createHash('sha1').update(process.version).update('\0').update(source).digest('hex');
  const file = `${dir}${key}.js`;
  try {
    return readFileSync(file, 'utf8');
  } catch {
    // Not cached yet.
  }
  const js = strip(source);
  if (writable) {
    try {
      mkdirSync(dir, { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, js);
      renameSync(tmp, file);
    } catch {
      writable = false;
    }
  }
  return js;
}

if (typeof nodeModule.registerHooks === 'function' && typeof nodeModule.stripTypeScriptTypes === 'function') {
  nodeModule.registerHooks({
    load(url, context, nextLoad) {
      if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
      return { format: 'module', source: cached(fileURLToPath(url)), shortCircuit: true };
    },
  });
}
