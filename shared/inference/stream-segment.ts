/**
 * Segmentation of a CT that arrives as a stream of storage slices (HTTP body, file), in memory that
 * does not grow with the slice count: the same result as `segmentVolume` (pipeline.ts), computed
 * band by band.
 *
 * Pass 1, while the input streams in: each storage slice is kept until the model slabs that
 * interpolate from it are made (stream-grid.ts); model slabs wait in a band until the sliding
 * windows over them can run (every window with the same start along the slab axis runs as soon as
 * its last slab exists); a slab no remaining window covers is final: its probabilities are
 * normalised, argmax'd to class ids, fed to the streaming connected components, and kept only as
 * compressed class ids. Pass 2, after the last input byte: the tumor clean-up decisions (which need
 * the whole volume: the largest organ component, whether a tumor touches it) are resolved, and the
 * mask is produced storage slice by storage slice (nearest back from the model grid), with the
 * lesion components counted as the slices go out.
 *
 * Memory: a few storage slices, one band of model slabs (patch depth) with C + 1 accumulators, and
 * the compressed class ids of the model grid (a few bytes per model slab for a real segmentation).
 */
import { FreeTumorError, LimitError } from '../errors.ts';
import type { ModelManifest } from '../model/manifest.ts';
import type { NiftiHeaderInfo } from '../volume/nifti-header.ts';
import { NiftiSliceReader, type SliceStreamLimits, StreamAbortedError } from '../volume/nifti-slices.ts';
import { gzipNiftiSliceStream, niftiSliceStream } from '../volume/nifti-write-stream.ts';
import type { Affine, Dims3, VoxelArray } from '../volume/volume.ts';
import { classIds, type Lesion, type SegmentOptions } from './pipeline.ts';
import type { OnnxRunner } from './runner.ts';
import { gaussianImportance, windowStarts } from './sliding-window.ts';
import { type StreamGrid, slabNeed, slabSampler, storageIndexOf, streamGrid } from './stream-grid.ts';
import { argmaxInto, ModelLabelStore } from './stream-labels.ts';

export interface StreamSegmentOptions extends SegmentOptions {
  /** Most bytes the band of model slabs may take (see `bandBytes`); over it is a LimitError. */
  maxBandBytes?: number;
  /** Stops the work between windows (client gone). */
  signal?: AbortSignal;
}

export interface StreamSegmentation {
  header: NiftiHeaderInfo;
  /** The input grid (the mask's). */
  dims: Dims3;
  affine: Affine;
  /** The grid inference ran on. */
  modelDims: Dims3;
  /**
   * The mask's storage slices (class ids, i + nx * j), first to last; call once. Each slice is valid
   * until the next one is taken. Lesions and counts are complete once the last slice is out.
   */
  slices(): Generator<Uint8Array>;
  /** Voxels per class id on the input grid (complete after `slices()` is exhausted). */
  classVoxels(): number[];
  /** Tumor components on the input grid, largest first (complete after `slices()`). */
  lesions(): Lesion[];
  /**
   * The mask's storage slices once more (after `slices()` was exhausted), with each voxel's lesion id
   * (1..n in the order of `lesions()`): a second pass over the CT with the final mask, without
   * holding the mask (statistics, preview).
   */
  replay(): Generator<{ mask: Uint8Array; lesions: Int32Array | null }>;
  stats: { windows: number; storedBytes: number; bandBytes: number };
}

/** Bytes the band of model slabs needs: images, C accumulators and weights for two patch depths. */
export function bandBytes(g: StreamGrid, patch: Dims3, channels: number): number {
  const [o1, o2] = g.planeAxes;
  const plane = Math.max(g.modelDims[o1], patch[o1]) * Math.max(g.modelDims[o2], patch[o2]);
  return plane * 4 * (2 + channels) * 2 * patch[g.slabAxis];
}

function outputChannels(manifest: ModelManifest): number {
  const shape = manifest.outputs[0]?.shape;
  const c = Array.isArray(shape) ? shape[1] : undefined;
  return typeof c === 'number' ? c : manifest.labels.length;
}

export async function segmentSliceStream(
  reader: NiftiSliceReader,
  manifest: ModelManifest,
  runner: OnnxRunner,
  options: StreamSegmentOptions = {},
): Promise<StreamSegmentation> {
  if (options.organ !== undefined && !(manifest.organs as string[]).includes(options.organ)) {
    throw new FreeTumorError(
      'invalid_argument',
      `the model segments ${manifest.organs.join(', ')}, not ${options.organ}`,
    );
  }
  const info = reader.info;
  const pre = manifest.preprocessing;
  const g = streamGrid(info.dims, info.affine, pre.spacing);
  const divisor = pre.divisor ?? 1;
  const patch = pre.patchSize.map((p) => Math.ceil(p / divisor) * divisor) as Dims3;
  const need = bandBytes(g, patch, outputChannels(manifest));
  if (options.maxBandBytes !== undefined && need > options.maxBandBytes) {
    throw new LimitError(
      `sliding-window band bytes (model grid ${g.modelDims.join('x')}, patch ${patch.join('x')})`,
      options.maxBandBytes,
      need,
    );
  }
  const band = new BandRunner(g, patch, manifest, runner, options);
  const classes = classIds(manifest.labels);
  const store = new ModelLabelStore(g, classes);
  band.onFinal = (t, labels) => store.add(t, labels);

  const sampler = slabSampler(g, pre.window);
  const a = g.slabAxis;
  const md = g.modelDims;
  const order = Array.from({ length: band.grid[a] }, (_, i) => (g.reverse ? band.grid[a] - 1 - i : i));
  let nextSlab = 0;
  // Storage slices by canonical index, kept until no model slab needs them.
  const held = new Map<number, VoxelArray>();
  const makeReady = async (k: number) => {
    while (nextSlab < order.length) {
      const t = order[nextSlab];
      if (t < md[a]) {
        if (slabNeed(g, t) > k) break;
        const tab = g.linear[a];
        const plane = band.imagePlane(t);
        const lo = tab.lo[t] >= 0 ? (held.get(tab.lo[t]) ?? null) : null;
        const hi = tab.lo[t] >= 0 ? (held.get(tab.hi[t]) ?? null) : null;
        sampler.sample(t, lo, hi, plane, band.grid[g.planeAxes[0]]);
      }
      nextSlab++;
      await band.slabReady(t);
    }
  };

  await makeReady(-1);
  for (let k = 0; k < info.dims[2]; k++) {
    if (options.signal?.aborted) throw new StreamAbortedError();
    const slice = await reader.next();
    if (!slice) throw new Error('internal: the slice reader ended early');
    const c = storageIndexOf(g, k);
    held.set(c, slice);
    // Only the neighbour on the storage side still matters to the slabs not yet made.
    for (const key of held.keys()) if (Math.abs(key - c) > 1) held.delete(key);
    await makeReady(k);
  }
  await makeReady(info.dims[2]);
  held.clear();
  await reader.next(); // stops the body: nothing past the voxel data is read.
  band.finish();
  store.resolve(options, g.modelAffine);
  return {
    header: info,
    dims: [...info.dims] as Dims3,
    affine: Float64Array.from(info.affine),
    modelDims: [...md] as Dims3,
    slices: () => store.output(),
    classVoxels: () => store.counts(),
    lesions: () => store.lesions(),
    replay: () => store.replay(),
    stats: { windows: band.windowsRun, storedBytes: store.storedBytes, bandBytes: need },
  };
}

/** The sliding windows over a band of model slabs along the slab axis. */
class BandRunner {
  readonly grid: Dims3;
  onFinal: (t: number, labels: Uint8Array) => void = () => undefined;
  windowsRun = 0;
  private readonly g: StreamGrid;
  private readonly patch: Dims3;
  private readonly runner: OnnxRunner;
  private readonly manifest: ModelManifest;
  private readonly options: StreamSegmentOptions;
  private readonly planeSize: number;
  private readonly images = new Map<number, Float32Array>();
  private readonly acc = new Map<number, Float32Array>();
  private readonly weight = new Map<number, Float32Array>();
  private readonly importance: Float32Array;
  /** Window starts along the slab axis in processing order, and along the plane axes. */
  private readonly slabStarts: number[];
  private readonly planeStarts: Array<[number, number]>;
  private nextStart = 0;
  private channels = 0;
  private readonly totalWindows: number;
  private finalizedUpTo = 0;
  private readonly processed = new Set<number>();
  /** Freed planes, reused: a slab's buffers become the next slab's (no garbage per slab). */
  private readonly pool: Float32Array[] = [];
  private readonly accPool: Float32Array[] = [];
  private input: Float32Array | null = null;
  private probs: Float32Array | null = null;
  private labelsOut: Uint8Array | null = null;

  constructor(
    g: StreamGrid,
    patch: Dims3,
    manifest: ModelManifest,
    runner: OnnxRunner,
    options: StreamSegmentOptions,
  ) {
    const pre = manifest.preprocessing;
    if (!(pre.overlap >= 0 && pre.overlap < 1)) throw new RangeError('overlap must be in [0, 1)');
    this.g = g;
    this.patch = patch;
    this.manifest = manifest;
    this.runner = runner;
    this.options = options;
    this.grid = g.modelDims.map((d, a) => Math.max(d, patch[a])) as Dims3;
    const [o1, o2] = g.planeAxes;
    this.planeSize = this.grid[o1] * this.grid[o2];
    const starts = this.grid.map((d, a) => windowStarts(d, patch[a], pre.overlap));
    const a = g.slabAxis;
    this.slabStarts = g.reverse ? [...starts[a]].reverse() : starts[a];
    // Windows of one slab start run in the whole-volume order: z, then y, then x outermost first.
    this.planeStarts = [];
    for (const s2 of starts[o2]) for (const s1 of starts[o1]) this.planeStarts.push([s1, s2]);
    this.totalWindows = this.slabStarts.length * this.planeStarts.length;
    this.importance =
      pre.blending === 'gaussian'
        ? gaussianImportance(patch)
        : new Float32Array(patch[0] * patch[1] * patch[2]).fill(1);
  }

  /** The (zeroed) image plane of slab t, to be filled by the sampler. */
  imagePlane(t: number): Float32Array {
    let p = this.images.get(t);
    if (!p) {
      p = this.pool.pop()?.fill(0) ?? new Float32Array(this.planeSize);
      this.images.set(t, p);
    }
    return p;
  }

  /** Slab t is made (padding slabs beyond the model grid are zeros); runs every window now possible. */
  async slabReady(t: number): Promise<void> {
    this.imagePlane(t);
    this.processed.add(t);
    const a = this.g.slabAxis;
    const P = this.patch[a];
    while (this.nextStart < this.slabStarts.length) {
      const s = this.slabStarts[this.nextStart];
      for (let u = s; u < s + P; u++) if (!this.processed.has(u)) return;
      await this.runStart(s);
      this.nextStart++;
      this.finalizeBefore();
    }
  }

  private async runStart(s: number): Promise<void> {
    const batchSize = Math.max(1, this.options.batchSize ?? 1);
    const pv = this.patch[0] * this.patch[1] * this.patch[2];
    const inputName = this.manifest.inputs[0].name;
    const outputName = this.manifest.outputs[0].name;
    for (let b0 = 0; b0 < this.planeStarts.length; b0 += batchSize) {
      if (this.options.signal?.aborted) throw new StreamAbortedError();
      const batch = this.planeStarts.slice(b0, b0 + batchSize);
      if (!this.input || this.input.length !== batch.length * pv)
        this.input = new Float32Array(batch.length * pv);
      const input = this.input;
      for (let i = 0; i < batch.length; i++) this.cut(s, batch[i], input.subarray(i * pv, (i + 1) * pv));
      const outputs = await this.runner.run({
        [inputName]: { dims: [batch.length, 1, this.patch[2], this.patch[1], this.patch[0]], data: input },
      });
      const out = outputName in outputs ? outputs[outputName] : Object.values(outputs)[0];
      if (!out) throw new Error(`model returned no output named ${outputName}`);
      const [on, oc, od, oh, ow] = out.dims;
      if (on !== batch.length || od !== this.patch[2] || oh !== this.patch[1] || ow !== this.patch[0]) {
        throw new Error(`model output ${out.dims.join('x')} does not match the patch batch`);
      }
      if (this.channels === 0) this.channels = oc;
      for (let i = 0; i < batch.length; i++) this.add(s, batch[i], out.data, i);
      this.windowsRun += batch.length;
      this.options.onProgress?.(this.windowsRun, this.totalWindows);
    }
  }

  /** Walks the patch voxels (x fastest) with the slab and plane index of each. */
  private walk(
    s: number,
    start: [number, number],
    visit: (p: number, slab: number, plane: number) => void,
  ): void {
    const g = this.g;
    const a = g.slabAxis;
    const [o1, o2] = g.planeAxes;
    const n1 = this.grid[o1];
    const [P0, P1, P2] = this.patch;
    const origin = [0, 0, 0];
    origin[a] = s;
    origin[o1] = start[0];
    origin[o2] = start[1];
    let p = 0;
    for (let z = 0; z < P2; z++) {
      for (let y = 0; y < P1; y++) {
        if (a === 0) {
          // x runs across slabs; the plane index is fixed along the row.
          const plane = origin[1] + y + n1 * (origin[2] + z);
          for (let x = 0; x < P0; x++) visit(p++, s + x, plane);
        } else {
          const slab = a === 1 ? s + y : s + z;
          const other = a === 1 ? origin[2] + z : origin[1] + y;
          const base = origin[0] + n1 * other;
          for (let x = 0; x < P0; x++) visit(p++, slab, base + x);
        }
      }
    }
  }

  private cut(s: number, start: [number, number], out: Float32Array): void {
    let lastSlab = -1;
    let img: Float32Array | undefined;
    this.walk(s, start, (p, slab, plane) => {
      if (slab !== lastSlab) {
        img = this.images.get(slab);
        lastSlab = slab;
      }
      out[p] = (img as Float32Array)[plane];
    });
  }

  private add(s: number, start: [number, number], out: Float32Array, index: number): void {
    const C = this.channels;
    const pv = this.patch[0] * this.patch[1] * this.patch[2];
    const n = this.planeSize;
    const imp = this.importance;
    let lastSlab = -1;
    let acc: Float32Array | undefined;
    let w: Float32Array | undefined;
    this.walk(s, start, (p, slab, plane) => {
      if (slab !== lastSlab) {
        acc = this.acc.get(slab);
        if (!acc) {
          acc = this.accPool.pop()?.fill(0) ?? new Float32Array(C * n);
          this.acc.set(slab, acc);
          this.weight.set(slab, this.pool.pop()?.fill(0) ?? new Float32Array(n));
        }
        w = this.weight.get(slab);
        lastSlab = slab;
      }
      const ip = imp[p];
      (w as Float32Array)[plane] += ip;
      for (let c = 0; c < C; c++) (acc as Float32Array)[c * n + plane] += out[(index * C + c) * pv + p] * ip;
    });
  }

  /** Finalizes the slabs no remaining window covers. */
  private finalizeBefore(): void {
    const a = this.g.slabAxis;
    const P = this.patch[a];
    const G = this.grid[a];
    const more = this.nextStart < this.slabStarts.length;
    const next = more ? this.slabStarts[this.nextStart] : null;
    const final: number[] = [];
    if (!this.g.reverse) {
      const end = next === null ? G : next;
      for (let t = this.finalizedUpTo; t < end; t++) final.push(t);
      this.finalizedUpTo = Math.max(this.finalizedUpTo, end);
    } else {
      const end = next === null ? -1 : next + P - 1;
      for (let t = G - 1 - this.finalizedUpTo; t > end; t--) final.push(t);
      this.finalizedUpTo = Math.max(this.finalizedUpTo, G - 1 - end);
    }
    for (const t of final) this.finalize(t);
  }

  private finalize(t: number): void {
    const acc = this.acc.get(t);
    const weight = this.weight.get(t);
    const image = this.images.get(t);
    this.images.delete(t);
    this.acc.delete(t);
    this.weight.delete(t);
    this.processed.delete(t);
    if (image) this.pool.push(image);
    try {
      this.finalizeSlab(t, acc, weight);
    } finally {
      if (acc) this.accPool.push(acc);
      if (weight) this.pool.push(weight);
    }
  }

  private finalizeSlab(t: number, acc: Float32Array | undefined, weight: Float32Array | undefined): void {
    const g = this.g;
    const a = g.slabAxis;
    if (t >= g.modelDims[a]) return;
    if (!acc || !weight) throw new Error('internal: a model slab no window covered');
    const C = this.channels;
    const n = this.planeSize;
    const [o1, o2] = g.planeAxes;
    const n1 = g.modelDims[o1];
    const n2 = g.modelDims[o2];
    const gn1 = this.grid[o1];
    const m = n1 * n2;
    if (!this.probs || this.probs.length !== C * m) this.probs = new Float32Array(C * m);
    if (!this.labelsOut || this.labelsOut.length !== m) this.labelsOut = new Uint8Array(m);
    const probs = this.probs;
    for (let c = 0; c < C; c++) {
      for (let q = 0; q < n2; q++) {
        for (let p = 0; p < n1; p++) {
          const v = p + gn1 * q;
          // Stored as float32 first, exactly as the whole-volume accumulator is divided in place.
          probs[c * m + p + n1 * q] = acc[c * n + v] / weight[v];
        }
      }
    }
    this.onFinal(t, argmaxInto(probs, C, m, this.labelsOut));
  }

  finish(): void {
    if (this.nextStart < this.slabStarts.length) throw new Error('internal: sliding windows left unrun');
    if (this.acc.size > 0) throw new Error('internal: model slabs left unfinalized');
  }
}

/**
 * The whole streaming path for a NIfTI byte stream (HTTP body, file): header checked first, the
 * segmentation band by band, then the mask as a .nii(.gz) byte stream on the input grid with its
 * affine. The one entry point the Worker and the CLI share.
 */
export async function segmentNiftiStream(
  input: ReadableStream<Uint8Array> | NiftiSliceReader,
  manifest: ModelManifest,
  runner: OnnxRunner,
  options: StreamSegmentOptions & {
    limits?: Partial<SliceStreamLimits>;
    idleTimeoutMs?: number;
  } = {},
): Promise<
  StreamSegmentation & { maskStream(gzip: boolean, onClose?: () => void): ReadableStream<Uint8Array> }
> {
  const reader =
    input instanceof NiftiSliceReader
      ? input
      : await NiftiSliceReader.open(input, {
          limits: options.limits,
          idleTimeoutMs: options.idleTimeoutMs,
          signal: options.signal,
        });
  try {
    const seg = await segmentSliceStream(reader, manifest, runner, options);
    return {
      ...seg,
      maskStream(gzip, onClose) {
        const args = [seg.dims, seg.affine, 'uint8', seg.slices(), { onClose }] as const;
        return gzip ? gzipNiftiSliceStream(...args) : niftiSliceStream(...args);
      },
    };
  } catch (e) {
    await reader.cancel();
    throw e;
  }
}
