/**
 * The job's view of R2 (or any S3 API): the object store of trainer/storage, JSON helpers, and a
 * mirror of a local folder to a key prefix and back (checkpoints).
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { ObjectStore } from '../storage/object-store.ts';

export {
  createS3Client,
  type ObjectStore,
  S3Store,
  type S3StoreOptions,
  type WriteCondition,
} from '../storage/object-store.ts';

export async function getJson<T = unknown>(store: ObjectStore, key: string): Promise<T | null> {
  const bytes = await store.get(key);
  return bytes === null ? null : (JSON.parse(new TextDecoder().decode(bytes)) as T);
}

export async function putJson(store: ObjectStore, key: string, value: unknown): Promise<void> {
  await store.put(key, `${JSON.stringify(value, null, 2)}\n`, 'application/json');
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw e;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(path)));
    else if (e.isFile() && !/\.tmp-\d+$/.test(e.name)) out.push(path);
  }
  return out;
}

/**
 * Mirrors a local folder to `prefix` in the store, uploading only files that changed since the last
 * call (by size and mtime). Temporary files of atomic writes are skipped, so a checkpoint is
 * uploaded only once it is complete.
 */
export class FolderMirror {
  readonly #store: ObjectStore;
  readonly #dir: string;
  readonly #prefix: string;
  readonly #include: (relativePath: string) => boolean;
  readonly #seen = new Map<string, string>();
  #running: Promise<number> | null = null;

  /** `include` filters by path relative to the folder ('/'-separated). */
  constructor(
    store: ObjectStore,
    dir: string,
    prefix: string,
    include: (relativePath: string) => boolean = () => true,
  ) {
    this.#store = store;
    this.#dir = dir;
    this.#prefix = prefix.replace(/\/+$/, '');
    this.#include = include;
  }

  /** Uploads what changed; returns how many files went up. Calls never overlap. */
  async push(): Promise<number> {
    while (this.#running) await this.#running.catch(() => 0);
    this.#running = this.#push();
    try {
      return await this.#running;
    } finally {
      this.#running = null;
    }
  }

  async #push(): Promise<number> {
    let count = 0;
    for (const path of await walk(this.#dir)) {
      const rel = relative(this.#dir, path).split(sep).join('/');
      if (!this.#include(rel)) continue;
      const s = await stat(path).catch(() => null);
      if (!s) continue;
      const stamp = `${s.size}:${s.mtimeMs}`;
      if (this.#seen.get(path) === stamp) continue;
      await this.#store.put(`${this.#prefix}/${rel}`, new Uint8Array(await readFile(path)));
      this.#seen.set(path, stamp);
      count++;
    }
    return count;
  }

  /** Downloads everything under the prefix into the folder (atomic per file); returns the count. */
  async pull(): Promise<number> {
    const keys = await this.#store.list(`${this.#prefix}/`);
    for (const key of keys) {
      const rel = key.slice(this.#prefix.length + 1);
      if (rel === '' || rel.split('/').includes('..')) continue;
      const bytes = await this.#store.get(key);
      if (bytes === null) continue;
      const path = join(this.#dir, ...rel.split('/'));
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.tmp-${process.pid}`;
      await writeFile(tmp, bytes);
      await rename(tmp, path);
      const s = await stat(path);
      this.#seen.set(path, `${s.size}:${s.mtimeMs}`);
    }
    return keys.length;
  }
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
