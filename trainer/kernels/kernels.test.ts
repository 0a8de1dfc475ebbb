// Two threads whatever the machine, so the multi-threaded split is exercised on every CI runner.
process.env.FREETUMOR_KERNEL_THREADS = '2';

import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LimitError } from '../../shared/errors.ts';
import { Rng } from '../../shared/random.ts';
import { registerTrainingGradients } from '../models/gradients.ts';
import { fusedInstanceNormActive, GroupNorm3D, InstanceNorm3D } from '../models/norm.ts';
import { AdamW } from '../train/optim.ts';
import { fusedAdamWActive } from './adamw.ts';
import { pooledBytes } from './buffer-pool.ts';
import { fastCpuKernelsActive, registerFastCpuKernels, restoreStockCpuKernels } from './index.ts';
import { convRuntime } from './wasm-runtime.ts';

type Shape5 = [number, number, number, number, number];
type Triple = [number, number, number];

// Quiet tfjs's "install tfjs-node" banner; tensors are also created while tests are collected.
tf.env().set('PROD', true);

beforeAll(async () => {
  registerTrainingGradients();
  await tf.setBackend('cpu');
});

afterAll(() => restoreStockCpuKernels());

function random(shape: number[], rng: Rng): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => rng.normal(0, 1)),
    shape,
    'float32',
  );
}

function valuesOf(out: tf.Tensor | tf.Tensor[]): Float32Array[] {
  return (Array.isArray(out) ? out : [out]).map((t) => t.dataSync() as Float32Array);
}

/** Runs fn with the stock kernels, then the fast ones, and returns both results. */
function stockAndFast(fn: () => tf.Tensor | tf.Tensor[]): { stock: Float32Array[]; fast: Float32Array[] } {
  restoreStockCpuKernels();
  const stock = tf.tidy(() => valuesOf(fn()));
  registerFastCpuKernels();
  const fast = tf.tidy(() => valuesOf(fn()));
  return { stock, fast };
}

/** Same length, and every value within `rel` of the largest magnitude (NaN where stock has NaN). */
function expectClose(stock: Float32Array[], fast: Float32Array[], rel = 2e-5): void {
  expect(fast.length).toBe(stock.length);
  for (let k = 0; k < stock.length; k++) {
    expect(fast[k].length).toBe(stock[k].length);
    let scale = 1;
    for (const v of stock[k]) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
    let worst = 0;
    for (let i = 0; i < stock[k].length; i++) {
      const a = stock[k][i];
      const b = fast[k][i];
      if (Number.isNaN(a) || Number.isNaN(b)) expect(Number.isNaN(b)).toBe(Number.isNaN(a));
      else if (a !== b) worst = Math.max(worst, Math.abs(a - b));
    }
    expect(worst).toBeLessThanOrEqual(rel * scale);
  }
}

interface ConvCase {
  x: Shape5;
  filter: Shape5;
  strides: Triple;
  pad: 'same' | 'valid';
  dilations: Triple;
}

/** A random conv tfjs accepts: dilation only with stride 1, 'valid' only where the filter fits. */
function randomConv(rng: Rng, allowDilation: boolean): ConvCase {
  const k: Triple = [rng.int(1, 3), rng.int(1, 3), rng.int(1, 3)];
  const strides: Triple = [rng.int(1, 2), rng.int(1, 2), rng.int(1, 2)];
  const dilated = allowDilation && strides.every((s) => s === 1) && rng.random() < 0.5;
  const dilations: Triple = dilated ? [rng.int(1, 2), rng.int(1, 2), rng.int(1, 2)] : [1, 1, 1];
  const pad = rng.random() < 0.5 ? 'same' : 'valid';
  const dims = k.map((kk, i) => (kk - 1) * dilations[i] + 1 + rng.int(0, 5));
  const cin = rng.int(1, 16);
  const cout = rng.int(1, 16);
  return {
    x: [rng.int(1, 2), dims[0], dims[1], dims[2], cin],
    filter: [k[0], k[1], k[2], cin, cout],
    strides,
    pad,
    dilations,
  };
}

function label(c: ConvCase): string {
  return `x ${c.x.join('x')} f ${c.filter.join('x')} s ${c.strides.join(',')} ${c.pad} d ${c.dilations.join(',')}`;
}

const convCases = (seed: number, n: number, dilation: boolean): ConvCase[] => {
  const rng = new Rng(seed);
  const cases = Array.from({ length: n }, () => randomConv(rng, dilation));
  // Shapes the U-Nets use, large enough to be split across threads.
  cases.push(
    {
      x: [1, 16, 16, 16, 8],
      filter: [3, 3, 3, 8, 16],
      strides: [1, 1, 1],
      pad: 'same',
      dilations: [1, 1, 1],
    },
    {
      x: [2, 8, 12, 10, 16],
      filter: [2, 2, 2, 16, 16],
      strides: [2, 2, 2],
      pad: 'same',
      dilations: [1, 1, 1],
    },
    {
      x: [1, 12, 12, 12, 16],
      filter: [1, 1, 1, 16, 3],
      strides: [1, 1, 1],
      pad: 'same',
      dilations: [1, 1, 1],
    },
    {
      x: [1, 24, 24, 24, 16],
      filter: [2, 2, 2, 16, 32],
      strides: [2, 2, 2],
      pad: 'same',
      dilations: [1, 1, 1],
    },
    // Winograd F(2,3): odd sizes (partial tiles), 'valid' and 'same', channel counts off multiples of 4.
    {
      x: [2, 7, 9, 5, 12],
      filter: [3, 3, 3, 12, 9],
      strides: [1, 1, 1],
      pad: 'same',
      dilations: [1, 1, 1],
    },
    {
      x: [1, 8, 7, 10, 9],
      filter: [3, 3, 3, 9, 14],
      strides: [1, 1, 1],
      pad: 'valid',
      dilations: [1, 1, 1],
    },
    {
      x: [1, 20, 20, 20, 24],
      filter: [3, 3, 3, 24, 16],
      strides: [1, 1, 1],
      pad: 'same',
      dilations: [1, 1, 1],
    },
  );
  return cases;
};

function outputShape(c: ConvCase): Shape5 {
  const info = tf.backend_util.computeConv3DInfo(c.x, c.filter, c.strides, c.dilations, c.pad);
  return info.outShape as Shape5;
}

describe('fast Conv3D matches the stock cpu kernel', () => {
  for (const c of convCases(11, 40, true)) {
    it(label(c), () => {
      const rng = new Rng(c.x[1] * 1000 + c.filter[3]);
      const x = random(c.x, rng) as tf.Tensor5D;
      const w = random(c.filter, rng) as tf.Tensor5D;
      const { stock, fast } = stockAndFast(() => tf.conv3d(x, w, c.strides, c.pad, 'NDHWC', c.dilations));
      expectClose(stock, fast);
    });
  }
});

describe('fast Conv3D gradients match the stock cpu kernels', () => {
  for (const c of convCases(12, 30, false)) {
    it(label(c), () => {
      const rng = new Rng(c.x[2] * 1000 + c.filter[4]);
      const x = random(c.x, rng);
      const w = random(c.filter, rng);
      const dy = random(outputShape(c), rng);
      const attrs = { strides: c.strides, pad: c.pad } as unknown as tf.NamedAttrMap;
      const filterGrad = stockAndFast(
        () =>
          tf
            .engine()
            .runKernel('Conv3DBackpropFilterV2', { x, dy }, { ...attrs, filterShape: c.filter }) as tf.Tensor,
      );
      expectClose(filterGrad.stock, filterGrad.fast);
      const inputGrad = stockAndFast(
        () =>
          tf
            .engine()
            .runKernel(
              'Conv3DBackpropInputV2',
              { dy, filter: w },
              { ...attrs, inputShape: c.x },
            ) as tf.Tensor,
      );
      expectClose(inputGrad.stock, inputGrad.fast);
    });
  }
});

describe('fast MaxPool3D and its gradient match the stock cpu kernels', () => {
  const rng = new Rng(21);
  for (let i = 0; i < 16; i++) {
    const size = rng.int(1, 3);
    const stride = rng.int(1, 2);
    const pad = rng.random() < 0.5 ? 'same' : 'valid';
    const shape: Shape5 = [
      rng.int(1, 2),
      size + rng.int(0, 5),
      size + rng.int(0, 5),
      size + rng.int(0, 5),
      rng.int(1, 9),
    ];
    it(`x ${shape.join('x')} k${size} s${stride} ${pad}, with ties`, () => {
      // Few distinct values and a relu: ties inside windows are common, as after a ReLU.
      const x = tf.relu(tf.round(random(shape, rng))) as tf.Tensor5D;
      const pooled = stockAndFast(() => tf.maxPool3d(x, size, stride, pad));
      expectClose(pooled.stock, pooled.fast, 0);
      const dyShape = tf.maxPool3d(x, size, stride, pad).shape;
      const dy = random(dyShape, rng);
      const grad = stockAndFast(() =>
        tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool3d(a as tf.Tensor5D, size, stride, pad), dy)))(x),
      );
      expectClose(grad.stock, grad.fast, 1e-6);
    });
  }

  it('skips NaN like stock and falls back for windows of unequal height and width', () => {
    const values = Float32Array.from({ length: 4 * 4 * 4 * 2 }, (_, i) => (i % 7 === 3 ? Number.NaN : i % 5));
    const x = tf.tensor5d(values, [1, 4, 4, 4, 2]);
    const pooled = stockAndFast(() => tf.maxPool3d(x, 2, 2, 'valid'));
    expectClose(pooled.stock, pooled.fast, 0);
    const y = tf.tensor5d(
      Float32Array.from({ length: 96 }, (_, i) => (i * 37) % 11),
      [1, 4, 4, 3, 2],
    );
    const grad = stockAndFast(() =>
      tf.grad((a: tf.Tensor) => tf.sum(tf.maxPool3d(a as tf.Tensor5D, [2, 3, 2], 1, 'same')))(y),
    );
    expectClose(grad.stock, grad.fast, 0);
  });
});

describe('fast element-wise, reduction and layout kernels match stock', () => {
  const rng = new Rng(31);
  const a = random([2, 3, 4, 5, 6], rng);
  const pairs: Array<[string, number[]]> = [
    ['same shape', [2, 3, 4, 5, 6]],
    ['bias (tiled)', [6]],
    ['rank-5 bias (tiled)', [1, 1, 1, 1, 6]],
    ['tiled over the batch', [1, 3, 4, 5, 6]],
    ['repeated over channels', [2, 3, 4, 5, 1]],
    ['repeated over all but the batch', [2, 1, 1, 1, 1]],
    ['scalar', []],
    ['general broadcast (stock path)', [2, 1, 4, 1, 6]],
  ];
  for (const [name, shape] of pairs) {
    it(`Add, Sub, Multiply, RealDiv: ${name}, both operand orders`, () => {
      const b = tf.add(random(shape, rng), 3);
      for (const op of [tf.add, tf.sub, tf.mul, tf.div]) {
        const r1 = stockAndFast(() => op(a, b));
        expectClose(r1.stock, r1.fast, 1e-6);
        const r2 = stockAndFast(() => op(b, a));
        expectClose(r2.stock, r2.fast, 1e-6);
      }
    });
  }

  it('Sum and Mean over leading, trailing, middle and all axes, with and without keepDims', () => {
    for (const axis of [[0, 1, 2, 3], [4], [3, 4], [1, 2, 3], [0, 2], [0, 1, 2, 3, 4], 1, -1]) {
      for (const keep of [false, true]) {
        const s = stockAndFast(() => tf.sum(a, axis, keep));
        expectClose(s.stock, s.fast, 1e-6);
        const m = stockAndFast(() => tf.mean(a, axis, keep));
        expectClose(m.stock, m.fast, 1e-6);
      }
    }
  });

  it('Concat and SplitV on every axis, equal and unequal parts', () => {
    const b = random([2, 3, 4, 5, 2], rng);
    const c = random([2, 3, 4, 5, 6], rng);
    for (let axis = 0; axis < 5; axis++) {
      const cat = stockAndFast(() => tf.concat([a, c], axis));
      expectClose(cat.stock, cat.fast, 0);
      const split = stockAndFast(() =>
        tf.split(a, axis === 4 ? [1, 2, 3] : a.shape[axis] === 2 ? 2 : [1, a.shape[axis] - 1], axis),
      );
      expectClose(split.stock, split.fast, 0);
    }
    const uneven = stockAndFast(() => tf.concat([a, b], -1));
    expectClose(uneven.stock, uneven.fast, 0);
  });

  it('Relu, Step (relu gradient) and Softmax, with NaN', () => {
    const withNaN = tf.tensor(
      Float32Array.from({ length: 60 }, (_, i) => (i === 7 ? Number.NaN : (i % 9) - 4)),
      [2, 5, 6],
    );
    for (const fn of [tf.relu, (t: tf.Tensor) => tf.step(t, 0.25), (t: tf.Tensor) => tf.softmax(t)]) {
      const r = stockAndFast(() => fn(a));
      expectClose(r.stock, r.fast, 1e-6);
      const n = stockAndFast(() => fn(withNaN));
      expectClose(n.stock, n.fast, 1e-6);
    }
  });

  it('the Relu gradient (one fused pass) with NaN and infinity in x and dy', () => {
    const special = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0, -0];
    const x = tf.tensor(Float32Array.from({ length: 60 }, (_, i) => (i < 5 ? special[i] : (i % 9) - 4)));
    const dy = tf.tensor(
      Float32Array.from({ length: 60 }, (_, i) => (i % 7 === 3 ? special[i % 5] : i - 30)),
    );
    const r = stockAndFast(() => tf.grad((t: tf.Tensor) => tf.relu(t))(x, dy));
    expectClose(r.stock, r.fast, 0);
    const big = stockAndFast(() => tf.grad((t: tf.Tensor) => tf.relu(t))(a, tf.onesLike(a)));
    expectClose(big.stock, big.fast, 0);
  });
});

describe('large element-wise kernels (wasm) give stock bits', () => {
  it('ReLU, its gradient, bias add and full add past the wasm threshold, with NaN and infinities', () => {
    const n = 32 * 32 * 32 * 12;
    const special = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0, -0];
    const values = (seed: number) =>
      Float32Array.from({ length: n }, (_, i) => (i % 997 < 5 ? special[i % 997] : Math.sin(i * seed) * 3));
    const x = tf.tensor(values(0.37), [1, 32, 32, 32, 12]);
    const dy = tf.tensor(values(0.11), [1, 32, 32, 32, 12]);
    const bias = tf.tensor(
      Float32Array.from({ length: 12 }, (_, i) => i - 6.5),
      [12],
    );
    const cases: Array<() => tf.Tensor> = [
      () => tf.relu(x),
      () => tf.grad((t: tf.Tensor) => tf.relu(t))(x, dy),
      () => tf.add(x, bias),
      () => tf.add(x, dy),
    ];
    for (const fn of cases) {
      const r = stockAndFast(fn);
      expectClose(r.stock, r.fast, 0);
    }
    tf.dispose([x, dy, bias]);
  });
});

describe('fused InstanceNorm3D and GroupNorm3D match the composed ops', () => {
  const cases: Array<{ shape: Shape5; groups: number | null }> = [
    { shape: [2, 3, 4, 5, 3], groups: null },
    { shape: [1, 4, 4, 4, 8], groups: null },
    { shape: [1, 2, 3, 2, 1], groups: null },
    { shape: [2, 3, 4, 2, 8], groups: 2 },
    { shape: [1, 4, 3, 5, 6], groups: 3 },
    { shape: [1, 2, 2, 3, 4], groups: 1 },
    // Large enough to split over threads and over many voxel blocks; 9 channels leave a scalar tail.
    { shape: [1, 16, 32, 32, 9], groups: 3 },
    { shape: [2, 16, 16, 32, 16], groups: null },
  ];
  for (const { shape, groups } of cases) {
    const name = groups === null ? 'InstanceNorm3D' : `GroupNorm3D(${groups})`;
    it(`${name} output and gradients for x, gamma and beta: ${shape.join('x')}`, () => {
      const layer = groups === null ? new InstanceNorm3D({}) : new GroupNorm3D({ groups });
      const rng = new Rng(53 + shape[4] + (groups ?? 0));
      const c = shape[4];
      layer.build(shape);
      layer.setWeights([tf.add(random([c], rng), 1), random([c], rng)]);
      // Offset and scaled per channel, so the statistics are far from 0 and 1.
      const x = tf.add(tf.mul(random(shape, rng), tf.add(random([c], rng), 3)), 5);
      const w = random(shape, rng);
      const variables = layer.trainableWeights.map((v) => v.read() as tf.Variable);
      const loss = (input: tf.Tensor) => tf.sum(tf.mul(layer.apply(input) as tf.Tensor, w)) as tf.Scalar;
      const run = () => {
        const { grads } = tf.variableGrads(() => loss(x), variables);
        return [layer.apply(x) as tf.Tensor, tf.grad(loss)(x), ...variables.map((v) => grads[v.name])];
      };
      restoreStockCpuKernels();
      expect(fusedInstanceNormActive()).toBe(false);
      registerFastCpuKernels();
      expect(fusedInstanceNormActive()).toBe(true);
      const { stock, fast } = stockAndFast(run);
      expectClose(stock, fast, 2e-5);
      // No tensor left behind by the fused path: saved tensors are freed after the backward pass.
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        run();
      });
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, w, ...variables]);
    });
  }
});

describe('a 3D U-Net training step', () => {
  it('gives the same loss and gradients with fast and stock kernels', () => {
    const rng = new Rng(41);
    const x = random([1, 8, 8, 8, 1], rng);
    const labels = tf.oneHot(tf.cast(tf.greater(tf.reshape(x, [1, 8, 8, 8]), 0), 'int32'), 2);
    const w1 = tf.variable(tf.mul(random([3, 3, 3, 1, 4], rng), 0.3));
    const w2 = tf.variable(tf.mul(random([3, 3, 3, 4, 8], rng), 0.3));
    const wt = tf.variable(tf.mul(random([2, 2, 2, 4, 8], rng), 0.3));
    const w3 = tf.variable(tf.mul(random([1, 1, 1, 8, 2], rng), 0.3));
    const b1 = tf.variable(tf.mul(random([4], rng), 0.1));
    const loss = () => {
      const skip = tf.relu(
        tf.add(tf.conv3d(x as tf.Tensor5D, w1 as tf.Tensor5D, 1, 'same'), b1),
      ) as tf.Tensor5D;
      const down = tf.relu(tf.conv3d(tf.maxPool3d(skip, 2, 2, 'valid'), w2 as tf.Tensor5D, 1, 'same'));
      const up = tf.conv3dTranspose(down, wt as tf.Tensor5D, [1, 8, 8, 8, 4], 2, 'same');
      const logits = tf.conv3d(tf.concat([up, skip], -1) as tf.Tensor5D, w3 as tf.Tensor5D, 1, 'same');
      return tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), -1))) as tf.Scalar;
    };
    const run = () => {
      const { value, grads } = tf.variableGrads(loss);
      return [
        value,
        ...Object.keys(grads)
          .sort()
          .map((k) => grads[k]),
      ];
    };
    const { stock, fast } = stockAndFast(run);
    expectClose(stock, fast, 1e-5);
  });
});

describe('the fused AdamW update', () => {
  for (const amsgrad of [false, true]) {
    it(`gives the composed update's bits over several steps (amsgrad ${amsgrad})`, () => {
      const run = () => {
        const rng = new Rng(61);
        const vars = [tf.variable(random([3, 4, 5], rng)), tf.variable(random([7], rng))];
        const opt = new AdamW(vars, { weightDecay: 0.01, amsgrad });
        for (let step = 0; step < 4; step++) {
          const grads: tf.NamedTensorMap = {};
          for (const v of vars) grads[v.name] = tf.mul(random(v.shape, rng), step === 2 ? 1e-3 : 1);
          opt.apply(grads, 1e-3 * (step + 1));
          tf.dispose(Object.values(grads));
        }
        const out = vars.map((v) => v.dataSync().slice() as Float32Array);
        opt.dispose();
        tf.dispose(vars);
        return out;
      };
      restoreStockCpuKernels();
      expect(fusedAdamWActive()).toBe(false);
      const stock = run();
      registerFastCpuKernels();
      expect(fusedAdamWActive()).toBe(true);
      const fast = run();
      expectClose(stock, fast, 0);
    });
  }
});

/** Positions where two arrays differ (a count, so a failure does not print a million-element diff). */
function mismatches(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let n = Math.abs(a.length - b.length);
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) n++;
  return n;
}

describe('recycled output buffers', () => {
  // 32^3 x 8 = 2^18 floats: the smallest size the pool takes.
  const shape: Shape5 = [1, 32, 32, 32, 8];

  it('recycles the outputs of disposed tensors and keeps training results equal to stock', () => {
    const rng = new Rng(71);
    const x = random(shape, rng);
    const w = tf.variable(tf.mul(random([3, 3, 3, 8, 8], rng), 0.2));
    const loss = () =>
      tf.sum(tf.mul(tf.relu(tf.conv3d(tf.relu(x) as tf.Tensor5D, w as tf.Tensor5D, 1, 'same')), x));
    const steps = () => {
      const out: tf.Tensor[] = [];
      for (let i = 0; i < 3; i++) {
        const { value, grads } = tf.variableGrads(loss as () => tf.Scalar, [w]);
        out.push(value, grads[w.name]);
      }
      return out;
    };
    const { stock, fast } = stockAndFast(steps);
    expectClose(stock, fast);
    // Three steps of the same size: later steps reuse what earlier ones disposed.
    expect(pooledBytes()).toBeGreaterThan(0);
    tf.dispose([x, w]);
  });

  it('never hands out a buffer that dataSync() returned', () => {
    registerFastCpuKernels();
    const a = random(shape, new Rng(72));
    const read = tf.relu(a);
    const values = read.dataSync();
    const kept = values.slice();
    read.dispose();
    // Live outputs of the same size, none equal to relu(a): a wrongly recycled buffer would change.
    const others = [1, 2, 3].map((k) => tf.relu(tf.add(tf.neg(a), k)));
    expect(mismatches(values, kept)).toBe(0);
    tf.dispose([a, ...others]);
  });

  it('never hands out a buffer that a live view (a contiguous slice) still reads', () => {
    registerFastCpuKernels();
    const a = random(shape, new Rng(73));
    const half = a.dataSync().slice(0, a.size / 2);
    const viewed = tf.relu(a);
    const view = tf.slice(viewed, [0, 0, 0, 0, 0], [1, 16, 32, 32, 8]);
    viewed.dispose();
    const others = [1, 2, 3].map((k) => tf.relu(tf.add(tf.neg(a), k)));
    expect(
      mismatches(
        view.dataSync() as Float32Array,
        half.map((v) => Math.max(v, 0)),
      ),
    ).toBe(0);
    tf.dispose([a, view, ...others]);
  });
});

describe('registration', () => {
  it('is idempotent and restores the exact stock kernels', () => {
    restoreStockCpuKernels();
    const stockConv = tf.getKernel('Conv3D', 'cpu')?.kernelFunc;
    registerFastCpuKernels();
    const fastConv = tf.getKernel('Conv3D', 'cpu')?.kernelFunc;
    expect(fastConv).not.toBe(stockConv);
    expect(fastCpuKernelsActive()).toBe(true);
    registerFastCpuKernels();
    expect(tf.getKernel('Conv3D', 'cpu')?.kernelFunc).toBe(fastConv);
    restoreStockCpuKernels();
    restoreStockCpuKernels();
    expect(tf.getKernel('Conv3D', 'cpu')?.kernelFunc).toBe(stockConv);
    expect(fastCpuKernelsActive()).toBe(false);
    expect(tf.getKernel('FreeTumorInstanceNorm3D', 'cpu')).toBeUndefined();
  });

  it('runs convolutions on two threads here', () => {
    expect(convRuntime().threads).toBe(2);
  });

  it('refuses working memory past the 4 GiB wasm32 limit with a LimitError, before allocating', () => {
    const rt = convRuntime();
    rt.reset();
    const before = rt.memory.buffer.byteLength;
    expect(() => rt.alloc(2 ** 30)).toThrow(LimitError);
    expect(rt.memory.buffer.byteLength).toBe(before);
  });
});
