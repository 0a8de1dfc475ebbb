/**
 * A procedural abdominal CT phantom: the embedded default data for the demo and for tests on
 * a fresh clone. One seed gives one patient: body wall (skin, subcutaneous fat, muscle, ribs),
 * lung bases and heart above the diaphragm, liver (with portal and hepatic veins, gallbladder),
 * spleen, kidneys (cortex, medulla, sinus fat), pancreas, stomach, duodenum, colon and small
 * bowel (fluid, stool, gas), aorta, IVC, portal system, renal vessels, vertebrae, paraspinal
 * and psoas muscles, in a portal-venous phase with correlated noise and partial-volume edges.
 *
 * Outputs share one affine: RAS+, identity rotation, isotropic spacing, grid centred on world
 * (0, 0, 0). `ct` is int16 HU, `label` the FreeTumor abdomen scheme (0 bg, 1 liver, 2 liver
 * tumor, 3 pancreas, 4 pancreas tumor, 5 kidney, 6 kidney tumor), `organs` the richer
 * structure map (codes in `STRUCTURE`, names in `STRUCTURE_NAMES`) for debugging and tests.
 * Anatomy is in millimetres, so a coarse or small grid shows the same patient, only coarser
 * or cropped. Optional `tumors` adds real-looking hypodense lesions labelled 2/4/6.
 */
import { FreeTumorError, LimitError } from '../errors.ts';
import { isOrganName, ORGAN_CHOICES } from '../labels/organs.ts';
import { Rng } from '../random.ts';
import { type Dims3, makeVolume, type Volume, voxelCount } from '../volume/volume.ts';
import { DEFAULT_FOV_MM, paintAnatomy } from './anatomy.ts';
import { addTexture, addWhiteNoise, BLUR121_NOISE_GAIN, blur121 } from './noise.ts';
import { centredGrid, type Grid, gridAffine, mirrorX } from './raster.ts';
import { FREETUMOR_LABELS, huTable, LABEL_OF_STRUCTURE, textureTable } from './structures.ts';
import { addTumors, type PhantomTumor, type TumorRequest } from './tumors.ts';

export { DEFAULT_FOV_MM } from './anatomy.ts';
export { FREETUMOR_LABELS, STRUCTURE, STRUCTURE_NAMES } from './structures.ts';
export type { PhantomOrgan, PhantomTumor, TumorRequest } from './tumors.ts';
export { parseTumorSpec } from './tumors.ts';

export interface PhantomOptions {
  seed: number;
  /** Isotropic voxel size in mm (default 1.5). */
  spacing?: number;
  /** Grid size [nx, ny, nz]; 'default' (or absent) covers DEFAULT_FOV_MM at `spacing`. */
  size?: Dims3 | 'default';
  /** Lesions to add, e.g. [{organ: 'liver', count: 2}]. */
  tumors?: TumorRequest[];
  /** Standard deviation of the image noise in HU (default 12; 0 for none). */
  noiseHU?: number;
}

export interface Phantom {
  ct: Volume<Int16Array>;
  label: Volume<Uint8Array>;
  organs: Volume<Uint8Array>;
  tumors: PhantomTumor[];
  seed: number;
}

export const DEFAULT_SPACING_MM = 1.5;
export const DEFAULT_NOISE_HU = 12;
/** Largest grid generatePhantom accepts (voxels): about 0.8 GB of working memory. */
export const MAX_PHANTOM_VOXELS = 64 * 1024 * 1024;
const MIN_SPACING_MM = 0.3;
const MAX_SPACING_MM = 20;
const MAX_TUMORS_PER_ORGAN = 20;
const MAX_SEED = 0xffffffff;

/** Grid dims for `options` (after validation). */
export function phantomDims(spacing: number, size: Dims3 | 'default' | undefined): Dims3 {
  if (size === undefined || size === 'default') {
    return DEFAULT_FOV_MM.map((fov) => Math.max(1, Math.round(fov / spacing))) as Dims3;
  }
  return [...size] as Dims3;
}

export function generatePhantom(options: PhantomOptions): Phantom {
  const opts = validate(options);
  const dims = phantomDims(opts.spacing, opts.size);
  if (voxelCount(dims) > MAX_PHANTOM_VOXELS) {
    throw new LimitError('phantom voxel count', MAX_PHANTOM_VOXELS, voxelCount(dims));
  }
  const g = centredGrid(dims, opts.spacing);
  // Independent streams, drawn in a fixed order, so that adding tumors leaves the anatomy and noise unchanged.
  const master = new Rng(opts.seed);
  const anatomyRng = master.fork();
  const textureRng = master.fork();
  const noiseRng = master.fork();
  const tumorRng = master.fork();
  const contrast = master.uniform(0.88, 1.12);

  const codes = new Uint8Array(voxelCount(dims));
  paintAnatomy(g, codes, anatomyRng);
  const hu = tissueHU(g, codes, contrast, textureRng);
  const tumors = addTumors(g, codes, hu, opts.tumors, tumorRng);
  finishImage(g, hu, opts.noiseHU, noiseRng);

  const affine = gridAffine(g);
  const ct = new Int16Array(hu.length);
  for (let i = 0; i < hu.length; i++) {
    const v = Math.round(hu[i]);
    ct[i] = v < -1024 ? -1024 : Math.min(v, 3071);
  }
  const label = new Uint8Array(codes.length);
  for (let i = 0; i < codes.length; i++) label[i] = LABEL_OF_STRUCTURE[codes[i]];
  // The anatomy frame has +x toward the patient's left; NIfTI's RAS+ has it toward the right.
  for (const data of [ct, label, codes]) mirrorX(data, dims);
  for (const t of tumors) t.centreMm[0] = t.centreMm[0] === 0 ? 0 : -t.centreMm[0];
  return {
    ct: makeVolume(dims, ct, affine, 'int16'),
    label: makeVolume(dims, label, affine, 'uint8'),
    organs: makeVolume(dims, codes, affine, 'uint8'),
    tumors,
    seed: opts.seed,
  };
}

function tissueHU(g: Grid, codes: Uint8Array, contrast: number, rng: Rng): Float32Array {
  const table = huTable(contrast);
  const hu = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i++) hu[i] = table[codes[i]];
  addTexture(g, hu, codes, textureTable(), rng, 8);
  return hu;
}

/** White noise scaled so that after the [1 2 1] blur (partial volume) its standard deviation is `noiseHU`. */
function finishImage(g: Grid, hu: Float32Array, noiseHU: number, rng: Rng): void {
  if (noiseHU > 0) addWhiteNoise(hu, rng, noiseHU / BLUR121_NOISE_GAIN);
  blur121(hu, g.dims);
}

interface ValidOptions {
  seed: number;
  spacing: number;
  size: Dims3 | 'default';
  tumors: TumorRequest[];
  noiseHU: number;
}

function validate(o: PhantomOptions): ValidOptions {
  const bad = (msg: string): never => {
    throw new FreeTumorError('invalid_argument', msg);
  };
  // Rng takes 32 bits: larger seeds would silently alias smaller ones.
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed > MAX_SEED) {
    bad(`phantom seed must be an integer from 0 to ${MAX_SEED}, got ${o.seed}`);
  }
  const spacing = o.spacing ?? DEFAULT_SPACING_MM;
  if (!(Number.isFinite(spacing) && spacing >= MIN_SPACING_MM && spacing <= MAX_SPACING_MM)) {
    bad(`phantom spacing must be between ${MIN_SPACING_MM} and ${MAX_SPACING_MM} mm, got ${spacing}`);
  }
  const size = o.size ?? 'default';
  if (size !== 'default') {
    if (!Array.isArray(size) || size.length !== 3 || !size.every((n) => Number.isInteger(n) && n >= 1)) {
      bad('phantom size must be three positive integers [nx, ny, nz]');
    }
  }
  const noiseHU = o.noiseHU ?? DEFAULT_NOISE_HU;
  if (!(Number.isFinite(noiseHU) && noiseHU >= 0 && noiseHU <= 200)) {
    bad(`phantom noiseHU must be between 0 and 200, got ${noiseHU}`);
  }
  const tumors = o.tumors ?? [];
  for (const t of tumors) {
    if (!isOrganName(t.organ)) {
      bad(`phantom tumor organ must be ${ORGAN_CHOICES}, got ${JSON.stringify(t.organ)}`);
    }
    if (!Number.isInteger(t.count) || t.count < 0 || t.count > MAX_TUMORS_PER_ORGAN) {
      bad(`phantom tumor count must be an integer from 0 to ${MAX_TUMORS_PER_ORGAN}, got ${t.count}`);
    }
  }
  return { seed: o.seed, spacing, size, tumors, noiseHU };
}

export interface LabelVolumesMl {
  liver: number;
  liverTumor: number;
  pancreas: number;
  pancreasTumor: number;
  kidney: number;
  kidneyTumor: number;
}

/** Volume (ml) of each FreeTumor label in a label volume with an isotropic or anisotropic affine. */
export function labelVolumesMl(label: Volume<Uint8Array>): LabelVolumesMl {
  const counts = new Float64Array(256);
  for (let i = 0; i < label.data.length; i++) counts[label.data[i]]++;
  const a = label.affine;
  const voxelMl =
    Math.abs(
      a[0] * (a[5] * a[10] - a[6] * a[9]) -
        a[1] * (a[4] * a[10] - a[6] * a[8]) +
        a[2] * (a[4] * a[9] - a[5] * a[8]),
    ) / 1000;
  const ml = (v: number) => Math.round(counts[v] * voxelMl * 10) / 10;
  const L = FREETUMOR_LABELS;
  return {
    liver: ml(L.liver),
    liverTumor: ml(L.liverTumor),
    pancreas: ml(L.pancreas),
    pancreasTumor: ml(L.pancreasTumor),
    kidney: ml(L.kidney),
    kidneyTumor: ml(L.kidneyTumor),
  };
}

/** Voxel count of each structure code in the `organs` map (for summaries and tests). */
export function structureCounts(organs: Volume<Uint8Array>): Map<number, number> {
  const counts = new Map<number, number>();
  for (let i = 0; i < organs.data.length; i++)
    counts.set(organs.data[i], (counts.get(organs.data[i]) ?? 0) + 1);
  return counts;
}
