/**
 * The tumor texture (method §2.3): smoothed uniform noise gives a slowly varying probability,
 * a Bernoulli draw of it gives speckle, and a second Gaussian smooths the speckle; the result is
 * scaled so its mean over its support (B2 > 0.12) is u0 ~ U(0.5, 0.55), then clipped to [0, 1].
 *
 * Textures are generated lazily, once per (block size, sigma pair), and cached; each synthesis
 * takes a random sub-block. Block contents depend only on the bank's seed, the size and the
 * pair, never on the cache state, so a warm bank gives the same synthesis as a cold one.
 */
import { Rng } from '../random.ts';
import type { Dims3 } from '../volume/volume.ts';
import { gaussianFilter3d } from './gaussian.ts';

export interface TextureSigmas {
  sigmaA: number;
  sigmaB: number;
}

/** SyntheticTumors / FreeTumor-Chest set: sigma_a in {3,6,9,12,15} x sigma_b in {4,7} (§10.4). */
export const DEFAULT_TEXTURE_SIGMAS: readonly TextureSigmas[] = [3, 6, 9, 12, 15].flatMap((sigmaA) =>
  [4, 7].map((sigmaB) => ({ sigmaA, sigmaB })),
);

/** The FreeTumor abdomen reference: one texture, sigma_a 3, sigma_b 4. */
export const ABDOMEN_TEXTURE_SIGMAS: readonly TextureSigmas[] = [{ sigmaA: 3, sigmaB: 4 }];

/** Support threshold of the mean normalisation. */
export const TEXTURE_SUPPORT = 0.12;

/** One texture block of `dims` (method §2.3, steps 1-5). */
export function generateTexture(dims: Dims3, sigmas: TextureSigmas, rng: Rng): Float32Array {
  return generateTextureDetailed(dims, sigmas, rng).data;
}

export interface TextureDetails {
  data: Float32Array;
  /** Target mean u0 ~ U(0.5, 0.55). */
  u0: number;
  /** 1 where B2 > 0.12 (the support the mean is taken over). */
  support: Uint8Array;
}

export function generateTextureDetailed(dims: Dims3, sigmas: TextureSigmas, rng: Rng): TextureDetails {
  const n = dims[0] * dims[1] * dims[2];
  const a = new Float32Array(n);
  for (let v = 0; v < n; v++) a[v] = rng.random();
  const a2 = gaussianFilter3d(a, dims, sigmas.sigmaA);
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < n; v++) {
    const x = a2[v];
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  const scale = rng.uniform(0.19, 0.21);
  const base = rng.uniform(0.04, 0.06);
  const k = hi > lo ? scale / (hi - lo) : 0;
  // B = 1[P > R], reusing `a` for the speckle.
  const b = a;
  for (let v = 0; v < n; v++) {
    const p = k * (a2[v] - lo) + base;
    b[v] = p > rng.random() ? 1 : 0;
  }
  const b2 = gaussianFilter3d(b, dims, sigmas.sigmaB, 4, a2);
  const u0 = rng.uniform(0.5, 0.55);
  let sum = 0;
  let count = 0;
  const support = new Uint8Array(n);
  for (let v = 0; v < n; v++) {
    if (b2[v] > TEXTURE_SUPPORT) {
      sum += b2[v];
      count++;
      support[v] = 1;
    }
  }
  // A block too small to have any support keeps its raw scale (cannot happen for real sizes).
  const m = count > 0 ? sum / count : 1;
  const f = u0 / m;
  for (let v = 0; v < n; v++) {
    const t = b2[v] * f;
    b2[v] = Math.min(t, 1);
  }
  return { data: b2, u0, support };
}

export interface TextureBankOptions {
  sigmas?: readonly TextureSigmas[];
  /** Seeds the block contents (not the per-synthesis choices, which use the caller's Rng). */
  seed?: number;
  /** Smallest block edge: small tumors then draw sub-blocks from a larger, more varied block. */
  minBlock?: number;
  /** Cache budget; least recently used blocks are dropped beyond it. */
  maxBytes?: number;
}

export interface TextureSample {
  /** Texture values over the requested region, [size] in volume layout. */
  data: Float32Array;
  sigmas: TextureSigmas;
}

interface Block {
  dims: Dims3;
  data: Float32Array;
}

const BLOCK_STEP = 32;

export class TextureBank {
  readonly sigmas: readonly TextureSigmas[];
  private readonly seed: number;
  private readonly minBlock: number;
  private readonly maxBytes: number;
  private readonly cache = new Map<string, Block>();
  private bytes = 0;
  /** Blocks generated so far (for benchmarks and tests of the cache). */
  generated = 0;

  constructor(options: TextureBankOptions = {}) {
    this.sigmas = options.sigmas ?? DEFAULT_TEXTURE_SIGMAS;
    this.seed = options.seed ?? 0x7e47;
    this.minBlock = options.minBlock ?? 128;
    this.maxBytes = options.maxBytes ?? 512 * 1024 * 1024;
  }

  /**
   * Block edge for a region of `size` inside a volume of `volumeDims`: cubic, a multiple of 32
   * (few distinct sizes, so the cache hits), never larger than the volume itself.
   */
  blockDims(size: Dims3, volumeDims: Dims3): Dims3 {
    const need = Math.max(this.minBlock, Math.ceil(Math.max(...size) / BLOCK_STEP) * BLOCK_STEP);
    return [0, 1, 2].map((a) => Math.max(size[a], Math.min(need, volumeDims[a]))) as Dims3;
  }

  /** The cached block for (dims, sigma pair index), generating it on first use. */
  block(dims: Dims3, pair: number): Block {
    const key = `${dims.join('x')}/${pair}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const rng = new Rng(hashSeed(this.seed, dims, pair));
    const block = { dims, data: generateTexture(dims, this.sigmas[pair], rng) };
    this.generated++;
    this.cache.set(key, block);
    this.bytes += block.data.byteLength;
    for (const [k, b] of this.cache) {
      if (this.bytes <= this.maxBytes || k === key) break;
      this.cache.delete(k);
      this.bytes -= b.data.byteLength;
    }
    return block;
  }

  /** Generates every sigma pair's block for this region size now (benchmarks: cold vs warm). */
  warm(size: Dims3, volumeDims: Dims3): void {
    const dims = this.blockDims(size, volumeDims);
    for (let p = 0; p < this.sigmas.length; p++) this.block(dims, p);
  }

  /**
   * A random texture (uniform over the sigma pairs) and a random sub-block of `size`; start per
   * axis uniform in [0, T - L - 1] like the reference (0 when the block is exactly the size).
   */
  sample(size: Dims3, volumeDims: Dims3, rng: Rng): TextureSample {
    const pair = rng.int(0, this.sigmas.length - 1);
    const dims = this.blockDims(size, volumeDims);
    const start = [0, 1, 2].map((a) => rng.int(0, Math.max(0, dims[a] - size[a] - 1)));
    const { data: src } = this.block(dims, pair);
    const [sx, sy, sz] = size;
    const data = new Float32Array(sx * sy * sz);
    for (let k = 0; k < sz; k++) {
      for (let j = 0; j < sy; j++) {
        const from = start[0] + dims[0] * (start[1] + j + dims[1] * (start[2] + k));
        data.set(src.subarray(from, from + sx), sx * (j + sy * k));
      }
    }
    return { data, sigmas: this.sigmas[pair] };
  }
}

function hashSeed(seed: number, dims: Dims3, pair: number): number {
  let h = 0x811c9dc5 ^ seed;
  for (const v of [dims[0], dims[1], dims[2], pair]) {
    h = Math.imul(h ^ v, 0x01000193);
    h ^= h >>> 15;
  }
  return h >>> 0;
}
