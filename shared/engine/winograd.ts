/**
 * Host side of the Winograd F(2x2x2, 3x3x3) convolution (wino_forward in wasm/conv3d.c): which convs
 * it serves, the filter transform U = G g G^T, and how a call is cut into tile ranges. Used by the
 * engine's Conv and by the trainer's Conv3D and stride-1 input gradient.
 */
import type { KernelExports } from './host.ts';

/**
 * Bytes of V and M per chunk of tiles. Measured (CPU time, one thread): the forward is fastest with
 * chunks well inside L2 (about 160 KiB); the filter gradient contracts over the tiles of a chunk and
 * wants longer chunks (about 384 KiB).
 */
export const FORWARD_CHUNK_BYTES = 160 * 1024;
export const FILTER_GRAD_CHUNK_BYTES = 384 * 1024;

type Triple = readonly [number, number, number];

/**
 * 3x3x3, stride 1, no dilation, and enough channels on both sides that the 64 small GEMMs beat one
 * vol2col GEMM (below 8 the transforms cost more than the products they save).
 */
export function winogradApplies(
  kernel: Triple,
  strides: Triple,
  dilations: Triple,
  inChannels: number,
  outChannels: number,
): boolean {
  return (
    kernel.every((k) => k === 3) &&
    strides.every((s) => s === 1) &&
    dilations.every((d) => d === 1) &&
    inChannels >= 8 &&
    outChannels >= 8
  );
}

/** F(2,3)'s G: 4 x 3. */
const G = [
  [1, 0, 0],
  [0.5, 0.5, 0.5],
  [0.5, -0.5, 0.5],
  [0, 0, 1],
];

/** [27][cin][cout] (kd, kh, kw outermost) -> U [64][cin][cout], U = G g G^T along each axis. */
export function winogradFilter(w: Float32Array, cin: number, cout: number): Float32Array {
  const p = cin * cout;
  // Along width: [3][3][4], then height: [3][4][4], then depth: [4][4][4]; each entry is p values.
  const t1 = new Float64Array(36 * p);
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++)
      for (let c = 0; c < 4; c++) {
        const dst = ((i * 3 + j) * 4 + c) * p;
        for (let k = 0; k < 3; k++) {
          const f = G[c][k];
          if (f === 0) continue;
          const src = ((i * 3 + j) * 3 + k) * p;
          for (let q = 0; q < p; q++) t1[dst + q] += f * w[src + q];
        }
      }
  const t2 = new Float64Array(48 * p);
  for (let i = 0; i < 3; i++)
    for (let b = 0; b < 4; b++)
      for (let c = 0; c < 4; c++) {
        const dst = ((i * 4 + b) * 4 + c) * p;
        for (let j = 0; j < 3; j++) {
          const f = G[b][j];
          if (f === 0) continue;
          const src = ((i * 3 + j) * 4 + c) * p;
          for (let q = 0; q < p; q++) t2[dst + q] += f * t1[src + q];
        }
      }
  const u = new Float32Array(64 * p);
  const acc = new Float64Array(p);
  for (let a = 0; a < 4; a++)
    for (let b = 0; b < 4; b++)
      for (let c = 0; c < 4; c++) {
        acc.fill(0);
        for (let i = 0; i < 3; i++) {
          const f = G[a][i];
          if (f === 0) continue;
          const src = ((i * 4 + b) * 4 + c) * p;
          for (let q = 0; q < p; q++) acc[q] += f * t2[src + q];
        }
        u.set(acc, ((a * 4 + b) * 4 + c) * p);
      }
  return u;
}

/** dU [64][cin][cout] (the Winograd-domain filter gradient) -> dW [27][cin][cout] = G^T dU G per axis. */
export function winogradFilterGrad(du: Float64Array, cin: number, cout: number): Float32Array {
  const p = cin * cout;
  // Along width: [4][4][3], height: [4][3][3], depth: [3][3][3].
  const t1 = new Float64Array(48 * p);
  for (let a = 0; a < 4; a++)
    for (let b = 0; b < 4; b++)
      for (let k = 0; k < 3; k++) {
        const dst = ((a * 4 + b) * 3 + k) * p;
        for (let c = 0; c < 4; c++) {
          const f = G[c][k];
          if (f === 0) continue;
          const src = ((a * 4 + b) * 4 + c) * p;
          for (let q = 0; q < p; q++) t1[dst + q] += f * du[src + q];
        }
      }
  const t2 = new Float64Array(36 * p);
  for (let a = 0; a < 4; a++)
    for (let j = 0; j < 3; j++)
      for (let k = 0; k < 3; k++) {
        const dst = ((a * 3 + j) * 3 + k) * p;
        for (let b = 0; b < 4; b++) {
          const f = G[b][j];
          if (f === 0) continue;
          const src = ((a * 4 + b) * 3 + k) * p;
          for (let q = 0; q < p; q++) t2[dst + q] += f * t1[src + q];
        }
      }
  const dw = new Float32Array(27 * p);
  const acc = new Float64Array(p);
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++)
      for (let k = 0; k < 3; k++) {
        acc.fill(0);
        for (let a = 0; a < 4; a++) {
          const f = G[a][i];
          if (f === 0) continue;
          const src = ((a * 3 + j) * 3 + k) * p;
          for (let q = 0; q < p; q++) acc[q] += f * t2[src + q];
        }
        dw.set(acc, ((i * 3 + j) * 3 + k) * p);
      }
  return dw;
}

export interface Arena {
  alloc(floats: number): number;
  put(values: ArrayLike<number>): number;
  release?(off: number): void;
}

/** Transforms and packs a [27][cin][cout] filter into the 64 GEMM panels wino_forward reads. */
export function packWinogradFilter(
  exports: KernelExports,
  arena: Arena,
  w: Float32Array,
  cin: number,
  cout: number,
): number {
  const u = arena.put(winogradFilter(w, cin, cout));
  const panel = exports.packed_b_floats(cin, cout);
  const up = arena.alloc(64 * panel);
  for (let xi = 0; xi < 64; xi++)
    exports.pack_b(u + xi * cin * cout * 4, cin, cout, cout, 1, up + xi * panel * 4);
  arena.release?.(u);
  return up;
}

export interface WinogradPlan {
  tiles: number;
  /** Tiles per chunk. */
  chunk: number;
  ranges: Array<[number, number]>;
  scratchFloats: number;
}

/** Tile count, chunk and one tile range per part for a conv with output [batch, d, h, w] and C -> N. */
export function planWinograd(
  batch: number,
  out: Triple,
  channels: number,
  outChannels: number,
  parts: number,
  chunkBytes = FORWARD_CHUNK_BYTES,
): WinogradPlan {
  const tiles = batch * Math.ceil(out[0] / 2) * Math.ceil(out[1] / 2) * Math.ceil(out[2] / 2);
  const perTile = 64 * 4 * (channels + outChannels);
  const chunk = Math.max(4, Math.min(256, Math.floor(chunkBytes / perTile / 4) * 4));
  const n = Math.max(1, Math.min(parts, Math.ceil(tiles / chunk)));
  const ranges: Array<[number, number]> = [];
  for (let p = 0; p < n; p++) ranges.push([Math.floor((tiles * p) / n), Math.floor((tiles * (p + 1)) / n)]);
  return { tiles, chunk, ranges, scratchFloats: 64 * chunk * (channels + outChannels) + 256 };
}
