import { describe, expect, it } from 'vitest';
import { FreeTumorError, LimitError } from '../errors.ts';
import { readNifti, writeNifti } from '../volume/nifti.ts';
import { spacingOf, type Volume } from '../volume/volume.ts';
import { phantomCasePaths, phantomDatasetJson } from './dataset.ts';
import {
  DEFAULT_FOV_MM,
  FREETUMOR_LABELS,
  generatePhantom,
  labelVolumesMl,
  type Phantom,
  parseTumorSpec,
  STRUCTURE,
  STRUCTURE_NAMES,
} from './phantom.ts';

// 3 mm keeps the whole default field of view (120 x 100 x 80 voxels) at about 0.2 s a phantom.
const COARSE = 3;
const cache = new Map<string, Phantom>();
function phantom(seed: number, extra: Partial<Parameters<typeof generatePhantom>[0]> = {}): Phantom {
  const key = JSON.stringify({ seed, ...extra });
  let p = cache.get(key);
  if (!p) {
    p = generatePhantom({ seed, spacing: COARSE, ...extra });
    cache.set(key, p);
  }
  return p;
}

function world(v: Volume, idx: number): [number, number, number] {
  const [nx, ny] = v.dims;
  const ijk = [idx % nx, Math.floor(idx / nx) % ny, Math.floor(idx / (nx * ny))];
  const a = v.affine;
  return [0, 1, 2].map(
    (r) => a[4 * r] * ijk[0] + a[4 * r + 1] * ijk[1] + a[4 * r + 2] * ijk[2] + a[4 * r + 3],
  ) as [number, number, number];
}

/** Voxel count, centroid (world mm) and mean HU of the voxels where `pred(index)` holds. */
function region(p: Phantom, pred: (i: number) => boolean) {
  const [nx, ny] = p.ct.dims;
  let n = 0;
  let hu = 0;
  const ijk = [0, 0, 0];
  for (let i = 0; i < p.ct.data.length; i++) {
    if (!pred(i)) continue;
    n++;
    hu += p.ct.data[i];
    ijk[0] += i % nx;
    ijk[1] += Math.floor(i / nx) % ny;
    ijk[2] += Math.floor(i / (nx * ny));
  }
  // The affine is linear, so the world centroid is the affine of the mean index.
  const a = p.ct.affine;
  const m = ijk.map((v) => v / n);
  const centroid = [0, 1, 2].map(
    (r) => a[4 * r] * m[0] + a[4 * r + 1] * m[1] + a[4 * r + 2] * m[2] + a[4 * r + 3],
  );
  return { n, meanHU: hu / n, centroid, ml: (n * spacingOf(a)[0] ** 3) / 1000 };
}

/** Asserts lo <= value <= hi, naming the quantity in the failure message. */
function within(name: string, value: number, lo: number, hi: number): void {
  expect({ name, value, inRange: value >= lo && value <= hi }).toEqual({ name, value, inRange: true });
}

const byLabel = (p: Phantom, l: number) => region(p, (i) => p.label.data[i] === l);
const byStructure = (p: Phantom, s: number) => region(p, (i) => p.organs.data[i] === s);
/** Voxels of structure `s` whose six neighbours are `s` too: small vessels without their partial-volume rim. */
const interiorOf = (p: Phantom, s: number) => {
  const [nx, ny] = p.organs.dims;
  const o = p.organs.data;
  const steps = [1, nx, nx * ny];
  return region(p, (i) => o[i] === s && steps.every((d) => o[i - d] === s && o[i + d] === s));
};

describe('generatePhantom: determinism', () => {
  it('gives identical bytes for the same seed and different images for different seeds', () => {
    const a = generatePhantom({ seed: 11, spacing: 6 });
    const b = generatePhantom({ seed: 11, spacing: 6 });
    const c = generatePhantom({ seed: 12, spacing: 6 });
    expect(Buffer.from(a.ct.data.buffer).equals(Buffer.from(b.ct.data.buffer))).toBe(true);
    expect(Buffer.from(a.label.data.buffer).equals(Buffer.from(b.label.data.buffer))).toBe(true);
    expect(Buffer.from(a.ct.data.buffer).equals(Buffer.from(c.ct.data.buffer))).toBe(false);
    let differentLabels = 0;
    for (let i = 0; i < a.label.data.length; i++) if (a.label.data[i] !== c.label.data[i]) differentLabels++;
    expect(differentLabels).toBeGreaterThan(100);
  });
});

describe('generatePhantom: geometry', () => {
  it('defaults to 1.5 mm over the default field of view, RAS+ with the body centred at world 0', () => {
    const p = generatePhantom({ seed: 1 });
    expect(p.ct.dims).toEqual([240, 200, 160]);
    expect(p.ct.dims).toEqual(DEFAULT_FOV_MM.map((f) => f / 1.5));
    expect(spacingOf(p.ct.affine)).toEqual([1.5, 1.5, 1.5]);
    expect(p.ct.datatype).toBe('int16');
    expect(p.ct.data).toBeInstanceOf(Int16Array);
    expect(p.label.datatype).toBe('uint8');
    expect(p.label.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(p.label.affine)).toEqual(Array.from(p.ct.affine));
    expect(Array.from(p.organs.affine)).toEqual(Array.from(p.ct.affine));
    // Identity rotation, positive diagonal (RAS+), grid centre at world (0, 0, 0).
    const a = p.ct.affine;
    expect([a[1], a[2], a[4], a[6], a[8], a[9], a[12], a[13], a[14], a[15]]).toEqual([
      0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ]);
    for (let r = 0; r < 3; r++) expect(a[4 * r + 3] + (a[5 * r] * (p.ct.dims[r] - 1)) / 2).toBeCloseTo(0, 9);
    // The body is centred too: the centroid of everything denser than air is within 2 cm of the origin in x and z.
    const body = region(p, (i) => p.ct.data[i] > -500);
    expect(Math.abs(body.centroid[0])).toBeLessThan(20);
    expect(Math.abs(body.centroid[2])).toBeLessThan(20);
  });

  it('honours size and spacing: the anatomy is physical, so a small coarse grid shows the same organs', () => {
    const small = generatePhantom({ seed: 4, size: [64, 64, 64], spacing: 4.5 });
    expect(small.ct.dims).toEqual([64, 64, 64]);
    expect(spacingOf(small.ct.affine)).toEqual([4.5, 4.5, 4.5]);
    const fine = labelVolumesMl(phantom(4).label);
    const coarse = labelVolumesMl(small.label);
    // 288 mm cube vs the default field of view: the organs are all inside both, at the same size (+-12%).
    for (const organ of ['liver', 'pancreas', 'kidney'] as const) {
      expect(coarse[organ] / fine[organ]).toBeGreaterThan(0.88);
      expect(coarse[organ] / fine[organ]).toBeLessThan(1.12);
    }
  });

  it('round-trips through NIfTI with data and affine unchanged', () => {
    const p = generatePhantom({ seed: 2, size: [40, 36, 30], spacing: 6 });
    const ct = readNifti(writeNifti(p.ct));
    const label = readNifti(writeNifti(p.label));
    expect(ct.datatype).toBe('int16');
    expect(Array.from(ct.data)).toEqual(Array.from(p.ct.data));
    expect(Array.from(label.data)).toEqual(Array.from(p.label.data));
    expect(Array.from(ct.affine)).toEqual(Array.from(p.ct.affine));
    expect(ct.dims).toEqual(p.ct.dims);
  });
});

describe('generatePhantom: labels and anatomy', () => {
  it('writes only FreeTumor abdomen labels, tumor labels only when tumors are asked for', () => {
    const seen = new Set(phantom(0).label.data);
    expect([...seen].sort()).toEqual([0, 1, 3, 5]);
    const withTumors = phantom(0, { tumors: parseTumorSpec('liver:1,pancreas:1,kidney:1') });
    expect([...new Set(withTumors.label.data)].sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    // Every structure code is named, and only tumor/organ codes carry labels.
    for (const code of new Set(withTumors.organs.data)) expect(STRUCTURE_NAMES[code]).toBeDefined();
  });

  it.each([0, 1, 2])('seed %i: organ CT numbers are realistic portal-venous means', (seed) => {
    const p = phantom(seed);
    const L = FREETUMOR_LABELS;
    const S = STRUCTURE;
    const ranges: Array<[string, number, number, number]> = [
      ['liver', byLabel(p, L.liver).meanHU, 80, 130],
      ['pancreas', byLabel(p, L.pancreas).meanHU, 60, 120],
      ['kidney', byLabel(p, L.kidney).meanHU, 110, 185],
      ['spleen', byStructure(p, S.spleen).meanHU, 80, 140],
      ['aorta', interiorOf(p, S.aorta).meanHU, 140, 220],
      ['subcutaneous fat', byStructure(p, S.subcutaneousFat).meanHU, -130, -70],
      ['muscle', byStructure(p, S.muscle).meanHU, 20, 80],
      ['cancellous bone', byStructure(p, S.boneCancellous).meanHU, 180, 450],
      ['lung', byStructure(p, S.lung).meanHU, -920, -650],
      ['air', byStructure(p, S.air).meanHU, -1024, -950],
    ];
    for (const [name, mean, lo, hi] of ranges) {
      within(name, mean, lo, hi);
    }
  });

  it.each([0, 1, 2, 3])('seed %i: organ volumes are adult-sized', (seed) => {
    const p = phantom(seed);
    const v = labelVolumesMl(p.label);
    within('liver ml', v.liver, 900, 2200);
    within('pancreas ml', v.pancreas, 40, 140);
    within('kidneys ml', v.kidney, 180, 450); // both kidneys
    within('spleen ml', byStructure(p, STRUCTURE.spleen).ml, 70, 350);
    expect(v.liverTumor + v.pancreasTumor + v.kidneyTumor).toBe(0);
  });

  it.each([0, 1])(
    'seed %i: organ extents are adult-sized (liver 15-21 cm wide, kidneys ~11 cm long, pancreas ~15 cm)',
    (seed) => {
      const p = phantom(seed);
      const [nx, ny] = p.label.dims;
      const s = spacingOf(p.label.affine)[0];
      const extent = (pred: (label: number, i: number) => boolean) => {
        const lo = [Infinity, Infinity, Infinity];
        const hi = [-Infinity, -Infinity, -Infinity];
        for (let i = 0; i < p.label.data.length; i++) {
          if (!pred(p.label.data[i], i)) continue;
          const ijk = [i % nx, Math.floor(i / nx) % ny, Math.floor(i / (nx * ny))];
          for (let a = 0; a < 3; a++) {
            lo[a] = Math.min(lo[a], ijk[a]);
            hi[a] = Math.max(hi[a], ijk[a]);
          }
        }
        return hi.map((h, a) => (h - lo[a] + 1) * s);
      };
      const L = FREETUMOR_LABELS;
      const midX = (nx - 1) / 2;
      within('liver width mm', extent((l) => l === L.liver)[0], 150, 210);
      within('pancreas width mm', extent((l) => l === L.pancreas)[0], 120, 180);
      within('right kidney length mm', extent((l, i) => l === L.kidney && i % nx > midX)[2], 95, 135);
      within('left kidney length mm', extent((l, i) => l === L.kidney && i % nx < midX)[2], 95, 135);
    },
  );

  it.each([0, 5])(
    'seed %i: organs sit on the right sides (RAS+: +x is the patient right, +y anterior, +z superior)',
    (seed) => {
      const p = phantom(seed);
      const liver = byLabel(p, FREETUMOR_LABELS.liver).centroid;
      const spleen = byStructure(p, STRUCTURE.spleen).centroid;
      const pancreas = byLabel(p, FREETUMOR_LABELS.pancreas).centroid;
      const aorta = byStructure(p, STRUCTURE.aorta).centroid;
      const ivc = byStructure(p, STRUCTURE.ivc).centroid;
      const vertebrae = byStructure(p, STRUCTURE.boneCancellous).centroid;
      const isKidney = (i: number) => p.label.data[i] === FREETUMOR_LABELS.kidney;
      const rightKidney = region(p, (i) => isKidney(i) && world(p.ct, i)[0] > 0);
      const leftKidney = region(p, (i) => isKidney(i) && world(p.ct, i)[0] < 0);
      expect(liver[0]).toBeGreaterThan(20); // patient right
      expect(spleen[0]).toBeLessThan(-50); // patient left
      within('right kidney ml', rightKidney.ml, 80, 230);
      within('left kidney ml', leftKidney.ml, 80, 230);
      for (const k of [rightKidney.centroid, leftKidney.centroid]) {
        expect(k[1]).toBeLessThan(liver[1]); // posterior to the liver
        expect(k[2]).toBeLessThan(liver[2]); // below it
        within('kidney |x| mm', Math.abs(k[0]), 40, 110);
      }
      expect(aorta[0]).toBeLessThan(ivc[0]); // aorta on the patient's left of the IVC
      expect(pancreas[1]).toBeGreaterThan(aorta[1]); // pancreas in front of the aorta
      expect(aorta[1]).toBeGreaterThan(vertebrae[1]); // aorta in front of the spine
      expect(Math.abs(vertebrae[0])).toBeLessThan(5); // spine on the midline
    },
  );
});

describe('generatePhantom: noise', () => {
  it('adds spatially correlated noise of the requested standard deviation, leaving the anatomy alone', () => {
    const clean = generatePhantom({ seed: 3, spacing: COARSE, noiseHU: 0 });
    const noisy = phantom(3);
    expect(Array.from(noisy.organs.data)).toEqual(Array.from(clean.organs.data));
    const nx = noisy.ct.dims[0];
    let n = 0;
    let s2 = 0;
    let lag = 0;
    for (let i = 0; i < noisy.ct.data.length - 1; i++) {
      // Inside the body, away from the clamp at -1024.
      if (clean.ct.data[i] < -500 || clean.ct.data[i + 1] < -500 || i % nx === nx - 1) continue;
      const d0 = noisy.ct.data[i] - clean.ct.data[i];
      const d1 = noisy.ct.data[i + 1] - clean.ct.data[i + 1];
      n++;
      s2 += d0 * d0;
      lag += d0 * d1;
    }
    const sd = Math.sqrt(s2 / n);
    within('noise sd', sd, 10.5, 13.5);
    within('lag-1 correlation', lag / s2, 0.3, 0.9); // neighbours correlate, as in reconstructed CT
  });
});

describe('generatePhantom: tumors', () => {
  it('places hypodense, labelled lesions inside their organs without moving the anatomy', () => {
    const tumors = parseTumorSpec('liver:2,kidney:1,pancreas:1');
    // 2 mm: at coarser spacing the smallest (5 mm) pancreatic lesions blur into their organ.
    const p = phantom(6, { tumors, spacing: 2 });
    const healthy = phantom(6, { spacing: 2 });
    expect(p.tumors.map((t) => t.organ).sort()).toEqual(['kidney', 'liver', 'liver', 'pancreas']);
    const L = FREETUMOR_LABELS;
    for (const [organ, tumor] of [
      [L.liver, L.liverTumor],
      [L.pancreas, L.pancreasTumor],
      [L.kidney, L.kidneyTumor],
    ]) {
      const host = byLabel(p, organ);
      const lesion = byLabel(p, tumor);
      expect(lesion.n).toBeGreaterThan(3);
      expect(host.meanHU - lesion.meanHU).toBeGreaterThan(20);
      // Tumor voxels were organ voxels in the same patient without tumors.
      for (let i = 0; i < p.label.data.length; i++) {
        if (p.label.data[i] === tumor) expect(healthy.label.data[i]).toBe(organ);
      }
    }
    for (const t of p.tumors) {
      expect(t.deltaHU).toBeLessThan(-25);
      expect(t.voxels).toBeGreaterThan(0);
    }
    // Same seed, same patient: outside the lesions the structure map is unchanged.
    let changed = 0;
    for (let i = 0; i < p.organs.data.length; i++) {
      if (p.organs.data[i] !== healthy.organs.data[i] && p.label.data[i] % 2 === 1) changed++;
    }
    expect(changed).toBe(0);
  });

  it('parses tumor specs and rejects bad ones', () => {
    expect(parseTumorSpec('liver:2, kidney')).toEqual([
      { organ: 'liver', count: 2 },
      { organ: 'kidney', count: 1 },
    ]);
    expect(() => parseTumorSpec('lung:1')).toThrow(FreeTumorError);
    expect(() => parseTumorSpec('liver:-1')).toThrow(/liver:2/);
  });
});

describe('generatePhantom: bad options', () => {
  it.each([
    [{ seed: -1 }, /seed/],
    [{ seed: 1.5 }, /seed/],
    [{ seed: 2 ** 32 }, /seed/],
    [{ seed: 1, spacing: 0 }, /spacing/],
    [{ seed: 1, spacing: Number.NaN }, /spacing/],
    [{ seed: 1, size: [0, 10, 10] }, /size/],
    [{ seed: 1, size: [10, 10] }, /size/],
    [{ seed: 1, noiseHU: -1 }, /noiseHU/],
    [{ seed: 1, tumors: [{ organ: 'lung', count: 1 }] }, /organ/],
    [{ seed: 1, tumors: [{ organ: 'liver', count: 1000 }] }, /count/],
  ])('%j is an invalid_argument error', (opts, msg) => {
    const call = () => generatePhantom(opts as Parameters<typeof generatePhantom>[0]);
    expect(call).toThrow(FreeTumorError);
    expect(call).toThrow(msg);
  });

  it('refuses a grid over the voxel limit before allocating it', () => {
    expect(() => generatePhantom({ seed: 1, size: [1024, 1024, 1024] })).toThrow(LimitError);
  });
});

describe('phantom dataset layout', () => {
  it('names cases and describes them as nnU-Net v2 does', () => {
    expect(phantomCasePaths(7)).toEqual({
      id: 'case_007',
      image: 'imagesTr/case_007_0000.nii.gz',
      label: 'labelsTr/case_007.nii.gz',
    });
    const ds = phantomDatasetJson(3, 10);
    expect(ds).toMatchObject({ channel_names: { '0': 'CT' }, numTraining: 3, file_ending: '.nii.gz' });
    expect(ds.labels).toEqual({
      background: 0,
      liver: 1,
      liver_tumor: 2,
      pancreas: 3,
      pancreas_tumor: 4,
      kidney: 5,
      kidney_tumor: 6,
    });
  });
});
