import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FreeTumorError } from '../errors.ts';
import { Rng } from '../random.ts';
import type { Dims3 } from '../volume/volume.ts';
import { applyDifference } from './compose.ts';
import { planSynthesis, type SynthesisInput } from './plan.ts';
import { synthesize } from './synthesize.ts';
import { ABDOMEN_TEXTURE_SIGMAS, TextureBank } from './texture.ts';
import { radiusRange, radiusRangeMm, SYNTHESIS_TYPES, TUMOR_TYPES, type TumorType } from './tumors.ts';

const HU_PER_UNIT = 425;

/** A sphere organ (label 1) in a cube, with a small real tumor (label 2), on a mid-grey image. */
function sphereOrgan(n: number, radius: number): SynthesisInput {
  const dims: Dims3 = [n, n, n];
  const label = new Uint8Array(n * n * n);
  const image = new Float32Array(n * n * n);
  const c = (n - 1) / 2;
  for (let k = 0; k < n; k++)
    for (let j = 0; j < n; j++)
      for (let i = 0; i < n; i++) {
        const v = i + n * (j + n * k);
        const d2 = (i - c) ** 2 + (j - c) ** 2 + (k - c) ** 2;
        image[v] = 0.55 + 0.05 * Math.sin(i * 0.3 + j * 0.2 + k * 0.1);
        if (d2 < radius * radius) label[v] = 1;
        if ((i - c - 10) ** 2 + (j - c) ** 2 + (k - c) ** 2 < 16) label[v] = 2;
      }
  return { image, label, dims, spacing: [1.5, 1.5, 1.5] };
}

function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return (
    Buffer.compare(
      Buffer.from(a.buffer, a.byteOffset, a.byteLength),
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    ) === 0
  );
}

const organ = sphereOrgan(96, 44);
const bank = new TextureBank({ sigmas: ABDOMEN_TEXTURE_SIGMAS, minBlock: 64 });

const COUNTS: Record<TumorType, [number, number]> = {
  tiny: [3, 10],
  small: [3, 10],
  medium: [2, 5],
  large: [1, 3],
};
const SIGMAS: Record<TumorType, [number, number]> = {
  tiny: [0.5, 1],
  small: [1, 2],
  medium: [3, 6],
  large: [5, 10],
};

describe('synthesize: statistics per type', () => {
  it.each(TUMOR_TYPES)('%s: radii, counts, sigma, containment and HU drop over 8 seeds', (type) => {
    const [rlo, rhi] = radiusRange(type);
    const ratios: number[] = [];
    for (let seed = 0; seed < 8; seed++) {
      const r = synthesize(organ, { type, textures: bank }, new Rng(seed));
      const { plan } = r;
      const d = r.difference as number;
      expect(d).toBeGreaterThanOrEqual(0.2);
      expect(d).toBeLessThan(0.7);
      expect(plan.tumors.length).toBeGreaterThanOrEqual(COUNTS[type][0]);
      expect(plan.tumors.length).toBeLessThanOrEqual(COUNTS[type][1]);
      for (const t of plan.tumors) {
        expect(t.type).toBe(type);
        for (const radius of t.radii) {
          expect(radius).toBeGreaterThanOrEqual(rlo);
          expect(radius).toBeLessThanOrEqual(rhi);
        }
        expect(t.elasticSigma).toBeGreaterThanOrEqual(SIGMAS[type][0]);
        expect(t.elasticSigma).toBeLessThanOrEqual(SIGMAS[type][1]);
        expect(organ.label[t.center[0] + 96 * (t.center[1] + 96 * t.center[2])]).toBeGreaterThanOrEqual(1);
      }
      let tumorVoxels = 0;
      let drop = 0;
      // Violations are counted in plain loops (an expect per voxel would take minutes).
      let bad = 0;
      for (let v = 0; v < organ.label.length; v++) {
        const l = organ.label[v];
        if (plan.tumorMask[v]) {
          if (l < 1 || plan.label[v] !== (l === 2 ? 2 : 3)) bad++;
        } else if (plan.label[v] !== l) bad++;
        if (l !== 1 && (plan.weight[v] !== 0 || r.image[v] !== organ.image[v])) bad++;
        const delta = organ.image[v] - r.image[v];
        if (delta < 0 || delta > d + 1e-6) bad++;
        if (plan.label[v] === 3) {
          tumorVoxels++;
          drop += delta;
        }
      }
      expect(bad).toBe(0);
      expect(tumorVoxels).toBeGreaterThan(0);
      ratios.push(drop / tumorVoxels / d);
      // Mean HU drop inside the tumor: between 20% and 65% of d * 425 HU (blur and texture ~0.5).
      const huDrop = (drop / tumorVoxels) * HU_PER_UNIT;
      expect(huDrop).toBeGreaterThan(0.2 * d * HU_PER_UNIT);
      expect(huDrop).toBeLessThan(0.65 * d * HU_PER_UNIT);
    }
    const mean = ratios.reduce((a, b) => a + b, 0) / ratios.length;
    expect(mean).toBeGreaterThan(type === 'tiny' ? 0.2 : 0.3);
    expect(mean).toBeLessThan(0.6);
  });

  it('mix places every type; random places one tumor', () => {
    const mix = planSynthesis(organ, { type: 'mix', textures: bank }, new Rng(4));
    const counts = Object.fromEntries(
      TUMOR_TYPES.map((t) => [t, mix.tumors.filter((x) => x.type === t).length]),
    );
    expect(counts.tiny).toBeGreaterThanOrEqual(3);
    expect(counts.small).toBeGreaterThanOrEqual(5);
    expect(counts.medium).toBeGreaterThanOrEqual(2);
    expect(counts.large).toBeGreaterThanOrEqual(1);
    const seen = new Set<string>();
    for (let s = 0; s < 16; s++) {
      const p = planSynthesis(organ, { type: 'random', textures: bank }, new Rng(s));
      expect(p.tumors).toHaveLength(1);
      seen.add(p.tumors[0].type);
    }
    expect(seen.size).toBeGreaterThanOrEqual(3);
    // A list restricts the draw to its types.
    const listed = new Set<string>();
    for (let s = 0; s < 12; s++)
      listed.add(
        planSynthesis(organ, { type: ['tiny', 'small'], textures: bank }, new Rng(s)).tumors[0].type,
      );
    expect([...listed].sort()).toEqual(['small', 'tiny']);
    expect(() => planSynthesis(organ, { type: [] }, new Rng(1))).toThrow('non-empty list');
    expect(planSynthesis(organ, { type: 'small', count: 2, textures: bank }, new Rng(1)).tumors).toHaveLength(
      2,
    );
  });
});

describe('synthesize: sizes are physical', () => {
  it('the same draw gives the same radii in mm and half the voxels at 3 mm; 1.5 mm is the reference', () => {
    const coarse = { ...organ, spacing: [3, 3, 3] as Dims3 };
    for (const type of TUMOR_TYPES) {
      const [lo, hi] = radiusRangeMm(type);
      for (let seed = 0; seed < 4; seed++) {
        const fine = planSynthesis(organ, { type, count: 1, textures: bank }, new Rng(seed)).tumors[0];
        const t = planSynthesis(coarse, { type, count: 1, textures: bank }, new Rng(seed)).tumors[0];
        expect(t.radiiMm).toEqual(fine.radiiMm);
        for (let a = 0; a < 3; a++) {
          expect(fine.radii[a]).toBe(fine.radiiMm[a] / 1.5);
          expect(t.radii[a]).toBe(Math.round(fine.radiiMm[a] / 3));
          expect(t.radiiMm[a]).toBeGreaterThanOrEqual(lo);
          expect(t.radiiMm[a]).toBeLessThanOrEqual(hi);
        }
      }
    }
    // Physical volume of a medium tumor: about the same at 1.5 and 3 mm (voxel volume x 8).
    const vol = (input: SynthesisInput, s: number) => {
      let ml = 0;
      for (let seed = 0; seed < 6; seed++) {
        const p = planSynthesis(input, { type: 'medium', count: 1, textures: bank }, new Rng(seed));
        ml += (p.tumorMask.reduce((n, v) => n + v, 0) * s ** 3) / 1000;
      }
      return ml / 6;
    };
    const ratio = vol(coarse, 3) / vol(organ, 1.5);
    expect(ratio).toBeGreaterThan(0.6);
    expect(ratio).toBeLessThan(1.6);
    expect(() => planSynthesis({ ...organ, spacing: [0, 1, 1] }, { type: 'tiny' }, new Rng(1))).toThrow(
      'spacing',
    );
  });
});

describe('synthesize: determinism and modes', () => {
  it('gives the same bytes for the same seed, with a cold or a warm texture bank', () => {
    const a = synthesize(organ, { type: 'medium', textures: new TextureBank({ minBlock: 64 }) }, new Rng(42));
    const warmBank = new TextureBank({ minBlock: 64 });
    synthesize(organ, { type: 'medium', textures: warmBank }, new Rng(7));
    const b = synthesize(organ, { type: 'medium', textures: warmBank }, new Rng(42));
    expect(sameBytes(b.image, a.image)).toBe(true);
    expect(sameBytes(b.plan.label, a.plan.label)).toBe(true);
    const c = synthesize(organ, { type: 'medium', textures: warmBank }, new Rng(43));
    expect(sameBytes(c.image, a.image)).toBe(false);
  });

  it('brighten adds, a per-voxel map equal to d gives the scalar result', () => {
    const plan = planSynthesis(organ, { type: 'large', count: 1, textures: bank }, new Rng(3));
    const d = Math.fround(0.4);
    const dark = applyDifference(organ.image, plan, d, 'darken');
    const bright = applyDifference(organ.image, plan, d, 'brighten');
    const map = applyDifference(organ.image, plan, new Float32Array(organ.image.length).fill(d), 'darken');
    expect(sameBytes(map, dark)).toBe(true);
    let up = 0;
    let bad = 0;
    for (let v = 0; v < dark.length; v++) {
      if (bright[v] < organ.image[v] || bright[v] > 1) bad++;
      if (bright[v] > organ.image[v]) up++;
    }
    expect(bad).toBe(0);
    expect(up).toBeGreaterThan(1000);
  });

  it('rejects bad options with typed errors', () => {
    expect(() => planSynthesis(organ, { type: 'huge' as never }, new Rng(1))).toThrow(
      'tumor type must be one of',
    );
    expect(() => planSynthesis(organ, { type: 'mix', count: 2 }, new Rng(1))).toThrow(FreeTumorError);
    expect(() => planSynthesis(organ, { type: 'tiny', count: 0 }, new Rng(1))).toThrow('tumor count');
    expect(() => planSynthesis({ ...organ, dims: [95, 96, 96] }, { type: 'tiny' }, new Rng(1))).toThrow(
      'voxels',
    );
    const plan = planSynthesis(organ, { type: 'tiny', count: 1, textures: bank }, new Rng(1));
    expect(() => applyDifference(organ.image, plan, new Float32Array(3))).toThrow('difference map');
  });
});

describe('synthesize: property tests on random organ masks', () => {
  const n = 28;
  const dims: Dims3 = [n, n, n];
  const boxArb = fc.tuple(
    fc.tuple(
      fc.integer({ min: 0, max: n - 1 }),
      fc.integer({ min: 0, max: n - 1 }),
      fc.integer({ min: 0, max: n - 1 }),
    ),
    fc.tuple(
      fc.integer({ min: 1, max: 14 }),
      fc.integer({ min: 1, max: 14 }),
      fc.integer({ min: 1, max: 14 }),
    ),
  );
  const smallBank = new TextureBank({ sigmas: ABDOMEN_TEXTURE_SIGMAS, minBlock: 32 });

  it('never throws except empty_organ; tumors stay in the organ; labels stay valid', () => {
    fc.assert(
      fc.property(
        fc.array(boxArb, { minLength: 0, maxLength: 3 }),
        fc.array(boxArb, { minLength: 0, maxLength: 1 }),
        fc.constantFrom(...SYNTHESIS_TYPES),
        fc.integer({ min: 0, max: 2 ** 31 }),
        (organs, realTumors, type, seed) => {
          const label = new Uint8Array(n * n * n);
          const image = new Float32Array(n * n * n).fill(0.5);
          const fill = (boxes: typeof organs, value: number) => {
            for (const [[x, y, z], [w, h, d]] of boxes)
              for (let k = z; k < Math.min(n, z + d); k++)
                for (let j = y; j < Math.min(n, y + h); j++)
                  for (let i = x; i < Math.min(n, x + w); i++) label[i + n * (j + n * k)] = value;
          };
          fill(organs, 1);
          fill(realTumors, 2);
          const hasOrgan = label.includes(1);
          let r: ReturnType<typeof synthesize>;
          try {
            r = synthesize(
              { image, label, dims, spacing: [1.5, 1.5, 1.5] },
              { type, textures: smallBank },
              new Rng(seed),
            );
          } catch (e) {
            expect(e).toBeInstanceOf(FreeTumorError);
            expect((e as FreeTumorError).code).toBe('empty_organ');
            expect(hasOrgan).toBe(false);
            return;
          }
          expect(hasOrgan).toBe(true);
          let bad = 0;
          for (let v = 0; v < label.length; v++) {
            const out = r.plan.label[v];
            if (!(out === label[v] || (out === 3 && label[v] === 1))) bad++;
            if (r.plan.tumorMask[v] && label[v] < 1) bad++;
            if (r.image[v] < 0 || r.image[v] > 0.5) bad++;
            if (label[v] !== 1 && r.image[v] !== 0.5) bad++;
          }
          expect(bad).toBe(0);
        },
      ),
      { numRuns: 40, seed: 1234 },
    );
  });
});
