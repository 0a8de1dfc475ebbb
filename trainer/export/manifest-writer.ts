/**
 * Writes one exported model as `<dir>/<role>/manifest.json` + `model.fp32.onnx` (+ `model.int8.onnx`),
 * each file with its sha256 and size in the manifest, which is validated by the shared schema and
 * written last (a folder with a manifest is complete).
 */
import { createHash } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ModelFile, type ModelManifest, parseManifest } from '../../shared/model/manifest.ts';

export type ManifestFields = Omit<ModelManifest, 'files' | 'schemaVersion'>;

export interface ModelFiles {
  fp32: Uint8Array;
  int8?: Uint8Array;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export async function writeModelDir(
  dir: string,
  fields: ManifestFields,
  files: ModelFiles,
): Promise<{ path: string; manifest: ModelManifest }> {
  const roleDir = join(dir, fields.role);
  await mkdir(roleDir, { recursive: true });
  const entries: ModelFile[] = [];
  const add = async (bytes: Uint8Array, precision: ModelFile['precision']) => {
    const path = `model.${precision}.onnx`;
    await atomicWrite(join(roleDir, path), bytes);
    entries.push({ path, sha256: sha256(bytes), bytes: bytes.byteLength, precision });
  };
  if (files.int8) await add(files.int8, 'int8');
  await add(files.fp32, 'fp32');
  const manifest = parseManifest({ schemaVersion: 1, ...fields, files: entries });
  const path = join(roleDir, 'manifest.json');
  await atomicWrite(path, `${JSON.stringify(manifest, null, 2)}\n`);
  return { path, manifest };
}

async function atomicWrite(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}
