import { describe, expect, it } from 'vitest';
import { Rng } from '../../shared/random.ts';
import type { Dims3 } from '../../shared/volume/volume.ts';
import {
  augmentPatch,
  cropStart,
  cutmixSlabs,
  extractPatch,
  sampleCenter,
  sampleCropStart,
} from './patches.ts';

const ramp = (n: number) => Float32Array.from({ length: n }, (_, i) => i);

describe('patches', () => {
  it('extracts with zero fill where the crop leaves the volume', () => {
    const dims: Dims3 = [4, 3, 2];
    const image = ramp(24);
    const label = Uint8Array.from({ length: 24 }, (_, i) => i % 3);
    const p = extractPatch(image, label, dims, [-1, 1, 1], [3, 3, 2]);
    // Voxel (x=0,y=0,z=0) of the patch is (-1, 1, 1): outside -> 0; (1,0,0) is (0,1,1) = 0 + 4*(1 + 3*1) = 16.
    expect(p.image[0]).toBe(0);
    expect(p.image[1]).toBe(16);
    expect(p.image[2]).toBe(17);
    expect(p.image[3 + 1]).toBe(20); // y=1 -> j=2
    expect(p.image[2 * 3]).toBe(0); // y=2 -> j=3 outside
    expect(p.image[9 + 1]).toBe(0); // z=1 -> k=2 outside
    expect(p.label[1]).toBe(16 % 3);
  });

  it('keeps crops inside large volumes and centres them on small ones', () => {
    expect(cropStart([1, 50, 99], [100, 100, 100], [32, 32, 32])).toEqual([0, 34, 68]);
    expect(cropStart([5, 5, 5], [20, 100, 100], [32, 32, 32])).toEqual([-6, 0, 0]);
  });

  it('centres crops by class: tumor, organ, body above air; a missing class passes its share on', () => {
    const dims: Dims3 = [10, 10, 10];
    const label = new Uint8Array(1000);
    const image = new Float32Array(1000);
    label[123] = 1;
    label[456] = 2;
    // Body: the upper half of the volume is above air, the lower half is air (0).
    for (let v = 500; v < 1000; v++) image[v] = 0.4;
    const at = (c: Dims3) => c[0] + 10 * c[1] + 100 * c[2];
    const rng = new Rng(1);
    for (let t = 0; t < 5; t++) {
      expect(at(sampleCenter(image, label, dims, { tumor: 1, organ: 0, body: 0, air: 0 }, rng))).toBe(456);
      expect(at(sampleCenter(image, label, dims, { tumor: 0, organ: 1, body: 0, air: 0 }, rng))).toBe(123);
      const body = at(sampleCenter(image, label, dims, { tumor: 0, organ: 0, body: 1, air: 0 }, rng));
      expect(body).toBeGreaterThanOrEqual(500);
      expect(label[body]).toBe(0);
    }
    // No tumor in this case: the tumor share goes to the organ.
    const noTumor = label.map((v) => (v === 2 ? 0 : v));
    expect(at(sampleCenter(image, noTumor, dims, { tumor: 1, organ: 0, body: 0, air: 0 }, rng))).toBe(123);
    // Fractions are honoured: about half the crops on the tumor for {1, 1, 0}.
    let tumor = 0;
    for (let t = 0; t < 400; t++)
      if (at(sampleCenter(image, label, dims, { tumor: 1, organ: 1, body: 0, air: 0 }, rng)) === 456) tumor++;
    expect(tumor).toBeGreaterThan(160);
    expect(tumor).toBeLessThan(240);
  });

  it('air crops lie half to fully beyond one edge of the volume: zero-filled air, background label', () => {
    const dims: Dims3 = [20, 16, 12];
    const size: Dims3 = [8, 8, 8];
    const image = new Float32Array(20 * 16 * 12).fill(0.5);
    const label = new Uint8Array(20 * 16 * 12).fill(1);
    const rng = new Rng(3);
    let allAir = 0;
    for (let t = 0; t < 200; t++) {
      const start = sampleCropStart(image, label, dims, size, { tumor: 0, organ: 0, body: 0, air: 1 }, rng);
      const outside = [0, 1, 2].filter(
        (a) => start[a] < -size[a] / 2 + 1 || start[a] > dims[a] - size[a] / 2 - 1,
      );
      expect(outside.length).toBeGreaterThanOrEqual(1);
      const p = extractPatch(image, label, dims, start, size);
      const inside = p.image.reduce((n, v) => n + (v > 0 ? 1 : 0), 0);
      expect(inside).toBeLessThanOrEqual(p.image.length / 2);
      if (inside === 0) allAir++;
    }
    expect(allAir).toBeGreaterThan(20);
    // Other classes stay inside the volume.
    const s = sampleCropStart(image, label, dims, size, { tumor: 0, organ: 1, body: 0, air: 0 }, rng);
    for (let a = 0; a < 3; a++) {
      expect(s[a]).toBeGreaterThanOrEqual(0);
      expect(s[a] + size[a]).toBeLessThanOrEqual(dims[a]);
    }
  });

  it('augments image and label with the same spatial transform, deterministically per seed', () => {
    const dims: Dims3 = [6, 6, 4];
    const base = ramp(144);
    const always = { flip: 1, rot90: 1, scale: 0, shift: 0 };
    const a = augmentPatch({ dims, image: base.slice(), label: Uint8Array.from(base) }, new Rng(3), always);
    const b = augmentPatch({ dims, image: base.slice(), label: Uint8Array.from(base) }, new Rng(3), always);
    expect(Array.from(a.image)).toEqual(Array.from(b.image));
    expect(Array.from(a.label)).toEqual(Array.from(a.image));
    expect(Array.from(a.image).sort((x, y) => x - y)).toEqual(Array.from(base));
    expect(Array.from(a.image)).not.toEqual(Array.from(base));
    const none = augmentPatch({ dims, image: base.slice(), label: Uint8Array.from(base) }, new Rng(3), {
      flip: 0,
      rot90: 0,
      scale: 0,
      shift: 0,
    });
    expect(Array.from(none.image)).toEqual(Array.from(base));
  });

  it('intensity scale/shift stay within ±10%', () => {
    const p = augmentPatch(
      { dims: [2, 2, 2], image: new Float32Array(8).fill(0.5), label: new Uint8Array(8) },
      new Rng(9),
      {
        flip: 0,
        rot90: 0,
        scale: 1,
        shift: 1,
      },
    );
    expect(p.image[0]).toBeGreaterThan(0.5 * 0.9 - 0.1);
    expect(p.image[0]).toBeLessThan(0.5 * 1.1 + 0.1);
    expect(p.image[0]).not.toBe(0.5);
  });

  it('cutmix swaps trailing slabs between paired crops (x or y, never z)', () => {
    const dims: Dims3 = [8, 8, 4];
    const n = 256;
    const images = new Float32Array(3 * n);
    const labels = new Uint8Array(3 * n);
    for (let b = 0; b < 3; b++) {
      images.fill(b, b * n, (b + 1) * n);
      labels.fill(b, b * n, (b + 1) * n);
    }
    for (let seed = 0; seed < 20; seed++) {
      const out = cutmixSlabs(images, labels, 3, dims, new Rng(seed));
      for (let b = 0; b < 3; b++) {
        const crop = out.images.subarray(b * n, (b + 1) * n);
        // Every z slice is identical (no swap along z), and labels follow images.
        for (let z = 1; z < 4; z++)
          expect(Array.from(crop.subarray(64 * z, 64 * (z + 1)))).toEqual(Array.from(crop.subarray(0, 64)));
        expect(Array.from(out.labels.subarray(b * n, (b + 1) * n))).toEqual(Array.from(crop));
        // The crop's own value comes first along the swap axis.
        expect([b, ...[0, 1, 2]]).toContain(crop[0]);
        if (crop.some((v) => v !== b)) expect(crop[0] === b || crop.every((v) => v !== b)).toBe(true);
      }
    }
  });
});
