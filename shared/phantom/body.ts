/**
 * The trunk: skin, subcutaneous fat, the muscle wall with ribs, the diaphragm's two domes with
 * lung bases above them and visceral fat below, and the scanner table under the supine patient.
 */
import type { Rng } from '../random.ts';
import type { Grid } from './raster.ts';
import type { Vec3 } from './shapes.ts';
import { STRUCTURE as S } from './structures.ts';

export interface Body {
  /** Half width (x), half depth front and back (y) at z = 0. */
  a: number;
  bAnt: number;
  bPost: number;
  fatLateral: number;
  fatAnterior: number;
  fatPosterior: number;
  muscle: number;
  /** Slow change of the outline along z. */
  zPhase: number;
}

export interface Diaphragm {
  right: Vec3;
  left: Vec3;
}

/** Body and diaphragm of one patient. */
export function drawTrunk(rng: Rng): { body: Body; dia: Diaphragm } {
  return {
    body: {
      a: rng.uniform(140, 155),
      bAnt: rng.uniform(105, 120),
      bPost: rng.uniform(104, 112),
      fatLateral: rng.uniform(14, 30),
      fatAnterior: rng.uniform(14, 32),
      fatPosterior: rng.uniform(9, 16),
      muscle: rng.uniform(9, 14),
      zPhase: rng.uniform(0, 2 * Math.PI),
    },
    dia: {
      right: [rng.uniform(-65, -50), rng.uniform(-8, 4), rng.uniform(88, 98)],
      left: [rng.uniform(45, 60), rng.uniform(-10, 0), rng.uniform(78, 88)],
    },
  };
}

/** Height (mm) of the diaphragm over (x, y): the higher of two domes, lower at the back and sides. */
export function diaphragmZ(d: Diaphragm, x: number, y: number): number {
  return Math.max(dome(d.right, x, y), dome(d.left, x, y));
}

function dome(apex: Vec3, x: number, y: number): number {
  const dx = x - apex[0];
  const dy = y - apex[1];
  return apex[2] - (dx * dx) / 160 - (dy * dy) / (dy < 0 ? 110 : 240);
}

/** Skin, subcutaneous fat, muscle wall, ribs; inside: visceral fat below the diaphragm, lung above it. */
export function paintBody(g: Grid, codes: Uint8Array, b: Body, dia: Diaphragm): void {
  const [nx, ny, nz] = g.dims;
  const s = g.spacing;
  const ribPeriod = 30;
  const ribThick = 9;
  const ribDrop = 55;
  const lowestRib = 0;
  // The diaphragm's height depends on (x, y) only: one map for all slices.
  const diaZ = new Float32Array(nx * ny);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) diaZ[i + nx * j] = diaphragmZ(dia, g.origin[0] + i * s, g.origin[1] + j * s);
  }
  for (let k = 0; k < nz; k++) {
    const z = g.origin[2] + k * s;
    const wave = 1 + 0.03 * Math.sin(z / 60 + b.zPhase);
    // The trunk widens a little towards the pelvis and the lower chest.
    const invA = 1 / (b.a * wave * (1 + 0.04 * Math.abs(z / 120)));
    const bAnt = b.bAnt * (2 - wave);
    const bPost = b.bPost;
    for (let j = 0; j < ny; j++) {
      const y = g.origin[1] + j * s;
      const front = y >= 0;
      const yn = front ? y / bAnt : -y / bPost;
      if (yn >= 1) continue;
      const yn2 = yn * yn;
      const yn3 = yn2 * yn;
      // Ribs run down towards the front: their phase along z depends on y only.
      const ribZ = z + ribDrop * Math.max(0, Math.min(1, ((front ? yn : -yn) + 1) / 2)) - lowestRib;
      const ribQ = ribZ / ribPeriod;
      const onRib = ribQ >= 0 && (ribQ - Math.floor(ribQ)) * ribPeriod < ribThick;
      const row = nx * (j + ny * k);
      const drow = nx * j;
      for (let i = 0; i < nx; i++) {
        const x = g.origin[0] + i * s;
        const xn = Math.abs(x) * invA;
        if (xn >= 1) continue;
        // Round in front (p = 2), flatter back (p = 3).
        const rho = front ? Math.sqrt(xn * xn + yn2) : Math.cbrt(xn * xn * xn + yn3);
        if (rho >= 1) continue; // air (0)
        const r2 = x * x + y * y;
        const r = Math.sqrt(r2);
        const depth = rho > 0 ? (r * (1 - rho)) / rho : r;
        const cy2 = r2 > 0 ? (y * y) / r2 : 0;
        const fat =
          b.fatLateral + (front ? b.fatAnterior - b.fatLateral : b.fatPosterior - b.fatLateral) * cy2;
        const idx = row + i;
        if (depth < 2) codes[idx] = S.skin;
        else if (depth < fat) codes[idx] = S.subcutaneousFat;
        else if (depth < fat + b.muscle) codes[idx] = S.muscle;
        else {
          const dz = diaZ[drow + i];
          codes[idx] = z > dz ? S.lung : z > dz - 4 ? S.diaphragm : S.visceralFat;
        }
        // No ribs at the front midline (costal cartilage).
        if (
          onRib &&
          depth > fat + 0.4 * b.muscle &&
          depth < fat + b.muscle + 3 &&
          !(front && Math.abs(x) < 45)
        ) {
          codes[idx] = S.rib;
        }
      }
    }
  }
}

/**
 * The scanner table under the supine patient: a carbon-fibre shell around a foam core, curving
 * up at the sides, along the whole field of view. Background in the labels, as in real scans.
 */
export function paintTable(g: Grid, codes: Uint8Array, depthBelowCentre: number): void {
  const [nx, ny, nz] = g.dims;
  const s = g.spacing;
  const shell = 2.5;
  const core = 12;
  for (let j = 0; j < ny; j++) {
    const y = g.origin[1] + j * s;
    for (let i = 0; i < nx; i++) {
      const x = g.origin[0] + i * s;
      if (Math.abs(x) > 210) continue;
      const top = -depthBelowCentre + 25 * (x / 210) ** 4;
      const d = top - y; // depth below the table top
      if (d < 0 || d > 2 * shell + core) continue;
      const code = d < shell || d > shell + core ? S.tableShell : S.tableCore;
      for (let k = 0; k < nz; k++) {
        const idx = i + nx * (j + ny * k);
        if (codes[idx] === S.air) codes[idx] = code;
      }
    }
  }
}
