/**
 * `segment --preview`: an axial and a coronal slice through the centroid of the largest lesion (the
 * organ's centroid when there is none, else the volume centre), CT in a HU window with the organ and
 * tumor tinted, side by side. Radiological convention: patient right on the image left (marked "R",
 * patient left "L"), anterior at the top of the axial panel, superior at the top of the coronal one.
 * Pixels are square in millimetres (thick slices are stretched, not squashed).
 */
import { encode } from 'fast-png';
import { applyAffine, invertAffine } from '../geometry/affine.ts';
import { toCanonical } from '../geometry/orientation.ts';
import { HU_WINDOW } from '../intensity/window.ts';
import { spacingOf, type Volume } from '../volume/volume.ts';
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

function panel(
  dims: [number, number, number],
  spacing: [number, number, number],
  plane: 'axial' | 'coronal',
  at: number,
  size: number,
): Panel {
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
  const spacing = spacingOf(img.affine);
  let focus: number[];
  if (options.focusMm) focus = applyAffine(invertAffine(img.affine), options.focusMm);
  else {
    const organ = new Set(structures.filter((s) => s.kind === 'organ').map((s) => s.classId));
    focus = centroidOf(lab, organ) ?? dims.map((d) => (d - 1) / 2);
  }
  const at = focus.map((x, a) => Math.min(dims[a] - 1, Math.max(0, Math.round(x))));
  const size = options.panelSize ?? 384;
  const panels = [panel(dims, spacing, 'axial', at[2], size), panel(dims, spacing, 'coronal', at[1], size)];
  const width = panels[0].width + GAP + panels[1].width;
  const height = Math.max(panels[0].height, panels[1].height);
  const rgba = new Uint8Array(width * height * 4);
  for (let p = 3; p < rgba.length; p += 4) rgba[p] = 255;
  const [lo, hi] = options.window ?? HU_WINDOW;
  const tint = new Map(structures.map((s) => [s.classId, { rgb: s.rgb, alpha: ALPHA[s.kind] }]));
  let x0 = 0;
  for (const pn of panels) {
    for (let row = 0; row < pn.height; row++) {
      for (let col = 0; col < pn.width; col++) {
        const v = pn.voxel[row * pn.width + col];
        const g = Math.round(Math.min(1, Math.max(0, (img.data[v] - lo) / (hi - lo))) * 255);
        const t = tint.get(lab.data[v]);
        const o = 4 * (row * width + x0 + col);
        for (let c = 0; c < 3; c++) rgba[o + c] = t ? Math.round(g * (1 - t.alpha) + t.rgb[c] * t.alpha) : g;
      }
    }
    const scale = Math.max(2, Math.round(pn.height / 96));
    const top = Math.round(pn.height / 2 - 3.5 * scale);
    drawGlyph(rgba, width, GLYPHS.R, x0 + scale, top, scale);
    drawGlyph(rgba, width, GLYPHS.L, x0 + pn.width - 6 * scale, top, scale);
    x0 += pn.width + GAP;
  }
  return { width, height, data: rgba };
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
