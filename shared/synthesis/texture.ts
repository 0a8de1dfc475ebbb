/**
 * The tumor texture (method §2.3): smoothed uniform noise gives a slowly varying probability,
 * a Bernoulli draw of it gives speckle, and a second Gaussian smooths the speckle; the result is
 * scaled so its mean over its support (B2 > 0.12) is u0 ~ U(0.5, 0.55), then clipped to [0, 1].
 *
 * As in the reference, each synthesis cuts a random window out of one large texture volume:
 * a bank holds, per sigma pair, one volume of a fixed size (default 96^3, at least the size of
 * most tumor regions and of the 96^3 training crops' tumors), generated on first use from the
 * bank's seed and the pair alone, then cached. The window's start is uniform per axis in
 * [0, T - L - 1]; a window longer than the volume continues it by reflection, which is seamless
 * because the volume's filters reflect at its borders too. So every crop and every call draws
 * a different window, the contents never depend on the sizes asked or on the cache state, and a
 * warm bank gives the same synthesis as a cold one.
 *
 * Cost: both Gaussians run on a coarser grid (gaussianFilterMultiscale: the same mean and
 * variance, autocorrelation within 0.01 of the exact filter's on 96^3 noise): B2 with about
 * sigma 2 left on it (f = floor(sigma_b / 2)), A2, which only sets the speckle's probability,
 * with 1.5 (f = floor(sigma_a / 1.5)). One 96^3 volume then costs a few tens of ms, about the
 * same for every pair.
 */
import { Rng } from '../random.ts';
import type { Dims3 } from '../volume/volume.ts';
import { gaussianFilterMultiscale } from './gaussian.ts';

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
  rng.fillUniform(a);
  // A2 only sets the speckle's probability (rescaled to [b0, b0 + s]): a coarser grid for it.
  const a2 = gaussianFilterMultiscale(a, dims, sigmas.sigmaA, undefined, 1.5);
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
  // B = 1[P > R], R drawn into `a`, which then holds the speckle. Float32 R as numpy's float64
  // would compare P to a value rounded at 2^-24: no visible difference in a probability.
  const b = a;
  rng.fillUniform(b);
  for (let v = 0; v < n; v++) {
    const p = k * (a2[v] - lo) + base;
    b[v] = p > b[v] ? 1 : 0;
  }
  const b2 = gaussianFilterMultiscale(b, dims, sigmas.sigmaB, a2);
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
  /** Seeds the volumes' contents (not the per-synthesis choices, which use the caller's Rng). */
  seed?: number;
  /** Edge of the texture volumes in voxels, or their dims (default 96). */
  size?: number | Dims3;
  /** Older name of `size` (one edge). */
  minBlock?: number;
  /** Cache budget; least recently used volumes are dropped beyond it. */
  maxBytes?: number;
}

export interface TextureSample {
  /** Texture values over the requested region, [size] in volume layout. */
  data: Float32Array;
  sigmas: TextureSigmas;
  /** Where the window starts in the pair's texture volume. */
  start: Dims3;
}

/** Default texture volume edge. */
export const TEXTURE_VOLUME_SIZE = 96;

export class TextureBank {
  readonly sigmas: readonly TextureSigmas[];
  /** Dims of every texture volume of this bank. */
  readonly dims: Dims3;
  private readonly seed: number;
  private readonly maxBytes: number;
  private readonly cache = new Map<number, Float32Array>();
  private bytes = 0;
  /** Volumes generated so far (for benchmarks and tests of the cache). */
  generated = 0;

  constructor(options: TextureBankOptions = {}) {
    this.sigmas = options.sigmas ?? DEFAULT_TEXTURE_SIGMAS;
    this.seed = options.seed ?? 0x7e47;
    const size = options.size ?? options.minBlock ?? TEXTURE_VOLUME_SIZE;
    this.dims = typeof size === 'number' ? [size, size, size] : [size[0], size[1], size[2]];
    if (!this.dims.every((d) => Number.isInteger(d) && d >= 8 && d <= 1024)) {
      throw new RangeError('texture volume edges must be integers in 8..1024');
    }
    this.maxBytes = options.maxBytes ?? 512 * 1024 * 1024;
  }

  /** The texture volume of sigma pair `pair`, generated on first use. */
  volume(pair: number): Float32Array {
    const hit = this.cache.get(pair);
    if (hit) {
      this.cache.delete(pair);
      this.cache.set(pair, hit);
      return hit;
    }
    const data = generateTexture(this.dims, this.sigmas[pair], new Rng(hashSeed(this.seed, pair)));
    this.generated++;
    this.cache.set(pair, data);
    this.bytes += data.byteLength;
    for (const [k, v] of this.cache) {
      if (this.bytes <= this.maxBytes || k === pair) break;
      this.cache.delete(k);
      this.bytes -= v.byteLength;
    }
    return data;
  }

  /** Generates every sigma pair's volume now (benchmarks: cold vs warm). */
  warm(): void {
    for (let p = 0; p < this.sigmas.length; p++) this.volume(p);
  }

  /**
   * A random texture (uniform over the sigma pairs) and a random window of `size` in its volume:
   * start per axis uniform in [0, T - L - 1] like the reference (0 when the window is as long as
   * the volume or longer, which then continues by reflection). Four draws of `rng` whatever the
   * size. `_volumeDims` (the CT's dims) is no longer used: the window does not depend on it.
   */
  sample(size: Dims3, _volumeDims: Dims3 | undefined, rng: Rng): TextureSample {
    const pair = rng.int(0, this.sigmas.length - 1);
    const T = this.dims;
    const start = [0, 1, 2].map((a) => {
      const r = rng.int(0, Math.max(0, T[a] - size[a] - 1));
      return size[a] < T[a] ? r : 0;
    }) as Dims3;
    const src = this.volume(pair);
    const [sx, sy, sz] = size;
    const data = new Float32Array(sx * sy * sz);
    const ix = reflectedRange(start[0], sx, T[0]);
    const iy = reflectedRange(start[1], sy, T[1]);
    const iz = reflectedRange(start[2], sz, T[2]);
    const inside = start[0] + sx <= T[0];
    for (let k = 0; k < sz; k++) {
      for (let j = 0; j < sy; j++) {
        const row = T[0] * (iy[j] + T[1] * iz[k]);
        const out = sx * (j + sy * k);
        if (inside) data.set(src.subarray(row + start[0], row + start[0] + sx), out);
        else for (let i = 0; i < sx; i++) data[out + i] = src[row + ix[i]];
      }
    }
    return { data, sigmas: this.sigmas[pair], start };
  }
}

/** Indices start..start+n-1 folded into [0, T) by reflection (d c b a | a b c d | d c b a). */
function reflectedRange(start: number, n: number, T: number): Int32Array {
  const out = new Int32Array(n);
  const period = 2 * T;
  for (let t = 0; t < n; t++) {
    const m = (start + t) % period;
    out[t] = m < T ? m : period - 1 - m;
  }
  return out;
}

function hashSeed(seed: number, pair: number): number {
  let h = 0x811c9dc5 ^ seed;
  for (const v of [pair, 0x9e37]) {
    h = Math.imul(h ^ v, 0x01000193);
    h ^= h >>> 15;
  }
  return h >>> 0;
}
