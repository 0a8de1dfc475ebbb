/**
 * A mask of class ids -> a DICOM Segmentation (PS3.3 A.51, SOP class 1.2.840.10008.5.1.4.1.1.66.4),
 * BINARY, one segment per structure with its SNOMED CT codes and recommended colour, written by dcmjs
 * (Explicit VR Little Endian). Frames are the non-empty (segment, slice) pairs, segment-major.
 *
 * Geometry comes from the mask's own grid, so no orientation is guessed: column i of slice k lies
 * along the grid's first axis, row j along its second (PixelSpacing = their lengths), and each frame's
 * ImagePositionPatient is voxel (0, 0, k) in LPS. For a DICOM source the grid is the source stack
 * (series.ts sorted its slices along the normal), frame k derives from source slice k, and the SEG
 * joins the source's study, patient and frame of reference. For other input a new study, series and
 * frame of reference are made (`newStudy`) and patient attributes are left empty.
 */
import dcmjs from 'dcmjs';
import { FreeTumorError } from '../errors.ts';
import type { Code, Structure } from '../segmentation/structures.ts';
import type { Volume } from '../volume/volume.ts';
import { PATIENT_STUDY_TAGS } from './instance.ts';
import type { DicomSource } from './read-series.ts';

export const SEG_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.66.4';
const EXPLICIT_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
/** This software's implementation class UID (a fixed UUID-derived 2.25 UID). */
const IMPLEMENTATION_CLASS_UID = '2.25.312754251052275092390050687411268179826';

/** A new UID under the UUID root 2.25 (PS3.5 B.2): no registered org root needed. */
export function newUid(): string {
  return `2.25.${BigInt(`0x${crypto.randomUUID().replace(/-/g, '')}`).toString()}`;
}

export interface SegWriteOptions {
  software: { name: string; version: string };
  /** The model that made the mask (SegmentAlgorithmName). */
  algorithm: { name: string; version: string };
  seriesDescription?: string;
  /** Defaults to now. */
  date?: Date;
}

export interface SegWriteResult {
  bytes: Uint8Array;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  frames: number;
  /** True when the input was not DICOM: new study, series and frame of reference UIDs. */
  newStudy: boolean;
}

const code = (c: Code) => ({ CodeValue: c.value, CodingSchemeDesignator: c.scheme, CodeMeaning: c.meaning });

const ds = (x: number) => {
  // DS is at most 16 characters.
  const s = Number(x.toPrecision(12)).toString();
  return s.length <= 16 ? s : x.toExponential(8);
};

function dateTime(d: Date): { date: string; time: string } {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return {
    date: `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}`,
    time: `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`,
  };
}

/** The grid's slice plane in LPS: cosines, spacings, and the position of each slice's first voxel. */
function planeGeometry(mask: Volume) {
  const a = mask.affine;
  const col = (c: number) => [-a[c], -a[4 + c], a[8 + c]]; // RAS -> LPS
  const ci = col(0);
  const cj = col(1);
  const ck = col(2);
  const len = (v: number[]) => Math.hypot(v[0], v[1], v[2]);
  const si = len(ci);
  const sj = len(cj);
  const r = ci.map((x) => x / si);
  const c = cj.map((x) => x / sj);
  if (Math.abs(r[0] * c[0] + r[1] * c[1] + r[2] * c[2]) > 1e-3) {
    throw new FreeTumorError(
      'invalid_geometry',
      'the mask grid is sheared in-plane; a DICOM-SEG frame needs orthogonal row and column directions',
    );
  }
  const origin = [-a[3], -a[7], a[11]];
  const normal = [r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0]];
  const step = Math.abs(ck[0] * normal[0] + ck[1] * normal[1] + ck[2] * normal[2]);
  return {
    orientation: [...r, ...c],
    pixelSpacing: [sj, si],
    sliceStep: step,
    position: (k: number) => [0, 1, 2].map((x) => origin[x] + k * ck[x]),
  };
}

export function writeDicomSeg(
  mask: Volume<Uint8Array>,
  structures: Structure[],
  source: DicomSource | null,
  options: SegWriteOptions,
): SegWriteResult {
  const [nx, ny, nz] = mask.dims;
  if (source && source.slices.length !== nz) {
    throw new Error('internal: the mask has a different slice count than its DICOM source');
  }
  if (structures.length === 0)
    throw new FreeTumorError('invalid_argument', 'a DICOM-SEG needs at least one segment');
  const geo = planeGeometry(mask);
  const plane = nx * ny;
  // Frames: every (segment, slice) with at least one voxel, segment-major, slices in grid order.
  const frames: Array<{ segment: number; k: number; classId: number }> = [];
  structures.forEach((s, si) => {
    for (let k = 0; k < nz; k++) {
      const slice = mask.data.subarray(k * plane, (k + 1) * plane);
      if (slice.includes(s.classId)) frames.push({ segment: si + 1, k, classId: s.classId });
    }
  });
  // BitsAllocated 1: frames are packed back to back, LSB first, no padding between frames.
  // Packed directly (dcmjs's BitArray.pack would need an unpacked copy of all frames first).
  const bits = new Uint8Array(Math.max(1, Math.ceil((frames.length * plane) / 8)));
  frames.forEach((f, n) => {
    const slice = mask.data.subarray(f.k * plane, (f.k + 1) * plane);
    const base = n * plane;
    for (let p = 0; p < plane; p++) {
      if (slice[p] === f.classId) {
        const b = base + p;
        bits[b >> 3] |= 1 << (b & 7);
      }
    }
  });
  // OB values have even length.
  const pixelData = bits.length % 2 ? new Uint8Array([...bits, 0]) : bits;

  const newStudy = source === null;
  const studyInstanceUid = source?.studyInstanceUid || newUid();
  const seriesInstanceUid = newUid();
  const sopInstanceUid = newUid();
  const frameOfReferenceUid = source?.frameOfReferenceUid || newUid();
  const when = dateTime(options.date ?? new Date());
  const dimensionOrganizationUid = newUid();
  const sourcePurpose = {
    CodeValue: '121322',
    CodingSchemeDesignator: 'DCM',
    CodeMeaning: 'Source image for image processing operation',
  };
  const dataset: Record<string, unknown> = {
    _vrMap: { PixelData: 'OB' },
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: SEG_SOP_CLASS,
    SOPInstanceUID: sopInstanceUid,
    Modality: 'SEG',
    StudyInstanceUID: studyInstanceUid,
    SeriesInstanceUID: seriesInstanceUid,
    SeriesNumber: 300,
    SeriesDescription: options.seriesDescription ?? 'FreeTumor segmentation',
    InstanceNumber: 1,
    FrameOfReferenceUID: frameOfReferenceUid,
    PositionReferenceIndicator: '',
    Manufacturer: options.software.name,
    ManufacturerModelName: options.algorithm.name,
    DeviceSerialNumber: '0',
    SoftwareVersions: options.software.version,
    ContentDate: when.date,
    ContentTime: when.time,
    TimezoneOffsetFromUTC: '+0000',
    ContentLabel: 'SEGMENTATION',
    ContentDescription: `${options.algorithm.name} ${options.algorithm.version}`.slice(0, 64),
    ContentCreatorName: '',
    ImageType: ['DERIVED', 'PRIMARY'],
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: ny,
    Columns: nx,
    BitsAllocated: 1,
    BitsStored: 1,
    HighBit: 0,
    PixelRepresentation: 0,
    LossyImageCompression: '00',
    SegmentationType: 'BINARY',
    SegmentsOverlap: 'NO',
    NumberOfFrames: frames.length,
    DimensionOrganizationType: '3D',
    DimensionOrganizationSequence: [{ DimensionOrganizationUID: dimensionOrganizationUid }],
    DimensionIndexSequence: [
      {
        DimensionOrganizationUID: dimensionOrganizationUid,
        DimensionIndexPointer: 0x0062000b, // ReferencedSegmentNumber
        FunctionalGroupPointer: 0x0062000a, // SegmentIdentificationSequence
        DimensionDescriptionLabel: 'ReferencedSegmentNumber',
      },
      {
        DimensionOrganizationUID: dimensionOrganizationUid,
        DimensionIndexPointer: 0x00200032, // ImagePositionPatient
        FunctionalGroupPointer: 0x00209113, // PlanePositionSequence
        DimensionDescriptionLabel: 'ImagePositionPatient',
      },
    ],
    SegmentSequence: structures.map((s, i) => ({
      SegmentNumber: i + 1,
      SegmentLabel: s.name,
      SegmentAlgorithmType: 'AUTOMATIC',
      SegmentAlgorithmName: options.algorithm.name,
      SegmentedPropertyCategoryCodeSequence: [code(s.category)],
      SegmentedPropertyTypeCodeSequence: [code(s.type)],
      ...(s.region ? { AnatomicRegionSequence: [code(s.region)] } : {}),
      RecommendedDisplayCIELabValue: dcmjs.data.Colors.rgb82DICOMLAB(s.rgb),
    })),
    SharedFunctionalGroupsSequence: [
      {
        PlaneOrientationSequence: [{ ImageOrientationPatient: geo.orientation.map(ds) }],
        PixelMeasuresSequence: [
          {
            PixelSpacing: geo.pixelSpacing.map(ds),
            SliceThickness: ds(geo.sliceStep),
            SpacingBetweenSlices: ds(geo.sliceStep),
          },
        ],
      },
    ],
    PerFrameFunctionalGroupsSequence: frames.map((f) => ({
      FrameContentSequence: [{ DimensionIndexValues: [f.segment, f.k + 1] }],
      PlanePositionSequence: [{ ImagePositionPatient: geo.position(f.k).map(ds) }],
      SegmentIdentificationSequence: [{ ReferencedSegmentNumber: f.segment }],
      ...(source
        ? {
            DerivationImageSequence: [
              {
                SourceImageSequence: [
                  {
                    ReferencedSOPClassUID: source.slices[f.k].sopClassUid,
                    ReferencedSOPInstanceUID: source.slices[f.k].sopInstanceUid,
                    PurposeOfReferenceCodeSequence: [sourcePurpose],
                  },
                ],
                DerivationCodeSequence: [
                  { CodeValue: '113076', CodingSchemeDesignator: 'DCM', CodeMeaning: 'Segmentation' },
                ],
              },
            ],
          }
        : {}),
    })),
    ...(source
      ? {
          ReferencedSeriesSequence: [
            {
              SeriesInstanceUID: source.seriesInstanceUid,
              ReferencedInstanceSequence: source.slices.map((s) => ({
                ReferencedSOPClassUID: s.sopClassUid,
                ReferencedSOPInstanceUID: s.sopInstanceUid,
              })),
            },
          ],
        }
      : {}),
    PixelData: pixelData.buffer,
  };
  if (!source) {
    Object.assign(dataset, {
      PatientName: '',
      PatientID: '',
      PatientBirthDate: '',
      PatientSex: '',
      StudyDate: when.date,
      StudyTime: when.time,
      ReferringPhysicianName: '',
      StudyID: '',
      AccessionNumber: '',
    });
  }
  const { DicomDict, DicomMetaDictionary } = dcmjs.data;
  const meta = DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: SEG_SOP_CLASS,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: EXPLICIT_LITTLE_ENDIAN,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: `FREETUMOR_${options.software.version}`
      .replace(/[^A-Z0-9_.]/gi, '_')
      .slice(0, 16),
  });
  const dict = new DicomDict(meta);
  dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  if (source) {
    // The patient and study of the source, copied as raw elements: never decoded to text here.
    for (const tag of Object.values(PATIENT_STUDY_TAGS)) {
      const entry = source.patientStudy[tag];
      if (entry) dict.dict[tag] = entry;
      else dict.dict[tag] ??= { vr: tagVr(tag), Value: [] };
    }
  }
  return {
    bytes: new Uint8Array(dict.write()),
    studyInstanceUid,
    seriesInstanceUid,
    sopInstanceUid,
    frames: frames.length,
    newStudy,
  };
}

const PATIENT_STUDY_VR: Record<string, string> = {
  '00100010': 'PN',
  '00100020': 'LO',
  '00100021': 'LO',
  '00100030': 'DA',
  '00100040': 'CS',
  '00080020': 'DA',
  '00080030': 'TM',
  '00080050': 'SH',
  '00080090': 'PN',
  '00200010': 'SH',
  '00081030': 'LO',
};

function tagVr(tag: string): string {
  return PATIENT_STUDY_VR[tag] ?? 'LO';
}
