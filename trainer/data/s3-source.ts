/**
 * A data set in S3/R2 (`"path": "s3://bucket/prefix"` with `"format": "msd"`): the same
 * nnU-Net/MSD layout the folder reader lists (imagesTr/labelsTr, imagesUnlabeled/labelsUnlabeled),
 * or, when the prefix holds a merged synthesize-dataset output, the cases its dataset.json lists
 * (only variants whose data was complete when the merge ran). Objects are downloaded once into a
 * local folder and handed to the usual reader as files; the preprocessing cache is keyed by the
 * files' content (preprocess.ts), so a case that moved or was downloaded again is not redone.
 * Endpoint and credentials come from the environment (trainer/storage/object-store.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { FreeTumorError } from '../../shared/errors.ts';
import { type Location, openLocation, parseS3Uri } from '../storage/object-store.ts';
import type { SourceCase } from './dataset.ts';

export function isS3Path(path: string): boolean {
  return parseS3Uri(path) !== null;
}

/** Where downloads go: FREETUMOR_DATA_DIR, else the system temp folder; one folder per URI. */
function downloadRoot(uri: string): string {
  const base = process.env.FREETUMOR_DATA_DIR ?? join(tmpdir(), 'freetumor-data');
  return join(base, createHash('sha256').update(uri).digest('hex').slice(0, 16));
}

const NIFTI = /\.nii(\.gz)?$/;

async function fetchTo(loc: Location, key: string, path: string): Promise<void> {
  if (existsSync(path)) return;
  const bytes = await loc.store.get(key);
  if (bytes === null)
    throw new FreeTumorError('not_found', 'a data set object named by its listing is missing');
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}

/** Pairs image/label keys of one part of the layout by case id (nnU-Net's `_0000` suffix dropped). */
function pairs(
  keys: string[],
  images: string,
  labels: string,
): Array<{ id: string; image: string; label: string }> {
  const labelSet = new Set(keys.filter((k) => k.startsWith(`${labels}/`)));
  const out: Array<{ id: string; image: string; label: string }> = [];
  for (const k of keys.filter((k) => k.startsWith(`${images}/`) && NIFTI.test(k))) {
    const name = k.slice(images.length + 1);
    if (name.includes('/') || name.startsWith('.')) continue;
    const stem = name.replace(NIFTI, '');
    if (/_\d{4}$/.test(stem) && !stem.endsWith('_0000')) continue;
    const id = stem.replace(/_0000$/, '');
    const label = [`${labels}/${id}.nii.gz`, `${labels}/${id}.nii`].find((l) => labelSet.has(l));
    if (!label)
      throw new FreeTumorError('not_found', `data set case ${id} in ${images} has no label in ${labels}`);
    out.push({ id, image: k, label });
  }
  return out;
}

export async function listS3Dataset(name: string, uri: string): Promise<SourceCase[]> {
  const loc = openLocation(uri);
  try {
    const root = downloadRoot(uri);
    const rel = (k: string) => k.slice(loc.prefix.length);
    const datasetJson = await loc.store.get(`${loc.prefix}dataset.json`);
    let labeled: Array<{ id: string; image: string; label: string }>;
    let unlabeled: Array<{ id: string; image: string; label: string }> = [];
    if (datasetJson !== null) {
      const parsed = JSON.parse(new TextDecoder().decode(datasetJson)) as {
        training?: Array<{ image: string; label: string }>;
      };
      labeled = (parsed.training ?? []).map((t) => {
        const image = t.image.replace(/^\.\//, '');
        const label = t.label.replace(/^\.\//, '');
        return { id: label.replace(/^.*\//, '').replace(NIFTI, ''), image, label };
      });
    } else {
      const keys = (await loc.store.list(loc.prefix)).map(rel);
      labeled = pairs(keys, 'imagesTr', 'labelsTr');
      unlabeled = pairs(keys, 'imagesUnlabeled', 'labelsUnlabeled');
    }
    if (labeled.length + unlabeled.length === 0)
      throw new FreeTumorError('not_found', `data set ${name}: no NIfTI cases under its s3:// prefix`);
    const out: SourceCase[] = [];
    for (const [list, isLabeled] of [
      [labeled, true],
      [unlabeled, false],
    ] as const) {
      for (const c of list) {
        if ([c.image, c.label].some((k) => k.startsWith('/') || k.split('/').includes('..'))) {
          throw new FreeTumorError('invalid_argument', `data set ${name}: a case path leaves its prefix`);
        }
        const image = join(root, ...c.image.split('/'));
        const label = join(root, ...c.label.split('/'));
        await fetchTo(loc, `${loc.prefix}${c.image}`, image);
        await fetchTo(loc, `${loc.prefix}${c.label}`, label);
        out.push({ id: c.id, image, label, labeled: isLabeled });
      }
    }
    return out;
  } finally {
    loc.close();
  }
}
