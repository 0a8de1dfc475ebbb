import { describe, expect, it } from 'vitest';
import { LimitError } from '../../shared/errors.ts';
import { ApiError } from './errors.ts';
import { mediaType, readBoundedBody, readMultipart, requireMediaType, requirePart } from './limits.ts';

function streamOf(chunks: number[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(new Uint8Array(chunks[i++]).fill(7));
      else controller.close();
    },
  });
}

function post(body: BodyInit, headers: Record<string, string> = {}): Request {
  return new Request('http://x/', { method: 'POST', body, headers, duplex: 'half' } as RequestInit);
}

describe('readBoundedBody', () => {
  it('reads a streamed body at the limit and joins its chunks', async () => {
    const bytes = await readBoundedBody(post(streamOf([3, 4, 3])), 10);
    expect(bytes.byteLength).toBe(10);
    expect(bytes.every((b) => b === 7)).toBe(true);
  });

  it('refuses a declared Content-Length over the limit before reading', async () => {
    await expect(
      readBoundedBody(post(new Uint8Array(4), { 'content-length': '11' }), 10),
    ).rejects.toBeInstanceOf(LimitError);
  });

  it('counts the bytes of a stream without Content-Length and stops past the limit', async () => {
    const err = await readBoundedBody(post(streamOf([6, 6, 6])), 10).catch((e) => e);
    expect(err).toBeInstanceOf(LimitError);
    expect(err.status).toBe(413);
    expect(err.message).toMatch(/request body bytes/);
  });
});

describe('media types and multipart', () => {
  it('ignores parameters and case', () => {
    expect(mediaType('Multipart/Form-Data; boundary=x')).toBe('multipart/form-data');
    expect(() => requireMediaType('text/plain', ['application/octet-stream'])).toThrow(ApiError);
    expect(() => requireMediaType(undefined, ['application/octet-stream'])).toThrow(/content type/);
  });

  it('reads files and fields; a missing part is 400', async () => {
    const form = new FormData();
    form.set('image', new Blob([new Uint8Array([1, 2, 3])]), 'a.nii');
    form.set('organ', 'liver');
    const req = new Request('http://x/', { method: 'POST', body: form });
    const { files, fields } = await readMultipart(req, 1 << 20);
    expect([...requirePart(files, 'image')]).toEqual([1, 2, 3]);
    expect(fields.get('organ')).toBe('liver');
    const err = (() => {
      try {
        requirePart(files, 'label');
      } catch (e) {
        return e as ApiError;
      }
    })();
    expect(err?.status).toBe(400);
    expect(err?.code).toBe('missing_part');
  });

  it('refuses a non-multipart body with 415', async () => {
    const err = await readMultipart(post('x', { 'content-type': 'application/json' }), 100).catch((e) => e);
    expect(err.status).toBe(415);
  });
});
