/**
 * The learned difference map (method §2.4, decision §10.2): the generator's tanh output for the
 * organ's own channel, masked to organ voxels and smoothed with a normalised 7x7x7 Gaussian
 * (sigma 1, OpenCV's 7-tap kernel, zero padding 3): D = Blur7(tanh(G(x))[organ] * organ).
 * G runs by sliding window with the manifest's patch, overlap and blending.
 */
import { FreeTumorError } from '../errors.ts';
import type { OnnxRunner } from '../inference/runner.ts';
import { slidingWindow } from '../inference/sliding-window.ts';
import type { OrganName } from '../labels/labelmap.ts';
import type { ModelManifest } from '../model/manifest.ts';
import type { Dims3 } from '../volume/volume.ts';
import type { Region, SynthesisInput } from './plan.ts';

export interface GeneratorOptions {
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/** OpenCV getGaussianKernel(7, 1). */
export function blur7Kernel(): Float64Array {
  const w = Float64Array.from({ length: 7 }, (_, i) => Math.exp(-((i - 3) ** 2) / 2));
  const sum = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / sum);
}

/** Separable 7x7x7 Gaussian (sigma 1) with zero padding, the reference's Blur7. */
export function blur7(src: Float32Array, dims: Dims3): Float32Array {
  const w = blur7Kernel();
  const strides = [1, dims[0], dims[0] * dims[1]];
  let cur = src;
  for (let axis = 0; axis < 3; axis++) {
    const out = new Float32Array(src.length);
    const n = dims[axis];
    const s = strides[axis];
    for (let v = 0; v < src.length; v++) {
      const p = Math.floor(v / s) % n;
      let acc = 0;
      for (let t = -3; t <= 3; t++) {
        const q = p + t;
        if (q >= 0 && q < n) acc += w[t + 3] * cur[v + t * s];
      }
      out[v] = acc;
    }
    cur = out;
  }
  return cur;
}

export async function generatorDifference(
  input: SynthesisInput,
  runner: OnnxRunner,
  manifest: ModelManifest,
  organ: OrganName,
  options: GeneratorOptions = {},
): Promise<Float32Array> {
  if (manifest.role !== 'generator') {
    throw new FreeTumorError('invalid_argument', `the model is a ${manifest.role}, not a generator`);
  }
  const channel = manifest.organs.indexOf(organ);
  if (channel < 0) throw new FreeTumorError('invalid_argument', `the generator has no ${organ} channel`);
  const pre = manifest.preprocessing;
  const out = await slidingWindow(input.image, input.dims, runner, {
    patchSize: pre.patchSize,
    overlap: pre.overlap,
    blending: pre.blending,
    divisor: pre.divisor,
    batchSize: options.batchSize,
    onProgress: options.onProgress,
  });
  if (channel >= out.channels) {
    throw new FreeTumorError(
      'invalid_argument',
      `the generator gives ${out.channels} channel(s), none for ${organ}`,
    );
  }
  const n = input.image.length;
  const g = out.data.subarray(channel * n, (channel + 1) * n);
  // The exported generator ends in its activation (tanh): its output is the map itself.
  const masked = new Float32Array(n);
  for (let v = 0; v < n; v++) if (input.label[v] === 1) masked[v] = g[v];
  return blur7(masked, input.dims);
}

/**
 * generatorDifference on a crop around `region` (3 voxels more for Blur7, at least one patch per
 * axis), pasted into a full-size map that is 0 elsewhere: the weight is 0 outside the region, so
 * nothing else is needed, and G runs on a few patches instead of the whole volume.
 */
export async function generatorDifferenceInRegion(
  input: SynthesisInput,
  region: Region,
  runner: OnnxRunner,
  manifest: ModelManifest,
  organ: OrganName,
  options: GeneratorOptions = {},
): Promise<Float32Array> {
  const dims = input.dims;
  const patch = manifest.preprocessing.patchSize;
  const start = [0, 0, 0] as Dims3;
  const size = [0, 0, 0] as Dims3;
  for (let a = 0; a < 3; a++) {
    const lo = Math.max(0, region.start[a] - 3);
    const hi = Math.min(dims[a], region.start[a] + region.size[a] + 3);
    const want = Math.min(dims[a], Math.max(hi - lo, patch[a]));
    const s = Math.max(0, Math.min(lo - Math.floor((want - (hi - lo)) / 2), dims[a] - want));
    start[a] = s;
    size[a] = want;
  }
  const n = size[0] * size[1] * size[2];
  const image = new Float32Array(n);
  const label = new Uint8Array(n);
  const [nx, ny] = dims;
  for (let k = 0; k < size[2]; k++)
    for (let j = 0; j < size[1]; j++) {
      const from = start[0] + nx * (start[1] + j + ny * (start[2] + k));
      const to = size[0] * (j + size[1] * k);
      image.set(input.image.subarray(from, from + size[0]), to);
      label.set(input.label.subarray(from, from + size[0]), to);
    }
  const d = await generatorDifference(
    { image, label, dims: size, spacing: input.spacing },
    runner,
    manifest,
    organ,
    options,
  );
  const full = new Float32Array(input.image.length);
  for (let k = 0; k < size[2]; k++)
    for (let j = 0; j < size[1]; j++) {
      const to = start[0] + nx * (start[1] + j + ny * (start[2] + k));
      const from = size[0] * (j + size[1] * k);
      full.set(d.subarray(from, from + size[0]), to);
    }
  return full;
}
