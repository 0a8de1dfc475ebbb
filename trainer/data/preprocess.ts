/**
 * Preprocessing with shared/ (the same code the edge runs): canonical RAS, resampling to the
 * target spacing (linear image, nearest label), HU window to [0, 1], label map to the merged scheme
 * of the data set's organ, then a crop to the image foreground (MONAI CropForeground, image > 0).
 * Results are cached on disk, keyed by the files' SHA-256 and the preprocessing parameters.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FreeTumorError } from '../../shared/errors.ts';
import { affinesClose } from '../../shared/geometry/affine.ts';
import { boundingBox, cropOrPad } from '../../shared/geometry/crop.ts';
import { toCanonical } from '../../shared/geometry/orientation.ts';
import { resampleToSpacing } from '../../shared/geometry/resample.ts';
import { windowHU } from '../../shared/intensity/window.ts';
import { type OrganName, parseLabelMap, toMergedScheme } from '../../shared/labels/labelmap.ts';
import type { Dims3, Volume } from '../../shared/volume/volume.ts';
import { inputKey, readVolume } from '../io/volume-input.ts';
import { encodeCase, type TrainingCase } from './case.ts';
import type { SourceCase } from './dataset.ts';

/** Bumped when preprocessing changes, so old cache entries are not reused. */
export const PREPROCESS_VERSION = 1;

export interface PreprocessParams {
  spacing: Dims3;
  window: [number, number];
  labelMap: string;
  organ: OrganName;
}

export function preprocessVolumes(
  id: string,
  image: Volume,
  label: Volume,
  p: PreprocessParams,
  labeled: boolean,
): TrainingCase {
  // Compared in canonical order: a DICOM series (stored LPS) and a NIfTI label of it (often stored
  // RAS) are one grid when their canonical dims and affines agree.
  const canonImage = toCanonical(image).volume;
  const canonLabel = toCanonical(label).volume;
  if (
    canonImage.dims.join() !== canonLabel.dims.join() ||
    !affinesClose(canonImage.affine, canonLabel.affine, 1e-3)
  ) {
    throw new FreeTumorError('invalid_geometry', `case ${id}: image and label grids differ`);
  }
  const img = resampleToSpacing(canonImage, p.spacing, 'linear');
  const lab = resampleToSpacing(canonLabel, p.spacing, 'nearest');
  let windowed = windowHU(img.data, p.window[0], p.window[1]);
  let merged = toMergedScheme(lab.data, parseLabelMap(p.labelMap), p.organ);
  let dims = img.dims;
  const box = boundingBox(windowed, dims, (v) => v > 0);
  if (box && box.size.join() !== dims.join()) {
    windowed = cropOrPad({ ...img, data: windowed }, box.start, box.size, 0).data as Float32Array;
    merged = cropOrPad({ ...lab, data: merged, datatype: 'uint8' }, box.start, box.size, 0)
      .data as Uint8Array;
    dims = box.size;
  }
  return { id, dims, image: windowed, label: merged, organ: p.organ, labeled };
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Preprocesses a case (or reuses its cache entry) and returns the cache file path. */
export async function preprocessToCache(
  c: SourceCase,
  p: PreprocessParams,
  cacheDir: string,
): Promise<string> {
  // NIfTI files or DICOM series (trainer/io); a NIfTI key is the file's SHA-256, as before.
  const [imageKey, labelKey] = await Promise.all([inputKey(c.image), inputKey(c.label)]).catch(() => {
    throw new FreeTumorError('not_found', `case ${c.id}: image or label file cannot be read`);
  });
  const key = sha256(
    new TextEncoder().encode(
      JSON.stringify({
        v: PREPROCESS_VERSION,
        image: imageKey,
        label: labelKey,
        labeled: c.labeled,
        ...p,
      }),
    ),
  );
  const path = join(cacheDir, `${key.slice(0, 40)}.ftcase`);
  if (existsSync(path)) return path;
  const tc = preprocessVolumes(
    c.id,
    await readVolume(c.image, 'image'),
    await readVolume(c.label, 'label'),
    p,
    c.labeled,
  );
  await mkdir(cacheDir, { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, encodeCase(tc));
  await rename(tmp, path);
  return path;
}
