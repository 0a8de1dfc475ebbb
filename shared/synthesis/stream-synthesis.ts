/**
 * Synthesis on a CT that streams (the Worker's /v1/synthesize at full resolution): the same result as
 * `synthesizeVolume` (whole-volume.ts), byte for byte, in memory that does not grow with the slice
 * count. The label is read first, possibly more than once (its source re-opens it, e.g. from its
 * compressed bytes), the CT once:
 *
 * 1. Label (stream-plan.ts): the working-grid label kept run-length coded, the tumors planned on the
 *    organ's box, only the plan's region kept.
 * 2. CT, slice by slice as it arrives: the working-grid slabs of the region are sampled from their two
 *    neighbouring storage slices (stream-grid.ts's sampler, resample.ts's arithmetic), composed
 *    (compose.ts) and turned into the HU change; each output slice leaves as soon as the slabs it
 *    interpolates its change from exist (a lag of a few slices), with the label read beside it for
 *    the organ test. The change is carried back as whole-volume.ts does: linear from the working grid
 *    onto the input sub-grid of the region, added on organ voxels, rounded for integer data.
 * 3. Label again: the synthetic tumor voxels written into it.
 * Then the summary (whole-volume.ts's `synthesisSummary`), complete once 2 and 3 have run.
 */
import { FreeTumorError } from '../errors.ts';
import { invertAffine, multiplyAffine } from '../geometry/affine.ts';
import { linearTable } from '../geometry/resample.ts';
import { slabSampler, storageIndexOf } from '../inference/stream-grid.ts';
import { windowHU } from '../intensity/window.ts';
import { mergedLookup } from '../labels/labelmap.ts';
import type { Rng } from '../random.ts';
import { allocLike, datatypeInfo } from '../volume/datatype.ts';
import type { NiftiHeaderInfo } from '../volume/nifti-header.ts';
import type { NiftiSliceReader } from '../volume/nifti-slices.ts';
import type { Dims3, VoxelArray } from '../volume/volume.ts';
import { applyDifference } from './compose.ts';
import {
  type Box3,
  planStreamed,
  type RegionPlan,
  type StreamPlan,
  type StreamPlanLimits,
} from './stream-plan.ts';
import { summarizeTumors } from './summary.ts';
import {
  inputSubGrid,
  synthesisSummary,
  type VolumeSynthesisOptions,
  type VolumeSynthesisSummary,
} from './whole-volume.ts';

type Table = ReturnType<typeof linearTable>;

/** The input sub-grid the change is carried back onto (canonical coordinates) and its tables. */
interface SubGrid {
  start: Dims3;
  dims: Dims3;
  /** Per canonical axis: working-grid indices (lo, hi) and weight for each sub-grid index. */
  tables: [Table, Table, Table];
}

export class StreamedSynthesis {
  readonly image: NiftiHeaderInfo;
  readonly label: NiftiHeaderInfo;
  private readonly plan: StreamPlan;
  private readonly options: VolumeSynthesisOptions;
  private readonly openLabel: () => Promise<NiftiSliceReader>;
  private readonly sub: SubGrid | null;
  private readonly rp: RegionPlan;
  /** Working-grid HU and HU change on the region's box (filled by the CT pass). */
  private readonly hu: Float32Array;
  private readonly delta: Float32Array;
  private readonly lut: Uint8Array;
  private tumorVoxels = 0;
  private changed = 0;
  private ctDone = false;
  private labelDone = false;

  private constructor(
    image: NiftiHeaderInfo,
    label: NiftiHeaderInfo,
    plan: StreamPlan,
    options: VolumeSynthesisOptions,
    openLabel: () => Promise<NiftiSliceReader>,
  ) {
    this.image = image;
    this.label = label;
    this.plan = plan;
    this.options = options;
    this.openLabel = openLabel;
    this.lut = mergedLookup(options.labelMap, options.organ);
    this.sub = plan.region ? subGrid(plan, plan.region) : null;
    const box = this.sub
      ? reach(plan.region as Box3, this.sub)
      : { start: [0, 0, 0] as Dims3, size: [1, 1, 1] as Dims3 };
    this.rp = plan.regionPlan(box);
    const n = box.size[0] * box.size[1] * box.size[2];
    this.hu = new Float32Array(n);
    this.delta = new Float32Array(n);
  }

  /**
   * Plans from the label (`openLabel` opens it, header read; it is called again for the later
   * passes) for the CT whose header is `image`.
   */
  static async plan(
    image: NiftiHeaderInfo,
    openLabel: () => Promise<NiftiSliceReader>,
    options: VolumeSynthesisOptions,
    rng: Rng,
    limits: StreamPlanLimits,
  ): Promise<StreamedSynthesis> {
    const label = await openLabel();
    try {
      const plan = await planStreamed(image, label, options, rng, limits);
      return new StreamedSynthesis(image, label.info, plan, options, openLabel);
    } catch (e) {
      await label.cancel();
      throw e;
    }
  }

  /** The synthetic CT's storage slices as `ct` (the CT, header read) is read; call once. */
  async *ctSlices(ct: NiftiSliceReader): AsyncGenerator<VoxelArray> {
    const g = this.plan.image;
    const [nx, ny, nz] = this.image.dims;
    const plane = nx * ny;
    const sub = this.sub;
    const a = g.slabAxis;
    const slabs = new SlabMaker(this, ct);
    const label = sub ? await this.openLabel() : null;
    try {
      const range = datatypeInfo(this.image.datatype);
      const offsets = sub ? subOffsets(this.plan, sub) : null;
      let out: VoxelArray | null = null;
      for (let k = 0; k < nz; k++) {
        const c = storageIndexOf(g, k);
        const inSub = sub !== null && c >= sub.start[a] && c < sub.start[a] + sub.dims[a];
        // Slabs the change of this slice interpolates from (outside the working grid: none).
        const needs: number[] = [];
        if (inSub && sub) {
          const s = c - sub.start[a];
          if (sub.tables[a].lo[s] >= 0) needs.push(sub.tables[a].lo[s], sub.tables[a].hi[s]);
        }
        const src = await slabs.upTo(k, needs);
        const lab = label ? await label.next() : null;
        out ??= allocLike(src, plane);
        out.set(src as never);
        if (inSub && sub && offsets && lab) {
          const integer = !(src instanceof Float32Array || src instanceof Float64Array);
          const coords: Dims3 = [0, 0, 0];
          coords[a] = c - sub.start[a];
          const [o1, o2] = g.planeAxes;
          for (let s2 = 0; s2 < sub.dims[o2]; s2++) {
            coords[o2] = s2;
            const off2 = offsets[1][s2];
            for (let s1 = 0; s1 < sub.dims[o1]; s1++) {
              coords[o1] = s1;
              const v = offsets[0][s1] + off2;
              const l = lab[v];
              if (!(l > 0 && l === (l | 0) && this.lut[l] === 1)) continue;
              if (this.carried(this.rp.tumor, sub, coords) >= 0.5) this.tumorVoxels++;
              const d = this.carried(this.delta, sub, coords);
              if (d === 0) continue;
              const x = src[v];
              let y = x + d;
              if (integer) y = Math.min(range.max, Math.max(range.min, Math.round(y)));
              if (y !== x) {
                out[v] = y;
                this.changed++;
              }
            }
          }
        }
        slabs.release(k);
        // Done before the last slice is handed out: a consumer that takes exactly nz slices never
        // resumes the generator past it.
        if (k === nz - 1) {
          await slabs.finish();
          await label?.next();
          this.ctDone = true;
        }
        yield out;
      }
    } finally {
      await label?.cancel();
      await ct.cancel();
    }
  }

  /** The label with the synthetic tumor written in, storage slice by storage slice; after `ctSlices`. */
  async *labelSlices(): AsyncGenerator<VoxelArray> {
    const g = this.plan.image;
    const [nx, ny, nz] = this.label.dims;
    const sub = this.sub;
    const a = g.slabAxis;
    const tumorOut = this.plan.organIds.tumorOut;
    const reader = await this.openLabel();
    try {
      const offsets = sub ? subOffsets(this.plan, sub) : null;
      let out: VoxelArray | null = null;
      for (let k = 0; k < nz; k++) {
        const lab = await reader.next();
        if (!lab) throw new Error('internal: the label ended early');
        out ??= allocLike(lab, nx * ny);
        out.set(lab as never);
        const c = storageIndexOf(g, k);
        if (sub && offsets && c >= sub.start[a] && c < sub.start[a] + sub.dims[a]) {
          const coords: Dims3 = [0, 0, 0];
          coords[a] = c - sub.start[a];
          const [o1, o2] = g.planeAxes;
          for (let s2 = 0; s2 < sub.dims[o2]; s2++) {
            coords[o2] = s2;
            for (let s1 = 0; s1 < sub.dims[o1]; s1++) {
              coords[o1] = s1;
              const v = offsets[0][s1] + offsets[1][s2];
              const l = lab[v];
              if (!(l > 0 && l === (l | 0) && this.lut[l] === 1)) continue;
              if (this.carried(this.rp.tumor, sub, coords) >= 0.5) out[v] = tumorOut;
            }
          }
        }
        if (k === nz - 1) {
          await reader.next();
          this.labelDone = true;
        }
        yield out;
      }
    } finally {
      await reader.cancel();
    }
  }

  /** The summary (whole-volume.ts's shape); after both passes. */
  summary(): VolumeSynthesisSummary {
    if (!this.ctDone || !this.labelDone)
      throw new Error('internal: the summary before the CT and label passes');
    const p = this.plan;
    const rp = this.rp;
    const tumors = summarizeTumors(
      { tumors: rp.tumors, shapes: rp.shapes, dims: rp.box.size, tumorMask: rp.tumorMask },
      p.image.modelAffine,
      this.hu,
      this.delta,
    );
    return synthesisSummary(
      this.options,
      { organIds: p.organIds, spacing: p.spacing, window: p.window, affine: this.image.affine },
      { mode: p.mode, difference: p.difference, plan: { blurSigma: p.blurSigma, texture: p.texture } },
      tumors,
      { tumorVoxels: this.tumorVoxels, changed: this.changed },
    );
  }

  /**
   * A working-grid field on the region's box (zero outside it) at sub-grid voxel `s`, linearly
   * interpolated with resample.ts's linearAligned arithmetic (x, then y, then z) and stored as
   * float32, as `resampleToGrid` gives it.
   */
  private carried(src: ArrayLike<number>, sub: SubGrid, s: Dims3): number {
    const [tx, ty, tz] = sub.tables;
    const z0 = tz.lo[s[2]];
    const y0 = ty.lo[s[1]];
    const x0 = tx.lo[s[0]];
    if (z0 < 0 || y0 < 0 || x0 < 0) return 0;
    const { start, size } = this.rp.box;
    const sxy = size[0] * size[1];
    const Z0 = (z0 - start[2]) * sxy;
    const Z1 = (tz.hi[s[2]] - start[2]) * sxy;
    const Y0 = (y0 - start[1]) * size[0];
    const Y1 = (ty.hi[s[1]] - start[1]) * size[0];
    const X0 = x0 - start[0];
    const X1 = tx.hi[s[0]] - start[0];
    const wx = tx.w[s[0]];
    const wy = ty.w[s[1]];
    const wz = tz.w[s[2]];
    const r00 = Z0 + Y0;
    const r01 = Z0 + Y1;
    const r10 = Z1 + Y0;
    const r11 = Z1 + Y1;
    const pa = src[r00 + X0];
    const pb = src[r01 + X0];
    const pc = src[r10 + X0];
    const pd = src[r11 + X0];
    const c00 = pa + (src[r00 + X1] - pa) * wx;
    const c01 = pb + (src[r01 + X1] - pb) * wx;
    const c10 = pc + (src[r10 + X1] - pc) * wx;
    const c11 = pd + (src[r11 + X1] - pd) * wx;
    const c0 = c00 + (c01 - c00) * wy;
    const c1 = c10 + (c11 - c10) * wy;
    return Math.fround(c0 + (c1 - c0) * wz);
  }

  /** Samples and composes working slab t of the region's box from its canonical neighbour slices. */
  makeSlab(t: number, lo: VoxelArray | null, hi: VoxelArray | null, scratch: SlabScratch): void {
    const g = this.plan.image;
    const a = g.slabAxis;
    const [o1, o2] = g.planeAxes;
    const { start, size } = this.rp.box;
    const n1 = size[o1];
    const n2 = size[o2];
    scratch.sampler.sample(t, lo, hi, scratch.hu, n1);
    const [wLo, wHi] = this.plan.window;
    const x = windowHU(scratch.hu, wLo, wHi);
    const strides = [1, size[0], size[0] * size[1]];
    const base = (t - start[a]) * strides[a];
    for (let q = 0; q < n2; q++)
      for (let p = 0; p < n1; p++)
        scratch.weight[p + n1 * q] = this.rp.weight[base + p * strides[o1] + q * strides[o2]];
    const out = applyDifference(
      x,
      { dims: [n1, n2, 1], weight: scratch.weight, region: { start: [0, 0, 0], size: [n1, n2, 1] } },
      this.plan.difference,
      this.plan.mode,
    );
    const span = wHi - wLo;
    for (let q = 0; q < n2; q++) {
      for (let p = 0; p < n1; p++) {
        const i = p + n1 * q;
        const v = base + p * strides[o1] + q * strides[o2];
        this.hu[v] = scratch.hu[i];
        if (scratch.weight[i] !== 0) this.delta[v] = (out[i] - x[i]) * span;
      }
    }
  }

  /** The region's box and the plan's grid, for the slab maker. */
  get box(): Box3 {
    return this.rp.box;
  }

  get grid() {
    return this.plan.image;
  }
}

interface SlabScratch {
  sampler: ReturnType<typeof slabSampler>;
  hu: Float32Array;
  weight: Float32Array;
}

/**
 * Reads the CT ahead of the output as far as the working slabs of the region need, keeps each read
 * slice (copied: the reader reuses its buffers) until no slab and no output needs it, and makes each
 * slab as soon as its two neighbour slices are in.
 */
class SlabMaker {
  private readonly s: StreamedSynthesis;
  private readonly ct: NiftiSliceReader;
  private readonly held = new Map<number, VoxelArray>();
  private readonly pool: VoxelArray[] = [];
  /** Slabs of the region's box still to make, with the storage slices each needs. */
  private readonly pending = new Map<number, number[]>();
  private readonly done = new Set<number>();
  private read = 0;
  private emitted = -1;
  private readonly scratch: SlabScratch;

  constructor(s: StreamedSynthesis, ct: NiftiSliceReader) {
    this.s = s;
    this.ct = ct;
    const g = s.grid;
    const a = g.slabAxis;
    const [o1, o2] = g.planeAxes;
    const box = s.box;
    const tab = g.linear[a];
    for (let t = box.start[a]; t < box.start[a] + box.size[a]; t++) {
      const need = tab.lo[t] < 0 ? [] : [storageIndexOf(g, tab.lo[t]), storageIndexOf(g, tab.hi[t])];
      this.pending.set(t, need);
    }
    const n1 = box.size[o1];
    const n2 = box.size[o2];
    this.scratch = {
      sampler: slabSampler(g, null, { p1: box.start[o1], n1, p2: box.start[o2], n2 }),
      hu: new Float32Array(n1 * n2),
      weight: new Float32Array(n1 * n2),
    };
    this.makeReady();
  }

  /** Storage slice k, once it and the slabs `needs` (working indices) exist. */
  async upTo(k: number, needs: number[]): Promise<VoxelArray> {
    while (this.read <= k || needs.some((t) => !this.done.has(t))) {
      if (this.read >= this.s.image.dims[2]) throw new Error('internal: a slab needs slices past the end');
      const slice = await this.ct.next();
      if (!slice) throw new Error('internal: the CT ended early');
      const copy = this.pool.pop() ?? allocLike(slice, slice.length);
      copy.set(slice as never);
      this.held.set(this.read++, copy);
      this.makeReady();
    }
    return this.held.get(k) as VoxelArray;
  }

  private makeReady(): void {
    for (const [t, need] of this.pending) {
      if (need.some((j) => j >= this.read)) continue;
      const lo = need.length ? (this.held.get(need[0]) ?? null) : null;
      const hi = need.length ? (this.held.get(need[1]) ?? null) : null;
      if (need.length && (!lo || !hi)) throw new Error('internal: a slab lost its slices');
      this.s.makeSlab(t, lo, hi, this.scratch);
      this.pending.delete(t);
      this.done.add(t);
    }
  }

  /** Output slice k has left: drop what nothing needs any more. */
  release(k: number): void {
    this.emitted = k;
    let keepFrom = k + 1;
    for (const need of this.pending.values()) for (const j of need) keepFrom = Math.min(keepFrom, j);
    for (const [j, buf] of this.held) {
      if (j < keepFrom) {
        this.held.delete(j);
        this.pool.push(buf);
      }
    }
  }

  async finish(): Promise<void> {
    if (this.pending.size > 0 || this.emitted !== this.s.image.dims[2] - 1)
      throw new Error('internal: the CT pass ended with slabs to make');
    await this.ct.next(); // past the last slice: stops the stream
  }
}

/** The input sub-grid of the region (whole-volume.ts's `inputSubGrid`) with its interpolation tables. */
function subGrid(plan: StreamPlan, region: Box3): SubGrid | null {
  const g = plan.image;
  const sub = inputSubGrid(region, g.modelAffine, { dims: g.canonicalDims, affine: g.canonicalAffine });
  if (!sub) return null;
  const m = multiplyAffine(invertAffine(g.modelAffine), sub.affine);
  const off = Math.max(
    Math.abs(m[1]),
    Math.abs(m[2]),
    Math.abs(m[4]),
    Math.abs(m[6]),
    Math.abs(m[8]),
    Math.abs(m[9]),
  );
  if (off >= 1e-9)
    throw new FreeTumorError('invalid_geometry', 'the working grid is not aligned with the CT');
  const W = g.modelDims;
  const tables = [0, 1, 2].map((o) =>
    linearTable(sub.dims[o], W[o], m[o * 5], m[o * 4 + 3], 1),
  ) as SubGrid['tables'];
  return { start: sub.start, dims: sub.dims, tables };
}

/** The region's box grown to every working voxel the sub-grid interpolates from. */
function reach(region: Box3, sub: SubGrid): Box3 {
  const start = [...region.start] as Dims3;
  const end = region.start.map((s, a) => s + region.size[a] - 1);
  for (let a = 0; a < 3; a++) {
    const t = sub.tables[a];
    for (let i = 0; i < t.lo.length; i++) {
      if (t.lo[i] < 0) continue;
      start[a] = Math.min(start[a], t.lo[i]);
      end[a] = Math.max(end[a], t.hi[i]);
    }
  }
  return { start, size: start.map((s, a) => end[a] - s + 1) as Dims3 };
}

/** In-slice offsets (i + nx * j) of the sub-grid's indices along the two plane axes. */
function subOffsets(plan: StreamPlan, sub: SubGrid): [Int32Array, Int32Array] {
  const g = plan.image;
  const nx = g.inputDims[0];
  return g.planeAxes.map((o) => {
    const ax = g.reorientation.axes[o];
    const flip = g.reorientation.flips[o];
    const stride = ax === 0 ? 1 : nx;
    return Int32Array.from({ length: sub.dims[o] }, (_, s) => {
      const c = sub.start[o] + s;
      return (flip ? g.inputDims[ax] - 1 - c : c) * stride;
    });
  }) as [Int32Array, Int32Array];
}
