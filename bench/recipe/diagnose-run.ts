/**
 * Where a run's errors on held-out phantoms come from (recipe diagnosis): the run is exported as
 * the demo exports it and segmented with the deployed pipeline; per case, organ errors are split
 * into false organ voxels in the largest predicted organ component vs in other components (and
 * how many of them are air, HU < -500), missed organ voxels, the false-positive lesions by
 * size and by whether they lie inside the true organ, and the predicted components that touch a
 * true lesion with how many of their voxels do (a detection won by a few voxels shows as such),
 * and each tumor component's organ contact (the share of its surface facing predicted organ).
 *
 *   node bench/recipe/diagnose-run.ts --run DEMO_OUT/runs/baseline --demo DEMO_OUT [--precision int8|fp32] [--overlap 0.5]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { segmentVolume } from '../../shared/inference/pipeline.ts';
import { connectedComponents } from '../../shared/labels/components.ts';
import { generatePhantom } from '../../shared/phantom/phantom.ts';
import { STRUCTURE_NAMES } from '../../shared/phantom/structures.ts';
import { readNifti } from '../../shared/volume/nifti.ts';
import { readReference } from '../../trainer/demo/evaluation.ts';
import { openLocalModel } from '../../trainer/runners/local-model.ts';
import { exportSegmentor, heldOutCases, loadLine } from './demo-output.ts';

const { values } = parseArgs({
  options: {
    run: { type: 'string' },
    demo: { type: 'string' },
    precision: { type: 'string', default: 'int8' },
    overlap: { type: 'string', default: '0.5' },
    checkpoint: { type: 'string', default: 'best' },
    /** The demo's --seed: held-out case i is phantom seed + 3000 + i (trainer/demo/data.ts). */
    seed: { type: 'string', default: '0' },
  },
});
if (!values.run || !values.demo) throw new Error('--run and --demo are required');
const cases = await heldOutCases(values.demo);
const dir = await mkdtemp(join(tmpdir(), 'ft-diag-'));
const totals = { organFpMain: 0, organFpOther: 0, organFpAir: 0, organFn: 0, organTp: 0 };
const fpSizes: number[] = [];
const DROP_FRACTIONS = [0.01, 0.05, 0.1, 0.5];
const dropDice: Record<number, number> = {};
const fpStructures = new Map<string, number>();
const tpContacts: number[] = [];
const fpContacts: number[] = [];
let fpInside = 0;
try {
  await exportSegmentor(values.run, dir, { checkpoint: values.checkpoint, overlap: Number(values.overlap) });
  const model = await openLocalModel(dir, 'segmentor', {
    precision: values.precision === 'fp32' ? 'fp32' : 'int8',
  });
  if (!model) throw new Error('no segmentor');
  for (const heldOut of cases) {
    const id = heldOut.id;
    const image = readNifti(new Uint8Array(await readFile(heldOut.image)));
    const truth = await readReference(heldOut, 'liver');
    const { mask } = await segmentVolume(image, model.manifest, model.runner, { organ: 'liver' });
    const p = mask.data;
    const t = truth.data;
    // Organ = organ + tumor (organ Dice's definition); its components.
    const organMask = new Uint8Array(p.length);
    for (let v = 0; v < p.length; v++) if (p[v] > 0) organMask[v] = 1;
    const cc = connectedComponents(organMask, mask.dims, 26);
    let main = 0;
    for (let id2 = 1; id2 <= cc.count; id2++)
      if (main === 0 || cc.sizes[id2 - 1] > cc.sizes[main - 1]) main = id2;
    const c = { fpMain: 0, fpOther: 0, fpAir: 0, fn: 0, tp: 0 };
    for (let v = 0; v < p.length; v++) {
      const po = p[v] > 0;
      const to = t[v] > 0;
      if (po && to) c.tp++;
      else if (po) {
        if (cc.labels[v] === main) c.fpMain++;
        else c.fpOther++;
        if (image.data[v] < -500) c.fpAir++;
      } else if (to) c.fn++;
    }
    // False-positive lesions: predicted tumor components overlapping no true tumor.
    const tumorMask = new Uint8Array(p.length);
    for (let v = 0; v < p.length; v++) if (p[v] === 2) tumorMask[v] = 1;
    const tc = connectedComponents(tumorMask, mask.dims, 26);
    const hits = new Uint32Array(tc.count + 1);
    const inside = new Uint32Array(tc.count + 1);
    for (let v = 0; v < p.length; v++) {
      const l = tc.labels[v];
      if (l === 0) continue;
      if (t[v] === 2) hits[l]++;
      if (t[v] > 0) inside[l]++;
    }
    // Organ contact: the share of each component's surface (6-neighbour faces inside the volume,
    // between a component voxel and a non-tumor one) that faces predicted organ.
    const faces = new Uint32Array(tc.count + 1);
    const organFaces = new Uint32Array(tc.count + 1);
    const [nx, ny, nz] = mask.dims;
    for (let v = 0; v < p.length; v++) {
      const l = tc.labels[v];
      if (l === 0) continue;
      const x = v % nx;
      const y = Math.floor(v / nx) % ny;
      const z = Math.floor(v / (nx * ny));
      const near = [
        x > 0 ? v - 1 : -1,
        x < nx - 1 ? v + 1 : -1,
        y > 0 ? v - nx : -1,
        y < ny - 1 ? v + nx : -1,
        z > 0 ? v - nx * ny : -1,
        z < nz - 1 ? v + nx * ny : -1,
      ];
      for (const w of near) {
        if (w < 0 || p[w] === 2) continue;
        faces[l]++;
        if (p[w] === 1) organFaces[l]++;
      }
    }
    const contact = (l: number) => organFaces[l] / Math.max(1, faces[l]);
    const onLesions: string[] = [];
    for (let l = 1; l <= tc.count; l++)
      if (hits[l]) {
        onLesions.push(`${tc.sizes[l - 1]} (${hits[l]} on a lesion, contact ${contact(l).toFixed(2)})`);
        tpContacts.push(contact(l));
      }
    // Which phantom structures the false-positive lesions lie on (the held-out phantom regenerated).
    const index = Number(id.replace(/\D/g, ''));
    const ph = generatePhantom({
      seed: Number(values.seed) + 3000 + index,
      spacing: mask.affine[0],
      tumors: truth.data.includes(2) ? [{ organ: 'liver', count: 2 }] : [],
    });
    const fps: number[] = [];
    for (let l = 1; l <= tc.count; l++) {
      if (hits[l]) continue;
      fps.push(tc.sizes[l - 1]);
      fpContacts.push(contact(l));
      fpSizes.push(tc.sizes[l - 1]);
      if (inside[l] * 2 >= tc.sizes[l - 1]) fpInside++;
    }
    const onStructure = new Map<string, number>();
    for (let v = 0; v < p.length; v++) {
      const l = tc.labels[v];
      if (l === 0 || hits[l]) continue;
      const name = STRUCTURE_NAMES[ph.organs.data[v]];
      onStructure.set(name, (onStructure.get(name) ?? 0) + 1);
    }
    for (const [k, n] of onStructure) fpStructures.set(k, (fpStructures.get(k) ?? 0) + n);
    const dice = (2 * c.tp) / (2 * c.tp + c.fpMain + c.fpOther + c.fn);
    // Organ Dice if foreground components below a fraction of the largest were dropped.
    for (const f of DROP_FRACTIONS) {
      let tp = 0;
      let fp = 0;
      let fn = 0;
      const keepMin = f * cc.sizes[main - 1];
      for (let v = 0; v < p.length; v++) {
        const po = p[v] > 0 && cc.sizes[cc.labels[v] - 1] >= keepMin;
        const to = t[v] > 0;
        if (po && to) tp++;
        else if (po) fp++;
        else if (to) fn++;
      }
      dropDice[f] = (dropDice[f] ?? 0) + (2 * tp) / (2 * tp + fp + fn) / cases.length;
    }
    console.log(
      `${id}: organ Dice ${dice.toFixed(3)} tp ${c.tp} fp(main ${c.fpMain}, other comps ${c.fpOther} in ${cc.count - 1}, air ${c.fpAir}) fn ${c.fn}; FP lesions ${fps.length} voxels [${fps.sort((a, b) => b - a).join(' ')}]; components on lesions [${onLesions.join(', ')}]`,
    );
    totals.organFpMain += c.fpMain;
    totals.organFpOther += c.fpOther;
    totals.organFpAir += c.fpAir;
    totals.organFn += c.fn;
    totals.organTp += c.tp;
  }
  await model.runner.release?.();
  fpSizes.sort((a, b) => a - b);
  console.log(JSON.stringify(totals));
  console.log(
    `organ Dice (mean of ${cases.length}) with components < f x largest dropped: ${JSON.stringify(dropDice)}`,
  );
  console.log(
    `FP lesions ${fpSizes.length}: ${fpInside} mostly inside the true organ; sizes (voxels) median ${fpSizes[fpSizes.length >> 1] ?? '-'}, <= 8 voxels: ${fpSizes.filter((s) => s <= 8).length}, <= 27: ${fpSizes.filter((s) => s <= 27).length}`,
  );
  const sorted = (xs: number[]) =>
    [...xs]
      .sort((a, b) => a - b)
      .map((x) => x.toFixed(2))
      .join(' ');
  console.log(
    `organ contact of the components on lesions: ${sorted(tpContacts)}; of the false-positive ones: ${sorted(fpContacts)}`,
  );
  console.log(
    `FP lesion voxels by phantom structure: ${[...fpStructures]
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
  );
  console.log(loadLine());
} finally {
  await rm(dir, { recursive: true, force: true });
}
