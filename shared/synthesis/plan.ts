/**
 * planSynthesis: everything about a synthetic tumor except its intensity, i.e. the mask, the
 * label and the per-voxel weight blur(mask) * texture (method §2.2-2.4). The weight is zero
 * outside organ voxels, so x' = clip(x -/+ weight * D) is the whole composition, whether D is a
 * scalar (handcrafted) or a generator's per-voxel map (the trainer's differentiable path).
 *
 * Only the tumors' bounding box padded by the blur radius is filtered and textured: the blurred
 * mask is exactly 0 beyond it, so the result equals a whole-volume filter at a fraction of the cost.
 *
 * Every size is physical (tumors.ts): radii, deformation, the edge blur and the erosion kernel of
 * the location are the reference's 1.5 mm voxel sizes converted with the input's spacing, so the
 * same tumor type has the same size in millimetres on any grid.
 */
import { FreeTumorError } from '../errors.ts';
import type { Rng } from '../random.ts';
import type { Dims3 } from '../volume/volume.ts';
import type { Shape } from './ellipsoid.ts';
import { gaussianFilter3d } from './gaussian.ts';
import { type LocationOptions, type Placement, pickLocation } from './location.ts';
import { TextureBank, type TextureSigmas } from './texture.ts';
import {
  checkSpacing,
  REFERENCE_SPACING_MM,
  type TumorType,
  type TypeChoice,
  tumorShape,
  tumorTypes,
} from './tumors.ts';

export interface SynthesisInput {
  /** Windowed CT in [0, 1]. */
  image: Float32Array;
  /** Merged scheme: 0 background, 1 organ, 2 real tumor. */
  label: Uint8Array;
  dims: Dims3;
  /** Millimetres per voxel along each axis (i, j, k): tumor sizes are physical. */
  spacing: Dims3;
}

export interface PlanOptions {
  type: TypeChoice;
  count?: number;
  /** Informational: recorded in the plan (the label is already merged for one organ). */
  organ?: string;
  textures?: TextureBank;
  location?: LocationOptions;
}

export interface TumorInfo {
  type: TumorType;
  /** Sampled centre voxel (i, j, k). */
  center: Dims3;
  /** Ellipsoid semi-axes in voxels of the input grid, before deformation. */
  radii: Dims3;
  /** The same semi-axes in millimetres. */
  radiiMm: Dims3;
  /** Elastic sigma as drawn, in voxels of the reference's 1.5 mm grid. */
  elasticSigma: number;
  placement: Placement;
  /** Voxels of this tumor inside labeled tissue (tumors that overlap share voxels). */
  voxels: number;
  /** Mean voxel coordinate of those voxels, or null when the tumor fell outside the organ. */
  centroid: [number, number, number] | null;
  volumeMl?: number;
}

/** A region of the volume: start voxel and size per axis. */
export interface Region {
  start: Dims3;
  size: Dims3;
}

/** A deformed tumor shape and where its box starts in the volume (may be negative). */
export interface PlacedShape {
  origin: Dims3;
  shape: Shape;
}

export interface SynthesisPlan {
  dims: Dims3;
  /** 1 on synthetic tumor voxels (tumor shape AND label >= 1). */
  tumorMask: Uint8Array;
  /** blur(mask) * texture on organ voxels (label == 1), 0 elsewhere. */
  weight: Float32Array;
  /** Merged scheme with 3 on synthetic tumor voxels; real tumor (2) wins. */
  label: Uint8Array;
  tumors: TumorInfo[];
  /** Where weight can be non-zero; null when no tumor voxel landed in the organ. */
  region: Region | null;
  /** Edge blur sigma as drawn, U(1, 2) in voxels of the reference's 1.5 mm grid. */
  blurSigma: number;
  /** The same sigma in millimetres. */
  blurSigmaMm: number;
  texture: TextureSigmas | null;
  organ?: string;
  shapes: PlacedShape[];
}

let defaultBank: TextureBank | null = null;

/** The process-wide bank used when a caller passes none (textures stay cached between calls). */
export function defaultTextureBank(): TextureBank {
  defaultBank ??= new TextureBank();
  return defaultBank;
}

export function validateInput(input: SynthesisInput): void {
  const [nx, ny, nz] = input.dims;
  const n = nx * ny * nz;
  if (![nx, ny, nz].every((d) => Number.isInteger(d) && d > 0)) {
    throw new FreeTumorError('invalid_argument', 'dims must be three positive integers');
  }
  if (input.image.length !== n || input.label.length !== n) {
    throw new FreeTumorError(
      'invalid_argument',
      `image and label must have ${n} voxels (dims ${nx}x${ny}x${nz})`,
    );
  }
  checkSpacing(input.spacing);
}

/** The reference's 5 x 5 erosion (7.5 mm) as an odd kernel per in-plane axis of this grid. */
export function erosionKernel(spacing: Dims3): [number, number] {
  const mm = 5 * REFERENCE_SPACING_MM;
  const odd = (s: number) => 2 * Math.max(0, Math.round((mm / s - 1) / 2)) + 1;
  return [odd(spacing[0]), odd(spacing[1])];
}

export function planSynthesis(input: SynthesisInput, options: PlanOptions, rng: Rng): SynthesisPlan {
  validateInput(input);
  const { label, dims, spacing } = input;
  const [nx, ny] = dims;
  const plane = nx * ny;
  const canvas = new Uint8Array(label.length);
  const union: Bounds = emptyBounds();
  const tumors: TumorInfo[] = [];
  const shapes: PlacedShape[] = [];
  for (const type of tumorTypes(options.type, options.count, rng)) {
    const t = tumorShape(type, rng, spacing);
    const { center, placement } = pickLocation(label, dims, rng, {
      kernel: erosionKernel(spacing),
      ...options.location,
    });
    const sd = t.shape.dims;
    const origin: Dims3 = [center[0] - sd[0] / 2, center[1] - sd[1] / 2, center[2] - sd[2] / 2];
    shapes.push({ origin, shape: t.shape });
    const stats = paste(canvas, label, dims, t.shape, origin, union);
    tumors.push({
      type,
      center,
      radii: t.radii,
      radiiMm: t.radiiMm,
      elasticSigma: t.elasticSigma,
      placement,
      voxels: stats.voxels,
      centroid:
        stats.voxels > 0 ? [stats.si / stats.voxels, stats.sj / stats.voxels, stats.sk / stats.voxels] : null,
    });
  }
  // T = canvas AND label >= 1 (paste already only marks labeled voxels); its tight bounds.
  const tight: Bounds = emptyBounds();
  const outLabel = label.slice();
  if (union.lo[0] <= union.hi[0]) {
    for (let k = union.lo[2]; k <= union.hi[2]; k++) {
      for (let j = union.lo[1]; j <= union.hi[1]; j++) {
        const row = j * nx + k * plane;
        for (let i = union.lo[0]; i <= union.hi[0]; i++) {
          if (canvas[row + i]) {
            extend(tight, i, j, k);
            if (label[row + i] !== 2) outLabel[row + i] = 3;
          }
        }
      }
    }
  }
  const blurSigma = rng.uniform(1, 2);
  const blurSigmaMm = blurSigma * REFERENCE_SPACING_MM;
  // Per axis in voxels of this grid (a factor first: exactly the drawn value at 1.5 mm).
  const sigmas = spacing.map((s) => blurSigma * (REFERENCE_SPACING_MM / s)) as Dims3;
  const weight = new Float32Array(label.length);
  if (tight.lo[0] > tight.hi[0]) {
    return {
      dims,
      tumorMask: canvas,
      weight,
      label: outLabel,
      tumors,
      region: null,
      blurSigma,
      blurSigmaMm,
      texture: null,
      organ: options.organ,
      shapes,
    };
  }
  const pad = sigmas.map((s) => Math.trunc(4 * s + 0.5) + 1);
  const start = [0, 1, 2].map((a) => Math.max(0, tight.lo[a] - pad[a])) as Dims3;
  const end = [0, 1, 2].map((a) => Math.min(dims[a] - 1, tight.hi[a] + pad[a])) as Dims3;
  const size = [0, 1, 2].map((a) => end[a] - start[a] + 1) as Dims3;
  const region: Region = { start, size };
  const blurred = gaussianFilter3d(copyRegion(canvas, dims, region), size, sigmas);
  const bank = options.textures ?? defaultTextureBank();
  const texture = bank.sample(size, dims, rng);
  const tex = texture.data;
  const [sx, sy, sz] = size;
  for (let k = 0; k < sz; k++) {
    for (let j = 0; j < sy; j++) {
      const row = start[0] + nx * (start[1] + j) + plane * (start[2] + k);
      const local = sx * (j + sy * k);
      for (let i = 0; i < sx; i++) {
        if (label[row + i] === 1) weight[row + i] = blurred[local + i] * tex[local + i];
      }
    }
  }
  return {
    dims,
    tumorMask: canvas,
    weight,
    label: outLabel,
    tumors,
    region,
    blurSigma,
    blurSigmaMm,
    texture: texture.sigmas,
    organ: options.organ,
    shapes,
  };
}

interface Bounds {
  lo: [number, number, number];
  hi: [number, number, number];
}

function emptyBounds(): Bounds {
  return { lo: [Infinity, Infinity, Infinity], hi: [-Infinity, -Infinity, -Infinity] };
}

function extend(b: Bounds, i: number, j: number, k: number): void {
  if (i < b.lo[0]) b.lo[0] = i;
  if (i > b.hi[0]) b.hi[0] = i;
  if (j < b.lo[1]) b.lo[1] = j;
  if (j > b.hi[1]) b.hi[1] = j;
  if (k < b.lo[2]) b.lo[2] = k;
  if (k > b.hi[2]) b.hi[2] = k;
}

/**
 * ORs a shape into the canvas where the label is >= 1 (the reference adds boxes into a padded
 * canvas and then keeps canvas >= 1 AND label >= 1: the same set), clipping the box to the volume.
 */
function paste(
  canvas: Uint8Array,
  label: Uint8Array,
  dims: Dims3,
  shape: Shape,
  origin: Dims3,
  union: Bounds,
) {
  const [nx, ny, nz] = dims;
  const [sx, sy, sz] = shape.dims;
  const i0 = Math.max(0, -origin[0]);
  const j0 = Math.max(0, -origin[1]);
  const k0 = Math.max(0, -origin[2]);
  const i1 = Math.min(sx, nx - origin[0]);
  const j1 = Math.min(sy, ny - origin[1]);
  const k1 = Math.min(sz, nz - origin[2]);
  const stats = { voxels: 0, si: 0, sj: 0, sk: 0 };
  for (let k = k0; k < k1; k++) {
    const vk = origin[2] + k;
    for (let j = j0; j < j1; j++) {
      const vj = origin[1] + j;
      const src = sx * (j + sy * k);
      const dst = nx * (vj + ny * vk) + origin[0];
      for (let i = i0; i < i1; i++) {
        if (shape.data[src + i] && label[dst + i] >= 1) {
          canvas[dst + i] = 1;
          const vi = origin[0] + i;
          extend(union, vi, vj, vk);
          stats.voxels++;
          stats.si += vi;
          stats.sj += vj;
          stats.sk += vk;
        }
      }
    }
  }
  return stats;
}

function copyRegion(mask: Uint8Array, dims: Dims3, region: Region): Float32Array {
  const [nx, ny] = dims;
  const [sx, sy, sz] = region.size;
  const out = new Float32Array(sx * sy * sz);
  for (let k = 0; k < sz; k++) {
    for (let j = 0; j < sy; j++) {
      const row = region.start[0] + nx * (region.start[1] + j + ny * (region.start[2] + k));
      const local = sx * (j + sy * k);
      for (let i = 0; i < sx; i++) out[local + i] = mask[row + i];
    }
  }
  return out;
}

/** Calls fn(index) for every voxel of a placed shape that lies inside the grid `dims`. */
export function forEachShapeVoxel(placed: PlacedShape, dims: Dims3, fn: (index: number) => void): void {
  const { origin, shape } = placed;
  const [nx, ny, nz] = dims;
  const [sx, sy, sz] = shape.dims;
  for (let k = Math.max(0, -origin[2]); k < Math.min(sz, nz - origin[2]); k++) {
    for (let j = Math.max(0, -origin[1]); j < Math.min(sy, ny - origin[1]); j++) {
      const src = sx * (j + sy * k);
      const dst = nx * (origin[1] + j + ny * (origin[2] + k)) + origin[0];
      for (let i = Math.max(0, -origin[0]); i < Math.min(sx, nx - origin[0]); i++) {
        if (shape.data[src + i]) fn(dst + i);
      }
    }
  }
}

/** Calls fn(index) for every voxel of tumor `n` that is in the tumor mask. */
export function forEachTumorVoxel(
  plan: Pick<SynthesisPlan, 'shapes' | 'dims' | 'tumorMask'>,
  n: number,
  fn: (index: number) => void,
): void {
  forEachShapeVoxel(plan.shapes[n], plan.dims, (v) => {
    if (plan.tumorMask[v]) fn(v);
  });
}
