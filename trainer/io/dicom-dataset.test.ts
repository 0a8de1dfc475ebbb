/**
 * Data sets with DICOM cases: an nnU-Net/MSD folder where one case is a DICOM series folder and one a
 * zip (written by pydicom, stored LPS), labels NIfTI (stored RAS). They list and preprocess to the same
 * training case as the NIfTI copy of the same phantom. Skipped without pydicom.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { affinesClose } from '../../shared/geometry/affine.ts';
import { applyReorientation, reorientationTo } from '../../shared/geometry/orientation.ts';
import { generatePhantom } from '../../shared/phantom/phantom.ts';
import { readNifti, writeNifti } from '../../shared/volume/nifti.ts';
import { hasPydicom, PYTHON, writeSeries } from '../../test/dicom/fixtures.ts';
import { decodeCase } from '../data/case.ts';
import { listDataset } from '../data/dataset.ts';
import { preprocessToCache } from '../data/preprocess.ts';
import { userData } from '../demo/data.ts';
import { datasetSchema } from '../train/config.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ft-dicom-ds-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe.skipIf(!hasPydicom)('data sets with DICOM series cases', () => {
  it('list and preprocess a series folder and a zip like the NIfTI of the same CT', async () => {
    const root = join(dir, 'msd');
    await mkdir(join(root, 'imagesTr'), { recursive: true });
    await mkdir(join(root, 'labelsTr'), { recursive: true });
    const p = generatePhantom({ seed: 40, spacing: 12, tumors: [{ organ: 'liver', count: 1 }] });
    const lps = applyReorientation(p.ct, reorientationTo(p.ct.affine, 'LPS'));
    await writeFile(join(root, 'imagesTr', 'a_0000.nii.gz'), writeNifti(p.ct));
    writeSeries(lps, join(root, 'imagesTr', 'b'), { file_order: 'shuffled' });
    writeSeries(lps, join(dir, 'c-series'), {});
    const zip = join(root, 'imagesTr', 'c.zip');
    const z = spawnSync(PYTHON, [
      '-c',
      'import shutil,sys; shutil.make_archive(sys.argv[1][:-4], "zip", sys.argv[2])',
      zip,
      join(dir, 'c-series'),
    ]);
    expect(z.status).toBe(0);
    for (const id of ['a', 'b', 'c'])
      await writeFile(join(root, 'labelsTr', `${id}.nii.gz`), writeNifti(p.label));
    const cases = await listDataset(
      datasetSchema.parse({ name: 'd', format: 'msd', path: root, organ: 'liver' }),
    );
    expect(cases.map((c) => [c.id, c.image.slice(root.length)])).toEqual([
      ['a', '/imagesTr/a_0000.nii.gz'],
      ['b', '/imagesTr/b'],
      ['c', '/imagesTr/c.zip'],
    ]);
    const params = {
      spacing: [12, 12, 12] as [number, number, number],
      window: [-175, 250] as [number, number],
      labelMap: 'freetumor',
      organ: 'liver' as const,
    };
    const decoded = [];
    for (const c of cases)
      decoded.push(
        decodeCase(new Uint8Array(await readFile(await preprocessToCache(c, params, join(dir, 'cache'))))),
      );
    for (const d of decoded.slice(1)) {
      expect(d.dims).toEqual(decoded[0].dims);
      expect(Array.from(d.image)).toEqual(Array.from(decoded[0].image));
      expect(Array.from(d.label)).toEqual(Array.from(decoded[0].label));
    }

    // The demo's --data: held-out DICOM cases become NIfTI files on their label's storage grid.
    const demo = await userData(root, 'freetumor', 'liver', 2, join(dir, 'user-nifti'));
    expect(demo.heldOut.map((c) => c.id)).toEqual(['b', 'c']);
    for (const c of demo.heldOut) {
      expect(c.image).toMatch(/user-nifti\/[bc]_image\.nii\.gz$/);
      const image = readNifti(await readFile(c.image));
      expect(affinesClose(image.affine, p.ct.affine, 1e-4)).toBe(true);
      expect(Array.from(image.data)).toEqual(Array.from(p.ct.data));
    }
  });
});
