import { describe, expect, it } from 'vitest';
import { applyAffine } from '../geometry/affine.ts';
import { applyReorientation, axcodes } from '../geometry/orientation.ts';
import { binaryMask, dice } from '../metrics/dice.ts';
import { type Dims3, makeVolume, type Volume } from '../volume/volume.ts';
import { cleanTumors, segmentVolume } from './pipeline.ts';
import { scoreSynthetic } from './quality.ts';
import { testManifest, thresholdRunner } from './test-helpers.ts';

const ORGAN_HU = 100; // windowed 0.647
const TUMOR_HU = 200; // windowed 0.882
// Thresholds halfway between the windowed background (-50 HU: 0.294), organ (0.647) and tumor (0.882)
// values, so that linear resampling moves no boundary.
const runner = () => thresholdRunner(0.47, 0.765);

/** A CT-like volume on an anisotropic RAS grid: an organ ball with a tumor ball inside, and optionally one outside. */
function scene(outsideTumor = false): { ct: Volume<Int16Array>; truth: Uint8Array; tumorCentreMm: number[] } {
  const dims: Dims3 = [40, 36, 24];
  const spacing = [2, 2.5, 3];
  const affine = Float64Array.of(
    spacing[0],
    0,
    0,
    -40,
    0,
    spacing[1],
    0,
    -45,
    0,
    0,
    spacing[2],
    10,
    0,
    0,
    0,
    1,
  );
  const ct = new Int16Array(dims[0] * dims[1] * dims[2]).fill(-50);
  const truth = new Uint8Array(ct.length);
  const organC = [0, 0, 45];
  const tumorC = [6, 4, 45];
  for (let k = 0; k < dims[2]; k++)
    for (let j = 0; j < dims[1]; j++)
      for (let i = 0; i < dims[0]; i++) {
        const p = applyAffine(affine, [i, j, k]);
        const v = i + dims[0] * (j + dims[1] * k);
        if (Math.hypot(p[0] - organC[0], p[1] - organC[1], p[2] - organC[2]) < 25) {
          ct[v] = ORGAN_HU;
          truth[v] = 1;
        }
        if (Math.hypot(p[0] - tumorC[0], p[1] - tumorC[1], p[2] - tumorC[2]) < 8) {
          ct[v] = TUMOR_HU;
          truth[v] = 2;
        }
        if (outsideTumor && Math.hypot(p[0] - 30, p[1] - 35, p[2] - 40) < 5) ct[v] = TUMOR_HU;
      }
  return { ct: makeVolume(dims, ct, affine, 'int16'), truth, tumorCentreMm: tumorC };
}

describe('segmentVolume', () => {
  it('segments on the input grid with the input affine, and finds the lesion where it is', async () => {
    const { ct, truth, tumorCentreMm } = scene();
    const r = await segmentVolume(ct, testManifest(), runner());
    expect(r.mask.dims).toEqual(ct.dims);
    expect(r.mask.affine).toEqual(ct.affine);
    expect(r.mask.data).toBeInstanceOf(Uint8Array);
    expect(r.modelDims).toEqual([53, 60, 48]);
    expect(dice(binaryMask(r.mask.data, 2), binaryMask(truth, 2))).toBeGreaterThan(0.85);
    expect(dice(binaryMask(r.mask.data, [1, 2]), binaryMask(truth, [1, 2]))).toBeGreaterThan(0.95);
    expect(r.lesions).toHaveLength(1);
    for (let a = 0; a < 3; a++)
      expect(Math.abs(r.lesions[0].centroidMm[a] - tumorCentreMm[a])).toBeLessThan(1.5);
    expect(r.lesions[0].volumeMl).toBeCloseTo(((4 / 3) * Math.PI * 8 ** 3) / 1000, 0);
  });

  it('gives the same mask for an LPS and a permuted copy of the input, on their own grids', async () => {
    const { ct } = scene();
    const ras = await segmentVolume(ct, testManifest(), runner());
    const toLps = { axes: [0, 1, 2] as Dims3, flips: [true, true, false] as [boolean, boolean, boolean] };
    const lps = applyReorientation(ct, toLps);
    expect(axcodes(lps.affine)).toBe('LPS');
    const lpsMask = await segmentVolume(lps, testManifest(), runner());
    expect(lpsMask.mask.affine).toEqual(lps.affine);
    expect(lpsMask.mask.data).toEqual(applyReorientation(ras.mask, toLps).data);

    const toSIP = { axes: [2, 0, 1] as Dims3, flips: [true, false, true] as [boolean, boolean, boolean] };
    const odd = applyReorientation(ct, toSIP);
    const oddMask = await segmentVolume(odd, testManifest(), runner());
    expect(oddMask.mask.dims).toEqual(odd.dims);
    expect(oddMask.mask.affine).toEqual(odd.affine);
    expect(oddMask.mask.data).toEqual(applyReorientation(ras.mask, toSIP).data);
  });

  it('drops tumors outside the organ (organ constraint) and lesions under the minimum volume', async () => {
    const { ct } = scene(true);
    const free = await segmentVolume(ct, testManifest(), runner(), { organConstraint: false });
    expect(free.lesions).toHaveLength(2);
    const constrained = await segmentVolume(ct, testManifest(), runner());
    expect(constrained.lesions).toHaveLength(1);
    const bigOnly = await segmentVolume(ct, testManifest(), runner(), {
      organConstraint: false,
      minLesionMl: 1,
    });
    expect(bigOnly.lesions).toHaveLength(1);
    expect(bigOnly.lesions[0].volumeMl).toBeGreaterThan(1);
  });

  it('refuses an organ the model does not cover', async () => {
    const { ct } = scene();
    await expect(segmentVolume(ct, testManifest(), runner(), { organ: 'kidney' })).rejects.toMatchObject({
      code: 'invalid_argument',
    });
  });
});

describe('scoreSynthetic', () => {
  it('measures detection over the synthetic voxels and applies the 0.7 rule', async () => {
    const { ct, truth } = scene();
    const label = makeVolume(
      ct.dims,
      Uint8Array.from(truth, (v) => (v === 2 ? 3 : v)),
      ct.affine,
      'uint8',
    );
    const seen = await scoreSynthetic(ct, label, {
      segmentor: { manifest: testManifest(), runner: runner() },
    });
    // Not 1: the linearly resampled mask gives boundary voxels partial weight, some of them organ.
    expect(seen.detection).toBeGreaterThan(0.75);
    expect(seen.accepted).toBe(true);
    expect(seen.policy).toBe('segmentor');
    expect(seen.syntheticVoxels).toBeGreaterThan(0);

    // A "synthetic tumor" painted over plain organ: the segmentor calls it organ -> rejected.
    const organOnly = Uint8Array.from(truth, (v) => (v === 1 ? 1 : 0));
    const fake = makeVolume(ct.dims, Uint8Array.from(label.data), ct.affine, 'uint8');
    let moved = 0;
    for (let v = 0; v < fake.data.length; v++) {
      if (fake.data[v] === 3) fake.data[v] = 1;
      else if (organOnly[v] && moved < 400 && v % 7 === 0) {
        fake.data[v] = 3;
        moved++;
      }
    }
    const missed = await scoreSynthetic(ct, fake, {
      segmentor: { manifest: testManifest(), runner: runner() },
    });
    expect(missed.detection).toBeLessThan(0.2);
    expect(missed.accepted).toBe(false);
  });

  it('reports the discriminator realism as the mean "real tumor" probability', async () => {
    const { ct, truth } = scene();
    const label = makeVolume(
      ct.dims,
      Uint8Array.from(truth, (v) => (v === 2 ? 3 : v)),
      ct.affine,
      'uint8',
    );
    const dManifest = testManifest({}, ['background', 'real tumor', 'synthetic tumor']);
    const r = await scoreSynthetic(ct, label, {
      discriminator: { manifest: dManifest, runner: runner() },
      policy: 'discriminator',
    });
    // The threshold runner gives class 1 ("real") 0.1 on tumor voxels.
    expect(r.realism).toBeGreaterThan(0.09);
    expect(r.realism).toBeLessThan(0.3);
    expect(r.accepted).toBe(false);
    expect(r.detection).toBeNull();
  });

  it('rejects an empty synthetic mask and a label on another grid', async () => {
    const { ct } = scene();
    const empty = makeVolume(ct.dims, new Uint8Array(ct.data.length), ct.affine, 'uint8');
    const r = await scoreSynthetic(ct, empty, { segmentor: { manifest: testManifest(), runner: runner() } });
    expect(r.accepted).toBe(false);
    expect(r.syntheticVoxels).toBe(0);
    const shifted = makeVolume(
      ct.dims,
      new Uint8Array(ct.data.length),
      Float64Array.from(ct.affine, (x, i) => (i === 3 ? x + 5 : x)),
      'uint8',
    );
    await expect(
      scoreSynthetic(ct, shifted, { segmentor: { manifest: testManifest(), runner: runner() } }),
    ).rejects.toMatchObject({ code: 'invalid_geometry' });
  });
});

describe('cleanTumors at the volume faces', () => {
  // The 6-neighbourhood test must not read across a row end: a tumor on the last column is judged by
  // its left neighbour, and one on the first column is not judged by the previous row's last voxel.
  const dims: Dims3 = [6, 4, 3];
  const at = (i: number, j: number, k: number) => i + dims[0] * (j + dims[1] * k);
  const affine = Float64Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1);
  const options = { organ: 1, tumor: 2, organConstraint: true, minLesionMl: 0 };
  const organBlock = () => {
    const labels = new Uint8Array(dims[0] * dims[1] * dims[2]);
    for (let k = 0; k < 3; k++)
      for (let j = 0; j < 2; j++) for (let i = 3; i < 5; i++) labels[at(i, j, k)] = 1;
    return labels;
  };
  it('keeps a tumor on the last column that touches the organ on its left', () => {
    const labels = organBlock();
    labels[at(5, 1, 1)] = 2;
    cleanTumors(labels, dims, affine, options);
    expect(labels[at(5, 1, 1)]).toBe(2);
  });
  it('drops a tumor on the first column whose raster predecessor (last column, row above) is organ', () => {
    const labels = organBlock();
    labels[at(5, 2, 1)] = 1; // joined to the block diagonally: part of the main organ
    labels[at(0, 3, 1)] = 2; // raster index just after it, not adjacent
    cleanTumors(labels, dims, affine, options);
    expect(labels[at(0, 3, 1)]).toBe(0);
  });
});
