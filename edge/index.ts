/**
 * The Worker entry: HTTP through the Hono app; the cron trigger re-reads models/latest.json and
 * warms (creates the sessions of) whatever version it names, so the first request after a publish
 * does not pay the model download and session creation.
 */
import type { ExecutionContext, ExportedHandler, ScheduledController } from '@cloudflare/workers-types';
import { app } from './app.ts';
import { edgeContext } from './context.ts';
import type { Env } from './env.ts';
import { wasmMemoryBytes } from './ort.ts';

async function scheduled(controller: ScheduledController, env: Env, _ctx: ExecutionContext): Promise<void> {
  const t0 = performance.now();
  const { registry } = edgeContext(env);
  try {
    const { versions, warmed } = await registry.refresh();
    console.log(
      JSON.stringify({
        event: 'scheduled',
        cron: controller.cron,
        versions,
        sessions: warmed.length,
        wasmMemoryBytes: wasmMemoryBytes(),
        ms: Math.round(performance.now() - t0),
      }),
    );
  } catch (err) {
    console.log(
      JSON.stringify({ event: 'scheduled', cron: controller.cron, error: (err as Error)?.name ?? 'unknown' }),
    );
    throw err;
  }
}

export default {
  // Why the cast: Hono's fetch is typed with the DOM Request/Response, the handler type with workers-types'.
  fetch: app.fetch as unknown as ExportedHandler<Env>['fetch'],
  scheduled,
} satisfies ExportedHandler<Env>;
