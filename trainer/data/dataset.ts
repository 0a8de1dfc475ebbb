/**
 * Listing the cases of a data set. Two forms:
 * - `msd`: a folder in the nnU-Net / Medical Segmentation Decathlon layout: imagesTr/<case>.nii.gz
 *   (or <case>_0000.nii.gz, nnU-Net's channel suffix) with labelsTr/<case>.nii.gz; a case may also be
 *   a DICOM series (a sub-folder <case>/ or <case>.zip, trainer/io/case-files.ts); every case is
 *   "labeled" (tumor annotations). An optional unlabeled part lives in imagesUnlabeled/ with organ
 *   masks in labelsUnlabeled/ (same naming).
 * - `msd` with an `s3://bucket/prefix` path: the same layout in S3/R2 (s3-source.ts).
 * - `list`: a JSON file {"labeled": [{"image", "label"}...], "unlabeled": [...]} with paths relative
 *   to the file; unlabeled labels are organ (pseudo-)masks without tumors.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { FreeTumorError } from '../../shared/errors.ts';
import { findCaseInput, inputEntries } from '../io/case-files.ts';
import type { DatasetConfig } from '../train/config.ts';

export interface SourceCase {
  id: string;
  image: string;
  label: string;
  labeled: boolean;
}

async function listPair(
  root: string,
  images: string,
  labels: string,
  labeled: boolean,
): Promise<SourceCase[]> {
  const dir = join(root, images);
  if (!existsSync(dir)) return [];
  const out: SourceCase[] = [];
  for (const { stem, path } of (await inputEntries(dir)).entries) {
    const id = stem.replace(/_0000$/, '');
    if (/_\d{4}$/.test(stem) && !stem.endsWith('_0000')) continue; // other nnU-Net channels
    const ext = /\.nii\.gz$/i.test(path) ? '.nii.gz' : /\.nii$/i.test(path) ? '.nii' : undefined;
    const label = findCaseInput(join(root, labels), id, ext);
    if (!label)
      throw new FreeTumorError(
        'not_found',
        `data set case ${id} in ${images} has no label file in ${labels}`,
      );
    out.push({ id, image: path, label, labeled });
  }
  return out;
}

const listSchema = z
  .object({
    labeled: z
      .array(z.object({ image: z.string().min(1), label: z.string().min(1), id: z.string().optional() }))
      .default([]),
    unlabeled: z
      .array(z.object({ image: z.string().min(1), label: z.string().min(1), id: z.string().optional() }))
      .default([]),
  })
  .strict();

export async function listDataset(d: DatasetConfig): Promise<SourceCase[]> {
  if (d.format === 'msd' && d.path.startsWith('s3://')) {
    const { listS3Dataset } = await import('./s3-source.ts');
    return listS3Dataset(d.name, d.path);
  }
  if (d.format === 'msd') {
    if (!existsSync(d.path)) throw new FreeTumorError('not_found', `data set ${d.name}: folder not found`);
    const labeled = await listPair(d.path, 'imagesTr', 'labelsTr', true);
    const unlabeled = await listPair(d.path, 'imagesUnlabeled', 'labelsUnlabeled', false);
    if (labeled.length + unlabeled.length === 0)
      throw new FreeTumorError(
        'not_found',
        `data set ${d.name}: no cases (NIfTI files or DICOM series) in imagesTr`,
      );
    return [...labeled, ...unlabeled];
  }
  let text: string;
  try {
    text = await readFile(d.path, 'utf8');
  } catch {
    throw new FreeTumorError('not_found', `data set ${d.name}: list file not found`);
  }
  let parsed: z.output<typeof listSchema>;
  try {
    parsed = listSchema.parse(JSON.parse(text));
  } catch (e) {
    throw new FreeTumorError(
      'invalid_argument',
      `data set ${d.name}: list file is not {labeled: [...], unlabeled: [...]} (${(e as Error).message.split('\n')[0]})`,
    );
  }
  const base = dirname(resolve(d.path));
  const toCase = (labeled: boolean) => (e: { image: string; label: string; id?: string }, i: number) => ({
    id: e.id ?? `${labeled ? 'l' : 'u'}${String(i).padStart(5, '0')}`,
    image: resolve(base, e.image),
    label: resolve(base, e.label),
    labeled,
  });
  return [...parsed.labeled.map(toCase(true)), ...parsed.unlabeled.map(toCase(false))];
}
