/**
 * The one way every command reads a CT or label volume: a NIfTI file (.nii / .nii.gz), a folder
 * holding one DICOM series (sub-folders included), or a zip of one. The kind is found from the bytes
 * (gzip / NIfTI header, zip magic, DICM magic) and whether the path is a folder, never from the name.
 * Errors are one line that names the limit or the problem, never the path, a file name or a header
 * field: user paths and DICOM patient data do not reach logs.
 */
import { createHash } from 'node:crypto';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { isDicomPart10 } from '../../shared/dicom/detect.ts';
import type { DicomFile, DicomSource } from '../../shared/dicom/read-series.ts';
import { DEFAULT_DICOM_LIMITS, type DicomLimits } from '../../shared/dicom/series.ts';
import { isZip } from '../../shared/dicom/zip.ts';
import { FreeTumorError, LimitError } from '../../shared/errors.ts';
import type { NiftiReadInfo } from '../../shared/volume/nifti.ts';
import type { Volume } from '../../shared/volume/volume.ts';
import { readNiftiHeaderNode, readNiftiNodeAsync } from './nifti-node.ts';

export type InputKind = 'nifti' | 'dicom-folder' | 'dicom-zip';

export interface VolumeInput {
  volume: Volume;
  kind: InputKind;
  /** The NIfTI header facts (kind nifti). */
  nifti?: NiftiReadInfo;
  /** The series read and what a DICOM-SEG must reference (dicom kinds). */
  dicom?: DicomSource;
}

export interface ReadVolumeOptions {
  /** SeriesInstanceUID to read when a DICOM input holds several series. */
  series?: string;
  dicomLimits?: Partial<DicomLimits>;
}

/** Help text of the commands' --series option. */
export const SERIES_OPTION_HELP =
  'DICOM input holding several series: the SeriesInstanceUID to read (the error for such input lists them)';

/** Folder depth searched for DICOM files (PACS exports nest patient/study/series folders). */
const MAX_FOLDER_DEPTH = 8;

export async function readVolumeInput(
  path: string,
  what: string,
  options: ReadVolumeOptions = {},
): Promise<VolumeInput> {
  const info = await stat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new FreeTumorError('not_found', `${what} not found`);
    throw new FreeTumorError('invalid_argument', `${what} cannot be read (${e.code ?? 'error'})`);
  });
  const limits = { ...DEFAULT_DICOM_LIMITS, ...options.dicomLimits };
  if (info.isDirectory()) {
    const files = await listFolder(path, limits);
    return { ...(await readDicom(files, options, what)), kind: 'dicom-folder' };
  }
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    throw new FreeTumorError(
      'invalid_argument',
      `${what} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  return readVolumeBytes(bytes, what, options);
}

/** readVolumeInput for the bytes of a file already read: NIfTI, or a zip of a DICOM series. */
export async function readVolumeBytes(
  bytes: Uint8Array,
  what: string,
  options: ReadVolumeOptions = {},
): Promise<VolumeInput> {
  if (isZip(bytes)) {
    const { zipEntries } = await import('../../shared/dicom/zip.ts');
    const files = zipEntries(bytes, { ...DEFAULT_DICOM_LIMITS, ...options.dicomLimits });
    return { ...(await readDicom(files, options, what)), kind: 'dicom-zip' };
  }
  if (isDicomPart10(bytes)) {
    throw new FreeTumorError(
      'invalid_argument',
      `${what} is a single DICOM file (one slice); pass the folder (or a zip) of the whole series`,
    );
  }
  // Inflated by Node's native zlib on its thread pool (nifti-node.ts), the same checks as the
  // shared reader: a command can read two inputs at once, or work while one inflates.
  const header = readNiftiHeaderNode(bytes);
  return { volume: await readNiftiNodeAsync(bytes, header), kind: 'nifti', nifti: header };
}

/**
 * A content key of an input for caches: the SHA-256 of a file's bytes (so a NIfTI key is the plain
 * file hash), or for a folder the SHA-256 over its files' relative names and hashes.
 */
export async function inputKey(path: string): Promise<string> {
  const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
  if (!(await stat(path)).isDirectory()) return sha(await readFile(path));
  const h = createHash('sha256');
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) h.update(`${relative(path, p)}\0${sha(await readFile(p))}\n`);
    }
  };
  await walk(path);
  return h.digest('hex');
}

/** readVolumeInput's volume only. */
export async function readVolume(
  path: string,
  what: string,
  options: ReadVolumeOptions = {},
): Promise<Volume> {
  return (await readVolumeInput(path, what, options)).volume;
}

async function readDicom(
  files: DicomFile[],
  options: ReadVolumeOptions,
  what: string,
): Promise<{ volume: Volume; dicom: DicomSource }> {
  const { readDicomSeries } = await import('../../shared/dicom/read-series.ts');
  const { NODE_DICOM_DECODERS } = await import('./dicom-codecs.ts');
  if (files.length === 0) throw new FreeTumorError('not_found', `${what} holds no files`);
  const r = await readDicomSeries(files, {
    series: options.series,
    decoders: NODE_DICOM_DECODERS,
    limits: options.dicomLimits,
  });
  return { volume: r.volume, dicom: r.source };
}

/** Regular files under `root` (no dot-files, no symbolic links), as DicomFiles read on demand. */
export async function listFolder(
  root: string,
  limits: DicomLimits = DEFAULT_DICOM_LIMITS,
): Promise<DicomFile[]> {
  const out: DicomFile[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (depth < MAX_FOLDER_DEPTH) await walk(p, depth + 1);
      } else if (e.isFile()) {
        if (out.length >= limits.maxFiles)
          throw new LimitError('files in the DICOM folder', limits.maxFiles, `over ${limits.maxFiles}`);
        out.push(fileSource(p, (await stat(p)).size));
      }
    }
  };
  await walk(root, 0);
  return out;
}

function fileSource(path: string, size: number): DicomFile {
  return {
    size,
    read: async () => new Uint8Array(await readFile(path)),
    readHead: async (bytes: number) => {
      const fh = await open(path, 'r');
      try {
        const buf = new Uint8Array(Math.min(bytes, size));
        const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
        return buf.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
    },
  };
}
