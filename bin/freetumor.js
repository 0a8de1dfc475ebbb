#!/usr/bin/env node
// The CLI is written in TypeScript and run by Node 22's built-in type stripping
// (no build step). Node 20 cannot strip types: say so in one line instead of crashing.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  console.error(
    `freetumor: Node >= 22.12 is required (found ${process.versions.node}); run it through npm (npx freetumor, npm run ...), which uses the project's own Node 22`,
  );
  process.exit(2);
}
// The CLI runs each long loop (a volume pass) once per process: V8's concurrent on-stack
// replacement keeps interpreting such a loop while it compiles it on another thread, which on a
// busy machine costs more CPU than waiting for the compiled loop (`synthesize`: ~10% less CPU
// and wall time as a whole process, same outputs). A JIT policy only; nothing else changes.
const { setFlagsFromString } = await import('node:v8');
setFlagsFromString('--no-concurrent-osr');
// Stripped TypeScript is cached between runs (see ts-cache.js).
await import('./ts-cache.js');
const { main } = await import('../trainer/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
