/**
 * A PNG preview: one axial slice of a RAS-canonical CT in a HU window, twice side by side: as
 * is (left) and with the organ tinted green, synthetic tumors red and other tumor ids yellow
 * (right). Radiological convention (patient right on the image left, anterior at the top),
 * scaled up by an integer factor.
 */
import { encode } from 'fast-png';
import { HU_WINDOW } from '../intensity/window.ts';
import type { Volume } from '../volume/volume.ts';

export interface PreviewOptions {
  /** Axial slice index k of the canonical volume. */
  slice: number;
  window?: [number, number];
  organIds: number[];
  syntheticIds: number[];
  realTumorIds?: number[];
  /** Target size of the longer side in pixels (integer nearest-neighbour scaling). */
  targetSize?: number;
}

const ORGAN: [number, number, number, number] = [40, 200, 80, 0.25];
const SYNTHETIC: [number, number, number, number] = [235, 40, 40, 0.45];
const REAL: [number, number, number, number] = [240, 200, 40, 0.45];

export function renderAxialRgba(image: Volume, label: Volume, options: PreviewOptions) {
  const [nx, ny, nz] = image.dims;
  const k = Math.min(nz - 1, Math.max(0, Math.round(options.slice)));
  const [lo, hi] = options.window ?? HU_WINDOW;
  const organ = new Set(options.organIds);
  const synthetic = new Set(options.syntheticIds);
  const real = new Set(options.realTumorIds ?? []);
  const scale = Math.max(1, Math.floor((options.targetSize ?? 512) / Math.max(nx, ny)));
  const panel = nx * scale;
  const width = 2 * panel;
  const height = ny * scale;
  const rgba = new Uint8Array(width * height * 4);
  for (let row = 0; row < ny; row++) {
    const j = ny - 1 - row;
    for (let col = 0; col < nx; col++) {
      const i = nx - 1 - col;
      const v = i + nx * (j + ny * k);
      const g = Math.round(Math.min(1, Math.max(0, (image.data[v] - lo) / (hi - lo))) * 255);
      const plain: [number, number, number] = [g, g, g];
      let px = plain;
      const l = label.data[v];
      const tint = synthetic.has(l) ? SYNTHETIC : real.has(l) ? REAL : organ.has(l) ? ORGAN : null;
      if (tint) px = [0, 1, 2].map((c) => Math.round(px[c] * (1 - tint[3]) + tint[c] * tint[3])) as typeof px;
      for (let dy = 0; dy < scale; dy++) {
        for (let dx = 0; dx < scale; dx++) {
          const o = 4 * ((row * scale + dy) * width + col * scale + dx);
          rgba.set([plain[0], plain[1], plain[2], 255], o);
          rgba.set([px[0], px[1], px[2], 255], o + 4 * panel);
        }
      }
    }
  }
  return { width, height, data: rgba };
}

export function renderAxialPng(image: Volume, label: Volume, options: PreviewOptions): Uint8Array {
  const { width, height, data } = renderAxialRgba(image, label, options);
  return encode({ width, height, data, channels: 4, depth: 8 });
}
