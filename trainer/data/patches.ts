/**
 * Crops and augmentations on patches (notes §5): RandCropByPosNegLabel-style centres, the
 * reference's random flips / rot90 / intensity scale and shift, and the CutMix-style slab swap.
 * A patch is a [pz, py, px] block (x fastest) like a Volume. All randomness comes from the Rng given.
 */
import type { Rng } from '../../shared/random.ts';
import { type Dims3, voxelCount } from '../../shared/volume/volume.ts';

export interface Patch {
  dims: Dims3;
  image: Float32Array;
  label: Uint8Array;
}

/** Copies the block at `start` (may stick out of the volume: zero fill) of size `size`. */
export function extractPatch(
  image: Float32Array,
  label: Uint8Array,
  dims: Dims3,
  start: Dims3,
  size: Dims3,
): Patch {
  const [nx, ny, nz] = dims;
  const [px, py, pz] = size;
  const outImage = new Float32Array(px * py * pz);
  const outLabel = new Uint8Array(px * py * pz);
  const x0 = Math.max(0, start[0]);
  const x1 = Math.min(nx, start[0] + px);
  if (x1 <= x0) return { dims: [...size], image: outImage, label: outLabel };
  for (let z = 0; z < pz; z++) {
    const k = start[2] + z;
    if (k < 0 || k >= nz) continue;
    for (let y = 0; y < py; y++) {
      const j = start[1] + y;
      if (j < 0 || j >= ny) continue;
      const src = x0 + nx * (j + ny * k);
      const dst = x0 - start[0] + px * (y + py * z);
      outImage.set(image.subarray(src, src + x1 - x0), dst);
      outLabel.set(label.subarray(src, src + x1 - x0), dst);
    }
  }
  return { dims: [...size], image: outImage, label: outLabel };
}

/**
 * Crop start for a centre: the crop is kept inside the volume where the volume is large enough
 * (MONAI moves centres inward), and centred on the volume where it is smaller (zero padding).
 */
export function cropStart(center: Dims3, dims: Dims3, size: Dims3): Dims3 {
  return [0, 1, 2].map((a) => {
    if (dims[a] <= size[a]) return Math.floor((dims[a] - size[a]) / 2);
    const s = center[a] - Math.floor(size[a] / 2);
    return Math.min(Math.max(s, 0), dims[a] - size[a]);
  }) as Dims3;
}

/** The (i, j, k) of a flat voxel index (i fastest). */
export function unravel(index: number, dims: Dims3): Dims3 {
  const i = index % dims[0];
  const j = Math.floor(index / dims[0]) % dims[1];
  const k = Math.floor(index / (dims[0] * dims[1]));
  return [i, j, k];
}

/**
 * Where crops go, as fractions (normalised to sum 1): centred on a real tumor voxel, on an organ
 * voxel, on a body voxel (unlabeled, image above air), or (`air`) half to fully outside the
 * preprocessed volume. A class the case lacks passes its share on (tumor -> organ -> body), so
 * unlabeled cases centre on the organ instead.
 *
 * Why not the reference's pos/neg over any labeled voxel: tumors are ~0.1-0.3% of a labeled CT, so
 * "positive" crops land on the organ most of the time and a tumor is in a crop rarely; negatives
 * could land in air anywhere. Balancing by class keeps tumors in the batches.
 *
 * Why air crops: training volumes are cropped to the body (as the reference's CropForeground), but
 * sliding-window inference covers the whole field of view, where many windows hold air only. With
 * instance normalisation a constant patch normalises to zero, and a model that never saw one
 * called it organ (measured: the demo's models labeled ~30% of their organ volume in air). Crops
 * beyond the volume's edge are zero-filled, which is air after the window.
 */
export interface CropClasses {
  tumor: number;
  organ: number;
  body: number;
  air: number;
}

/** The windowed intensity above which a voxel is body, not air (window [-175, 250] HU: > -175 HU). */
export const BODY_THRESHOLD = 0;

interface ClassIndices {
  tumor: Uint32Array;
  organ: Uint32Array;
}

/** Voxel indices of tumor (label 2) and organ (label 1), computed once per label array. */
const classCache = new WeakMap<Uint8Array, ClassIndices>();

export function classIndices(label: Uint8Array): ClassIndices {
  let c = classCache.get(label);
  if (!c) {
    let nt = 0;
    let no = 0;
    for (let i = 0; i < label.length; i++) {
      if (label[i] === 2) nt++;
      else if (label[i] === 1) no++;
    }
    c = { tumor: new Uint32Array(nt), organ: new Uint32Array(no) };
    nt = 0;
    no = 0;
    for (let i = 0; i < label.length; i++) {
      if (label[i] === 2) c.tumor[nt++] = i;
      else if (label[i] === 1) c.organ[no++] = i;
    }
    classCache.set(label, c);
  }
  return c;
}

export type CropClass = keyof CropClasses;

/** The class a crop is drawn from, after passing the share of a class the case lacks on. */
export function pickCropClass(
  classes: CropClasses,
  has: { tumor: boolean; organ: boolean },
  rng: Rng,
): CropClass {
  const total = classes.tumor + classes.organ + classes.body + classes.air;
  const u = rng.random() * (total > 0 ? total : 1);
  let c: CropClass = 'body';
  if (total > 0) {
    if (u < classes.tumor) c = 'tumor';
    else if (u < classes.tumor + classes.organ) c = 'organ';
    else if (u < classes.tumor + classes.organ + classes.body) c = 'body';
    else c = 'air';
  }
  if (c === 'tumor' && !has.tumor) c = 'organ';
  if (c === 'organ' && !has.organ) c = 'body';
  return c;
}

/** pickCropClass for a case, with the classes its label holds. */
function drawCropClass(label: Uint8Array, classes: CropClasses, rng: Rng): CropClass {
  const idx = classIndices(label);
  return pickCropClass(classes, { tumor: idx.tumor.length > 0, organ: idx.organ.length > 0 }, rng);
}

/**
 * The start of a crop of `size` drawn from `classes` (see CropClasses): centred on a voxel of its
 * class (kept inside the volume as cropStart does), or for `air` pushed beyond one random edge of
 * the volume by half to all of its size (the other axes uniform), so it holds air only or a
 * sliver of the body's edge.
 */
export function sampleCropStart(
  image: Float32Array,
  label: Uint8Array,
  dims: Dims3,
  size: Dims3,
  classes: CropClasses,
  rng: Rng,
): Dims3 {
  const c = drawCropClass(label, classes, rng);
  if (c !== 'air') return cropStart(centerOfClass(image, label, dims, c, rng), dims, size);
  const axis = rng.int(0, 2);
  const far = rng.random() < 0.5;
  const out = rng.int(Math.ceil(size[axis] / 2), size[axis]);
  return [0, 1, 2].map((a) => {
    if (a !== axis) return rng.int(Math.min(0, dims[a] - size[a]), Math.max(0, dims[a] - size[a]));
    return far ? dims[a] - size[a] + out : -out;
  }) as Dims3;
}

/**
 * A crop centre of the class drawn from `classes` (see CropClasses; `air` counts as body here): a
 * uniform voxel of that class; body voxels by rejection sampling (label 0 and image >
 * BODY_THRESHOLD), falling back to any voxel.
 */
export function sampleCenter(
  image: Float32Array,
  label: Uint8Array,
  dims: Dims3,
  classes: CropClasses,
  rng: Rng,
): Dims3 {
  const c = drawCropClass(label, classes, rng);
  return centerOfClass(image, label, dims, c === 'air' ? 'body' : c, rng);
}

function centerOfClass(
  image: Float32Array,
  label: Uint8Array,
  dims: Dims3,
  c: Exclude<CropClass, 'air'>,
  rng: Rng,
): Dims3 {
  if (c !== 'body') {
    const list = classIndices(label)[c];
    return unravel(list[rng.int(0, list.length - 1)], dims);
  }
  const n = voxelCount(dims);
  let v = rng.int(0, n - 1);
  for (let t = 0; t < 64 && (label[v] !== 0 || !(image[v] > BODY_THRESHOLD)); t++) v = rng.int(0, n - 1);
  return unravel(v, dims);
}

export interface AugmentProbabilities {
  flip: number;
  rot90: number;
  scale: number;
  shift: number;
}

/** The reference's MONAI transforms: RandFlip p 0.2 per axis, RandRotate90 p 0.2, RandScale/ShiftIntensity ±0.1 p 0.1. */
export const REFERENCE_AUGMENT: AugmentProbabilities = { flip: 0.2, rot90: 0.2, scale: 0.1, shift: 0.1 };

function flipAxis(data: Float32Array | Uint8Array, dims: Dims3, axis: 0 | 1 | 2): void {
  const [nx, ny] = dims;
  const stride = [1, nx, nx * ny][axis];
  const len = dims[axis];
  const outer = voxelCount(dims) / len;
  for (let o = 0; o < outer; o++) {
    // Decompose o into the two other coordinates.
    let base: number;
    if (axis === 0) base = o * nx;
    else if (axis === 1) base = (o % nx) + Math.floor(o / nx) * nx * ny;
    else base = o;
    for (let a = 0, b = len - 1; a < b; a++, b--) {
      const ia = base + a * stride;
      const ib = base + b * stride;
      const t = data[ia];
      data[ia] = data[ib];
      data[ib] = t;
    }
  }
}

/** Rotates by k quarter turns in the x-y (axial) plane; needs nx == ny. */
function rot90xy<T extends Float32Array | Uint8Array>(data: T, dims: Dims3, k: number): T {
  const [n, , nz] = dims;
  let src = data;
  for (let r = 0; r < k; r++) {
    const out = new (src.constructor as { new (len: number): T })(src.length);
    for (let z = 0; z < nz; z++) {
      const off = n * n * z;
      for (let y = 0; y < n; y++) {
        for (let x = 0; x < n; x++) out[off + y + n * (n - 1 - x)] = src[off + x + n * y];
      }
    }
    src = out;
  }
  return src;
}

/** Applies the random augmentations in place (returns the patch, whose arrays may be replaced). */
export function augmentPatch(p: Patch, rng: Rng, prob: AugmentProbabilities = REFERENCE_AUGMENT): Patch {
  for (const axis of [0, 1, 2] as const) {
    if (rng.random() < prob.flip) {
      flipAxis(p.image, p.dims, axis);
      flipAxis(p.label, p.dims, axis);
    }
  }
  if (rng.random() < prob.rot90) {
    const k = rng.int(1, 3);
    if (p.dims[0] === p.dims[1]) {
      p.image = rot90xy(p.image, p.dims, k);
      p.label = rot90xy(p.label, p.dims, k);
    }
  }
  if (rng.random() < prob.scale) {
    const f = 1 + rng.uniform(-0.1, 0.1);
    for (let i = 0; i < p.image.length; i++) p.image[i] *= f;
  }
  if (rng.random() < prob.shift) {
    const o = rng.uniform(-0.1, 0.1);
    for (let i = 0; i < p.image.length; i++) p.image[i] += o;
  }
  return p;
}

/**
 * The reference "mixup" (utils/mixup.py), a CutMix slab swap over the batch: a random permutation
 * pairs crops; lambda = floor(Beta(0.2, 0.2) * side); along y with p 0.5, else x (never z), each crop
 * keeps its first lambda slices and takes the rest from its partner; labels likewise. Returns new arrays.
 */
export function cutmixSlabs(
  images: Float32Array,
  labels: Uint8Array,
  batch: number,
  dims: Dims3,
  rng: Rng,
): { images: Float32Array; labels: Uint8Array } {
  const n = voxelCount(dims);
  const perm = rng.shuffle(Array.from({ length: batch }, (_, i) => i));
  const axis = rng.random() < 0.5 ? 1 : 0;
  const lambda = Math.floor(rng.beta(0.2, 0.2) * dims[axis]);
  const outImages = images.slice();
  const outLabels = labels.slice();
  const [nx, ny, nz] = dims;
  for (let b = 0; b < batch; b++) {
    const partner = perm[b];
    if (partner === b) continue;
    for (let z = 0; z < nz; z++) {
      for (let y = 0; y < ny; y++) {
        const row = nx * (y + ny * z);
        if (axis === 1) {
          if (y < lambda) continue;
          const dst = b * n + row;
          const src = partner * n + row;
          outImages.set(images.subarray(src, src + nx), dst);
          outLabels.set(labels.subarray(src, src + nx), dst);
        } else {
          for (let x = lambda; x < nx; x++) {
            outImages[b * n + row + x] = images[partner * n + row + x];
            outLabels[b * n + row + x] = labels[partner * n + row + x];
          }
        }
      }
    }
  }
  return { images: outImages, labels: outLabels };
}
