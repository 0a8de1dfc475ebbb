import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { input, layers, type SymbolicTensor, model as tfModel } from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tensor5 } from '../../shared/inference/runner.ts';
import { loadModel } from '../../shared/model/load.ts';
import { buildUNet, EDGE_UNET3D_TINY } from '../models/unet.ts';
import { createNodeRunner, createWebRunner } from '../runners/onnxruntime-node.ts';
import { createTfjsRunner } from '../runners/tfjs.ts';
import { writeModelDir } from './manifest-writer.ts';
import { encodeModel, exportGraph, exportToOnnx } from './onnx.ts';
import { quantizeWeightsInt8 } from './quantize.ts';
import { blobCase, testManifestFields, tinyUNet, trainOnBlobs } from './test-model.ts';

const hasPythonOnnx = spawnSync('/usr/bin/python3', ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;

/** A blob phantom as an NCDHW tensor. */
function blobVolume(d: number, h: number, w: number, seed: number): Tensor5 {
  return { dims: [1, 1, d, h, w], data: blobCase([w, h, d], seed).image };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i] - b[i]));
  return e;
}

function argmaxAgreement(a: Tensor5, b: Tensor5): number {
  const c = a.dims[1];
  const n = a.data.length / c;
  let same = 0;
  for (let v = 0; v < n; v++) {
    let ia = 0;
    let ib = 0;
    for (let k = 1; k < c; k++) {
      if (a.data[k * n + v] > a.data[ia * n + v]) ia = k;
      if (b.data[k * n + v] > b.data[ib * n + v]) ib = k;
    }
    if (ia === ib) same++;
  }
  return same / n;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe.each(['instance', 'group', 'none'] as const)('ONNX export of a U-Net with %s norm', (norm) => {
  const net = tinyUNet({ norm, seed: 3 });
  const fp32 = exportToOnnx(net);
  const x = blobVolume(16, 16, 16, 7);

  it('matches tfjs cpu within 1e-4 on onnxruntime-node and onnxruntime-web (wasm, 1 thread)', async () => {
    const ref = (await createTfjsRunner(net).run({ input: x })).output;
    for (const runner of [await createNodeRunner(fp32, { threads: 1 }), await createWebRunner(fp32)]) {
      const out = (await runner.run({ input: x })).output;
      expect(out.dims).toEqual([1, 3, 16, 16, 16]);
      expect(maxAbsDiff(out.data, ref.data)).toBeLessThanOrEqual(1e-4);
      await runner.release?.();
    }
  });

  it('has symbolic spatial dims: one file runs a non-cubic input', async () => {
    const y = blobVolume(8, 16, 24, 8);
    const ref = (await createTfjsRunner(net).run({ input: y })).output;
    const out = (await (await createNodeRunner(fp32, { threads: 1 })).run({ input: y })).output;
    expect(out.dims).toEqual([1, 3, 8, 16, 24]);
    expect(maxAbsDiff(out.data, ref.data)).toBeLessThanOrEqual(1e-4);
  });
});

describe.each(['instance', 'group'] as const)(
  'ONNX export of the trainer U-Net (buildUNet, %s norm)',
  (norm) => {
    it('matches tfjs within 1e-4 on both runtimes, for softmax and tanh heads', async () => {
      for (const head of ['softmax', 'tanh'] as const) {
        const net = buildUNet({ ...EDGE_UNET3D_TINY, norm, groups: 2, head, seed: 2 });
        const graph = exportGraph(net);
        expect(graph.outputActivation).toBe(head);
        const bytes = encodeModel(graph.model);
        const x = blobVolume(16, 16, 16, 4);
        const ref = (await createTfjsRunner(net).run({ input: x })).output;
        for (const runner of [await createNodeRunner(bytes, { threads: 1 }), await createWebRunner(bytes)]) {
          expect(maxAbsDiff((await runner.run({ input: x })).output.data, ref.data)).toBeLessThanOrEqual(
            1e-4,
          );
        }
      }
    });
  },
);

describe('int8 weight quantization', () => {
  // Trained a few steps so the argmax is decided (random weights leave near-ties everywhere).
  const net = tinyUNet({ norm: 'instance', channels: 8, seed: 5 });
  let graph: ReturnType<typeof exportGraph>;
  let fp32: Uint8Array;
  let q: ReturnType<typeof quantizeWeightsInt8>['model'];
  let report: ReturnType<typeof quantizeWeightsInt8>['report'];
  let int8: Uint8Array;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    trainOnBlobs(net, 10, 16, 1);
    graph = exportGraph(net);
    fp32 = encodeModel(graph.model);
    ({ model: q, report } = quantizeWeightsInt8(graph.model));
    int8 = encodeModel(q);
  });

  it('quantizes every conv weight, shrinks the file and keeps the fp32 graph intact', () => {
    expect(report.tensors).toBe(5);
    expect(int8.length).toBeLessThan(fp32.length * 0.5);
    expect(encodeModel(graph.model)).toEqual(fp32);
    const ops = q.graph?.node?.map((n) => n.opType) ?? [];
    expect(ops.filter((o) => o === 'DequantizeLinear')).toHaveLength(5);
  });

  it('agrees with the tfjs argmax on >= 99.9% of a 32^3 phantom (node and web)', async () => {
    const x = blobVolume(32, 32, 32, 11);
    const ref = (await createTfjsRunner(net).run({ input: x })).output;
    for (const runner of [await createNodeRunner(int8, { threads: 1 }), await createWebRunner(int8)]) {
      const out = (await runner.run({ input: x })).output;
      const agreement = argmaxAgreement(out, ref);
      expect(agreement).toBeGreaterThanOrEqual(0.999);
      expect(maxAbsDiff(out.data, ref.data)).toBeLessThan(0.05);
    }
  });
});

describe('exporter errors', () => {
  it('names the layer class it cannot convert', () => {
    const x = input({ shape: [null, null, null, 1] });
    const y = layers.averagePooling3d({ poolSize: 2 }).apply(x) as SymbolicTensor;
    expect(() => exportToOnnx(tfModel({ inputs: x, outputs: y }))).toThrow(/AveragePooling3D/);
  });
});

describe.skipIf(!hasPythonOnnx)('ONNX checker (python3-onnx, full_check)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ft-onnx-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it.each(['instance', 'group'] as const)('accepts fp32 and int8 files (%s norm)', (norm) => {
    const graph = exportGraph(tinyUNet({ norm }));
    const files = {
      fp32: encodeModel(graph.model),
      int8: encodeModel(quantizeWeightsInt8(graph.model).model),
    };
    for (const [name, bytes] of Object.entries(files)) {
      const path = join(dir, `${norm}.${name}.onnx`);
      writeFileSync(path, bytes);
      const out = execFileSync('/usr/bin/python3', [
        '-c',
        'import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True); print("ok")',
        path,
      ]);
      expect(out.toString().trim()).toBe('ok');
    }
  });
});

describe('manifest writer and verified loading', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ft-manifest-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes role/manifest.json with sha256s that loadModel verifies, and refuses a changed byte', async () => {
    const graph = exportGraph(tinyUNet());
    const fp32 = encodeModel(graph.model);
    const int8 = encodeModel(quantizeWeightsInt8(graph.model).model);
    const { path, manifest } = await writeModelDir(
      dir,
      testManifestFields({ name: 'tiny', created: new Date().toISOString() }),
      { fp32, int8 },
    );
    expect(path).toBe(join(dir, 'segmentor', 'manifest.json'));
    expect(manifest.files.map((f) => f.precision).sort()).toEqual(['fp32', 'int8']);
    const json = JSON.parse(readFileSync(path, 'utf8'));
    const read = (p: string) => Promise.resolve(new Uint8Array(readFileSync(join(dir, 'segmentor', p))));
    const loaded = await loadModel(json, read, 'int8');
    expect(loaded.bytes).toEqual(int8);
    const fp = await loadModel(json, read, 'fp32');
    expect(fp.bytes).toEqual(fp32);

    const tampered = int8.slice();
    tampered[tampered.length - 1] ^= 1;
    await expect(loadModel(json, () => Promise.resolve(tampered), 'int8')).rejects.toMatchObject({
      code: 'model_integrity',
    });
    await expect(loadModel({ ...json, files: [] }, read)).rejects.toMatchObject({ code: 'model_integrity' });
  });
});
