/**
 * The inputs of a folder of cases, as the one input reader (volume-input.ts) takes them: NIfTI files
 * (.nii / .nii.gz), zips of a DICOM series, and sub-folders holding a DICOM series. Used by data sets
 * (imagesTr/labelsTr), the demo's `--data` and `segment --input-dir`, so all three accept the same.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface InputEntry {
  /** The name without .nii / .nii.gz / .zip (a folder's name as is). */
  stem: string;
  path: string;
  kind: 'nifti' | 'dicom-zip' | 'dicom-folder';
}

const INPUT_NAME = /^(.+?)(\.nii\.gz|\.nii|\.zip)$/i;

/** The input entries of `dir` in name order (dot-files skipped) and how many other files it holds. */
export async function inputEntries(dir: string): Promise<{ entries: InputEntry[]; skipped: number }> {
  const found = await readdir(dir, { withFileTypes: true });
  found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const entries: InputEntry[] = [];
  let skipped = 0;
  for (const e of found) {
    if (e.name.startsWith('.')) continue;
    const m = INPUT_NAME.exec(e.name);
    if (e.isDirectory()) entries.push({ stem: e.name, path: join(dir, e.name), kind: 'dicom-folder' });
    else if (e.isFile() && m)
      entries.push({ stem: m[1], path: join(dir, e.name), kind: /zip$/i.test(m[2]) ? 'dicom-zip' : 'nifti' });
    else skipped++;
  }
  return { entries, skipped };
}

/** Case `id`'s file in `dir`: id.nii.gz, id.nii, id.zip or the DICOM folder id; null if none. */
export function findCaseInput(dir: string, id: string, preferExt?: string): string | null {
  const names = [...(preferExt ? [`${id}${preferExt}`] : []), `${id}.nii.gz`, `${id}.nii`, `${id}.zip`, id];
  return names.map((n) => join(dir, n)).find((p) => existsSync(p)) ?? null;
}

/**
 * A NIfTI path for `input`: the file itself when it is NIfTI, else the DICOM series converted to
 * `out` (.nii.gz), stored in the axis order of `like` (a NIfTI label of the case) when given, so that
 * image and label share one storage grid for code that compares voxel arrays.
 */
export async function asNiftiFile(input: string, out: string, like?: string): Promise<string> {
  const { readVolume } = await import('./volume-input.ts');
  if (/\.nii(\.gz)?$/i.test(input)) return input;
  let volume = await readVolume(input, 'image');
  if (like) {
    const { axcodes, applyReorientation, reorientationTo } = await import(
      '../../shared/geometry/orientation.ts'
    );
    const codes = axcodes((await readVolume(like, 'label')).affine);
    volume = applyReorientation(volume, reorientationTo(volume.affine, codes));
  }
  const { writeNifti } = await import('../../shared/volume/nifti.ts');
  const { mkdir, writeFile } = await import('node:fs/promises');
  const { dirname } = await import('node:path');
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, writeNifti(volume));
  return out;
}
