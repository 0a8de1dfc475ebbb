/**
 * What the classes of a segmentation mask are, for every output that names them: the DICOM-SEG
 * segments (SNOMED CT codes, CID 7150 categories), the ITK-SNAP / Slicer label tables, the statistics
 * and the preview. One structure per non-background class of the model: the organ and its tumor.
 * Colours follow 3D Slicer's GenericAnatomyColors for the organs; tumors are red.
 */
import type { OrganName } from '../labels/labelmap.ts';

export interface Code {
  value: string;
  scheme: 'SCT' | 'DCM';
  meaning: string;
}

export interface Structure {
  /** Class id in the mask. */
  classId: number;
  /** e.g. "liver", "liver tumor". */
  name: string;
  kind: 'organ' | 'tumor';
  category: Code;
  type: Code;
  /** Where the structure lies (tumors: their organ). */
  region?: Code;
  rgb: [number, number, number];
}

const ANATOMICAL_STRUCTURE: Code = { value: '123037004', scheme: 'SCT', meaning: 'Anatomical Structure' };
const ALTERED_STRUCTURE: Code = {
  value: '49755003',
  scheme: 'SCT',
  meaning: 'Morphologically Altered Structure',
};
const NEOPLASM: Code = { value: '108369006', scheme: 'SCT', meaning: 'Neoplasm' };

export const ORGAN_CODES: Readonly<Record<OrganName, Code>> = {
  liver: { value: '10200004', scheme: 'SCT', meaning: 'Liver' },
  pancreas: { value: '15776009', scheme: 'SCT', meaning: 'Pancreas' },
  kidney: { value: '64033007', scheme: 'SCT', meaning: 'Kidney' },
};

const ORGAN_RGB: Readonly<Record<OrganName, [number, number, number]>> = {
  liver: [221, 130, 101],
  pancreas: [249, 180, 111],
  kidney: [185, 102, 83],
};
const TUMOR_RGB: [number, number, number] = [230, 40, 40];

/**
 * The structures of a mask whose class ids index `labels` (a model manifest's output channels,
 * background first), for `organ`. A class named like a tumor or lesion is that organ's tumor; any
 * other non-background class is the organ.
 */
export function maskStructures(labels: readonly string[], organ: OrganName): Structure[] {
  const out: Structure[] = [];
  labels.forEach((label, classId) => {
    if (classId === 0) return;
    const tumor = /tumou?r|lesion/i.test(label);
    out.push(
      tumor
        ? {
            classId,
            name: `${organ} tumor`,
            kind: 'tumor',
            category: ALTERED_STRUCTURE,
            type: NEOPLASM,
            region: ORGAN_CODES[organ],
            rgb: TUMOR_RGB,
          }
        : {
            classId,
            name: organ,
            kind: 'organ',
            category: ANATOMICAL_STRUCTURE,
            type: ORGAN_CODES[organ],
            rgb: ORGAN_RGB[organ],
          },
    );
  });
  return out;
}
