/**
 * Real-looking lesions for the phantom, so that the demo's trainer has labelled "real" tumors
 * to learn from: slightly irregular spheres placed inside their organ, hypodense relative to
 * it (liver -40..-80 HU, pancreas -30..-60, kidney -50..-90), with a soft edge over about
 * 1.5 mm and a darker necrotic core when large. Labelled where the solid reaches (level <= 1).
 */
import { FreeTumorError } from '../errors.ts';
import { isOrganName, ORGAN_CHOICES, type OrganName } from '../labels/organs.ts';
import type { Rng } from '../random.ts';
import { type Grid, visit } from './raster.ts';
import { ellipsoid, makeWobble, type Vec3 } from './shapes.ts';
import { STRUCTURE as S } from './structures.ts';

export type PhantomOrgan = OrganName;

export interface TumorRequest {
  organ: PhantomOrgan;
  count: number;
}

export interface PhantomTumor {
  organ: PhantomOrgan;
  /** World centre (mm, RAS+). */
  centreMm: Vec3;
  radiusMm: number;
  /** Mean HU change in the lesion's solid part (negative: hypodense). */
  deltaHU: number;
  voxels: number;
}

interface OrganTumorModel {
  /** Codes a lesion may replace (and in which its centre lies). */
  host: number[];
  code: number;
  radiusMm: [number, number];
  deltaHU: [number, number];
  /** Of 14 probe points at 0.75 r, how many must lie in the host: pancreas is thin, kidney lesions may bulge. */
  probesInside: number;
}

const MODELS: Record<PhantomOrgan, OrganTumorModel> = {
  liver: {
    host: [S.liver, S.hepaticVessel],
    code: S.liverTumor,
    radiusMm: [6, 20],
    deltaHU: [-80, -40],
    probesInside: 14,
  },
  pancreas: {
    host: [S.pancreas],
    code: S.pancreasTumor,
    radiusMm: [5, 12],
    deltaHU: [-60, -30],
    probesInside: 9,
  },
  kidney: {
    host: [S.kidneyCortex, S.kidneyMedulla],
    code: S.kidneyTumor,
    radiusMm: [7, 17],
    deltaHU: [-90, -50],
    probesInside: 11,
  },
};

const PROBES: Vec3[] = (() => {
  const p: Vec3[] = [
    [1, 0, 0],
    [-1, 0, 0],
    [0, 1, 0],
    [0, -1, 0],
    [0, 0, 1],
    [0, 0, -1],
  ];
  const d = 1 / Math.sqrt(3);
  for (const sx of [-d, d]) for (const sy of [-d, d]) for (const sz of [-d, d]) p.push([sx, sy, sz]);
  return p;
})();

const EDGE_MM = 1.5;
const ATTEMPTS = 80;

/** Adds the requested lesions (codes and HU in place); returns those placed (a tiny organ may take fewer). */
export function addTumors(
  g: Grid,
  codes: Uint8Array,
  hu: Float32Array,
  requests: TumorRequest[],
  rng: Rng,
): PhantomTumor[] {
  const placed: PhantomTumor[] = [];
  for (const req of requests) {
    if (req.count === 0) continue;
    const model = MODELS[req.organ];
    const isHost = new Uint8Array(256);
    for (const c of model.host) isHost[c] = 1;
    const candidates = hostVoxels(codes, model.host[0]);
    if (candidates.length === 0) continue;
    for (let n = 0; n < req.count; n++) {
      const t = placeOne(g, codes, hu, model, isHost, candidates, rng);
      if (t) placed.push({ ...t, organ: req.organ });
    }
  }
  return placed;
}

function hostVoxels(codes: Uint8Array, code: number): Int32Array {
  let n = 0;
  for (let i = 0; i < codes.length; i++) if (codes[i] === code) n++;
  const out = new Int32Array(n);
  n = 0;
  for (let i = 0; i < codes.length; i++) if (codes[i] === code) out[n++] = i;
  return out;
}

function placeOne(
  g: Grid,
  codes: Uint8Array,
  hu: Float32Array,
  model: OrganTumorModel,
  isHost: Uint8Array,
  candidates: Int32Array,
  rng: Rng,
): Omit<PhantomTumor, 'organ'> | null {
  let radius = rng.uniform(model.radiusMm[0], model.radiusMm[1]);
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    if (attempt > 0 && attempt % 20 === 0) radius = Math.max(model.radiusMm[0] * 0.6, radius * 0.8);
    const centre = worldOf(g, candidates[Math.floor(rng.random() * candidates.length)]);
    let inside = 0;
    for (const p of PROBES) {
      const c = codeAt(g, codes, [
        centre[0] + 0.75 * radius * p[0],
        centre[1] + 0.75 * radius * p[1],
        centre[2] + 0.75 * radius * p[2],
      ]);
      if (c >= 0 && isHost[c]) inside++;
    }
    if (inside < model.probesInside) continue;
    return paintTumor(g, codes, hu, model, isHost, centre, radius, rng);
  }
  return null;
}

function paintTumor(
  g: Grid,
  codes: Uint8Array,
  hu: Float32Array,
  model: OrganTumorModel,
  isHost: Uint8Array,
  centre: Vec3,
  radius: number,
  rng: Rng,
): Omit<PhantomTumor, 'organ'> | null {
  const delta = rng.uniform(model.deltaHU[0], model.deltaHU[1]);
  const core = radius > 12 ? rng.uniform(-25, -8) : 0;
  const shape = ellipsoid({
    centre,
    radii: [
      radius * rng.uniform(0.85, 1.15),
      radius * rng.uniform(0.85, 1.15),
      radius * rng.uniform(0.85, 1.15),
    ],
    wobble: makeWobble(rng, 3, 0.1),
  });
  const edge = EDGE_MM / radius;
  let voxels = 0;
  visit(g, shape, 1 + edge, (idx, level) => {
    if (!isHost[codes[idx]]) return;
    // Soft edge: smoothstep from full contrast inside (level 1 - edge) to none outside (1 + edge).
    const t = Math.min(1, Math.max(0, (1 + edge - level) / (2 * edge)));
    const w = t * t * (3 - 2 * t);
    const c = Math.min(1, Math.max(0, (0.55 - level) / 0.3));
    hu[idx] += w * delta + c * core;
    if (level <= 1) {
      codes[idx] = model.code;
      voxels++;
    }
  });
  if (voxels === 0) return null;
  return {
    centreMm: centre.map((v) => Math.round(v * 10) / 10) as Vec3,
    radiusMm: Math.round(radius * 10) / 10,
    deltaHU: Math.round(delta),
    voxels,
  };
}

function worldOf(g: Grid, idx: number): Vec3 {
  const [nx, ny] = g.dims;
  const i = idx % nx;
  const j = Math.floor(idx / nx) % ny;
  const k = Math.floor(idx / (nx * ny));
  return [g.origin[0] + i * g.spacing, g.origin[1] + j * g.spacing, g.origin[2] + k * g.spacing];
}

function codeAt(g: Grid, codes: Uint8Array, p: Vec3): number {
  const ijk = [0, 1, 2].map((a) => Math.round((p[a] - g.origin[a]) / g.spacing));
  if (ijk.some((v, a) => v < 0 || v >= g.dims[a])) return -1;
  return codes[ijk[0] + g.dims[0] * (ijk[1] + g.dims[1] * ijk[2])];
}

/** Parses `liver:2,kidney:1` (as the CLI's --tumors takes it); a bad entry is an invalid_argument error. */
export function parseTumorSpec(text: string): TumorRequest[] {
  const out: TumorRequest[] = [];
  for (const part of text.split(',').map((p) => p.trim())) {
    if (part === '') continue;
    const m = /^([a-z]+)(?::(\d+))?$/.exec(part);
    if (!m || !isOrganName(m[1])) {
      throw new FreeTumorError(
        'invalid_argument',
        `tumors must look like liver:2,pancreas:1,kidney:1 (organs ${ORGAN_CHOICES}), got ${JSON.stringify(part.slice(0, 40))}`,
      );
    }
    out.push({ organ: m[1], count: m[2] === undefined ? 1 : Number(m[2]) });
  }
  return out;
}
