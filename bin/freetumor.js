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
// Stripped TypeScript is cached between runs (see ts-cache.js).
await import('./ts-cache.js');
const { main } = await import('../trainer/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
