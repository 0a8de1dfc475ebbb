/**
 * Input bounds that protect the 128 MB isolate. The body is read through its stream and counted, so
 * a missing or false Content-Length cannot push more than `maxBytes` into memory; multipart bodies are
 * read the same way and only then parsed.
 */
import { LimitError } from '../../shared/errors.ts';
import { ApiError } from './errors.ts';

export async function readBoundedBody(req: Request, maxBytes: number): Promise<Uint8Array> {
  const declared = req.headers.get('content-length');
  if (declared !== null) {
    const n = Number(declared);
    if (Number.isFinite(n) && n > maxBytes) throw new LimitError('request body bytes', maxBytes, n);
  }
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw new LimitError('request body bytes', maxBytes, `more than ${maxBytes}`);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let o = 0;
  for (const ch of chunks) {
    out.set(ch, o);
    o += ch.byteLength;
  }
  return out;
}

/** The media type without parameters, lower case ('' when absent). */
export function mediaType(header: string | null | undefined): string {
  return (header ?? '').split(';')[0].trim().toLowerCase();
}

export function requireMediaType(header: string | null | undefined, allowed: readonly string[]): void {
  const type = mediaType(header);
  if (!allowed.includes(type)) {
    throw new ApiError(415, 'unsupported_media_type', `content type must be ${allowed.join(' or ')}`);
  }
}

export const NIFTI_MEDIA_TYPES = [
  'application/octet-stream',
  'application/gzip',
  'application/x-gzip',
] as const;

/** Reads a bounded multipart/form-data body and returns its file parts as bytes and fields as text. */
export async function readMultipart(
  req: Request,
  maxBytes: number,
): Promise<{ files: Map<string, Uint8Array>; fields: Map<string, string> }> {
  const contentType = req.headers.get('content-type');
  requireMediaType(contentType, ['multipart/form-data']);
  const body = await readBoundedBody(req, maxBytes);
  let form: FormData;
  try {
    form = await new Response(body as Uint8Array<ArrayBuffer>, {
      headers: { 'content-type': contentType ?? '' },
    }).formData();
  } catch {
    throw new ApiError(400, 'invalid_argument', 'malformed multipart/form-data body');
  }
  const files = new Map<string, Uint8Array>();
  const fields = new Map<string, string>();
  for (const [name, value] of form.entries()) {
    if (typeof value === 'string') fields.set(name, value);
    else files.set(name, new Uint8Array(await value.arrayBuffer()));
  }
  return { files, fields };
}

export function requirePart(files: Map<string, Uint8Array>, name: string): Uint8Array {
  const bytes = files.get(name);
  if (!bytes || bytes.byteLength === 0) {
    throw new ApiError(400, 'missing_part', `multipart part "${name}" (a NIfTI file) is required`);
  }
  return bytes;
}
