/**
 * multipart/form-data read as a stream: each part's body is a ReadableStream handed out in order, so
 * a CT part can be streamed through the NIfTI slice reader while it uploads. (The well-kept parsers,
 * e.g. @remix-run/multipart-parser, buffer every part whole, which is what a 500 MB CT cannot do.)
 * The body is counted against a byte limit and part headers are bounded; whatever a consumer left of
 * a part is skipped when the next part is asked for.
 */
import { LimitError } from '../shared/errors.ts';
import { ApiError } from './middleware/errors.ts';

const MAX_HEADER_BYTES = 8 * 1024;
const enc = new TextEncoder();
const dec = new TextDecoder();

export interface StreamedPart {
  name: string;
  filename: string | null;
  body: ReadableStream<Uint8Array>;
  /** Reads the part to its end and returns its bytes (for small parts: fields). */
  bytes(limit: number): Promise<Uint8Array>;
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  const first = needle[0];
  const last = hay.length - needle.length;
  outer: for (let i = hay.indexOf(first, from); i !== -1 && i <= last; i = hay.indexOf(first, i + 1)) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

export function boundaryOf(contentType: string | null): string {
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))/i.exec(contentType ?? '');
  const b = m?.[1] ?? m?.[2];
  if (!b) throw new ApiError(400, 'invalid_argument', 'multipart/form-data without a boundary');
  return b;
}

export class MultipartStream {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly maxBytes: number;
  private readonly delimiter: Uint8Array;
  private buf: Uint8Array = new Uint8Array(0);
  private total = 0;
  private ended = false;
  private state: 'preamble' | 'headers' | 'body' | 'done' = 'preamble';
  private partOpen = false;

  constructor(body: ReadableStream<Uint8Array>, boundary: string, maxBytes: number) {
    this.reader = body.getReader();
    this.maxBytes = maxBytes;
    this.delimiter = enc.encode(`\r\n--${boundary}`);
  }

  private pendingFill: Promise<boolean> | null = null;

  /**
   * Appends the next chunk of the body to the buffer. One read at a time (workerd allows a single
   * pending read): a second caller shares the read in flight and re-checks the buffer.
   */
  private fill(): Promise<boolean> {
    this.pendingFill ??= this.readMore().finally(() => {
      this.pendingFill = null;
    });
    return this.pendingFill;
  }

  private async readMore(): Promise<boolean> {
    if (this.ended) return false;
    const { done, value } = await this.reader.read();
    if (done) {
      this.ended = true;
      return false;
    }
    this.total += value.byteLength;
    if (this.total > this.maxBytes) {
      await this.reader.cancel().catch(() => undefined);
      throw new LimitError('request body bytes', this.maxBytes, `more than ${this.maxBytes}`);
    }
    this.buf = concat(this.buf, value);
    return true;
  }

  private malformed(): ApiError {
    return new ApiError(400, 'invalid_argument', 'malformed multipart/form-data body');
  }

  /** The next part, or null after the last. The previous part must have been read or skipped. */
  async next(): Promise<StreamedPart | null> {
    // A part whose consumer stopped early (the NIfTI reader has its voxels) is skipped to its end.
    if (this.skipping) await this.skipping;
    if (this.partOpen) await this.skipRest();
    if (this.state === 'done') return null;
    if (this.state === 'preamble') {
      // The first delimiter may come without its leading CRLF.
      const first = this.delimiter.subarray(2);
      for (;;) {
        const i = indexOf(this.buf, first);
        if (i >= 0) {
          this.buf = this.buf.subarray(i + first.length);
          break;
        }
        if (this.buf.length > MAX_HEADER_BYTES) throw this.malformed();
        if (!(await this.fill())) throw this.malformed();
      }
      this.state = 'headers';
    }
    // After a delimiter: "--" ends the body, CRLF starts a part.
    while (this.buf.length < 2) if (!(await this.fill())) throw this.malformed();
    if (this.buf[0] === 0x2d && this.buf[1] === 0x2d) {
      this.state = 'done';
      await this.reader.cancel().catch(() => undefined);
      return null;
    }
    const crlf2 = enc.encode('\r\n\r\n');
    let end: number;
    for (;;) {
      end = indexOf(this.buf, crlf2);
      if (end >= 0) break;
      if (this.buf.length > MAX_HEADER_BYTES)
        throw new LimitError('multipart part header bytes', MAX_HEADER_BYTES, 'more');
      if (!(await this.fill())) throw this.malformed();
    }
    const head = dec.decode(this.buf.subarray(0, end));
    this.buf = this.buf.subarray(end + 4);
    const disposition = /content-disposition:\s*form-data([^\r\n]*)/i.exec(head)?.[1] ?? '';
    const name = /;\s*name="([^"]*)"/i.exec(disposition)?.[1];
    if (name === undefined) throw this.malformed();
    const filename = /;\s*filename="([^"]*)"/i.exec(disposition)?.[1] ?? null;
    this.state = 'body';
    this.partOpen = true;
    const body = this.partBody();
    return {
      name,
      filename,
      body,
      bytes: async (limit: number) => {
        const chunks: Uint8Array[] = [];
        let n = 0;
        const r = body.getReader();
        for (;;) {
          const { done, value } = await r.read();
          if (done) break;
          n += value.byteLength;
          if (n > limit) {
            await r.cancel();
            throw new LimitError(`multipart part "${name}" bytes`, limit, `more than ${limit}`);
          }
          chunks.push(value);
        }
        return chunks.reduce(concat, new Uint8Array(0));
      },
    };
  }

  /** The current part's bytes up to the next delimiter. */
  private partBody(): ReadableStream<Uint8Array> {
    const d = this.delimiter;
    let finished = false;
    let cancelled = false;
    const finish = () => {
      finished = true;
      this.partOpen = false;
      this.state = 'headers';
    };
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          for (;;) {
            // Cancelled while a read was in flight: the skip owns the buffer now.
            if (cancelled) return;
            const i = indexOf(this.buf, d);
            if (i >= 0) {
              const out = this.buf.slice(0, i);
              this.buf = this.buf.subarray(i + d.length);
              finish();
              if (out.length) controller.enqueue(out);
              controller.close();
              return;
            }
            // Everything but a possible partial delimiter at the end can go out.
            const safe = this.buf.length - (d.length - 1);
            if (safe > 0) {
              controller.enqueue(this.buf.slice(0, safe));
              this.buf = this.buf.subarray(safe);
              return;
            }
            if (!(await this.fill())) throw this.malformed();
          }
        } catch (e) {
          if (!cancelled) controller.error(e);
        }
      },
      cancel: async () => {
        // The consumer stopped early (it had what it needed): skip to the part's end.
        cancelled = true;
        if (!finished) await this.skipRest();
      },
    });
  }

  private skipping: Promise<void> | null = null;

  private skipRest(): Promise<void> {
    this.skipping ??= this.skipToDelimiter().finally(() => {
      this.skipping = null;
    });
    return this.skipping;
  }

  private async skipToDelimiter(): Promise<void> {
    if (!this.partOpen) return;
    const d = this.delimiter;
    for (;;) {
      const i = indexOf(this.buf, d);
      if (i >= 0) {
        this.buf = this.buf.subarray(i + d.length);
        break;
      }
      this.buf = this.buf.subarray(Math.max(0, this.buf.length - (d.length - 1)));
      if (!(await this.fill())) throw this.malformed();
    }
    this.partOpen = false;
    this.state = 'headers';
  }

  /** Skips the rest of the body (an error answer does not read what is left). */
  async cancel(): Promise<void> {
    this.state = 'done';
    await this.reader.cancel().catch(() => undefined);
  }
}
