/**
 * Publishing exported models to a local R2 bucket: the state `wrangler dev --persist-to DIR` serves,
 * written in-process through Miniflare exactly as `wrangler r2 object put --local` does (a Miniflare
 * with `resourcePersistencePath = DIR/v3` and the bucket bound by name). The key layout and order are
 * the publisher's (trainer/publish/r2.ts): model files, then each manifest, then `models/latest.json`
 * last, every file checked against its manifest's sha256 first.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FreeTumorError } from '../../shared/errors.ts';
import type { ModelRole } from '../../shared/model/manifest.ts';

export interface LocalPublishResult {
  models: Partial<Record<ModelRole, { version: string; keys: string[]; bytes: number }>>;
  latestKey: string;
  objects: number;
}

/** The bucket wrangler.toml binds as MODELS. */
export const LOCAL_BUCKET = 'freetumor-models';

export async function publishToLocalR2(
  modelsDir: string,
  persistDir: string,
  options: { bucket?: string; prefix?: string; log?: (m: string) => void } = {},
): Promise<LocalPublishResult> {
  const { readModelDirs, publishedPointerSchema } = await import('../publish/r2.ts');
  const { Miniflare, convertV4MiniflareOptions } = await import('miniflare');
  const prefix = options.prefix ?? 'models';
  const models = await readModelDirs(modelsDir);
  const staged: Array<{
    role: ModelRole;
    version: string;
    manifest: string;
    files: Array<{ key: string; bytes: Uint8Array }>;
  }> = [];
  for (const { role, manifest, root } of models) {
    const files: Array<{ key: string; bytes: Uint8Array }> = [];
    for (const f of manifest.files) {
      const bytes = new Uint8Array(await readFile(join(root, f.path)));
      if (bytes.byteLength !== f.bytes || createHash('sha256').update(bytes).digest('hex') !== f.sha256) {
        throw new FreeTumorError(
          'model_integrity',
          `the ${role} model file ${f.path} does not match its manifest`,
        );
      }
      files.push({ key: `${prefix}/${role}/${manifest.version}/${f.path}`, bytes });
    }
    staged.push({
      role,
      version: manifest.version,
      manifest: `${JSON.stringify(manifest, null, 2)}\n`,
      files,
    });
  }

  const mf = new Miniflare(
    convertV4MiniflareOptions({
      modules: true,
      script: 'export default { fetch() { return new Response(null, { status: 404 }); } }',
      resourcePersistencePath: join(persistDir, 'v3'),
      r2Buckets: { BUCKET: options.bucket ?? LOCAL_BUCKET },
    }),
  );
  const result: LocalPublishResult = { models: {}, latestKey: `${prefix}/latest.json`, objects: 0 };
  try {
    const bucket = await mf.getR2Bucket('BUCKET');
    for (const s of staged) {
      const keys: string[] = [];
      let bytes = 0;
      for (const f of s.files) {
        // Miniflare's proxy takes plain Uint8Arrays (not Node Buffers).
        await bucket.put(f.key, new Uint8Array(f.bytes));
        keys.push(f.key);
        bytes += f.bytes.byteLength;
      }
      const manifestKey = `${prefix}/${s.role}/${s.version}/manifest.json`;
      await bucket.put(manifestKey, s.manifest);
      keys.push(manifestKey);
      result.models[s.role] = { version: s.version, keys, bytes };
      result.objects += keys.length;
      options.log?.(`publish: ${s.role} ${s.version} (${keys.length} objects, ${bytes} bytes)`);
    }
    const pointer = publishedPointerSchema.parse({
      schemaVersion: 1,
      updated: new Date().toISOString(),
      models: Object.fromEntries(
        staged.map((s) => [s.role, { version: s.version, manifest: `${s.role}/${s.version}/manifest.json` }]),
      ),
    });
    await bucket.put(result.latestKey, `${JSON.stringify(pointer, null, 2)}\n`);
    result.objects += 1;
    return result;
  } finally {
    await mf.dispose();
  }
}
