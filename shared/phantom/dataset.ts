/**
 * The nnU-Net v2 layout for a set of phantom cases (imagesTr/<case>_0000.nii.gz,
 * labelsTr/<case>.nii.gz, dataset.json), which the trainer and synthesize-dataset read.
 */
import { FREETUMOR_LABELS } from './structures.ts';

export interface PhantomCasePaths {
  id: string;
  image: string;
  label: string;
}

/** Relative paths of case `index` (0-based): case_000, case_001, ... */
export function phantomCasePaths(index: number): PhantomCasePaths {
  const id = `case_${String(index).padStart(3, '0')}`;
  return { id, image: `imagesTr/${id}_0000.nii.gz`, label: `labelsTr/${id}.nii.gz` };
}

/** dataset.json for `numTraining` phantom cases, labels in the FreeTumor abdomen scheme. */
export function phantomDatasetJson(numTraining: number, firstSeed: number): Record<string, unknown> {
  const L = FREETUMOR_LABELS;
  return {
    name: 'FreeTumorPhantom',
    description: `Procedural abdominal CT phantoms (freetumor phantom), seeds ${firstSeed}..${firstSeed + numTraining - 1}`,
    channel_names: { '0': 'CT' },
    labels: {
      background: L.background,
      liver: L.liver,
      liver_tumor: L.liverTumor,
      pancreas: L.pancreas,
      pancreas_tumor: L.pancreasTumor,
      kidney: L.kidney,
      kidney_tumor: L.kidneyTumor,
    },
    numTraining,
    file_ending: '.nii.gz',
  };
}
