/**
 * The one error shape of the API: `{error: {code, message}}` with the matching status. Typed errors
 * from shared/ keep their code and status; anything unexpected becomes a bare 500 whose body says
 * nothing about the cause (no stack, no input-derived text).
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isFreeTumorError } from '../../shared/errors.ts';
import { StreamAbortedError } from '../../shared/volume/nifti-slices.ts';

export type ApiErrorCode =
  | 'unauthorized'
  | 'forbidden'
  | 'rate_limited'
  | 'unsupported_media_type'
  | 'missing_part'
  | 'invalid_argument'
  | 'invalid_organ'
  | 'not_found'
  | 'method_not_allowed'
  | 'too_large'
  | 'not_implemented'
  | 'upstream_error'
  | 'busy'
  | 'client_closed'
  | 'internal';

export class ApiError extends Error {
  readonly status: ContentfulStatusCode;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(
    status: ContentfulStatusCode,
    code: ApiErrorCode,
    message: string,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

/** Maps any thrown value to (status, code, message, headers); pure so it is unit-tested. */
export function classifyError(err: unknown): {
  status: ContentfulStatusCode;
  code: string;
  message: string;
  headers: Record<string, string>;
} {
  if (err instanceof StreamAbortedError) {
    // The client went away (or was cut off): nobody reads this answer; it is logged as 499, not 500.
    return { status: 499 as ContentfulStatusCode, code: 'client_closed', message: err.message, headers: {} };
  }
  if (err instanceof ApiError)
    return { status: err.status, code: err.code, message: err.message, headers: err.headers };
  if (isFreeTumorError(err)) {
    return { status: err.status as ContentfulStatusCode, code: err.code, message: err.message, headers: {} };
  }
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    const code = status === 413 ? 'too_large' : status === 401 ? 'unauthorized' : 'invalid_argument';
    // HTTPException messages come from hono's own middleware (fixed strings), never from input.
    return { status, code, message: err.message || 'bad request', headers: {} };
  }
  return { status: 500, code: 'internal', message: 'internal error', headers: {} };
}

export function onError(err: unknown, c: Context): Response {
  const { status, code, message, headers } = classifyError(err);
  if (status >= 500) {
    // The error's name only: messages of unexpected errors may quote input.
    console.log(
      JSON.stringify({
        level: 'error',
        requestId: c.get('requestId'),
        code,
        error: (err as Error)?.name ?? 'unknown',
      }),
    );
  }
  for (const [k, v] of Object.entries(headers)) c.header(k, v);
  return c.json(errorBody(code, message), status);
}

export function notFound(c: Context): Response {
  return c.json(errorBody('not_found', `no route ${c.req.method} ${new URL(c.req.url).pathname}`), 404);
}
