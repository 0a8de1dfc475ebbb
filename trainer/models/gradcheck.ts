/**
 * Finite-difference gradient checking, for the tests of every gradient training relies on.
 * tfjs cpu computes in float32, so the check uses central differences with a step that balances
 * truncation and round-off error, on a few sampled coordinates, with a relative tolerance.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../shared/random.ts';

export interface GradCheckResult {
  maxRelError: number;
  checked: number;
}

/**
 * Compares tf.grads of the scalar function f with central differences on `samples` random
 * coordinates of each input. Relative error |a - n| / max(|a| + |n|, floor).
 */
export function gradCheck(
  f: (...xs: tf.Tensor[]) => tf.Scalar,
  inputs: tf.Tensor[],
  opts: { h?: number; samples?: number; seed?: number; floor?: number } = {},
): GradCheckResult {
  const h = opts.h ?? 1e-2;
  const samples = opts.samples ?? 6;
  const floor = opts.floor ?? 1e-2;
  const rng = new Rng(opts.seed ?? 1);
  const analytic = tf.grads(f)(inputs);
  let maxRelError = 0;
  let checked = 0;
  for (let i = 0; i < inputs.length; i++) {
    const base = inputs[i].dataSync().slice();
    const grad = analytic[i].dataSync();
    for (let s = 0; s < samples; s++) {
      const idx = rng.int(0, base.length - 1);
      const evalAt = (delta: number) => {
        const moved = base.slice();
        moved[idx] += delta;
        const xs = inputs.map((t, j) => (j === i ? tf.tensor(moved, t.shape) : t));
        const v = tf.tidy(() => f(...xs).dataSync()[0]);
        xs[i].dispose();
        return v;
      };
      const numeric = (evalAt(h) - evalAt(-h)) / (2 * h);
      const err = Math.abs(grad[idx] - numeric) / Math.max(Math.abs(grad[idx]) + Math.abs(numeric), floor);
      maxRelError = Math.max(maxRelError, err);
      checked++;
    }
  }
  tf.dispose(analytic);
  return { maxRelError, checked };
}
