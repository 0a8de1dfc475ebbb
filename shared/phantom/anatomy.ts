/**
 * The phantom's anatomy, in millimetres of a patient frame with +x toward the patient's LEFT, +y anterior,
 * +z superior (x as DICOM's LPS; generatePhantom mirrors x to give NIfTI's RAS+, where +x is the patient's
 * right);
 * the body axis is world z, the abdomen centred near the origin). Every size and position is
 * physical, so a coarser or smaller grid shows the same patient. Each seed jitters sizes,
 * positions, fat thickness and organ shapes; painting order plus "may overwrite" rules give
 * the contacts (kidneys indent the liver, the IVC runs through it, the stomach yields to it).
 */
import type { Rng } from '../random.ts';
import { drawTrunk, paintBody, paintTable } from './body.ts';
import { paintBowel, paintStomach } from './bowel.ts';
import { paintGreatVessels, paintOrgans } from './organs.ts';
import type { Grid } from './raster.ts';
import { paintSpine } from './spine.ts';

/** Default field of view (mm): abdomen from above the liver dome to below the kidneys. */
export const DEFAULT_FOV_MM: [number, number, number] = [360, 300, 240];

/** Paints one patient's structure codes (see STRUCTURE) into `codes` on grid `g`. */
export function paintAnatomy(g: Grid, codes: Uint8Array, rng: Rng): void {
  const { body, dia } = drawTrunk(rng);
  paintBody(g, codes, body, dia);
  paintTable(g, codes, body.bPost + rng.uniform(0.5, 3));
  paintSpine(g, codes, rng);
  paintGreatVessels(g, codes, rng);
  paintOrgans(g, codes, rng);
  paintStomach(g, codes, rng);
  paintBowel(g, codes, rng);
}
