/** Hono's environment for this app: the Worker bindings plus what middleware sets per request. */
import type { Env } from './env.ts';

export interface Variables {
  requestId: string;
  /** SHA-256 hex of the caller's API key: the rate-limit key; the key itself is never kept. */
  keyHash: string;
  admin: boolean;
}

export interface AppEnv {
  Bindings: Env;
  Variables: Variables;
}
