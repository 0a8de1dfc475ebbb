import { describe, expect, it } from 'vitest';
import { blur7, blur7Kernel } from './generator.ts';

describe('blur7', () => {
  it('is OpenCV getGaussianKernel(7, 1)', () => {
    const w = blur7Kernel();
    expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(w[3]).toBeCloseTo(0.3990503, 6);
    expect(w[0]).toBeCloseTo(0.004433, 5);
  });

  it('spreads an interior impulse into the 7x7x7 outer product and pads with zeros at borders', () => {
    const n = 9;
    const src = new Float32Array(n * n * n);
    src[4 + n * (4 + n * 4)] = 1;
    const out = blur7(src, [n, n, n]);
    const w = blur7Kernel();
    expect(out.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(out[4 + n * (4 + n * 4)]).toBeCloseTo(w[3] ** 3, 6);
    expect(out[1 + n * (4 + n * 4)]).toBeCloseTo(w[0] * w[3] ** 2, 6);
    const edge = new Float32Array(n * n * n);
    edge[0] = 1;
    // A corner impulse loses the mass that falls outside (zero padding, not reflect).
    expect(blur7(edge, [n, n, n]).reduce((a, b) => a + b, 0)).toBeCloseTo(
      (w[3] + w[4] + w[5] + w[6]) ** 3,
      5,
    );
  });
});
