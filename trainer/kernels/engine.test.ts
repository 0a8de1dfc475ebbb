/**
 * The kernels engine against onnxruntime-node on the same exported models: fp32 and int8 weights,
 * every norm kind the exporter writes, one and two threads, batches, odd sizes (padding at the
 * edges), and the one-thread build on a plain memory (the Worker's).
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createSingleThreadHost } from '../../shared/engine/host.ts';
import { EngineUnsupported } from '../../shared/engine/plan.ts';
import { createKernelRunner } from '../../shared/engine/runner.ts';
import type { Tensor5 } from '../../shared/inference/runner.ts';
import { encodeModel, exportGraph } from '../export/onnx.ts';
import { quantizeWeightsInt8 } from '../export/quantize.ts';
import { tinyUNet } from '../export/test-model.ts';
import { buildUNet, EDGE_UNET3D_TINY } from '../models/unet.ts';
import { createNodeRunner } from '../runners/onnxruntime-node.ts';
import { createEngineRunner } from './engine-runner.ts';

function volume(dims: Tensor5['dims'], seed: number): Tensor5 {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 32;
  }
  return { dims, data };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i] - b[i]));
  return e;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

async function compare(model: Uint8Array, x: Tensor5, threads: number, tolerance: number): Promise<void> {
  const ort = await createNodeRunner(model, { threads: 1 });
  const engine = createEngineRunner(model, { threads });
  try {
    const want = await ort.run({ input: x });
    const got = await engine.run({ input: x });
    expect(Object.keys(got)).toEqual(Object.keys(want));
    for (const name of Object.keys(want)) {
      expect(got[name].dims).toEqual(want[name].dims);
      expect(maxAbsDiff(got[name].data, want[name].data)).toBeLessThan(tolerance);
      // The outputs vary across voxels (a near-constant output would match anything).
      expect(Math.max(...want[name].data) - Math.min(...want[name].data)).toBeGreaterThan(0.05);
    }
  } finally {
    await ort.release?.();
    await engine.release?.();
  }
}

describe.each(['instance', 'group', 'none'] as const)('kernels engine on a U-Net with %s norm', (norm) => {
  const net = tinyUNet({ norm, seed: 5 });
  const graph = exportGraph(net);
  net.dispose();
  const fp32 = encodeModel(graph.model);
  const int8 = encodeModel(quantizeWeightsInt8(graph.model).model);

  it('matches onnxruntime-node in fp32, one and two threads', async () => {
    await compare(fp32, volume([1, 1, 16, 16, 16], 1), 1, 1e-5);
    await compare(fp32, volume([1, 1, 16, 24, 8], 2), 2, 1e-5);
  });

  it('matches onnxruntime-node with int8 weights and a batch of two', async () => {
    await compare(int8, volume([2, 1, 8, 16, 16], 3), 2, 1e-5);
  });
});

describe('kernels engine on the edge U-Net', () => {
  it('matches onnxruntime-node at 32^3 with two threads (work split across threads)', async () => {
    const net = buildUNet({ ...EDGE_UNET3D_TINY, seed: 2 });
    const model = encodeModel(exportGraph(net).model);
    net.dispose();
    await compare(model, volume([1, 1, 32, 32, 32], 4), 2, 1e-5);
  });

  it('runs the one-thread build on a plain memory with the same results', async () => {
    const net = buildUNet({ ...EDGE_UNET3D_TINY, seed: 3 });
    const model = encodeModel(quantizeWeightsInt8(exportGraph(net).model).model);
    net.dispose();
    const module = new WebAssembly.Module(
      readFileSync(new URL('../../shared/engine/wasm/kernels-st.wasm', import.meta.url)),
    );
    const host = await createSingleThreadHost(module);
    expect(host.memory.buffer instanceof SharedArrayBuffer).toBe(false);
    const single = createKernelRunner(model, host);
    const ort = await createNodeRunner(model, { threads: 1 });
    const x = volume([1, 1, 16, 16, 16], 5);
    const want = (await ort.run({ input: x })).output;
    const got = (await single.run({ input: x })).output;
    expect(maxAbsDiff(got.data, want.data)).toBeLessThan(1e-5);
    await ort.release?.();
  });

  it('shares one memory between the runners of a host: the second model adds its weights, not a working set', async () => {
    const module = new WebAssembly.Module(
      readFileSync(new URL('../../shared/engine/wasm/kernels-st.wasm', import.meta.url)),
    );
    const host = await createSingleThreadHost(module);
    const models = [8, 9].map((seed) => {
      const net = buildUNet({ ...EDGE_UNET3D_TINY, seed });
      const bytes = encodeModel(exportGraph(net).model);
      net.dispose();
      return bytes;
    });
    const x = volume([1, 1, 32, 32, 32], 8);
    const a = createKernelRunner(models[0], host);
    const alone = (await a.run({ input: x })).output.data;
    const afterA = host.memory.buffer.byteLength;
    const b = createKernelRunner(models[1], host);
    const other = (await b.run({ input: x })).output.data;
    // The working set of b's run fits in what a's run left free: at most b's weights were added.
    expect(host.memory.buffer.byteLength - afterA).toBeLessThan(1 << 20);
    expect((await a.run({ input: x })).output.data).toEqual(alone);
    const ort = await createNodeRunner(models[1], { threads: 1 });
    expect(maxAbsDiff(other, (await ort.run({ input: x })).output.data)).toBeLessThan(1e-5);
    await ort.release?.();
    await a.release?.();
    await expect(a.run({ input: x })).rejects.toThrow(/after release/);
    await b.release?.();
  });

  it('frees every activation after a run: the heap returns to its weights', async () => {
    const net = tinyUNet({ seed: 6 });
    const model = encodeModel(exportGraph(net).model);
    net.dispose();
    const module = new WebAssembly.Module(
      readFileSync(new URL('../../shared/engine/wasm/kernels-st.wasm', import.meta.url)),
    );
    const runner = createKernelRunner(model, await createSingleThreadHost(module));
    const before = runner.memoryBytes();
    await runner.run({ input: volume([1, 1, 16, 16, 16], 6) });
    const after = runner.memoryBytes();
    await runner.run({ input: volume([1, 1, 16, 16, 16], 7) });
    expect(runner.memoryBytes()).toBe(after);
    expect(after).toBeGreaterThan(before);
  });

  it('refuses models outside its op set with EngineUnsupported, and a wrong input name', async () => {
    const net = tinyUNet({ seed: 7 });
    const model = encodeModel(exportGraph(net).model);
    net.dispose();
    const broken = new TextEncoder().encode('not a model');
    expect(() => createEngineRunner(broken)).toThrow();
    const runner = createEngineRunner(model, { threads: 1 });
    await expect(runner.run({ image: volume([1, 1, 8, 8, 8], 1) })).rejects.toThrow(/one input named input/);
    await runner.release?.();
    expect(new EngineUnsupported('op Foo').message).toMatch(/op Foo/);
  });
});
