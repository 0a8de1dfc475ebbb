/**
 * The lumbar/lower thoracic spine: vertebral bodies (cortical shell, cancellous core), discs,
 * the posterior arch around the canal, transverse processes, and the paraspinal and psoas muscles.
 */
import type { Rng } from '../random.ts';
import { type Grid, overwrites } from './raster.ts';
import { STRUCTURE as S } from './structures.ts';

/** Vertebrae (cortical shell, cancellous core, discs, posterior arch, canal), paraspinal and psoas muscles. */
export function paintSpine(g: Grid, codes: Uint8Array, rng: Rng): void {
  const period = rng.uniform(34, 40); // vertebra + disc
  const discH = rng.uniform(7, 10);
  const phase = rng.uniform(0, period);
  const yVB = rng.uniform(-42, -34);
  const rx = rng.uniform(20, 24);
  const ry = rng.uniform(15, 18);
  const soft = overwrites(S.visceralFat, S.subcutaneousFat, S.muscle, S.lung, S.diaphragm, S.rib, S.skin);
  const [nx, ny, nz] = g.dims;
  const s = g.spacing;
  const canalY = yVB - ry - 10;
  for (let k = 0; k < nz; k++) {
    const z = g.origin[2] + k * s;
    // Lordosis: the lumbar spine comes forward lower down.
    const dy = 6 * Math.sin(-z / 150);
    const inVertebra = (((z - phase) % period) + period) % period;
    const isDisc = inVertebra < discH;
    const vertebraMid = Math.abs(inVertebra - discH - (period - discH) / 2) < 4;
    const psoas = z < -10 ? Math.min(22, (-10 - z) * 0.25 + 6) : 0;
    const level: SpineLevel = { yVB, rx, ry, canalY, isDisc, vertebraMid, psoas };
    for (let j = 0; j < ny; j++) {
      const y = g.origin[1] + j * s - dy;
      if (y > yVB + ry + 30 || y < yVB - 80) continue;
      const row = nx * (j + ny * k);
      for (let i = 0; i < nx; i++) {
        const x = g.origin[0] + i * s;
        if (Math.abs(x) > 75) continue;
        const idx = row + i;
        if (soft[codes[idx]] === 0) continue;
        const code = spineCode(x, y, level);
        if (code >= 0) codes[idx] = code;
      }
    }
  }
}

interface SpineLevel {
  yVB: number;
  rx: number;
  ry: number;
  canalY: number;
  isDisc: boolean;
  vertebraMid: boolean;
  psoas: number;
}

function spineCode(x: number, y: number, l: SpineLevel): number {
  const u = x / l.rx;
  const v = (y - l.yVB) / l.ry;
  const rho = Math.sqrt(u * u + v * v);
  if (rho <= 1) {
    if (l.isDisc) return S.disc;
    return rho > 1 - 2.5 / l.ry ? S.boneCortical : S.boneCancellous;
  }
  const dc = Math.hypot(x, y - l.canalY);
  if (dc < 9) return S.spinalCanal;
  if (!l.isDisc) {
    // Pedicles and lamina around the canal, spinous process behind, transverse processes mid-vertebra.
    if (dc < 15 && y < l.yVB) return S.boneCortical;
    if (Math.abs(x) < 4 && y < l.canalY && y > l.canalY - 32) return S.boneCortical;
    if (
      l.vertebraMid &&
      Math.abs(x) < 46 - Math.abs(y - l.canalY - 3) * 3 &&
      Math.abs(y - l.canalY - 3) < 4
    ) {
      return S.boneCortical;
    }
  }
  // Paraspinal (erector spinae) muscles either side of the spinous process.
  const pu = (Math.abs(x) - 32) / 26;
  const pv = (y - (l.canalY - 14)) / 20;
  if (pu * pu + pv * pv <= 1) return S.muscle;
  if (l.psoas > 0) {
    const qu = (Math.abs(x) - (l.rx + l.psoas * 0.8)) / l.psoas;
    const qv = (y - l.yVB) / (l.psoas * 0.9);
    if (qu * qu + qv * qv <= 1) return S.muscle;
  }
  return -1;
}
