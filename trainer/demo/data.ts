/**
 * The demo's data: procedural phantoms written as an nnU-Net/MSD data set (imagesTr/labelsTr with
 * real tumors, imagesUnlabeled/labelsUnlabeled with organs only, imagesTs/labelsTs held out), the
 * real TotalSegmentator sample as one more unlabeled case when ../shared/data is present, or a
 * user's own data set in the same layout (`--data DIR`). Training reads them through the trainer's
 * own data-set code; evaluation and the edge calls use the held-out files as a user would.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FreeTumorError } from '../../shared/errors.ts';
import type { OrganName } from '../../shared/labels/labelmap.ts';
import { phantomDatasetJson } from '../../shared/phantom/dataset.ts';
import { generatePhantom } from '../../shared/phantom/phantom.ts';
import { writeNifti } from '../../shared/volume/nifti.ts';
import { asNiftiFile, findCaseInput, inputEntries } from '../io/case-files.ts';
import type { DatasetConfig } from '../train/config.ts';
import type { DemoPlan } from './plan.ts';

/** A case with a reference label, read from disk by evaluation and sent to the Worker. */
export interface DemoCase {
  id: string;
  image: string;
  label: string;
  /** Label map of the file's ids (shared/labels): `freetumor`, `totalseg` or a custom map. */
  labelMap: string;
  /** The reference has tumor voxels of the demo's organ. */
  hasTumor: boolean;
}

export type DatasetInput = Omit<DatasetConfig, 'repeat'> & { repeat?: number };

export interface DemoData {
  source: 'phantoms' | 'user';
  datasets: DatasetInput[];
  /** Labeled cases the trainer holds out (user data without imagesTs); 0 for phantoms. */
  validationCases: number;
  heldOut: DemoCase[];
  /** Tumor-free cases with organ labels for the synthesis showcase and /v1/synthesize. */
  healthy: DemoCase[];
  counts: { labeled: number; unlabeled: number; heldOut: number; real: number };
  notes: string[];
}

const SEED_BASE = { labeled: 1000, unlabeled: 2000, heldOut: 3000 };

export function caseId(kind: keyof typeof SEED_BASE, i: number): string {
  return `${kind === 'heldOut' ? 'test' : kind === 'labeled' ? 'case' : 'unl'}_${String(i).padStart(3, '0')}`;
}

/**
 * Writes the phantom data set under `dir`. The last held-out case has no tumor: it is the healthy
 * patient the showcase and /v1/synthesize put synthetic tumors into.
 */
export async function writePhantomData(
  dir: string,
  plan: DemoPlan,
  organ: OrganName,
  seed: number,
): Promise<DemoData> {
  const p = plan.phantoms;
  for (const sub of ['imagesTr', 'labelsTr', 'imagesUnlabeled', 'labelsUnlabeled', 'imagesTs', 'labelsTs']) {
    await mkdir(join(dir, sub), { recursive: true });
  }
  const write = async (
    kind: keyof typeof SEED_BASE,
    i: number,
    tumors: number,
    images: string,
    labels: string,
  ) => {
    const id = caseId(kind, i);
    const ph = generatePhantom({
      seed: seed + SEED_BASE[kind] + i,
      spacing: plan.spacing,
      tumors: tumors > 0 ? [{ organ, count: tumors }] : [],
    });
    const image = join(dir, images, `${id}_0000.nii.gz`);
    const label = join(dir, labels, `${id}.nii.gz`);
    await writeFile(image, writeNifti(ph.ct));
    await writeFile(label, writeNifti(ph.label));
    return { id, image, label, labelMap: 'freetumor', hasTumor: ph.tumors.length > 0 } satisfies DemoCase;
  };
  for (let i = 0; i < p.labeled; i++) await write('labeled', i, p.tumorsPerCase, 'imagesTr', 'labelsTr');
  for (let i = 0; i < p.unlabeled; i++) await write('unlabeled', i, 0, 'imagesUnlabeled', 'labelsUnlabeled');
  const heldOut: DemoCase[] = [];
  for (let i = 0; i < p.heldOut; i++) {
    const healthy = i === p.heldOut - 1;
    heldOut.push(await write('heldOut', i, healthy ? 0 : p.tumorsPerCase, 'imagesTs', 'labelsTs'));
  }
  await writeFile(
    join(dir, 'dataset.json'),
    `${JSON.stringify(phantomDatasetJson(p.labeled, seed + SEED_BASE.labeled), null, 2)}\n`,
  );
  return {
    source: 'phantoms',
    datasets: [{ name: 'phantom', format: 'msd', path: dir, labelMap: 'freetumor', organ, unlabeled: true }],
    validationCases: 0,
    heldOut,
    healthy: heldOut.filter((c) => !c.hasTumor),
    counts: { labeled: p.labeled, unlabeled: p.unlabeled, heldOut: p.heldOut, real: 0 },
    notes: [
      `${p.labeled} phantoms with ${p.tumorsPerCase} real ${organ} tumors each, ${p.unlabeled} with organs only, ${p.heldOut} held out, at ${plan.spacing} mm`,
    ],
  };
}

/**
 * Adds the real TotalSegmentator sample (3 mm abdomen CT, TotalSegmentator v1 organ labels, no
 * tumors) as an unlabeled case through a `list` data set that points at the files where they are:
 * they are read, never copied.
 */
export async function addTotalSegSample(
  data: DemoData,
  sharedData: string,
  dir: string,
  organ: OrganName,
): Promise<boolean> {
  const image = join(sharedData, 'totalseg-example', 'example_ct.nii.gz');
  const label = join(sharedData, 'totalseg-example', 'example_seg_v1_full.nii.gz');
  if (!existsSync(image) || !existsSync(label)) return false;
  await mkdir(dir, { recursive: true });
  const list = join(dir, 'totalseg.json');
  await writeFile(
    list,
    `${JSON.stringify({ labeled: [], unlabeled: [{ id: 'totalseg_example', image, label }] }, null, 2)}\n`,
  );
  data.datasets.push({
    name: 'totalseg',
    format: 'list',
    path: list,
    labelMap: 'totalseg',
    organ,
    unlabeled: true,
  });
  data.healthy.push({ id: 'totalseg_example', image, label, labelMap: 'totalseg', hasTumor: false });
  data.counts.real += 1;
  data.counts.unlabeled += 1;
  data.notes.push(
    'the real TotalSegmentator sample CT (organ labels from TotalSegmentator v1) is one more unlabeled case',
  );
  return true;
}

/**
 * Image/label pairs of `images`/`labels` under `root` (nnU-Net `_0000` channel suffix allowed); a case
 * may be a DICOM series (folder or zip), as in the trainer's data sets (trainer/io/case-files.ts).
 */
async function listPairs(
  root: string,
  images: string,
  labels: string,
): Promise<Array<{ id: string; image: string; label: string }>> {
  if (!existsSync(join(root, images)) || !existsSync(join(root, labels))) return [];
  const out: Array<{ id: string; image: string; label: string }> = [];
  for (const { stem, path } of (await inputEntries(join(root, images))).entries) {
    if (/_\d{4}$/.test(stem) && !stem.endsWith('_0000')) continue;
    const id = stem.replace(/_0000$/, '');
    const label = findCaseInput(join(root, labels), id);
    if (label) out.push({ id, image: path, label });
  }
  return out;
}

/**
 * A user's data set in the nnU-Net/MSD layout. Held-out cases come from imagesTs/labelsTs when it
 * has them, else the trainer holds out the last labeled cases (its `validationCases` rule) and the
 * demo evaluates on those. DICOM cases train as they are; the held-out and showcase ones are also
 * converted to NIfTI under `niftiDir` (the Worker takes NIfTI), in their label's axis order.
 */
export async function userData(
  dir: string,
  labelMap: string,
  organ: OrganName,
  wantHeldOut: number,
  niftiDir: string,
): Promise<DemoData> {
  if (!existsSync(dir)) throw new FreeTumorError('not_found', '--data folder not found');
  const labeled = await listPairs(dir, 'imagesTr', 'labelsTr');
  const unlabeled = await listPairs(dir, 'imagesUnlabeled', 'labelsUnlabeled');
  if (labeled.length === 0) {
    throw new FreeTumorError(
      'not_found',
      '--data has no imagesTr/labelsTr case pairs (nnU-Net/MSD layout: imagesTr/<case>_0000.nii.gz, labelsTr/<case>.nii.gz)',
    );
  }
  const tests = await listPairs(dir, 'imagesTs', 'labelsTs');
  let validationCases = 0;
  let held = tests;
  if (held.length === 0) {
    validationCases = Math.min(wantHeldOut, labeled.length - 1);
    held = labeled.slice(labeled.length - validationCases);
  }
  // Whether a case has a tumor is read later from its label (evaluation), not assumed here.
  const toCase = async (
    c: { id: string; image: string; label: string },
    hasTumor: boolean,
  ): Promise<DemoCase> => {
    const label = await asNiftiFile(c.label, join(niftiDir, `${c.id}_label.nii.gz`));
    const image = await asNiftiFile(c.image, join(niftiDir, `${c.id}_image.nii.gz`), label);
    return { id: c.id, image, label, labelMap, hasTumor };
  };
  return {
    source: 'user',
    datasets: [{ name: 'user', format: 'msd', path: dir, labelMap, organ, unlabeled: true }],
    validationCases,
    heldOut: await Promise.all(held.map((c) => toCase(c, true))),
    // Without unlabeled cases the showcase uses a held-out case (its real tumors stay in place).
    healthy:
      unlabeled.length > 0
        ? [await toCase(unlabeled[0], false)]
        : await Promise.all(held.slice(0, 1).map((c) => toCase(c, true))),
    counts: {
      labeled: labeled.length - validationCases,
      unlabeled: unlabeled.length,
      heldOut: held.length,
      real: labeled.length + unlabeled.length + tests.length,
    },
    notes: [
      `user data set: ${labeled.length} labeled, ${unlabeled.length} unlabeled, ${held.length} held out (${tests.length > 0 ? 'imagesTs' : 'last labeled cases'}), label map ${labelMap}, organ ${organ}`,
    ],
  };
}
