/** Per-request access to the isolate-wide registry and the limits, from the Worker bindings. */
import type { Env } from './env.ts';
import { type EdgeConfig, readConfig } from './env.ts';
import { type ModelRegistry, registryFor } from './registry.ts';

export function edgeContext(env: Env): { config: EdgeConfig; registry: ModelRegistry } {
  const config = readConfig(env);
  return {
    config,
    registry: registryFor(env.MODELS, config.modelPrefix, config.latestTtlMs, config.maxPatchSide),
  };
}
