/**
 * How sure each run is about each held-out lesion (recipe diagnosis): every run is exported as the
 * demo exports it (int8, best checkpoint) and its tumor probability is read at the model grid
 * before any post-processing; per true lesion (26-connected) it prints the voxels, the mean HU (and
 * its difference from the organ's mean), the maximum and mean tumor probability, and the mean
 * organ probability (what the model takes the lesion for instead). An argmax "detection" won at
 * 0.38 shows here as such.
 *
 *   node bench/recipe/lesion-probabilities.ts --demo DEMO_OUT [--precision fp32] RUN [RUN ...]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { classIds, predictProbabilities, preprocess } from '../../shared/inference/pipeline.ts';
import { connectedComponents } from '../../shared/labels/components.ts';
import { readNifti } from '../../shared/volume/nifti.ts';
import { readReference } from '../../trainer/demo/evaluation.ts';
import { openLocalModel } from '../../trainer/runners/local-model.ts';
import { exportSegmentor, heldOutCases, loadLine } from './demo-output.ts';

const { values, positionals } = parseArgs({
  options: {
    demo: { type: 'string' },
    overlap: { type: 'string', default: '0.5' },
    precision: { type: 'string', default: 'int8' },
  },
  allowPositionals: true,
});
if (!values.demo || positionals.length === 0)
  throw new Error('--demo DEMO_OUT and at least one run are required');
const cases = await heldOutCases(values.demo);
for (const run of positionals) {
  const dir = await mkdtemp(join(tmpdir(), 'ft-lesion-p-'));
  try {
    await exportSegmentor(run, dir, { checkpoint: 'best', overlap: Number(values.overlap) });
    const precision = values.precision === 'fp32' ? 'fp32' : 'int8';
    const model = await openLocalModel(dir, 'segmentor', { precision });
    if (!model) throw new Error(`no segmentor exported from ${run}`);
    const { tumor, organ } = classIds(model.manifest.labels);
    if (tumor === null || organ === null) throw new Error('the segmentor has no organ or no tumor class');
    console.log(basename(run));
    for (const c of cases) {
      const image = readNifti(new Uint8Array(await readFile(c.image)));
      const truth = await readReference(c, 'liver');
      const prep = preprocess(image, model.manifest.preprocessing);
      // The held-out phantoms are on the model grid already (3 mm, RAS): voxels line up with the truth.
      if (prep.model.data.length !== truth.data.length) throw new Error(`${c.id} is not on the model grid`);
      const probs = await predictProbabilities(prep, model.manifest, model.runner);
      const n = truth.data.length;
      const p = probs.data.subarray(tumor * n, (tumor + 1) * n);
      const po = probs.data.subarray(organ * n, (organ + 1) * n);
      const cc = connectedComponents(
        Uint8Array.from(truth.data, (l) => (l === 2 ? 1 : 0)),
        truth.dims,
        26,
      );
      // The organ's mean HU (tumor excluded): a lesion's contrast is what a model has to see.
      let organHu = 0;
      let organVoxels = 0;
      for (let v = 0; v < n; v++) {
        if (truth.data[v] !== 1) continue;
        organHu += image.data[v];
        organVoxels++;
      }
      organHu /= Math.max(1, organVoxels);
      for (let l = 1; l <= cc.count; l++) {
        let max = 0;
        let sum = 0;
        let hu = 0;
        let organSum = 0;
        for (let v = 0; v < n; v++) {
          if (cc.labels[v] !== l) continue;
          max = Math.max(max, p[v]);
          sum += p[v];
          organSum += po[v];
          hu += image.data[v];
        }
        const size = cc.sizes[l - 1];
        console.log(
          `  ${c.id} lesion ${l}: ${size} voxels, ${(hu / size).toFixed(0)} HU (${(hu / size - organHu).toFixed(0)} against the organ), tumor p max ${max.toFixed(2)} mean ${(sum / size).toFixed(2)}, organ p mean ${(organSum / size).toFixed(2)}`,
        );
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
console.log(loadLine());
