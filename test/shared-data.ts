/**
 * Where the real CT samples live (../shared/data beside the repository), or null when that
 * folder is absent, as on a user's fresh clone: tests use `describe.skipIf(!path)`.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../shared/data/', import.meta.url));

export function sharedData(relative: string): string | null {
  const p = root + relative;
  return existsSync(p) ? p : null;
}

export const TOTALSEG_CT = sharedData('totalseg-example/example_ct.nii.gz');
export const TOTALSEG_SEG = sharedData('totalseg-example/example_seg_v1_full.nii.gz');
export const DCMQI_CT = sharedData('dcmqi-ct3slice/ct.nii.gz');
export const DCMQI_LABEL = sharedData('dcmqi-ct3slice/label.nii.gz');
