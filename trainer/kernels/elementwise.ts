/**
 * Large element-wise kernels in wasm SIMD across the kernel threads: ReLU, its gradient, the bias add
 * (a full tensor plus a per-channel vector) and the add of two full tensors. Measured at 96^3 x 32:
 * the wasm ReLU gradient, copies in and out included, takes a third of the JS loop's CPU time (the
 * loop's data-dependent branch mispredicts on half the voxels, SIMD selects do not). Results are
 * bit-identical to the JS paths (the same float32 operations). Below MIN_VALUES the JS paths run.
 */
import { splitRange } from '../../shared/engine/engine.ts';
import { type Alloc, copyOut } from './conv3d.ts';
import { convRuntime } from './wasm-runtime.ts';

/** Below this many values the JS loops are as fast (no copies into wasm memory). */
export const MIN_VALUES = 1 << 16;
/** Below this many values one thread does the whole call. */
const MIN_PARALLEL_VALUES = 1 << 20;

function ranges(n: number, threads: number): Array<[number, number]> {
  return splitRange(n, n < MIN_PARALLEL_VALUES ? 1 : threads);
}

/** max(x, 0), NaN kept. */
export function reluWasm(x: Float32Array, alloc: Alloc): Float32Array {
  const rt = convRuntime();
  rt.reset();
  const xp = rt.put(x);
  const y = rt.alloc(x.length);
  const r = ranges(x.length, rt.threads);
  rt.parallel('relu_forward', r.length, (p) => [xp, y, r[p][0], r[p][1]]);
  return copyOut(rt.f32(y, x.length), alloc);
}

/** dy where x > 0, NaN where x is NaN, else 0 * dy. */
export function reluGradWasm(dy: Float32Array, x: Float32Array, alloc: Alloc): Float32Array {
  const rt = convRuntime();
  rt.reset();
  const gp = rt.put(dy);
  const xp = rt.put(x);
  const dx = rt.alloc(x.length);
  const r = ranges(x.length, rt.threads);
  rt.parallel('relu_grad', r.length, (p) => [gp, xp, dx, r[p][0], r[p][1]]);
  return copyOut(rt.f32(dx, x.length), alloc);
}

/** x + bias[i % c] (x's last axis has c values). */
export function biasAddWasm(x: Float32Array, bias: Float32Array, alloc: Alloc): Float32Array {
  const rt = convRuntime();
  rt.reset();
  const c = bias.length;
  const xp = rt.put(x);
  const bp = rt.put(bias);
  const y = rt.alloc(x.length);
  const r = ranges(x.length / c, rt.threads);
  rt.parallel('bias_add', r.length, (p) => [xp, y, c, r[p][0], r[p][1], bp]);
  return copyOut(rt.f32(y, x.length), alloc);
}

/** a + b, same length. */
export function addWasm(a: Float32Array, b: Float32Array, alloc: Alloc): Float32Array {
  const rt = convRuntime();
  rt.reset();
  const ap = rt.put(a);
  const bp = rt.put(b);
  const r = ranges(a.length, rt.threads);
  rt.parallel('add_into', r.length, (p) => [ap, bp, r[p][0], r[p][1]]);
  return copyOut(rt.f32(ap, a.length), alloc);
}
