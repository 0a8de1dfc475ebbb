/**
 * A request id on every response (`X-Request-Id`) and one JSON log line per request holding only the
 * id, route, status, body sizes and time: never headers, query values, file names or voxel data.
 */
import type { MiddlewareHandler } from 'hono';

export interface RequestLog {
  requestId: string;
  method: string;
  path: string;
  status: number;
  bytesIn: number | null;
  bytesOut: number | null;
  ms: number;
}

const ID_PATTERN = /^[A-Za-z0-9._-]{8,64}$/;

export function requestId(): MiddlewareHandler {
  return async function requestIdMiddleware(c, next) {
    const given = c.req.header('x-request-id');
    const id = given && ID_PATTERN.test(given) ? given : crypto.randomUUID();
    c.set('requestId', id);
    const t0 = performance.now();
    await next();
    c.res.headers.set('x-request-id', id);
    const log: RequestLog = {
      requestId: id,
      method: c.req.method,
      path: new URL(c.req.url).pathname,
      status: c.res.status,
      bytesIn: numberOrNull(c.req.header('content-length')),
      bytesOut: numberOrNull(c.res.headers.get('content-length')),
      ms: Math.round((performance.now() - t0) * 10) / 10,
    };
    console.log(JSON.stringify(log));
  };
}

function numberOrNull(v: string | null | undefined): number | null {
  if (v === null || v === undefined) return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}
