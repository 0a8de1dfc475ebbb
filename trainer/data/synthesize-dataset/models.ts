/**
 * Where --generator and --quality models come from: a local exported-models folder, or an S3/R2
 * prefix, so that a Batch array job can use the published models without baking them into the
 * image. A prefix holding `latest.json` (the publisher's pointer) means "the live models": each
 * role's version folder it names is fetched into `<dir>/<role>/`; any other prefix is fetched as
 * one model folder. Files are checked against their manifest's sha256 when the model is opened
 * (shared/model/load.ts), so a torn download cannot be used.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { FreeTumorError } from '../../../shared/errors.ts';
import { latestPointerSchema, MODEL_ROLES } from '../../../shared/model/manifest.ts';
import { type Location, openLocation, parseS3Uri, type S3Settings } from '../../storage/object-store.ts';

async function fetchPrefix(loc: Location, prefix: string, dir: string): Promise<number> {
  let n = 0;
  for (const key of await loc.store.list(prefix)) {
    const rel = key.slice(prefix.length);
    if (rel === '' || rel.split('/').some((p) => p === '..' || p === '')) continue;
    const bytes = await loc.store.get(key);
    if (bytes === null) continue;
    const path = join(dir, ...rel.split('/'));
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
    n++;
  }
  return n;
}

/** A local folder holding the models at `where` (`where` itself when it is local). */
export async function resolveModelDir(where: string, settings: S3Settings): Promise<string> {
  if (parseS3Uri(where) === null) return where;
  const loc = openLocation(where, settings);
  try {
    const dir = await mkdtemp(join(tmpdir(), 'ft-models-'));
    const pointer = await loc.store.get(`${loc.prefix}latest.json`);
    if (pointer !== null) {
      const parsed = latestPointerSchema.safeParse(JSON.parse(new TextDecoder().decode(pointer)));
      if (!parsed.success)
        throw new FreeTumorError('model_integrity', 'latest.json under the model URI is not a model pointer');
      for (const role of MODEL_ROLES) {
        const entry = parsed.data.models[role];
        if (!entry) continue;
        const folder = entry.manifest.replace(/manifest\.json$/, '');
        await fetchPrefix(loc, `${loc.prefix}${folder}`, join(dir, role));
      }
      return dir;
    }
    if ((await fetchPrefix(loc, loc.prefix, dir)) === 0) {
      throw new FreeTumorError('model_unavailable', 'no model files under the model URI');
    }
    return dir;
  } finally {
    loc.close();
  }
}
