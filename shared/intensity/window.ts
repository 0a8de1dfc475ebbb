/**
 * CT intensity windows: HU clipped to [lo, hi] and scaled to [0, 1] (MONAI's
 * ScaleIntensityRange with clip=True; FreeTumor uses -175..250 HU), and the way back.
 */
import { FreeTumorError } from '../errors.ts';

export const HU_WINDOW: readonly [number, number] = [-175, 250];

function checkWindow(lo: number, hi: number): void {
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo)) {
    throw new FreeTumorError('invalid_argument', 'HU window needs finite lo < hi');
  }
}

/** (x - lo) / (hi - lo) clipped to [0, 1]; NaN becomes 0. */
export function windowHU(data: ArrayLike<number>, lo = HU_WINDOW[0], hi = HU_WINDOW[1]): Float32Array {
  checkWindow(lo, hi);
  const out = new Float32Array(data.length);
  const scale = 1 / (hi - lo);
  for (let i = 0; i < data.length; i++) {
    const v = (data[i] - lo) * scale;
    out[i] = v > 0 ? Math.min(v, 1) : 0;
  }
  return out;
}

/** x * (hi - lo) + lo: window units back to HU (values outside the window stay clipped). */
export function unwindowHU(x: number, lo?: number, hi?: number): number;
export function unwindowHU(x: ArrayLike<number>, lo?: number, hi?: number): Float32Array;
export function unwindowHU(
  x: number | ArrayLike<number>,
  lo = HU_WINDOW[0],
  hi = HU_WINDOW[1],
): number | Float32Array {
  checkWindow(lo, hi);
  const span = hi - lo;
  if (typeof x === 'number') return x * span + lo;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * span + lo;
  return out;
}
