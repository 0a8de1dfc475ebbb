/**
 * Typed errors shared by every runtime. Each carries a stable `code` (used by the CLI's
 * one-line message and by the edge API's `{error: {code, message}}` body) and the HTTP
 * status the edge answers with. Messages name the limit or the field that was wrong and
 * never include voxel data, file names or header strings (they may carry patient data).
 */
export type ErrorCode =
  | 'invalid_nifti'
  | 'unsupported_datatype'
  | 'truncated'
  | 'too_large'
  | 'invalid_geometry'
  | 'invalid_argument'
  | 'invalid_label_map'
  | 'empty_organ'
  | 'model_unavailable'
  | 'model_integrity'
  | 'not_found'
  | 'request_timeout';

const STATUS: Record<ErrorCode, number> = {
  invalid_nifti: 400,
  unsupported_datatype: 415,
  truncated: 400,
  too_large: 413,
  invalid_geometry: 422,
  invalid_argument: 400,
  invalid_label_map: 400,
  empty_organ: 422,
  model_unavailable: 503,
  model_integrity: 503,
  not_found: 404,
  request_timeout: 408,
};

export class FreeTumorError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'FreeTumorError';
    this.code = code;
    this.status = STATUS[code];
  }
}

/** Bytes that are not a valid NIfTI file (bad magic, sizes, offsets, gzip stream). */
export class NiftiError extends FreeTumorError {
  constructor(
    code: 'invalid_nifti' | 'unsupported_datatype' | 'truncated' | 'invalid_geometry',
    message: string,
  ) {
    super(code, message);
    this.name = 'NiftiError';
  }
}

/** An input over a named limit; the message says which limit and its value. */
export class LimitError extends FreeTumorError {
  readonly limit: string;
  readonly max: number;
  constructor(limit: string, max: number, actual: number | string) {
    super('too_large', `${limit} is ${actual}, over the limit of ${max}`);
    this.name = 'LimitError';
    this.limit = limit;
    this.max = max;
  }
}

export function isFreeTumorError(e: unknown): e is FreeTumorError {
  return e instanceof FreeTumorError;
}
