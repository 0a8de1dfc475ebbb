/**
 * Hollow viscera: stomach, duodenum, colon and small bowel, each a wall around fluid or
 * mottled stool, with gas floating to the front (the patient lies supine).
 */
import type { Rng } from '../random.ts';
import { jitter } from './organs.ts';
import { type Grid, overwrites, paint } from './raster.ts';
import {
  clipped,
  ellipsoid,
  makeWobble,
  rotation,
  type Shape,
  scaledLevel,
  tube,
  type Vec3,
} from './shapes.ts';
import { STRUCTURE as S } from './structures.ts';

/** Stomach: fundus under the left dome, body curving forward; supine, so gas floats anteriorly. */
export function paintStomach(g: Grid, codes: Uint8Array, rng: Rng): void {
  const size = () => rng.uniform(0.9, 1.1);
  const st = ellipsoid({
    centre: jitter(rng, [50, 22, 38], 4),
    radii: [38 * size(), 30 * size(), 56 * size()],
    rot: rotation(rng.uniform(15, 30), rng.uniform(-30, -15), 0),
    wobble: makeWobble(rng, 4, 0.1),
  });
  const stomachGasY = 22 + rng.uniform(0, 22);
  paintHollow(g, codes, st, 34, S.stomachWall, S.stomachContent, stomachGasY, overwrites(S.visceralFat));
}

/** A hollow viscus: a wall of about `wallMm`, fluid inside, gas in front of `gasY` (the patient lies supine). */
function paintHollow(
  g: Grid,
  codes: Uint8Array,
  shape: Shape,
  radiusMm: number,
  wall: number,
  content: number,
  gasY: number,
  over: Uint8Array,
): void {
  const wallMm = 3.5;
  paint(g, codes, shape, wall, over);
  const lumen = scaledLevel(shape, radiusMm / (radiusMm - wallMm));
  paint(g, codes, lumen, content, overwrites(wall));
  paint(
    g,
    codes,
    clipped(lumen, (_x, y) => y > gasY),
    S.gas,
    overwrites(content),
  );
}

export function paintBowel(g: Grid, codes: Uint8Array, rng: Rng): void {
  const fat = overwrites(S.visceralFat);
  // Duodenum: the C-loop around the pancreatic head.
  const duo = tube({
    points: [
      [-8, 38, 6],
      [-42, 22, 2],
      [-58, 6, -22],
      [-50, 0, -52],
      [-15, 4, -60],
      [22, 6, -50],
    ],
    radii: [12, 12, 11, 11, 10, 10],
    wobble: makeWobble(rng, 4, 0.1, 2, 5),
  });
  paintHollow(g, codes, duo, 11, S.bowelWall, S.bowelContent, 30 + rng.uniform(0, 20), fat);

  // Colon frame: ascending, transverse (hanging forward), descending; mottled stool with gas in front.
  const sag = rng.uniform(-15, 10);
  const colon = tube({
    points: [
      [-100, 0, -130],
      [-102, 4, -75],
      [-92, 10, -38],
      [-55, 58, -48 + sag],
      [0, 66, -60 + sag],
      [55, 58, -48 + sag],
      [94, 6, -18],
      [100, -6, -60],
      [98, -10, -130],
    ],
    radii: [24, 22, 21, 20, 19, 20, 20, 18, 18],
    wobble: makeWobble(rng, 6, 0.15, 3, 8),
  });
  paintHollow(g, codes, colon, 20, S.bowelWall, S.stool, 45 + rng.uniform(0, 25), fat);

  // Small bowel loops in the lower anterior abdomen: fluid-filled, some with a little gas.
  const loops = rng.int(4, 6);
  for (let l = 0; l < loops; l++) {
    const points: Vec3[] = [[rng.uniform(-60, 60), rng.uniform(5, 55), rng.uniform(-125, -70)]];
    for (let p = 0; p < 6; p++) {
      const last = points[points.length - 1];
      points.push([
        clamp(last[0] + rng.uniform(-28, 28), -70, 70),
        clamp(last[1] + rng.uniform(-18, 18), -5, 65),
        clamp(last[2] + rng.uniform(-20, 20), -130, -60),
      ]);
    }
    const loop = tube({ points, radii: points.map(() => rng.uniform(10, 13)) });
    const gasY = rng.random() < 0.4 ? rng.uniform(25, 55) : Infinity;
    paintHollow(g, codes, loop, 11, S.bowelWall, S.bowelContent, gasY, fat);
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : Math.min(v, hi);
}
