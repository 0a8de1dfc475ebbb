/**
 * The engine's pure parts: the ONNX reader against files onnx-proto (protobufjs) writes, the heap
 * allocator, padding resolution, and the Winograd filter transforms against their definitions.
 */
import { describe, expect, it } from 'vitest';
import { resolvePads } from '../../shared/engine/engine.ts';
import { HEAP_START, Heap } from '../../shared/engine/host.ts';
import { readOnnx, tensorValues } from '../../shared/engine/onnx-reader.ts';
import { winogradFilter, winogradFilterGrad } from '../../shared/engine/winograd.ts';
import { LimitError } from '../../shared/errors.ts';
import { floatValueInfo, GraphBuilder } from '../export/graph.ts';
import { onnx } from '../export/proto.ts';

function encode(g: GraphBuilder): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'g',
      node: g.nodes,
      initializer: g.initializers,
      input: [floatValueInfo('input', ['N', 2, 'D', 'H', 'W'])],
      output: [floatValueInfo('output', ['N', 3, 'D', 'H', 'W'])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

describe('ONNX reader', () => {
  it('reads nodes, attributes (negative int64 included), initializers and value infos', () => {
    const g = new GraphBuilder();
    g.reserve('input');
    const w = Float32Array.from({ length: 3 * 2 * 27 }, (_, i) => i / 7 - 3);
    const shape = g.int64Init('shape', [0, 4, -1]);
    const conv = g.node('Conv', ['input', g.floatInit('w', [3, 2, 3, 3, 3], w)], 'conv', {
      kernel_shape: [3, 3, 3],
      auto_pad: 'SAME_UPPER',
      pads: [0, 1, 2, -3, 4, 5],
    });
    g.node('Reshape', [conv, shape], 'r');
    g.node('LeakyRelu', [conv], 'output', { alpha: { float: 0.25 } });
    const graph = readOnnx(encode(g));
    expect(graph.opset).toBe(17);
    expect(graph.nodes.map((n) => n.opType)).toEqual(['Conv', 'Reshape', 'LeakyRelu']);
    const c = graph.nodes[0];
    expect(c.attributes.get('kernel_shape')?.ints).toEqual([3, 3, 3]);
    expect(c.attributes.get('auto_pad')?.s).toBe('SAME_UPPER');
    expect(c.attributes.get('pads')?.ints).toEqual([0, 1, 2, -3, 4, 5]);
    expect(graph.nodes[2].attributes.get('alpha')?.f).toBe(0.25);
    expect(tensorValues(graph.initializers.get('w')!)).toEqual(w);
    expect(tensorValues(graph.initializers.get('shape')!)).toEqual(Float32Array.from([0, 4, -1]));
    expect(graph.inputs[0]).toEqual({ name: 'input', elemType: 1, dims: ['N', 2, 'D', 'H', 'W'] });
    expect(graph.outputs[0].name).toBe('output');
  });

  it('refuses bytes that are not a model with model_integrity', () => {
    expect(() => readOnnx(new Uint8Array([0x0a, 0xff, 0xff]))).toThrow(/cannot be read/);
    expect(() => readOnnx(new TextEncoder().encode('not a model'))).toThrow(/cannot be read/);
  });
});

describe('engine heap', () => {
  it('reuses freed blocks, merges neighbours, returns the top and names its limit', () => {
    const memory = new WebAssembly.Memory({ initial: HEAP_START / 65536 + 1 });
    const heap = new Heap(memory, HEAP_START + 4096);
    const a = heap.alloc(100);
    const b = heap.alloc(100);
    const c = heap.alloc(100);
    expect(a % 64).toBe(0);
    expect(b - a).toBe(448);
    heap.release(a);
    heap.release(b);
    // a and b merged: 200 floats fit where they were.
    expect(heap.alloc(200)).toBe(a);
    heap.release(a);
    heap.release(c);
    expect(heap.highWater).toBe(HEAP_START);
    expect(() => heap.alloc(2048)).toThrow(LimitError);
    expect(() => heap.release(12345)).toThrow(/not an allocated block/);
  });
});

describe('padding', () => {
  it('resolves SAME_UPPER, SAME_LOWER and explicit pads as ONNX defines them', () => {
    const same = {
      mode: 'SAME_UPPER' as const,
      begin: [0, 0, 0] as [number, number, number],
      end: [0, 0, 0] as [number, number, number],
    };
    expect(resolvePads([7, 8, 9], [3, 3, 3], [1, 1, 1], [1, 1, 1], same)).toEqual({
      out: [7, 8, 9],
      front: [1, 1, 1],
    });
    expect(resolvePads([7, 8, 9], [2, 2, 2], [2, 2, 2], [1, 1, 1], same)).toEqual({
      out: [4, 4, 5],
      front: [0, 0, 0],
    });
    expect(resolvePads([6, 6, 6], [2, 2, 2], [1, 1, 1], [1, 1, 1], { ...same, mode: 'SAME_LOWER' })).toEqual({
      out: [6, 6, 6],
      front: [1, 1, 1],
    });
    expect(
      resolvePads([8, 8, 8], [3, 3, 3], [2, 2, 2], [1, 1, 1], {
        mode: 'NOTSET',
        begin: [1, 0, 2],
        end: [1, 0, 2],
      }),
    ).toEqual({ out: [4, 3, 5], front: [1, 0, 2] });
    expect(() =>
      resolvePads([2, 8, 8], [3, 3, 3], [1, 1, 1], [1, 1, 1], { ...same, mode: 'NOTSET' }),
    ).toThrow(/smaller than/);
  });
});

describe('Winograd F(2x2x2, 3x3x3) transforms', () => {
  const G = [
    [1, 0, 0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0, 0, 1],
  ];
  const cin = 2;
  const cout = 3;
  const w = Float32Array.from({ length: 27 * cin * cout }, (_, i) => Math.sin(i * 1.3));

  it('U = G g G^T along each axis', () => {
    const u = winogradFilter(w, cin, cout);
    for (let a = 0; a < 4; a++)
      for (let b = 0; b < 4; b++)
        for (let c = 0; c < 4; c++)
          for (let q = 0; q < cin * cout; q++) {
            let want = 0;
            for (let i = 0; i < 3; i++)
              for (let j = 0; j < 3; j++)
                for (let k = 0; k < 3; k++)
                  want += G[a][i] * G[b][j] * G[c][k] * w[((i * 3 + j) * 3 + k) * cin * cout + q];
            expect(u[((a * 4 + b) * 4 + c) * cin * cout + q]).toBeCloseTo(want, 5);
          }
  });

  it('dW = G^T dU G is the adjoint of the filter transform', () => {
    // <U(w), dU> = <w, G^T dU G> for any dU: the filter gradient maps back with the transpose.
    const du = Float64Array.from({ length: 64 * cin * cout }, (_, i) => Math.cos(i * 0.7));
    const u = winogradFilter(w, cin, cout);
    const dw = winogradFilterGrad(du, cin, cout);
    let lhs = 0;
    for (let i = 0; i < u.length; i++) lhs += u[i] * du[i];
    let rhs = 0;
    for (let i = 0; i < w.length; i++) rhs += w[i] * dw[i];
    expect(lhs).toBeCloseTo(rhs, 3);
  });
});
