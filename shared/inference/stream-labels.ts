/**
 * The model-grid side of the streaming segmentation (stream-segment.ts): class ids of finished model
 * slabs kept run-length coded, the streaming connected components the tumor clean-up needs, the
 * clean-up decisions of pipeline.ts's cleanTumors for the whole volume, and the mask's storage
 * slices produced from them with the lesion components counted on the input grid.
 */
import { applyAffine } from '../geometry/affine.ts';
import { voxelMl } from '../metrics/dice.ts';
import type { Affine } from '../volume/volume.ts';
import { type Lesion, ORGAN_COMPONENT_MIN_FRACTION, type SegmentOptions } from './pipeline.ts';
import { PlaneComponents } from './stream-components.ts';
import { inputPlaneMap, modelRaster, modelSlabOf, type StreamGrid } from './stream-grid.ts';

/**
 * Run-length coding of a plane ([value, length] pairs): class ids and component labels of a
 * segmentation are long runs. A plane with more runs than half its voxels is kept as a plain copy.
 * (Not deflate: its per-call working buffers would be garbage for every slab.)
 */
type Packed = Int32Array | Uint8Array;

/** A plane kept run-length coded (or raw when that is smaller). */
export interface PackedPlane {
  packed: Packed;
  raw: boolean;
  bytes: number;
}

export function packPlane(data: Uint8Array | Int32Array): PackedPlane {
  let runs = 1;
  for (let v = 1; v < data.length; v++) if (data[v] !== data[v - 1]) runs++;
  if (runs * 2 > data.length / (data instanceof Uint8Array ? 8 : 2)) {
    const copy = data.slice();
    return { packed: copy, raw: true, bytes: copy.byteLength };
  }
  const out = new Int32Array(runs * 2);
  let r = 0;
  let start = 0;
  for (let v = 1; v <= data.length; v++) {
    if (v === data.length || data[v] !== data[start]) {
      out[r++] = data[start];
      out[r++] = v - start;
      start = v;
    }
  }
  return { packed: out, raw: false, bytes: out.byteLength };
}

export function unpackPlane(p: { packed: Packed; raw: boolean }, into: Uint8Array | Int32Array): void {
  if (p.raw) {
    into.set(p.packed);
    return;
  }
  const runs = p.packed as Int32Array;
  let o = 0;
  for (let r = 0; r < runs.length; r += 2) {
    into.fill(runs[r], o, o + runs[r + 1]);
    o += runs[r + 1];
  }
}

/** argmaxChannels (sliding-window.ts) into a reused buffer: first channel wins ties, one channel > 0.5. */
export function argmaxInto(
  data: Float32Array,
  channels: number,
  voxels: number,
  out: Uint8Array,
): Uint8Array {
  if (channels === 1) {
    for (let v = 0; v < voxels; v++) out[v] = data[v] > 0.5 ? 1 : 0;
    return out;
  }
  for (let v = 0; v < voxels; v++) {
    let best = data[v];
    let c0 = 0;
    for (let c = 1; c < channels; c++) {
      const x = data[c * voxels + v];
      if (x > best) {
        best = x;
        c0 = c;
      }
    }
    out[v] = c0;
  }
  return out;
}

/** Class ids of the model grid, kept run-length coded per slab, with the components the clean-up needs. */
export class ModelLabelStore {
  storedBytes = 0;
  private readonly g: StreamGrid;
  private readonly classes: { organ: number | null; tumor: number | null };
  private readonly labels = new Map<number, { packed: Packed; raw: boolean }>();
  private readonly tumorIds = new Map<number, { packed: Packed; raw: boolean }>();
  private readonly organIds = new Map<number, { packed: Packed; raw: boolean }>();
  /** Organ roots below ORGAN_COMPONENT_MIN_FRACTION of the largest (pipeline.ts's dropOrganSpecks). */
  private readonly organDrops = new Set<number>();
  private readonly tumorCC: PlaneComponents;
  private readonly organCC: PlaneComponents;
  /** Tumor root -> organ roots it touches (6-neighbourhood), recorded as the slabs go by. */
  private readonly touches = new Set<number>();
  private decisions = new Map<number, number>();
  private prevLabels: Uint8Array | null = null;
  private counted: number[] = new Array(256).fill(0);
  private lesionList: Lesion[] = [];
  /** The lesion components of the input grid once `output()` is exhausted, and their ids by root. */
  private lesionCC: PlaneComponents | null = null;
  private lesionRank = new Map<number, number>();
  private readonly n1: number;
  private readonly n2: number;

  constructor(g: StreamGrid, classes: { organ: number | null; tumor: number | null }) {
    this.g = g;
    this.classes = classes;
    this.n1 = g.modelDims[g.planeAxes[0]];
    this.n2 = g.modelDims[g.planeAxes[1]];
    this.tumorCC = new PlaneComponents(this.n1, this.n2);
    // Organ components carry their first raster index: the whole-volume code's tie-break.
    this.organCC = new PlaneComponents(this.n1, this.n2, 0, 1);
  }

  add(t: number, labels: Uint8Array): void {
    const packed = packPlane(labels);
    this.labels.set(t, packed);
    this.storedBytes += packed.bytes;
    const { organ, tumor } = this.classes;
    let ol: Int32Array | null = null;
    if (organ !== null) {
      ol = this.organCC.push(labels, organ);
      const { n1, n2 } = this;
      let anyOrgan = false;
      for (let q = 0; q < n2; q++) {
        for (let p = 0; p < n1; p++) {
          const v = p + n1 * q;
          if (ol[v]) {
            anyOrgan = true;
            this.organCC.addMin(ol[v], 0, modelRaster(this.g, t, p, q));
          }
        }
      }
      if (anyOrgan) {
        const ids = packPlane(ol);
        this.organIds.set(t, ids);
        this.storedBytes += ids.bytes;
      }
    }
    if (tumor === null) return;
    const tl = this.tumorCC.push(labels, tumor);
    if (ol) this.recordTouches(tl, ol);
    let any = false;
    for (let v = 0; v < tl.length; v++) {
      if (tl[v]) {
        any = true;
        break;
      }
    }
    if (any) {
      const ids = packPlane(tl);
      this.tumorIds.set(t, ids);
      this.storedBytes += ids.bytes;
    }
    this.prevLabels = labels;
  }

  private recordTouches(tl: Int32Array, ol: Int32Array): void {
    const { n1, n2 } = this;
    const prevL = this.prevLabels;
    const prevT = prevL ? this.tumorCC.previous() : null;
    const prevO = prevL ? this.organCC.previous() : null;
    const pair = (tLabel: number, oLabel: number) => {
      const key = this.tumorCC.find(tLabel) * 2 ** 26 + this.organCC.find(oLabel);
      this.touches.add(key);
    };
    for (let q = 0; q < n2; q++) {
      for (let p = 0; p < n1; p++) {
        const v = p + n1 * q;
        if (tl[v]) {
          if (p > 0 && ol[v - 1]) pair(tl[v], ol[v - 1]);
          if (p < n1 - 1 && ol[v + 1]) pair(tl[v], ol[v + 1]);
          if (q > 0 && ol[v - n1]) pair(tl[v], ol[v - n1]);
          if (q < n2 - 1 && ol[v + n1]) pair(tl[v], ol[v + n1]);
          if (prevO?.[v]) pair(tl[v], prevO[v]);
        } else if (ol[v] && prevT?.[v]) {
          pair(prevT[v], ol[v]);
        }
      }
    }
  }

  /** The clean-up of pipeline.ts's cleanTumors, decided per tumor component. */
  resolve(o: SegmentOptions, modelAffine: Affine): void {
    const { organ, tumor } = this.classes;
    const constraint = o.organConstraint ?? true;
    let main = 0;
    if (organ !== null) {
      let best: { root: number; size: number; first: number } | null = null;
      const organs = this.organCC.components();
      for (const c of organs) {
        if (!best || c.size > best.size || (c.size === best.size && c.mins[0] < best.first))
          best = { root: c.root, size: c.size, first: c.mins[0] };
      }
      main = best?.root ?? 0;
      if (constraint && best) {
        for (const c of organs)
          if (c.size < ORGAN_COMPONENT_MIN_FRACTION * best.size) this.organDrops.add(c.root);
      }
    }
    if (tumor === null) return;
    const touchesMain = new Set<number>();
    for (const key of this.touches) {
      const t = Math.floor(key / 2 ** 26);
      const oRoot = key - t * 2 ** 26;
      if (main > 0 && this.organCC.find(oRoot) === main) touchesMain.add(this.tumorCC.find(t));
    }
    const minVoxels = (o.minLesionMl ?? 0) / voxelMl(modelAffine);
    for (const c of this.tumorCC.components()) {
      const touches = touchesMain.has(c.root);
      const small = c.size < minVoxels;
      const outside = constraint && organ !== null && !touches;
      if (small || outside) this.decisions.set(c.root, touches && organ !== null ? organ : 0);
    }
  }

  /** The cleaned class ids of model slab t (plane p1 + n1 * p2), into `labels`. */
  private slab(t: number, labels: Uint8Array, tl: Int32Array): Uint8Array {
    const packed = this.labels.get(t);
    if (!packed) throw new Error('internal: a model slab was never stored');
    unpackPlane(packed, labels);
    const organ = this.organIds.get(t);
    if (organ && this.organDrops.size > 0) {
      unpackPlane(organ, tl);
      for (let v = 0; v < tl.length; v++) {
        if (tl[v] && this.organDrops.has(this.organCC.find(tl[v]))) labels[v] = 0;
      }
    }
    const ids = this.tumorIds.get(t);
    if (ids && this.decisions.size > 0) {
      unpackPlane(ids, tl);
      for (let v = 0; v < tl.length; v++) {
        if (!tl[v]) continue;
        const d = this.decisions.get(this.tumorCC.find(tl[v]));
        if (d !== undefined) labels[v] = d;
      }
    }
    return labels;
  }

  /**
   * The mask's storage slices (class ids, i + nx * j), first to last, with the class counts and the
   * lesion components (26-connected tumor voxels on the input grid) taken as they go out. Call once;
   * each slice is valid until the next one is taken.
   */
  *output(): Generator<Uint8Array> {
    const g = this.g;
    const [nx, ny, nz] = g.inputDims;
    const tumor = this.classes.tumor;
    const lesionCC = tumor === null ? null : new PlaneComponents(nx, ny, 3);
    const counts = new Array(256).fill(0);
    let k = 0;
    for (const out of this.maskSlices()) {
      for (let v = 0; v < out.length; v++) counts[out[v]]++;
      if (lesionCC && tumor !== null) {
        const labels = lesionCC.push(out, tumor);
        for (let v = 0; v < labels.length; v++) {
          const l = labels[v];
          if (!l) continue;
          lesionCC.addSum(l, 0, v % nx);
          lesionCC.addSum(l, 1, Math.floor(v / nx));
          lesionCC.addSum(l, 2, k);
        }
      }
      // Complete before the last slice is handed out: a consumer that takes exactly nz slices
      // never resumes the generator past it.
      if (++k === nz) this.finishOutput(counts, lesionCC);
      yield out;
    }
  }

  private finishOutput(counts: number[], lesionCC: PlaneComponents | null): void {
    this.counted = counts;
    if (!lesionCC) return;
    const g = this.g;
    const ml = voxelMl(g.inputAffine);
    const comps = lesionCC.components();
    comps.sort((x, y) => y.size - x.size || x.root - y.root);
    this.lesionCC = lesionCC;
    this.lesionRank = new Map(comps.map((c, i) => [c.root, i + 1]));
    this.lesionList = comps.map((c) => {
      const centre = applyAffine(g.inputAffine, [c.sums[0] / c.size, c.sums[1] / c.size, c.sums[2] / c.size]);
      return {
        voxels: c.size,
        volumeMl: c.size * ml,
        centroidMm: centre.map((x) => Math.round(x * 100) / 100) as Lesion['centroidMm'],
      };
    });
  }

  /**
   * The same storage slices again, after `output()` was exhausted, each with the lesion id of every
   * voxel (1..n in the order of `lesions()`, 0 off the tumor): for a second pass over the CT that needs
   * the final mask (statistics, preview) without holding it. The lesion ids come from relabelling
   * each slice as `output()` did (the same provisional labels) and resolving them with its finished
   * union-find. Both arrays are valid until the next slice is taken.
   */
  *replay(): Generator<{ mask: Uint8Array; lesions: Int32Array | null }> {
    const [nx, ny] = this.g.inputDims;
    const tumor = this.classes.tumor;
    const final = this.lesionCC;
    if (tumor !== null && !final) throw new Error('internal: replay() before output() gave its last slice');
    const relabel = tumor === null ? null : new PlaneComponents(nx, ny);
    const ids = new Int32Array(nx * ny);
    const rank = this.lesionRank;
    for (const mask of this.maskSlices()) {
      if (!relabel || !final || tumor === null) {
        yield { mask, lesions: null };
        continue;
      }
      const labels = relabel.push(mask, tumor);
      for (let v = 0; v < labels.length; v++) ids[v] = labels[v] ? (rank.get(final.find(labels[v])) ?? 0) : 0;
      yield { mask, lesions: ids };
    }
  }

  /** The cleaned class ids of each storage slice, nearest back from the model grid (one reused buffer). */
  private *maskSlices(): Generator<Uint8Array> {
    const g = this.g;
    const [nx, ny, nz] = g.inputDims;
    const map = inputPlaneMap(g);
    const out = new Uint8Array(nx * ny);
    let cachedT = -2;
    const cached = new Uint8Array(this.n1 * this.n2);
    const ids = new Int32Array(this.n1 * this.n2);
    for (let k = 0; k < nz; k++) {
      const t = modelSlabOf(g, k);
      if (t < 0) out.fill(0);
      else {
        if (t !== cachedT) {
          this.slab(t, cached, ids);
          cachedT = t;
        }
        for (let v = 0; v < out.length; v++) {
          const m = map[v];
          out[v] = m < 0 ? 0 : cached[m];
        }
      }
      yield out;
    }
  }

  counts(): number[] {
    return this.counted;
  }

  lesions(): Lesion[] {
    return this.lesionList;
  }
}
