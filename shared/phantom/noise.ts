/**
 * Intensity texture for the phantom: a smooth low-frequency field (tissue heterogeneity,
 * mottled bowel content), white noise, and the small separable [1 2 1] blur that turns the
 * piecewise-constant tissue map plus white noise into partial-volume edges plus spatially
 * correlated, near-Gaussian noise in a single pass.
 */
import type { Rng } from '../random.ts';
import type { Grid } from './raster.ts';

/** Standard deviation left by one [1 2 1]/4 pass per axis on unit white noise: sqrt((6/16)^3). */
export const BLUR121_NOISE_GAIN = Math.sqrt((6 / 16) ** 3);

/**
 * Adds `ampByCode[code] * f(x)` to `hu`, f a trilinear value-noise field with unit-ish standard
 * deviation and a cell of `cellMm` millimetres. Voxels whose code has amplitude 0 are skipped.
 */
export function addTexture(
  g: Grid,
  hu: Float32Array,
  codes: Uint8Array,
  ampByCode: Float32Array,
  rng: Rng,
  cellMm: number,
): void {
  const [nx, ny, nz] = g.dims;
  const step = g.spacing / cellMm; // coarse cells per voxel
  const cx = Math.floor((nx - 1) * step) + 2;
  const cy = Math.floor((ny - 1) * step) + 2;
  const cz = Math.floor((nz - 1) * step) + 2;
  const coarse = new Float32Array(cx * cy * cz);
  // Trilinear interpolation shrinks the variance (about 0.3 at mid-cell); 1.6 brings it back to ~1.
  for (let c = 0; c < coarse.length; c++) coarse[c] = 1.6 * (rng.random() * 2 - 1) * Math.sqrt(3);
  const fx = new Float32Array(nx);
  const ix = new Int32Array(nx);
  for (let i = 0; i < nx; i++) {
    const p = i * step;
    ix[i] = Math.floor(p);
    fx[i] = p - ix[i];
  }
  for (let k = 0; k < nz; k++) {
    const pz = k * step;
    const kz = Math.floor(pz);
    const wz = pz - kz;
    for (let j = 0; j < ny; j++) {
      const py = j * step;
      const jy = Math.floor(py);
      const wy = py - jy;
      const b00 = cx * (jy + cy * kz);
      const b10 = b00 + cx;
      const b01 = b00 + cx * cy;
      const b11 = b01 + cx;
      const row = nx * (j + ny * k);
      for (let i = 0; i < nx; i++) {
        const amp = ampByCode[codes[row + i]];
        if (amp === 0) continue;
        const a = ix[i];
        const wx = fx[i];
        const c00 = coarse[b00 + a] + wx * (coarse[b00 + a + 1] - coarse[b00 + a]);
        const c10 = coarse[b10 + a] + wx * (coarse[b10 + a + 1] - coarse[b10 + a]);
        const c01 = coarse[b01 + a] + wx * (coarse[b01 + a + 1] - coarse[b01 + a]);
        const c11 = coarse[b11 + a] + wx * (coarse[b11 + a + 1] - coarse[b11 + a]);
        const c0 = c00 + wy * (c10 - c00);
        const c1 = c01 + wy * (c11 - c01);
        hu[row + i] += amp * (c0 + wz * (c1 - c0));
      }
    }
  }
}

/** Adds zero-mean uniform white noise of standard deviation `sd` (uniform is enough: the blur makes it Gaussian-like). */
export function addWhiteNoise(data: Float32Array, rng: Rng, sd: number): void {
  const half = sd * Math.sqrt(3);
  for (let i = 0; i < data.length; i++) data[i] += half * (2 * rng.random() - 1);
}

/** In-place [1 2 1]/4 blur along x, y and z, edges replicated. */
export function blur121(data: Float32Array, dims: [number, number, number]): void {
  const [nx, ny, nz] = dims;
  if (nx > 1) {
    for (let row = 0; row < ny * nz; row++) blurRow(data, nx * row, nx);
  }
  // y and z are blurred a whole row (or slice) at a time so that memory is read in order.
  const rowBufs = [new Float32Array(nx), new Float32Array(nx)];
  for (let k = 0; k < nz; k++) blurRows(data, nx * ny * k, ny, nx, rowBufs);
  const sliceBufs = [new Float32Array(nx * ny), new Float32Array(nx * ny)];
  blurRows(data, 0, nz, nx * ny, sliceBufs);
}

function blurRow(data: Float32Array, s: number, n: number): void {
  let prev = data[s];
  let cur = data[s];
  for (let t = 0; t < n; t++) {
    const next = t + 1 < n ? data[s + t + 1] : cur;
    data[s + t] = 0.25 * (prev + 2 * cur + next);
    prev = cur;
    cur = next;
  }
}

/** Blurs across `n` consecutive blocks of `width` contiguous samples starting at `base`. */
function blurRows(data: Float32Array, base: number, n: number, width: number, bufs: Float32Array[]): void {
  if (n < 2) return;
  let prev = bufs[0];
  let cur = bufs[1];
  prev.set(data.subarray(base, base + width));
  for (let t = 0; t < n; t++) {
    const off = base + t * width;
    cur.set(data.subarray(off, off + width));
    const nextOff = t + 1 < n ? off + width : off;
    const nextIsCur = t + 1 >= n;
    for (let i = 0; i < width; i++) {
      const next = nextIsCur ? cur[i] : data[nextOff + i];
      data[off + i] = 0.25 * (prev[i] + 2 * cur[i] + next);
    }
    const tmp = prev;
    prev = cur;
    cur = tmp;
  }
}
