import { defineConfig } from 'vitest/config';

// One Node-side suite. Worker tests start workerd themselves through Miniflare
// against the built bundle, so they live here too and need no separate pool.
export default defineConfig({
  test: {
    include: ['{shared,trainer,edge,infra,test,bench}/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});
