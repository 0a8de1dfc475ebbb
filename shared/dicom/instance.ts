/**
 * One DICOM Part 10 file, parsed by dcmjs: the header fields a CT series needs (identity, geometry,
 * pixel format, rescale) and, on a second read, its pixel data. Patient and study attributes are kept
 * only as raw tag entries to copy into derived objects (DICOM-SEG); they are never turned into text
 * for a message or a log.
 */
import dcmjs from 'dcmjs';
import { FreeTumorError } from '../errors.ts';
import { isDicomPart10 } from './detect.ts';

// dcmjs warns on the console about odd values (which may quote them): keep it silent.
dcmjs.log.setLevel('silent');
dcmjs.log.getLogger('validation.dcmjs').setLevel('silent');

type TagDict = Record<string, { vr: string; Value?: unknown[] }>;

export const PIXEL_DATA_TAG = '7FE00010';
const DICOMDIR_SOP_CLASS = '1.2.840.10008.1.3.10';

/** Patient, study and equipment-free attributes a derived object copies from its source (PS3.3 C.7.1.1, C.7.2.1). */
export const PATIENT_STUDY_TAGS = {
  PatientName: '00100010',
  PatientID: '00100020',
  IssuerOfPatientID: '00100021',
  PatientBirthDate: '00100030',
  PatientSex: '00100040',
  StudyDate: '00080020',
  StudyTime: '00080030',
  AccessionNumber: '00080050',
  ReferringPhysicianName: '00080090',
  StudyID: '00200010',
  StudyDescription: '00081030',
} as const;

export interface DicomInstance {
  transferSyntax: string;
  sopClassUid: string;
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  frameOfReferenceUid: string;
  /** CS code (CT, MR, SEG, ...): not patient data. */
  modality: string;
  rows: number;
  columns: number;
  bitsAllocated: number;
  bitsStored: number;
  signed: boolean;
  samplesPerPixel: number;
  photometric: string;
  frames: number;
  /** ImagePositionPatient (LPS mm), ImageOrientationPatient, PixelSpacing [row, column]; null when absent. */
  position: [number, number, number] | null;
  orientation: [number, number, number, number, number, number] | null;
  pixelSpacing: [number, number] | null;
  slope: number;
  intercept: number;
  hasPixelData: boolean;
  /** Raw tag entries of PATIENT_STUDY_TAGS, for derived objects only. */
  patientStudy: TagDict;
}

function arrayBufferOf(bytes: Uint8Array): ArrayBuffer {
  if (
    bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength &&
    bytes.buffer instanceof ArrayBuffer
  )
    return bytes.buffer;
  return bytes.slice().buffer as ArrayBuffer;
}

function readDicom(bytes: Uint8Array, headerOnly: boolean) {
  try {
    return dcmjs.data.DicomMessage.readFile(
      arrayBufferOf(bytes),
      headerOnly ? { untilTag: PIXEL_DATA_TAG, includeUntilTagValue: false } : {},
    );
  } catch {
    // dcmjs's message may quote a value of the file: say only that it could not be parsed.
    return null;
  }
}

function values(dict: TagDict, tag: string): unknown[] {
  return dict[tag]?.Value ?? [];
}

function text(dict: TagDict, tag: string): string {
  const v = values(dict, tag)[0];
  return typeof v === 'string' ? v.trim() : '';
}

function num(dict: TagDict, tag: string, fallback: number): number {
  const v = values(dict, tag)[0];
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  return Number.isFinite(n) ? n : fallback;
}

function vector<N extends number>(dict: TagDict, tag: string, n: N): number[] | null {
  const v = values(dict, tag).map((x) => (typeof x === 'number' ? x : Number(x)));
  return v.length === n && v.every(Number.isFinite) ? v : null;
}

/**
 * Parses the header of a Part 10 file (stopping before the pixel data). `null` when the bytes are not
 * a DICOM file at all (no "DICM" magic: a README, a thumbnail...). A file that claims to be DICOM but
 * cannot be parsed is an error; `truncated` tells the caller to retry with the whole file.
 */
export function parseInstanceHeader(bytes: Uint8Array): DicomInstance | null | 'truncated' {
  if (!isDicomPart10(bytes)) return null;
  const parsed = readDicom(bytes, true);
  if (!parsed) return 'truncated';
  const meta = parsed.meta;
  const d = parsed.dict;
  const sopClassUid = text(meta, '00020002') || text(d, '00080016');
  if (sopClassUid === DICOMDIR_SOP_CLASS) return null;
  const patientStudy: TagDict = {};
  for (const tag of Object.values(PATIENT_STUDY_TAGS)) if (d[tag]) patientStudy[tag] = d[tag];
  return {
    transferSyntax: text(meta, '00020010'),
    sopClassUid,
    sopInstanceUid: text(d, '00080018') || text(meta, '00020003'),
    studyInstanceUid: text(d, '0020000D'),
    seriesInstanceUid: text(d, '0020000E'),
    frameOfReferenceUid: text(d, '00200052'),
    modality: text(d, '00080060')
      .replace(/[^A-Z0-9_ ]/g, '')
      .slice(0, 16),
    rows: num(d, '00280010', 0),
    columns: num(d, '00280011', 0),
    bitsAllocated: num(d, '00280100', 0),
    bitsStored: num(d, '00280101', num(d, '00280100', 0)),
    signed: num(d, '00280103', 0) === 1,
    samplesPerPixel: num(d, '00280002', 1),
    photometric: text(d, '00280004'),
    frames: num(d, '00280008', 1),
    position: vector(d, '00200032', 3) as DicomInstance['position'],
    orientation: vector(d, '00200037', 6) as DicomInstance['orientation'],
    pixelSpacing: vector(d, '00280030', 2) as DicomInstance['pixelSpacing'],
    slope: num(d, '00281053', 1),
    intercept: num(d, '00281052', 0),
    hasPixelData: PIXEL_DATA_TAG in d,
    patientStudy,
  };
}

/**
 * The pixel data of a single-frame file: the native bytes, or the compressed frame (its fragments
 * joined) for an encapsulated transfer syntax.
 */
export function readPixelData(bytes: Uint8Array, encapsulated: boolean): Uint8Array {
  const parsed = readDicom(bytes, false);
  const value = parsed?.dict[PIXEL_DATA_TAG]?.Value;
  if (!value || value.length === 0) {
    throw new FreeTumorError('truncated', 'a DICOM slice has no readable pixel data');
  }
  const parts = value.map((v) => new Uint8Array(v as ArrayBuffer));
  if (parts.length === 1) return parts[0];
  if (!encapsulated)
    throw new FreeTumorError('invalid_argument', 'native DICOM pixel data came in several parts');
  // dcmjs hands back one buffer per fragment when it cannot map fragments to frames: for a
  // single-frame image every fragment belongs to frame 1.
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
