import { describe, expect, it } from 'vitest';
import { unwindowHU, windowHU } from './window.ts';

describe('windowHU / unwindowHU', () => {
  it('maps -175..250 HU to 0..1, clipped, NaN to 0', () => {
    const out = windowHU(new Int16Array([-1000, -175, 37, 250, 3000]));
    expect(out).toBeInstanceOf(Float32Array);
    expect(Array.from(out)).toEqual([0, 0, Math.fround(212 / 425), 1, 1]);
    expect(Array.from(windowHU([Number.NaN, 0], -100, 100))).toEqual([0, 0.5]);
  });

  it('unwindowHU inverts inside the window', () => {
    const hu = [-175, -100, 0, 42, 250];
    const back = unwindowHU(windowHU(hu));
    for (let i = 0; i < hu.length; i++) expect(back[i]).toBeCloseTo(hu[i], 3);
    expect(unwindowHU(0.5, -100, 100)).toBe(0);
  });

  it('rejects an empty or inverted window', () => {
    expect(() => windowHU([1], 10, 10)).toThrow(/window/);
    expect(() => unwindowHU([1], 10, -10)).toThrow(/window/);
  });
});
