/**
 * Responses made of several files that stream one after the other: a zip (fflate's streaming Zip,
 * entries stored: the NIfTI files are gzip already; sizes and CRCs follow each entry in a data
 * descriptor and the central directory, which every unzip reads) or multipart/mixed. Each file is
 * opened only when the one before it has ended, so a file whose bytes depend on an earlier one
 * being complete (the synthetic label after the CT pass) is made in order. Pull-driven: nothing is
 * produced faster than the client reads.
 */
import { Zip, ZipPassThrough } from 'fflate';

export interface ArchiveEntry {
  name: string;
  type: string;
  /** Opened when the entry's turn comes. */
  open: () => ReadableStream<Uint8Array> | Uint8Array | Promise<ReadableStream<Uint8Array> | Uint8Array>;
}

export interface ArchiveOptions {
  /** Called once when the archive has been read to its end, failed or was cancelled. */
  onClose?: (outcome: 'done' | 'cancelled' | 'error', error?: unknown) => void;
}

type Sink = (chunk: Uint8Array) => void;

interface Format {
  begin(entry: ArchiveEntry, out: Sink): void;
  data(chunk: Uint8Array, out: Sink): void;
  end(out: Sink): void;
  finish(out: Sink): void;
}

function archive(
  entries: ArchiveEntry[],
  format: Format,
  options: ArchiveOptions,
): ReadableStream<Uint8Array> {
  let index = -1;
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  let closed = false;
  const close = (outcome: 'done' | 'cancelled' | 'error', error?: unknown) => {
    if (closed) return;
    closed = true;
    options.onClose?.(outcome, error);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const out: Sink = (chunk) => {
        if (chunk.length > 0) controller.enqueue(chunk);
      };
      try {
        // One step per pull: a chunk of the current entry, or the move to the next one.
        for (;;) {
          if (reader) {
            const { done, value } = await reader.read();
            if (!done) {
              format.data(value, out);
              if (value.length > 0) return;
              continue;
            }
            reader = null;
            format.end(out);
            return;
          }
          index++;
          if (index >= entries.length) {
            format.finish(out);
            controller.close();
            close('done');
            return;
          }
          const entry = entries[index];
          format.begin(entry, out);
          const body = await entry.open();
          if (body instanceof Uint8Array) {
            format.data(body, out);
            format.end(out);
            return;
          }
          reader = body.getReader();
        }
      } catch (e) {
        controller.error(e);
        close('error', e);
      }
    },
    async cancel(reason) {
      await reader?.cancel(reason).catch(() => undefined);
      close('cancelled');
    },
  });
}

/** A zip of the entries, each stored as it is. */
export function zipStream(entries: ArchiveEntry[], options: ArchiveOptions = {}): ReadableStream<Uint8Array> {
  let sink: Sink = () => undefined;
  const zip = new Zip((err, chunk) => {
    if (err) throw err;
    sink(chunk);
  });
  let file: ZipPassThrough | null = null;
  const to = (out: Sink, f: () => void) => {
    sink = out;
    f();
  };
  return archive(
    entries,
    {
      begin: (entry, out) =>
        to(out, () => {
          file = new ZipPassThrough(entry.name);
          zip.add(file);
        }),
      data: (chunk, out) => to(out, () => file?.push(chunk)),
      end: (out) => to(out, () => file?.push(new Uint8Array(0), true)),
      finish: (out) => to(out, () => zip.end()),
    },
    options,
  );
}

/** multipart/mixed with `boundary`: one part per entry (its content type and file name). */
export function multipartStream(
  entries: ArchiveEntry[],
  boundary: string,
  options: ArchiveOptions = {},
): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return archive(
    entries,
    {
      begin: (entry, out) =>
        out(
          enc.encode(
            `--${boundary}\r\ncontent-type: ${entry.type}\r\ncontent-disposition: attachment; filename="${entry.name}"\r\n\r\n`,
          ),
        ),
      data: (chunk, out) => out(chunk),
      end: (out) => out(enc.encode('\r\n')),
      finish: (out) => out(enc.encode(`--${boundary}--\r\n`)),
    },
    options,
  );
}
