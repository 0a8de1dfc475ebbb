/**
 * Files as web streams for the streaming pipelines (shared/inference/stream-segment.ts): a CT is read
 * as it is needed instead of whole, and an output is written as it is made, atomically (temp file +
 * rename, as writeOutput) so a killed process never leaves half a file.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { FreeTumorError } from '../../shared/errors.ts';

/** A readable stream of a file the user named; a missing file is a one-line error that does not echo the name. */
export async function openInputStream(path: string, what: string): Promise<ReadableStream<Uint8Array>> {
  try {
    const handle = await open(path, 'r');
    const stat = await handle.stat();
    await handle.close();
    if (stat.isDirectory()) throw Object.assign(new Error('directory'), { code: 'EISDIR' });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FreeTumorError('not_found', `${what} file not found`);
    if (code === 'EISDIR') throw new FreeTumorError('invalid_argument', `${what} is a directory, not a file`);
    throw new FreeTumorError('invalid_argument', `${what} file cannot be read (${code ?? 'error'})`);
  }
  return Readable.toWeb(createReadStream(path, { highWaterMark: 1 << 20 })) as ReadableStream<Uint8Array>;
}

/** Writes `stream` to `path` atomically. */
export async function writeOutputStream(path: string, stream: ReadableStream<Uint8Array>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await stream.pipeTo(Writable.toWeb(createWriteStream(tmp)) as WritableStream<Uint8Array>);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
