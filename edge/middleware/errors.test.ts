import { HTTPException } from 'hono/http-exception';
import { describe, expect, it } from 'vitest';
import { FreeTumorError, LimitError, NiftiError } from '../../shared/errors.ts';
import { ApiError, classifyError } from './errors.ts';

describe('classifyError', () => {
  it('keeps the code and status of typed errors', () => {
    expect(classifyError(new LimitError('voxels', 10, 20))).toMatchObject({ status: 413, code: 'too_large' });
    expect(classifyError(new NiftiError('invalid_nifti', 'bad magic'))).toMatchObject({
      status: 400,
      code: 'invalid_nifti',
    });
    expect(classifyError(new FreeTumorError('model_unavailable', 'none'))).toMatchObject({ status: 503 });
    expect(
      classifyError(new ApiError(429, 'rate_limited', 'slow down', { 'retry-after': '60' })),
    ).toMatchObject({
      status: 429,
      headers: { 'retry-after': '60' },
    });
    expect(classifyError(new HTTPException(413, { message: 'too big' }))).toMatchObject({
      status: 413,
      code: 'too_large',
    });
  });

  it('hides everything about unexpected errors', () => {
    const e = new TypeError('secret /path/patient-123.nii at line 4');
    expect(classifyError(e)).toEqual({
      status: 500,
      code: 'internal',
      message: 'internal error',
      headers: {},
    });
    expect(classifyError('thrown string')).toMatchObject({ status: 500, message: 'internal error' });
  });
});
