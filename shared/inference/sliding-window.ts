/**
 * Sliding-window inference over an injected runner, as MONAI's `sliding_window_inference`: windows at
 * a stride of patch * (1 - overlap), the last one flush with the far edge; each window's output
 * weighted by a gaussian importance map (sigma = 0.125 * patch, as MONAI and nnU-Net) or a constant,
 * summed into one accumulator per output channel and divided by the summed weights.
 *
 * Memory: the input, C accumulators and one weight volume at the model grid, plus one batch of
 * patches. Patches are cut and run a batch at a time, never all at once.
 */
import { LimitError } from '../errors.ts';
import type { Dims3 } from '../volume/volume.ts';
import type { OnnxRunner, Tensor5 } from './runner.ts';

export interface SlidingWindowOptions {
  /** Patch size (x, y, z) in voxels. */
  patchSize: Dims3;
  /** Fraction of a patch shared with its neighbour, in [0, 1). */
  overlap: number;
  blending: 'gaussian' | 'constant';
  /** Patches per runner call. Default 1. */
  batchSize?: number;
  inputName?: string;
  /** The runner output to use; default its first. */
  outputName?: string;
  /** Spatial sides the model accepts must be multiples of this. Default 1. */
  divisor?: number;
  /** Upper bound on channels x voxels of the accumulator (a guard, not a tuning knob). */
  maxAccumulatorValues?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface SlidingWindowResult {
  /** Channel-major: data[c * voxels + index]. */
  data: Float32Array;
  channels: number;
  dims: Dims3;
}

export const DEFAULT_MAX_ACCUMULATOR_VALUES = 256 * 1024 * 1024;

export async function slidingWindow(
  image: Float32Array,
  dims: Dims3,
  runner: OnnxRunner,
  options: SlidingWindowOptions,
): Promise<SlidingWindowResult> {
  const divisor = options.divisor ?? 1;
  const patch = options.patchSize.map((p) => Math.ceil(p / divisor) * divisor) as Dims3;
  if (!(options.overlap >= 0 && options.overlap < 1)) throw new RangeError('overlap must be in [0, 1)');
  // The grid the windows run on: at least one patch per side (padded with zeros, as MONAI does).
  const grid = dims.map((d, a) => Math.max(d, patch[a])) as Dims3;
  const padded = sameDims(grid, dims) ? image : padTo(image, dims, grid);
  const starts = grid.map((d, a) => windowStarts(d, patch[a], options.overlap)) as [
    number[],
    number[],
    number[],
  ];
  const positions: Dims3[] = [];
  for (const z of starts[2]) for (const y of starts[1]) for (const x of starts[0]) positions.push([x, y, z]);

  const importance =
    options.blending === 'gaussian' ? gaussianImportance(patch) : new Float32Array(volume(patch)).fill(1);
  const n = volume(grid);
  const weight = new Float32Array(n);
  let acc: Float32Array | null = null;
  let channels = 0;
  const batchSize = Math.max(1, options.batchSize ?? 1);
  const patchVoxels = volume(patch);
  const inputName = options.inputName ?? 'input';

  for (let b0 = 0; b0 < positions.length; b0 += batchSize) {
    const batch = positions.slice(b0, b0 + batchSize);
    const input = new Float32Array(batch.length * patchVoxels);
    for (let i = 0; i < batch.length; i++)
      cutPatch(padded, grid, batch[i], patch, input.subarray(i * patchVoxels));
    const outputs = await runner.run({
      [inputName]: { dims: [batch.length, 1, patch[2], patch[1], patch[0]], data: input },
    });
    const out = pickOutput(outputs, options.outputName);
    const [on, oc, od, oh, ow] = out.dims;
    if (on !== batch.length || od !== patch[2] || oh !== patch[1] || ow !== patch[0]) {
      throw new Error(`model output ${out.dims.join('x')} does not match the patch batch`);
    }
    if (acc === null) {
      channels = oc;
      const limit = options.maxAccumulatorValues ?? DEFAULT_MAX_ACCUMULATOR_VALUES;
      if (channels * n > limit)
        throw new LimitError('sliding-window accumulator values', limit, channels * n);
      acc = new Float32Array(channels * n);
    }
    for (let i = 0; i < batch.length; i++) {
      addPatch(acc, weight, grid, batch[i], patch, out.data, i, channels, importance);
    }
    options.onProgress?.(Math.min(b0 + batchSize, positions.length), positions.length);
  }
  if (acc === null) throw new Error('sliding window ran no patch');
  for (let c = 0; c < channels; c++) {
    const off = c * n;
    for (let v = 0; v < n; v++) acc[off + v] /= weight[v];
  }
  const data = sameDims(grid, dims) ? acc : cropChannels(acc, channels, grid, dims);
  return { data, channels, dims: [...dims] as Dims3 };
}

/** MONAI's window starts: stride floor(patch * (1 - overlap)) >= 1, the last window flush with the end. */
export function windowStarts(size: number, patch: number, overlap: number): number[] {
  if (size <= patch) return [0];
  const stride = Math.max(1, Math.floor(patch * (1 - overlap)));
  const count = Math.ceil((size - patch) / stride) + 1;
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(Math.min(i * stride, size - patch));
  return out;
}

/**
 * Separable gaussian centred on the patch (MONAI `compute_importance_map`: sigma = 0.125 * size,
 * normalised to a maximum of 1, zeros raised to the smallest positive value).
 */
export function gaussianImportance(patch: Dims3, sigmaScale = 0.125): Float32Array {
  const axes = patch.map((p) => {
    const sigma = sigmaScale * p;
    const centre = (p - 1) / 2;
    return Float64Array.from({ length: p }, (_, i) => Math.exp(-((i - centre) ** 2) / (2 * sigma * sigma)));
  });
  const out = new Float32Array(volume(patch));
  let max = 0;
  let p = 0;
  for (let z = 0; z < patch[2]; z++) {
    for (let y = 0; y < patch[1]; y++) {
      for (let x = 0; x < patch[0]; x++, p++) {
        out[p] = axes[0][x] * axes[1][y] * axes[2][z];
        if (out[p] > max) max = out[p];
      }
    }
  }
  let minPositive = Infinity;
  for (let i = 0; i < out.length; i++) {
    out[i] /= max;
    if (out[i] > 0 && out[i] < minPositive) minPositive = out[i];
  }
  for (let i = 0; i < out.length; i++) if (out[i] === 0) out[i] = minPositive;
  return out;
}

function pickOutput(outputs: Record<string, Tensor5>, name?: string): Tensor5 {
  const out = name !== undefined ? outputs[name] : Object.values(outputs)[0];
  if (!out) throw new Error(`model returned no output${name ? ` named ${name}` : ''}`);
  return out;
}

function volume(d: Dims3): number {
  return d[0] * d[1] * d[2];
}

function sameDims(a: Dims3, b: Dims3): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2];
}

function padTo(src: Float32Array, dims: Dims3, grid: Dims3): Float32Array {
  const out = new Float32Array(volume(grid));
  for (let z = 0; z < dims[2]; z++) {
    for (let y = 0; y < dims[1]; y++) {
      const from = dims[0] * (y + dims[1] * z);
      out.set(src.subarray(from, from + dims[0]), grid[0] * (y + grid[1] * z));
    }
  }
  return out;
}

function cutPatch(src: Float32Array, grid: Dims3, start: Dims3, patch: Dims3, out: Float32Array): void {
  for (let z = 0; z < patch[2]; z++) {
    for (let y = 0; y < patch[1]; y++) {
      const from = start[0] + grid[0] * (start[1] + y + grid[1] * (start[2] + z));
      out.set(src.subarray(from, from + patch[0]), patch[0] * (y + patch[1] * z));
    }
  }
}

function addPatch(
  acc: Float32Array,
  weight: Float32Array,
  grid: Dims3,
  start: Dims3,
  patch: Dims3,
  out: Float32Array,
  index: number,
  channels: number,
  importance: Float32Array,
): void {
  const pv = volume(patch);
  const n = volume(grid);
  for (let z = 0; z < patch[2]; z++) {
    for (let y = 0; y < patch[1]; y++) {
      const row = patch[0] * (y + patch[1] * z);
      const dst = start[0] + grid[0] * (start[1] + y + grid[1] * (start[2] + z));
      for (let x = 0; x < patch[0]; x++) weight[dst + x] += importance[row + x];
      for (let c = 0; c < channels; c++) {
        const src = (index * channels + c) * pv + row;
        const a = c * n + dst;
        for (let x = 0; x < patch[0]; x++) acc[a + x] += out[src + x] * importance[row + x];
      }
    }
  }
}

function cropChannels(acc: Float32Array, channels: number, grid: Dims3, dims: Dims3): Float32Array {
  const n = volume(dims);
  const gn = volume(grid);
  const out = new Float32Array(channels * n);
  for (let c = 0; c < channels; c++) {
    for (let z = 0; z < dims[2]; z++) {
      for (let y = 0; y < dims[1]; y++) {
        const from = c * gn + grid[0] * (y + grid[1] * z);
        out.set(acc.subarray(from, from + dims[0]), c * n + dims[0] * (y + dims[1] * z));
      }
    }
  }
  return out;
}

/** Index of the largest channel at each voxel (first wins on ties), as a label array. */
export function argmaxChannels(data: Float32Array, channels: number, voxels: number): Uint8Array {
  if (channels > 255) throw new RangeError(`argmax to uint8 supports at most 255 channels, got ${channels}`);
  const out = new Uint8Array(voxels);
  if (channels === 1) {
    for (let v = 0; v < voxels; v++) out[v] = data[v] > 0.5 ? 1 : 0;
    return out;
  }
  const best = data.slice(0, voxels);
  for (let c = 1; c < channels; c++) {
    const off = c * voxels;
    for (let v = 0; v < voxels; v++) {
      if (data[off + v] > best[v]) {
        best[v] = data[off + v];
        out[v] = c;
      }
    }
  }
  return out;
}
