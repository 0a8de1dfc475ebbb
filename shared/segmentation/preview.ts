/**
 * `segment --preview`: an axial and a coronal slice through the centroid of the largest lesion (the
 * organ's centroid when there is none, else the volume centre), CT in a HU window with the organ and
 * tumor tinted, side by side. Radiological convention: patient right on the image left (marked "R",
 * patient left "L"), anterior at the top of the axial panel, superior at the top of the coronal one.
 * Pixels are square in millimetres (thick slices are stretched, not squashed).
 */
import { encode } from 'fast-png';
import { applyAffine, invertAffine } from '../geometry/affine.ts';
import { type Reorientation, toCanonical } from '../geometry/orientation.ts';
import { HU_WINDOW } from '../intensity/window.ts';
import { type Affine, type Dims3, spacingOf, type Volume } from '../volume/volume.ts';
import type { Structure } from './structures.ts';

export interface SegmentPreviewOptions {
  /** World (RAS mm) point the slices go through; default: the mask's organ centroid or centre. */
  focusMm?: [number, number, number];
  window?: readonly [number, number];
  /** Longer side of each panel in pixels. */
  panelSize?: number;
}

const ALPHA = { organ: 0.3, tumor: 0.55 };
const GAP = 8;

// 5x7 glyphs of the side markers.
const GLYPHS: Record<'L' | 'R', string[]> = {
  L: ['10000', '10000', '10000', '10000', '10000', '10000', '11111'],
  R: ['11110', '10001', '10001', '11110', '10100', '10010', '10001'],
};

interface Panel {
  width: number;
  height: number;
  /** Canonical voxel index per pixel, -1 outside. */
  voxel: Int32Array;
}

function panel(dims: Dims3, spacing: Dims3, plane: 'axial' | 'coronal', at: number, size: number): Panel {
  const [nx, ny, nz] = dims;
  const widthMm = nx * spacing[0];
  const heightMm = plane === 'axial' ? ny * spacing[1] : nz * spacing[2];
  const mmPerPixel = Math.max(widthMm, heightMm) / size;
  const width = Math.max(1, Math.round(widthMm / mmPerPixel));
  const height = Math.max(1, Math.round(heightMm / mmPerPixel));
  const voxel = new Int32Array(width * height);
  for (let row = 0; row < height; row++) {
    for (let col = 0; col < width; col++) {
      // Canonical RAS: i grows to the patient's right, so the image's left column is the largest i.
      const i = nx - 1 - Math.min(nx - 1, Math.floor(((col + 0.5) * mmPerPixel) / spacing[0]));
      const down = Math.floor(((row + 0.5) * mmPerPixel) / (plane === 'axial' ? spacing[1] : spacing[2]));
      const j = plane === 'axial' ? ny - 1 - Math.min(ny - 1, down) : at;
      const k = plane === 'axial' ? at : nz - 1 - Math.min(nz - 1, down);
      voxel[row * width + col] = i + nx * (j + ny * k);
    }
  }
  return { width, height, voxel };
}

function centroidOf(mask: Volume<Uint8Array>, classes: Set<number>): [number, number, number] | null {
  const [nx, ny] = mask.dims;
  let n = 0;
  const s = [0, 0, 0];
  for (let v = 0; v < mask.data.length; v++) {
    if (!classes.has(mask.data[v])) continue;
    n++;
    s[0] += v % nx;
    s[1] += Math.floor(v / nx) % ny;
    s[2] += Math.floor(v / (nx * ny));
  }
  return n ? (s.map((x) => x / n) as [number, number, number]) : null;
}

function drawGlyph(rgba: Uint8Array, stride: number, glyph: string[], x0: number, y0: number, scale: number) {
  const put = (x: number, y: number, v: number) => {
    const o = 4 * (y * stride + x);
    if (o < 0 || o + 3 >= rgba.length || x < 0 || x >= stride) return;
    rgba[o] = v;
    rgba[o + 1] = v;
    rgba[o + 2] = v;
  };
  // Black outline first, then white strokes, so the letter reads on any background.
  for (const [dx, dy, v] of [
    [-1, 0, 0],
    [1, 0, 0],
    [0, -1, 0],
    [0, 1, 0],
    [0, 0, 255],
  ]) {
    glyph.forEach((line, gy) => {
      for (let gx = 0; gx < line.length; gx++) {
        if (line[gx] !== '1') continue;
        for (let sy = 0; sy < scale; sy++)
          for (let sx = 0; sx < scale; sx++) put(x0 + gx * scale + sx + dx, y0 + gy * scale + sy + dy, v);
      }
    });
  }
}

/** The canonical voxel the two panels go through: the focus point (world mm), else the organ centroid. */
export function previewFocus(
  dims: Dims3,
  affine: Affine,
  options: SegmentPreviewOptions,
  organCentroid: () => number[] | null,
): Dims3 {
  let focus: number[];
  if (options.focusMm) focus = applyAffine(invertAffine(affine), options.focusMm);
  else focus = organCentroid() ?? dims.map((d) => (d - 1) / 2);
  return focus.map((x, a) => Math.min(dims[a] - 1, Math.max(0, Math.round(x)))) as Dims3;
}

/**
 * The two panels from the canonical grid's axial plane k = at[2] and coronal plane j = at[1]:
 * `axial(i, j)` and `coronal(i, k)` give the HU and the class id there. The one renderer of the
 * whole-volume preview and of the CLI's streaming one (which keeps only those two planes).
 */
export function renderPreviewPlanes(
  dims: Dims3,
  spacing: Dims3,
  at: Dims3,
  planes: {
    axialHu: ArrayLike<number>;
    axialClass: ArrayLike<number>;
    coronalHu: ArrayLike<number>;
    coronalClass: ArrayLike<number>;
  },
  structures: Structure[],
  options: SegmentPreviewOptions = {},
): { width: number; height: number; data: Uint8Array } {
  const [nx, ny] = dims;
  const size = options.panelSize ?? 384;
  const panels = [panel(dims, spacing, 'axial', at[2], size), panel(dims, spacing, 'coronal', at[1], size)];
  const width = panels[0].width + GAP + panels[1].width;
  const height = Math.max(panels[0].height, panels[1].height);
  const rgba = new Uint8Array(width * height * 4);
  for (let p = 3; p < rgba.length; p += 4) rgba[p] = 255;
  const [lo, hi] = options.window ?? HU_WINDOW;
  const tint = new Map(structures.map((s) => [s.classId, { rgb: s.rgb, alpha: ALPHA[s.kind] }]));
  let x0 = 0;
  panels.forEach((pn, n) => {
    const hu = n === 0 ? planes.axialHu : planes.coronalHu;
    const cls = n === 0 ? planes.axialClass : planes.coronalClass;
    for (let row = 0; row < pn.height; row++) {
      for (let col = 0; col < pn.width; col++) {
        const v = pn.voxel[row * pn.width + col];
        // Canonical v = i + nx * (j + ny * k): the plane index is (i, j) axially, (i, k) coronally.
        const i = v % nx;
        const q = n === 0 ? Math.floor(v / nx) % ny : Math.floor(v / (nx * ny));
        const g = Math.round(Math.min(1, Math.max(0, (hu[i + nx * q] - lo) / (hi - lo))) * 255);
        const t = tint.get(cls[i + nx * q]);
        const o = 4 * (row * width + x0 + col);
        for (let c = 0; c < 3; c++) rgba[o + c] = t ? Math.round(g * (1 - t.alpha) + t.rgb[c] * t.alpha) : g;
      }
    }
    const scale = Math.max(2, Math.round(pn.height / 96));
    const top = Math.round(pn.height / 2 - 3.5 * scale);
    drawGlyph(rgba, width, GLYPHS.R, x0 + scale, top, scale);
    drawGlyph(rgba, width, GLYPHS.L, x0 + pn.width - 6 * scale, top, scale);
    x0 += pn.width + GAP;
  });
  return { width, height, data: rgba };
}

/** The organ classes of a structure list (what the focus falls back to). */
export function organClasses(structures: Structure[]): Set<number> {
  return new Set(structures.filter((s) => s.kind === 'organ').map((s) => s.classId));
}

/** RGBA pixels of the two panels (axial left, coronal right). */
export function renderSegmentPreview(
  image: Volume,
  mask: Volume<Uint8Array>,
  structures: Structure[],
  options: SegmentPreviewOptions = {},
): { width: number; height: number; data: Uint8Array } {
  const img = toCanonical(image).volume;
  const lab = toCanonical(mask).volume;
  const dims = img.dims;
  const at = previewFocus(dims, img.affine, options, () => centroidOf(lab, organClasses(structures)));
  const [nx, ny] = dims;
  const plane = nx * ny;
  const axial = at[2] * plane;
  // The coronal plane j = at[1]: row k of it is the row j of slice k.
  const coronalHu = new Float64Array(nx * dims[2]);
  const coronalClass = new Uint8Array(nx * dims[2]);
  for (let k = 0; k < dims[2]; k++) {
    const from = nx * at[1] + plane * k;
    for (let i = 0; i < nx; i++) {
      coronalHu[i + nx * k] = img.data[from + i];
      coronalClass[i + nx * k] = lab.data[from + i];
    }
  }
  return renderPreviewPlanes(
    dims,
    spacingOf(img.affine),
    at,
    {
      axialHu: img.data.subarray(axial, axial + plane),
      axialClass: lab.data.subarray(axial, axial + plane),
      coronalHu,
      coronalClass,
    },
    structures,
    options,
  );
}

/**
 * The centroid of some classes on a mask that goes by storage slice by storage slice, in the
 * canonical voxel coordinates `renderSegmentPreview` takes its fallback focus in. Index sums are
 * integers (exact in any order) and are mapped to canonical axes before the one division, so the
 * result equals the whole-volume centroid bit for bit.
 */
export class SliceCentroid {
  private readonly sums = [0, 0, 0];
  private n = 0;
  private k = 0;
  private readonly nx: number;
  private readonly classes: Set<number>;

  constructor(nx: number, classes: Set<number>) {
    this.nx = nx;
    this.classes = classes;
  }

  add(mask: ArrayLike<number>): void {
    const { nx, classes, sums } = this;
    for (let v = 0; v < mask.length; v++) {
      if (!classes.has(mask[v])) continue;
      this.n++;
      sums[0] += v % nx;
      sums[1] += Math.floor(v / nx);
      sums[2] += this.k;
    }
    this.k++;
  }

  /** The centroid on the canonical grid of `r` applied to input dims `dims`, or null when empty. */
  canonical(dims: Dims3, r: Reorientation): number[] | null {
    if (this.n === 0) return null;
    return [0, 1, 2].map((o) => {
      const ax = r.axes[o];
      const s = r.flips[o] ? (dims[ax] - 1) * this.n - this.sums[ax] : this.sums[ax];
      return s / this.n;
    });
  }
}

/**
 * Keeps the two preview planes (canonical axial k = at[2], coronal j = at[1]) of an image and its
 * mask read storage slice by storage slice: for `renderPreviewPlanes` without the whole volumes.
 */
export class PreviewPlaneCollector {
  readonly axialHu: Float64Array;
  readonly axialClass: Uint8Array;
  readonly coronalHu: Float64Array;
  readonly coronalClass: Uint8Array;
  private readonly dims: Dims3;
  private readonly r: Reorientation;
  private readonly canonicalDims: Dims3;
  /** The input index (along the input axis canonical axes 1 and 2 run along) of the two planes. */
  private readonly planeIndex: [number, number];
  private k = 0;

  constructor(dims: Dims3, r: Reorientation, at: Dims3) {
    this.dims = dims;
    this.r = r;
    this.canonicalDims = [dims[r.axes[0]], dims[r.axes[1]], dims[r.axes[2]]];
    const [cx, cy, cz] = this.canonicalDims;
    this.axialHu = new Float64Array(cx * cy);
    this.axialClass = new Uint8Array(cx * cy);
    this.coronalHu = new Float64Array(cx * cz);
    this.coronalClass = new Uint8Array(cx * cz);
    const inputIndex = (o: number) => (r.flips[o] ? dims[r.axes[o]] - 1 - at[o] : at[o]);
    this.planeIndex = [inputIndex(1), inputIndex(2)];
  }

  /** The next storage slice's HU and class ids (i + nx * j). */
  add(hu: ArrayLike<number>, mask: ArrayLike<number>): void {
    const k = this.k++;
    const [nx, ny] = this.dims;
    const { r } = this;
    const cx = this.canonicalDims[0];
    const idx = [0, 0, k];
    const canon = (o: number) => {
      const ax = r.axes[o];
      return r.flips[o] ? this.dims[ax] - 1 - idx[ax] : idx[ax];
    };
    // Canonical axis 2 (axial plane) and 1 (coronal plane): the input voxels on each plane.
    for (const [o, wanted] of [
      [2, this.planeIndex[1]],
      [1, this.planeIndex[0]],
    ] as const) {
      const ax = r.axes[o];
      if (ax === 2 && k !== wanted) continue;
      const iRange = ax === 0 ? [wanted, wanted] : [0, nx - 1];
      const jRange = ax === 1 ? [wanted, wanted] : [0, ny - 1];
      const huOut = o === 2 ? this.axialHu : this.coronalHu;
      const classOut = o === 2 ? this.axialClass : this.coronalClass;
      for (let j = jRange[0]; j <= jRange[1]; j++) {
        for (let i = iRange[0]; i <= iRange[1]; i++) {
          idx[0] = i;
          idx[1] = j;
          const q = canon(0) + cx * (o === 2 ? canon(1) : canon(2));
          huOut[q] = hu[i + nx * j];
          classOut[q] = mask[i + nx * j];
        }
      }
    }
  }
}

export function renderSegmentPreviewPng(
  image: Volume,
  mask: Volume<Uint8Array>,
  structures: Structure[],
  options: SegmentPreviewOptions = {},
): Uint8Array {
  const { width, height, data } = renderSegmentPreview(image, mask, structures, options);
  return encode({ width, height, data, channels: 4, depth: 8 });
}
