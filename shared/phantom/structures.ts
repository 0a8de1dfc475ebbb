/**
 * The phantom's structure codes (the rich `organs` map), their CT numbers in a portal-venous
 * phase, their texture, and how they collapse onto the FreeTumor abdomen label scheme.
 */

/** Codes of the `organs` volume. Stable: tests and debugging tools may rely on them. */
export const STRUCTURE = {
  air: 0,
  skin: 1,
  subcutaneousFat: 2,
  muscle: 3,
  visceralFat: 4,
  lung: 5,
  heart: 6,
  liver: 7,
  hepaticVessel: 8,
  gallbladder: 9,
  spleen: 10,
  kidneyCortex: 11,
  kidneyMedulla: 12,
  renalSinus: 13,
  pancreas: 14,
  stomachWall: 15,
  stomachContent: 16,
  bowelWall: 17,
  bowelContent: 18,
  stool: 19,
  gas: 20,
  aorta: 21,
  ivc: 22,
  portalVein: 23,
  artery: 24,
  vein: 25,
  boneCortical: 26,
  boneCancellous: 27,
  disc: 28,
  spinalCanal: 29,
  rib: 30,
  diaphragm: 31,
  liverTumor: 32,
  pancreasTumor: 33,
  kidneyTumor: 34,
  tableShell: 35,
  tableCore: 36,
} as const;

export type StructureName = keyof typeof STRUCTURE;

/** Name of each code, indexed by code. */
export const STRUCTURE_NAMES: StructureName[] = (() => {
  const names: StructureName[] = [];
  for (const [name, code] of Object.entries(STRUCTURE)) names[code] = name as StructureName;
  return names;
})();

/** FreeTumor abdomen scheme. */
export const FREETUMOR_LABELS = {
  background: 0,
  liver: 1,
  liverTumor: 2,
  pancreas: 3,
  pancreasTumor: 4,
  kidney: 5,
  kidneyTumor: 6,
} as const;

/** Structure code -> FreeTumor label (intra-hepatic vessels count as liver, the renal sinus does not count as kidney). */
export const LABEL_OF_STRUCTURE: Uint8Array = (() => {
  const t = new Uint8Array(256);
  t[STRUCTURE.liver] = FREETUMOR_LABELS.liver;
  t[STRUCTURE.hepaticVessel] = FREETUMOR_LABELS.liver;
  t[STRUCTURE.liverTumor] = FREETUMOR_LABELS.liverTumor;
  t[STRUCTURE.pancreas] = FREETUMOR_LABELS.pancreas;
  t[STRUCTURE.pancreasTumor] = FREETUMOR_LABELS.pancreasTumor;
  t[STRUCTURE.kidneyCortex] = FREETUMOR_LABELS.kidney;
  t[STRUCTURE.kidneyMedulla] = FREETUMOR_LABELS.kidney;
  t[STRUCTURE.kidneyTumor] = FREETUMOR_LABELS.kidneyTumor;
  return t;
})();

/**
 * CT number of each structure as `base + enhancement * e`, where e (about 1) is the seed's
 * contrast timing, so organs brighten together from scan to scan as they do in real series.
 * Values are typical portal-venous means (liver ~100, spleen ~110, pancreas ~90, kidney
 * cortex ~160, aorta ~180, fat ~-100, muscle ~50, cancellous bone ~300, cortical ~800).
 */
const HU: Record<StructureName, [number, number]> = {
  air: [-1000, 0],
  skin: [40, 0],
  subcutaneousFat: [-105, 0],
  muscle: [52, 0],
  visceralFat: [-95, 0],
  lung: [-850, 0],
  heart: [40, 90],
  liver: [55, 45],
  hepaticVessel: [40, 130],
  gallbladder: [8, 0],
  spleen: [50, 60],
  kidneyCortex: [35, 125],
  kidneyMedulla: [35, 85],
  renalSinus: [-70, 0],
  pancreas: [40, 50],
  stomachWall: [40, 40],
  stomachContent: [15, 0],
  bowelWall: [40, 45],
  bowelContent: [22, 0],
  stool: [-120, 0],
  gas: [-1000, 0],
  aorta: [40, 140],
  ivc: [40, 115],
  portalVein: [40, 130],
  artery: [40, 140],
  vein: [40, 115],
  boneCortical: [800, 0],
  boneCancellous: [300, 0],
  disc: [90, 0],
  spinalCanal: [15, 0],
  rib: [550, 0],
  diaphragm: [50, 0],
  // Tumor voxels take their host's value and are darkened by the lesion itself.
  liverTumor: [55, 45],
  pancreasTumor: [40, 50],
  kidneyTumor: [35, 125],
  tableShell: [200, 0],
  tableCore: [-930, 0],
};

/** Standard deviation (HU) of the smooth texture field per structure: heterogeneity, mottled stool, lung. */
const TEXTURE: Partial<Record<StructureName, number>> = {
  subcutaneousFat: 6,
  visceralFat: 8,
  muscle: 6,
  lung: 35,
  heart: 6,
  liver: 5,
  spleen: 5,
  kidneyCortex: 6,
  kidneyMedulla: 8,
  pancreas: 9,
  stomachContent: 8,
  bowelContent: 10,
  stool: 170,
  boneCancellous: 45,
  liverTumor: 7,
  pancreasTumor: 7,
  kidneyTumor: 10,
};

/** HU of every code for a contrast timing `e`. */
export function huTable(e: number): Float32Array {
  const t = new Float32Array(256);
  for (const [name, [base, enh]] of Object.entries(HU)) t[STRUCTURE[name as StructureName]] = base + enh * e;
  return t;
}

export function textureTable(): Float32Array {
  const t = new Float32Array(256);
  for (const [name, sd] of Object.entries(TEXTURE)) t[STRUCTURE[name as StructureName]] = sd;
  return t;
}
