/**
 * Implicit solids in world millimetres for the phantom: a shape reports a level that is
 * <= 1 inside and > 1 outside, plus a world bounding box, so that it can be rasterized by
 * visiting only the voxels of that box. Surfaces are deformed by a few seeded low-frequency
 * sinusoids ("wobble"), which keeps organs smooth but never the same twice.
 */
import type { Rng } from '../random.ts';

export type Vec3 = [number, number, number];

export interface Shape {
  min: Vec3;
  max: Vec3;
  /** <= 1 inside, > 1 outside; roughly distance-to-centre over local radius. */
  level(x: number, y: number, z: number): number;
}

/** A smooth scalar field on normalized coordinates: 1 + sum a_m sin(k_m . u + phi_m). */
export interface Wobble {
  k: Float64Array;
  phase: Float64Array;
  amp: Float64Array;
  /** Bounds of the factor, for cheap early accept/reject. */
  lo: number;
  hi: number;
}

export const NO_WOBBLE: Wobble = {
  k: new Float64Array(0),
  phase: new Float64Array(0),
  amp: new Float64Array(0),
  lo: 1,
  hi: 1,
};

/** `modes` random plane waves with frequencies in [fLo, fHi] (radians per unit) and total amplitude `amount`. */
export function makeWobble(rng: Rng, modes: number, amount: number, fLo = 1.5, fHi = 3.5): Wobble {
  const k = new Float64Array(modes * 3);
  const phase = new Float64Array(modes);
  const amp = new Float64Array(modes);
  let sum = 0;
  for (let m = 0; m < modes; m++) {
    const dir = unitVector(rng);
    const f = rng.uniform(fLo, fHi);
    k[3 * m] = dir[0] * f;
    k[3 * m + 1] = dir[1] * f;
    k[3 * m + 2] = dir[2] * f;
    phase[m] = rng.uniform(0, 2 * Math.PI);
    amp[m] = (amount / modes) * rng.uniform(0.6, 1.4);
    sum += amp[m];
  }
  return { k, phase, amp, lo: 1 - sum, hi: 1 + sum };
}

export function wobbleAt(w: Wobble, u: number, v: number, t: number): number {
  let g = 1;
  for (let m = 0; m < w.amp.length; m++) {
    g += w.amp[m] * Math.sin(w.k[3 * m] * u + w.k[3 * m + 1] * v + w.k[3 * m + 2] * t + w.phase[m]);
  }
  return g;
}

function unitVector(rng: Rng): Vec3 {
  for (;;) {
    const v: Vec3 = [rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1)];
    const n = Math.hypot(v[0], v[1], v[2]);
    if (n > 0.1 && n <= 1) return [v[0] / n, v[1] / n, v[2] / n];
  }
}

/** Rotation matrix (row-major 3x3) from angles in degrees about x, then y, then z. */
export function rotation(ax = 0, ay = 0, az = 0): Float64Array {
  const [a, b, c] = [ax, ay, az].map((d) => (d * Math.PI) / 180);
  const rx = [1, 0, 0, 0, Math.cos(a), -Math.sin(a), 0, Math.sin(a), Math.cos(a)];
  const ry = [Math.cos(b), 0, Math.sin(b), 0, 1, 0, -Math.sin(b), 0, Math.cos(b)];
  const rz = [Math.cos(c), -Math.sin(c), 0, Math.sin(c), Math.cos(c), 0, 0, 0, 1];
  return Float64Array.from(mul3(rz, mul3(ry, rx)));
}

function mul3(p: ArrayLike<number>, q: ArrayLike<number>): number[] {
  const r: number[] = [];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) r.push(p[3 * i] * q[j] + p[3 * i + 1] * q[3 + j] + p[3 * i + 2] * q[6 + j]);
  }
  return r;
}

export interface EllipsoidSpec {
  centre: Vec3;
  /** Semi-axes in mm along the (rotated) local axes. */
  radii: Vec3;
  /** Local -> world rotation (row-major 3x3); identity when absent. */
  rot?: Float64Array;
  wobble?: Wobble;
}

/** A deformed ellipsoid: inside where |u| <= wobble(u), u the normalized local coordinates. */
export function ellipsoid(spec: EllipsoidSpec): Shape {
  const [cx, cy, cz] = spec.centre;
  const [rx, ry, rz] = spec.radii;
  const r = spec.rot ?? rotation();
  const w = spec.wobble ?? NO_WOBBLE;
  const reach = Math.max(rx, ry, rz) * w.hi;
  const lo2 = w.lo * w.lo;
  const hi2 = w.hi * w.hi;
  return {
    min: [cx - reach, cy - reach, cz - reach],
    max: [cx + reach, cy + reach, cz + reach],
    level(x, y, z) {
      const dx = x - cx;
      const dy = y - cy;
      const dz = z - cz;
      // world -> local is the transpose of the rotation.
      const u = (r[0] * dx + r[3] * dy + r[6] * dz) / rx;
      const v = (r[1] * dx + r[4] * dy + r[7] * dz) / ry;
      const t = (r[2] * dx + r[5] * dy + r[8] * dz) / rz;
      const rho2 = u * u + v * v + t * t;
      if (rho2 > hi2 * 1.44) return 1.2 * (rho2 / (hi2 * 1.44)); // far outside: no need for the wobble
      if (rho2 < lo2 * 0.25) return Math.sqrt(rho2) / w.lo;
      return Math.sqrt(rho2) / wobbleAt(w, u, v, t);
    },
  };
}

export interface TubeSpec {
  /** Centre-line points (mm). */
  points: Vec3[];
  /** Radius (mm) at each point, interpolated along each segment. */
  radii: number[];
  /** Divide offsets by these before measuring (e.g. [1, 0.7, 1] flattens the tube front-to-back). */
  squash?: Vec3;
  wobble?: Wobble;
}

/** A tube along a polyline with varying radius: the union of tapered capsules. */
export function tube(spec: TubeSpec): Shape {
  const { points, radii } = spec;
  const [sx, sy, sz] = spec.squash ?? [1, 1, 1];
  const w = spec.wobble ?? NO_WOBBLE;
  const rMax = Math.max(...radii) * w.hi;
  const min: Vec3 = [Infinity, Infinity, Infinity];
  const max: Vec3 = [-Infinity, -Infinity, -Infinity];
  for (const p of points) {
    for (let a = 0; a < 3; a++) {
      min[a] = Math.min(min[a], p[a] - rMax);
      max[a] = Math.max(max[a], p[a] + rMax);
    }
  }
  const n = points.length - 1;
  return {
    min,
    max,
    level(x, y, z) {
      let best = Infinity;
      for (let s = 0; s < n; s++) {
        const a = points[s];
        const b = points[s + 1];
        const ex = b[0] - a[0];
        const ey = b[1] - a[1];
        const ez = b[2] - a[2];
        const len2 = ex * ex + ey * ey + ez * ez;
        let t = len2 > 0 ? ((x - a[0]) * ex + (y - a[1]) * ey + (z - a[2]) * ez) / len2 : 0;
        t = t < 0 ? 0 : Math.min(t, 1);
        const dx = (x - a[0] - t * ex) / sx;
        const dy = (y - a[1] - t * ey) / sy;
        const dz = (z - a[2] - t * ez) / sz;
        const r = radii[s] + t * (radii[s + 1] - radii[s]);
        const l = Math.sqrt(dx * dx + dy * dy + dz * dz) / r;
        if (l < best) best = l;
      }
      if (best > w.hi * 1.2 || w.amp.length === 0) return best;
      return best / wobbleAt(w, x / rMax, y / rMax, z / rMax);
    },
  };
}

/** The part of `shape` where `keep(x, y, z)` holds (a cut by a plane, a height, ...). */
export function clipped(shape: Shape, keep: (x: number, y: number, z: number) => boolean): Shape {
  return {
    min: shape.min,
    max: shape.max,
    level(x, y, z) {
      return keep(x, y, z) ? shape.level(x, y, z) : Infinity;
    },
  };
}

/** The same shape shrunk by a factor of its level (an inner wall at `1/scale` of the level). */
export function scaledLevel(shape: Shape, scale: number): Shape {
  return {
    min: shape.min,
    max: shape.max,
    level(x, y, z) {
      return shape.level(x, y, z) * scale;
    },
  };
}
