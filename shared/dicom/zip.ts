/**
 * A zip of a DICOM series as `DicomFile`s (fflate). Nothing is extracted to disk (no path from the
 * archive is ever used, so "../" names cannot escape), entries are inflated one at a time when read,
 * and the declared sizes are checked against the limits before any inflation: a zip bomb costs at most
 * one entry of `maxFileBytes`. Folders, macOS resource forks and nested archives are not followed.
 */
import { unzipSync } from 'fflate';
import { FreeTumorError, LimitError } from '../errors.ts';
import type { DicomFile } from './read-series.ts';
import { DEFAULT_DICOM_LIMITS, type DicomLimits } from './series.ts';

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 3 || bytes[2] === 5);
}

function unzip(zip: Uint8Array, filter: Parameters<typeof unzipSync>[1]): Record<string, Uint8Array> {
  try {
    return unzipSync(zip, filter);
  } catch (e) {
    if (e instanceof FreeTumorError) throw e;
    throw new FreeTumorError('invalid_argument', 'the zip archive is corrupt or uses an unsupported feature');
  }
}

export function zipEntries(zip: Uint8Array, limits: Partial<DicomLimits> = {}): DicomFile[] {
  const lim = { ...DEFAULT_DICOM_LIMITS, ...limits };
  const entries: Array<{ index: number; size: number }> = [];
  let index = 0;
  unzip(zip, {
    filter: (f) => {
      const i = index++;
      const skip = f.name.endsWith('/') || f.name.startsWith('__MACOSX/') || f.originalSize === 0;
      if (!skip) {
        if (entries.length >= lim.maxFiles)
          throw new LimitError('files in the DICOM zip', lim.maxFiles, `over ${lim.maxFiles}`);
        entries.push({ index: i, size: f.originalSize });
      }
      return false;
    },
  });
  return entries.map(({ index: target, size }) => ({
    size,
    read: async () => {
      if (size > lim.maxFileBytes) throw new LimitError('DICOM file bytes', lim.maxFileBytes, size);
      let i = 0;
      const out = Object.values(unzip(zip, { filter: () => i++ === target }));
      if (out.length !== 1) throw new FreeTumorError('invalid_argument', 'a zip entry could not be read');
      return out[0];
    },
  }));
}
