/**
 * Shared CLI plumbing: results to stdout (JSON or text), logs to stderr, usage errors.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Writable } from 'node:stream';
import { FreeTumorError } from '../../shared/errors.ts';

/** A usage or input error the CLI reports as one line with exit code 2. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

/** Prints a command's result: one JSON object with --json, else the text form. */
export function printResult(json: boolean, value: unknown, text: () => string): void {
  if (json) process.stdout.write(`${JSON.stringify(value)}\n`);
  else process.stdout.write(`${text()}\n`);
}

/** Progress and notes; stderr so that stdout stays machine-readable. */
export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Reads a file the user named; a missing file is a one-line error that does not echo the name. */
export async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FreeTumorError('not_found', `${what} file not found`);
    if (code === 'EISDIR') throw new FreeTumorError('invalid_argument', `${what} is a directory, not a file`);
    throw new FreeTumorError('invalid_argument', `${what} file cannot be read (${code ?? 'error'})`);
  }
}

/** Writes atomically (temp file + rename) so a killed process never leaves half a file. */
export async function writeOutput(path: string, bytes: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}

/** writeOutput for bytes that stream (a mask written slice by slice): temp file + rename as well. */
export async function writeOutputStream(path: string, stream: ReadableStream<Uint8Array>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await stream.pipeTo(Writable.toWeb(createWriteStream(tmp)) as WritableStream<Uint8Array>);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await rename(tmp, path);
}

/** Parses a positive number option or throws a clear CliError naming the option. */
export function positiveNumber(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0)
      throw new CliError(`${name} must be a positive number, got ${JSON.stringify(value)}`);
    return n;
  };
}

export function integer(name: string, min = 0) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min)
      throw new CliError(`${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
    return n;
  };
}
