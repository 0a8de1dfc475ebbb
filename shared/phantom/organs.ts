/**
 * Solid organs and vessels: heart, liver with portal and hepatic veins, gallbladder, spleen,
 * kidneys (cortex, medulla, sinus fat), pancreas, aorta, IVC, portal system, renal and
 * mesenteric vessels. Positions are anatomical means in mm, jittered per seed.
 */
import type { Rng } from '../random.ts';
import { type Grid, overwrites, paint } from './raster.ts';
import { ellipsoid, makeWobble, rotation, type Shape, scaledLevel, tube, type Vec3 } from './shapes.ts';
import { STRUCTURE as S } from './structures.ts';

const FAT_OR_CHEST = overwrites(S.visceralFat, S.lung, S.diaphragm);

export function jitter(rng: Rng, p: Vec3, sd: number): Vec3 {
  return [p[0] + rng.normal(0, sd), p[1] + rng.normal(0, sd), p[2] + rng.normal(0, sd)];
}

function vessel(points: Vec3[], radius: number | number[], squash?: Vec3): Shape {
  const radii = typeof radius === 'number' ? points.map(() => radius) : radius;
  return tube({ points, radii, squash });
}

export function paintGreatVessels(g: Grid, codes: Uint8Array, rng: Rng): void {
  const ax = rng.uniform(10, 18);
  const aorta: Vec3[] = [
    [ax, -8, -130],
    [ax - 2, -10, -40],
    [ax - 8, -14, 40],
    [ax - 10, -24, 95],
    [ax - 5, -28, 130],
  ];
  paint(g, codes, vessel(aorta, rng.uniform(10.5, 13)), S.aorta, FAT_OR_CHEST);
  const ivc: Vec3[] = [
    [-25, -5, -130],
    [-25, -5, -30],
    [-28, -2, 40],
    [-22, -8, 90],
    [-12, -4, 130],
  ];
  paint(g, codes, vessel(ivc, rng.uniform(11, 14), [1, 0.75, 1]), S.ivc, FAT_OR_CHEST);
}

export function paintOrgans(g: Grid, codes: Uint8Array, rng: Rng): void {
  const fat = overwrites(S.visceralFat);
  const size = () => rng.uniform(0.9, 1.1);
  // Heart on the central tendon (mostly above the field of view).
  paint(
    g,
    codes,
    ellipsoid({
      centre: [12, 35, 138],
      radii: [72, 55, 60],
      rot: rotation(0, 0, 20),
      wobble: makeWobble(rng, 3, 0.05),
    }),
    S.heart,
    overwrites(S.lung),
  );

  // Liver: a large right lobe and a smaller left lobe reaching across the midline; its dome is the diaphragm.
  const ls = size();
  const right = ellipsoid({
    centre: jitter(rng, [-60, 8, 32], 4),
    radii: [74 * ls, 95 * ls, 76 * ls],
    rot: rotation(rng.uniform(-8, 8), rng.uniform(-10, 0), rng.uniform(-8, 8)),
    wobble: makeWobble(rng, 5, 0.14),
  });
  const left = ellipsoid({
    centre: jitter(rng, [12, 48, 52], 4),
    radii: [58 * ls, 34 * ls, 34 * ls],
    rot: rotation(0, rng.uniform(-15, 5), rng.uniform(-25, -10)),
    wobble: makeWobble(rng, 4, 0.12),
  });
  paint(g, codes, right, S.liver, fat);
  paint(g, codes, left, S.liver, fat);

  // Gallbladder under the liver's visceral surface.
  paint(
    g,
    codes,
    ellipsoid({
      centre: jitter(rng, [-40, 48, -8], 3),
      radii: [14 * size(), 15 * size(), 34 * size()],
      rot: rotation(30, 0, 10),
      wobble: makeWobble(rng, 3, 0.06),
    }),
    S.gallbladder,
    overwrites(S.visceralFat, S.liver),
  );

  // Spleen: left upper quadrant, posterolateral, long axis along the ribs.
  const ss = size();
  paint(
    g,
    codes,
    ellipsoid({
      centre: jitter(rng, [88, -38, 40], 4),
      radii: [24 * ss, 60 * ss, 50 * ss],
      rot: rotation(rng.uniform(25, 40), 0, rng.uniform(25, 40)),
      wobble: makeWobble(rng, 4, 0.12),
    }),
    S.spleen,
    fat,
  );

  paintKidney(g, codes, rng, -1);
  paintKidney(g, codes, rng, 1);

  // Pancreas: head in the duodenal C-loop, neck over the portal confluence, tail to the splenic hilum.
  const ps = size();
  const pancreas = tube({
    points: [
      jitter(rng, [-38, 6, -28], 3),
      jitter(rng, [-12, 20, -14], 3),
      jitter(rng, [18, 20, -6], 3),
      jitter(rng, [55, 2, 8], 3),
      jitter(rng, [78, -14, 18], 3),
    ],
    radii: [21 * ps, 13 * ps, 14 * ps, 13 * ps, 8 * ps],
    squash: [1, 0.75, 1],
    wobble: makeWobble(rng, 6, 0.14, 2, 5),
  });
  // The pancreas keeps its place where a lobe of liver or the spleen happens to reach over it.
  paint(g, codes, pancreas, S.pancreas, overwrites(S.visceralFat, S.liver, S.spleen));

  // Portal system: confluence behind the pancreatic neck, portal vein into the hilum, branches in the liver.
  const conf: Vec3 = [-8, 6, -16];
  const hilum: Vec3 = [-42, 14, 18];
  const portalTrunk = vessel([conf, [-28, 12, 2], hilum], 7);
  paint(g, codes, portalTrunk, S.portalVein, fat);
  paint(g, codes, portalTrunk, S.hepaticVessel, overwrites(S.liver));
  const branches = [
    vessel([hilum, [-70, 10, 28], [-100, 0, 40]], [5.5, 4.5, 3]),
    vessel([hilum, [-20, 35, 38], [5, 50, 48]], [5, 4, 3]),
    // Hepatic veins fan out from the IVC below the dome.
    vessel(
      [
        [-24, -6, 78],
        [-60, 5, 68],
        [-100, 15, 55],
      ],
      [6, 4.5, 3],
    ),
    vessel(
      [
        [-24, -6, 78],
        [-35, 30, 70],
        [-45, 55, 60],
      ],
      [5.5, 4, 3],
    ),
    vessel(
      [
        [-24, -6, 78],
        [0, 25, 72],
        [25, 45, 62],
      ],
      [5, 4, 3],
    ),
  ];
  for (const b of branches) paint(g, codes, b, S.hepaticVessel, overwrites(S.liver));
  // Splenic vein along the back of the pancreas, SMV running down in the mesentery.
  paint(g, codes, vessel([conf, [20, 4, -10], [58, -14, 4], [82, -30, 22]], 5), S.portalVein, fat);
  paint(g, codes, vessel([conf, [-12, 26, -50], [-16, 34, -130]], [6, 5, 4]), S.portalVein, fat);
  // SMA and the renal vessels.
  paint(
    g,
    codes,
    vessel(
      [
        [12, -2, -6],
        [10, 20, -40],
        [8, 28, -130],
      ],
      [4, 3.5, 3],
    ),
    S.artery,
    fat,
  );
  paint(
    g,
    codes,
    vessel(
      [
        [48, -22, -28],
        [14, 8, -26],
        [-25, -4, -30],
      ],
      5,
    ),
    S.vein,
    fat,
  );
  paint(
    g,
    codes,
    vessel(
      [
        [-48, -22, -42],
        [-25, -5, -40],
      ],
      5,
    ),
    S.vein,
    fat,
  );
  paint(
    g,
    codes,
    vessel(
      [
        [13, -14, -24],
        [48, -26, -30],
      ],
      3,
    ),
    S.artery,
    fat,
  );
  paint(
    g,
    codes,
    vessel(
      [
        [13, -14, -26],
        [-48, -28, -44],
      ],
      3,
    ),
    S.artery,
    fat,
  );
}

function paintKidney(g: Grid, codes: Uint8Array, rng: Rng, side: -1 | 1): void {
  const ks = rng.uniform(0.9, 1.1);
  const centre = jitter(rng, [72 * side, -30, side < 0 ? -48 : -36], 3);
  // Upper pole tilted towards the spine and back; hilum facing forward and inward.
  const rot = rotation(rng.uniform(-15, -5), 12 * side, -25 * side);
  const wobble = makeWobble(rng, 4, 0.07);
  const kidney = ellipsoid({ centre, radii: [29 * ks, 25 * ks, 57 * ks], rot, wobble });
  paint(g, codes, kidney, S.kidneyCortex, overwrites(S.visceralFat, S.liver, S.spleen));
  paint(g, codes, scaledLevel(kidney, 1 / 0.72), S.kidneyMedulla, overwrites(S.kidneyCortex));
  // Renal sinus fat opening at the hilum, on the medial, anterior side.
  const sinus = ellipsoid({
    centre: [centre[0] - 14 * side, centre[1] + 5, centre[2]],
    radii: [13 * ks, 9 * ks, 28 * ks],
    rot,
  });
  paint(g, codes, sinus, S.renalSinus, overwrites(S.kidneyCortex, S.kidneyMedulla));
}
