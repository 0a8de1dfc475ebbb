/**
 * A DICOM series (the files of a folder or a zip, handed in as `DicomFile`s) -> one Volume in HU with
 * the exact affine, plus what a derived object (DICOM-SEG) must reference.
 *
 * Two passes keep memory bounded: the first parses headers only (a file's head when the source can
 * read one) and checks the stack (series.ts); the volume is then allocated once and each slice is read,
 * decoded and rescaled into it in turn, so at most one file's bytes are held beside the volume.
 * Files without the DICM magic (READMEs, thumbnails) and DICOMDIRs are skipped and counted; objects
 * without pixel data (SR, presentation states) do not form series.
 */
import { FreeTumorError, LimitError } from '../errors.ts';
import type { Affine, Volume } from '../volume/volume.ts';
import { type DicomInstance, parseInstanceHeader, readPixelData } from './instance.ts';
import { checkPixelFormat, outputDatatype, rescaleInto } from './pixels.ts';
import { decodeRle } from './rle.ts';
import {
  DEFAULT_DICOM_LIMITS,
  type DicomLimits,
  groupSeries,
  type SeriesSummary,
  selectSeries,
  stackGeometry,
  summarize,
} from './series.ts';
import { type FrameDecoders, type PixelEncoding, pixelEncodingOf } from './transfer-syntax.ts';

export interface DicomFile {
  /** Size in bytes, checked against the limit before reading. */
  size: number;
  /** The whole file. */
  read(): Promise<Uint8Array>;
  /** The first `bytes` bytes (sources that can read a part cheaply). */
  readHead?(bytes: number): Promise<Uint8Array>;
}

export interface ReadDicomOptions {
  /** SeriesInstanceUID to read when the input holds several series. */
  series?: string;
  /** Decoders for compressed transfer syntaxes (RLE is built in). */
  decoders?: FrameDecoders;
  limits?: Partial<DicomLimits>;
}

/** What a derived object needs to reference its source; patient/study tags are raw, never printed. */
export interface DicomSource {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  frameOfReferenceUid: string;
  modality: string;
  transferSyntax: string;
  /** Whether any slice has RescaleSlope != 1 or RescaleIntercept != 0 (applied to the volume). */
  rescaled: boolean;
  /** Per slice k (the volume's third index): the source instance. */
  slices: Array<{ sopClassUid: string; sopInstanceUid: string }>;
  /** The other series found beside the one read. */
  otherSeries: SeriesSummary[];
  skippedFiles: number;
  /** Raw patient / study tag entries of the first slice (instance.ts PATIENT_STUDY_TAGS). */
  patientStudy: Record<string, { vr: string; Value?: unknown[] }>;
}

export interface DicomSeriesVolume {
  volume: Volume;
  source: DicomSource;
}

const HEAD_BYTES = 64 * 1024;
const DEFLATED = '1.2.840.10008.1.2.1.99';

type Indexed = DicomInstance & { file: number };

export async function readDicomSeries(
  files: DicomFile[],
  options: ReadDicomOptions = {},
): Promise<DicomSeriesVolume> {
  const limits = { ...DEFAULT_DICOM_LIMITS, ...options.limits };
  if (files.length > limits.maxFiles)
    throw new LimitError('files in the DICOM input', limits.maxFiles, files.length);
  const decoders: FrameDecoders = { rle: decodeRle, ...options.decoders };
  const headers: Indexed[] = [];
  let skipped = 0;
  for (let f = 0; f < files.length; f++) {
    const file = files[f];
    if (file.size > limits.maxFileBytes)
      throw new LimitError('DICOM file bytes', limits.maxFileBytes, file.size);
    if (file.size < 132) {
      skipped++;
      continue;
    }
    // A head is trusted only when its parse reached the pixel data (every header element before it
    // was whole) and the dataset is not deflated (a cut deflate stream is not a cut dataset).
    let header =
      file.readHead && file.size > HEAD_BYTES
        ? parseInstanceHeader(await file.readHead(HEAD_BYTES))
        : 'truncated';
    if (
      header === 'truncated' ||
      (header !== null && (!header.hasPixelData || header.transferSyntax === DEFLATED))
    )
      header = parseInstanceHeader(await file.read());
    if (header === 'truncated')
      throw new FreeTumorError('invalid_argument', `DICOM file ${f + 1} of the input cannot be parsed`);
    if (header === null) {
      skipped++;
      continue;
    }
    headers.push({ ...header, file: f });
  }
  const groups = groupSeries(headers);
  const chosen = selectSeries(groups, options.series);
  const first = chosen[0];
  for (const inst of chosen) checkPixelFormat(inst);
  const syntaxes = new Set(chosen.map((i) => i.transferSyntax));
  const encodings = new Map<string, PixelEncoding>();
  for (const uid of syntaxes) encodings.set(uid, pixelEncodingOf(uid, decoders));
  const geometry = stackGeometry(chosen, limits);
  const datatype = outputDatatype(chosen);
  const sliceVoxels = first.rows * first.columns;
  const data =
    datatype === 'int16'
      ? new Int16Array(sliceVoxels * chosen.length)
      : new Float32Array(sliceVoxels * chosen.length);
  for (let k = 0; k < geometry.order.length; k++) {
    const inst = chosen[geometry.order[k]];
    const encoding = encodings.get(inst.transferSyntax)!;
    const bytes = await files[inst.file].read();
    const pixels = readPixelData(bytes, encoding !== 'native');
    const stored =
      encoding === 'native'
        ? pixels
        : await decoders[encoding]!(pixels, {
            rows: inst.rows,
            columns: inst.columns,
            bitsAllocated: inst.bitsAllocated,
            signed: inst.signed,
          });
    rescaleInto(stored, inst, data, k * sliceVoxels);
  }
  const volume: Volume = { dims: geometry.dims, data, affine: geometry.affine as Affine, datatype };
  const slices = geometry.order.map((i) => ({
    sopClassUid: chosen[i].sopClassUid,
    sopInstanceUid: chosen[i].sopInstanceUid,
  }));
  return {
    volume,
    source: {
      studyInstanceUid: first.studyInstanceUid,
      seriesInstanceUid: first.seriesInstanceUid,
      frameOfReferenceUid: first.frameOfReferenceUid,
      modality: first.modality,
      transferSyntax: first.transferSyntax,
      rescaled: chosen.some((i) => i.slope !== 1 || i.intercept !== 0),
      slices,
      otherSeries: summarize(groups).filter((s) => s.seriesInstanceUid !== first.seriesInstanceUid),
      skippedFiles: skipped,
      patientStudy: first.patientStudy,
    },
  };
}
