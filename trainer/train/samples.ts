/**
 * PNG previews of synthetic tumors during synthesis training: the middle axial slice (through the
 * tumor's centre of mass when there is one) of the original crop, the synthetic crop, and the
 * synthetic crop with the tumor outline in red, side by side.
 */
import { encode } from 'fast-png';
import type { Dims3 } from '../../shared/volume/volume.ts';

export function tumorSlice(mask: Uint8Array, dims: Dims3): number {
  const [nx, ny, nz] = dims;
  let sum = 0;
  let count = 0;
  for (let k = 0; k < nz; k++) {
    for (let i = k * nx * ny; i < (k + 1) * nx * ny; i++) {
      if (mask[i]) {
        sum += k;
        count++;
      }
    }
  }
  return count ? Math.round(sum / count) : Math.floor(nz / 2);
}

/**
 * RGB PNG of three panels: original | synthetic | synthetic + outline. Images are in [0, 1]. Crops
 * are small (32^3 in the demo), so pixels are repeated to at least `minHeight` pixels of height.
 */
export function samplePng(
  original: Float32Array,
  synthetic: Float32Array,
  mask: Uint8Array,
  dims: Dims3,
  minHeight = 256,
): Uint8Array {
  const [nx, ny] = dims;
  const k = tumorSlice(mask, dims);
  const width = nx * 3;
  const data = new Uint8Array(width * ny * 3);
  const gray = (v: number) => Math.max(0, Math.min(255, Math.round(v * 255)));
  const inMask = (i: number, j: number) =>
    i >= 0 && j >= 0 && i < nx && j < ny && mask[i + nx * (j + ny * k)] !== 0;
  for (let j = 0; j < ny; j++) {
    // Flip rows so that anterior (high j in RAS) is at the top, as radiology viewers show it.
    const row = ny - 1 - j;
    for (let i = 0; i < nx; i++) {
      const idx = i + nx * (j + ny * k);
      const panels = [original[idx], synthetic[idx], synthetic[idx]];
      panels.forEach((v, p) => {
        const o = 3 * (row * width + p * nx + i);
        const g = gray(v);
        const edge =
          p === 2 &&
          inMask(i, j) &&
          (!inMask(i - 1, j) || !inMask(i + 1, j) || !inMask(i, j - 1) || !inMask(i, j + 1));
        data[o] = edge ? 255 : g;
        data[o + 1] = edge ? 0 : g;
        data[o + 2] = edge ? 0 : g;
      });
    }
  }
  const f = Math.max(1, Math.ceil(minHeight / ny));
  if (f === 1) return encode({ width, height: ny, data, channels: 3, depth: 8 });
  const big = new Uint8Array(width * f * ny * f * 3);
  for (let y = 0; y < ny * f; y++) {
    const src = Math.floor(y / f) * width;
    for (let x = 0; x < width * f; x++) {
      const from = 3 * (src + Math.floor(x / f));
      big.set(data.subarray(from, from + 3), 3 * (y * width * f + x));
    }
  }
  return encode({ width: width * f, height: ny * f, data: big, channels: 3, depth: 8 });
}
