/**
 * ONNX graph -> the engine's op list. Covers the op set trainer/export writes (Conv, ConvTranspose
 * with kernel == stride, DequantizeLinear of int8 weights, InstanceNormalization, the opset-17
 * GroupNorm pattern Shape/Reshape/InstanceNormalization/Reshape/Mul/Add, Relu, MaxPool, Concat,
 * Softmax over channels, Sigmoid, Tanh, Identity, per-channel Mul/Add) and fuses what inference
 * does not need to materialise: Relu into the conv or norm before it, and a two-input channel
 * Concat read by convs only into those convs (they read both inputs in place). Weights are folded
 * to float32 at load. Anything else throws an EngineUnsupported naming the op, so a caller can
 * fall back to ONNX Runtime.
 */
import { FreeTumorError } from '../errors.ts';
import { type OnnxAttribute, type OnnxGraph, type OnnxNode, tensorValues } from './onnx-reader.ts';

export class EngineUnsupported extends FreeTumorError {
  constructor(what: string) {
    super('model_integrity', `the kernels engine does not run this model: ${what}`);
    this.name = 'EngineUnsupported';
  }
}

export type Triple = [number, number, number];

export interface Padding {
  /** ONNX auto_pad: SAME_UPPER/SAME_LOWER are resolved per input size; NOTSET uses begin/end. */
  mode: 'SAME_UPPER' | 'SAME_LOWER' | 'NOTSET';
  begin: Triple;
  end: Triple;
}

export interface ConvOp {
  kind: 'conv';
  x: string;
  /** A second input read as extra channels after x's (a fused Concat), or null. */
  x2: string | null;
  out: string;
  cin: number;
  cout: number;
  kernel: Triple;
  strides: Triple;
  dilations: Triple;
  pads: Padding;
  /** [kd][kh][kw][cin][cout] (a K x N matrix, K = taps * cin). */
  weight: Float32Array;
  bias: Float32Array | null;
  relu: boolean;
}

export interface ConvTransposeOp {
  kind: 'convTranspose';
  x: string;
  out: string;
  cin: number;
  cout: number;
  /** Kernel == strides, no padding. */
  kernel: Triple;
  /** [cin][kd][kh][kw][cout] (a cin x taps*cout matrix). */
  weight: Float32Array;
  bias: Float32Array | null;
  relu: boolean;
}

export interface NormOp {
  kind: 'norm';
  x: string;
  out: string;
  /** Number of statistics groups (group norm), or null for one per channel (instance norm). */
  groups: number | null;
  epsilon: number;
  scale: Float32Array;
  bias: Float32Array;
  relu: boolean;
}

export interface AffineOp {
  kind: 'affine';
  x: string;
  out: string;
  scale: Float32Array | null;
  shift: Float32Array | null;
}

export interface SimpleOp {
  kind: 'relu' | 'softmax' | 'sigmoid' | 'tanh' | 'concat';
  xs: string[];
  out: string;
}

export interface PoolOp {
  kind: 'maxPool';
  x: string;
  out: string;
  kernel: Triple;
  strides: Triple;
  pads: Padding;
}

export type Op = ConvOp | ConvTransposeOp | NormOp | AffineOp | SimpleOp | PoolOp;

export interface Plan {
  input: string;
  inChannels: number | null;
  /** The graph's output names, and the value each one is (after Identity and fusions). */
  outputNames: string[];
  outputs: string[];
  ops: Op[];
}

const triple = (v: number[] | undefined, fallback: number, what: string): Triple => {
  if (!v || v.length === 0) return [fallback, fallback, fallback];
  if (v.length !== 3) throw new EngineUnsupported(`${what} with ${v.length} spatial dims (3D only)`);
  return [v[0], v[1], v[2]];
};

function attr(node: OnnxNode, name: string): OnnxAttribute | undefined {
  return node.attributes.get(name);
}

function padding(node: OnnxNode): Padding {
  const auto = attr(node, 'auto_pad')?.s ?? 'NOTSET';
  if (auto === 'VALID') return { mode: 'NOTSET', begin: [0, 0, 0], end: [0, 0, 0] };
  if (auto === 'SAME_UPPER' || auto === 'SAME_LOWER') return { mode: auto, begin: [0, 0, 0], end: [0, 0, 0] };
  if (auto !== 'NOTSET') throw new EngineUnsupported(`${node.opType} auto_pad ${auto}`);
  const p = attr(node, 'pads')?.ints ?? [0, 0, 0, 0, 0, 0];
  if (p.length !== 6) throw new EngineUnsupported(`${node.opType} pads of length ${p.length}`);
  return { mode: 'NOTSET', begin: [p[0], p[1], p[2]], end: [p[3], p[4], p[5]] };
}

/** Builds the op list; throws EngineUnsupported for anything outside the covered op set. */
export function planGraph(graph: OnnxGraph): Plan {
  const constants = new Map<string, { dims: number[]; values: Float32Array }>();
  const constant = (name: string) => {
    const c = constants.get(name);
    if (c) return c;
    const t = graph.initializers.get(name);
    if (!t) return null;
    const v = { dims: t.dims, values: tensorValues(t) };
    constants.set(name, v);
    return v;
  };
  const need = (name: string, what: string) => {
    const c = constant(name);
    if (!c) throw new EngineUnsupported(`${what} (${name}) is not a constant`);
    return c;
  };

  const consumers = new Map<string, number[]>();
  graph.nodes.forEach((node, i) => {
    for (const x of node.inputs) if (x) consumers.set(x, [...(consumers.get(x) ?? []), i]);
  });
  const outputs = graph.outputs.map((o) => o.name);
  const onlyConsumer = (value: string): number | null => {
    const c = consumers.get(value) ?? [];
    return c.length === 1 && !outputs.includes(value) ? c[0] : null;
  };

  const runtimeInputs = graph.inputs.filter((i) => !graph.initializers.has(i.name));
  if (runtimeInputs.length !== 1)
    throw new EngineUnsupported(`${runtimeInputs.length} graph inputs (one only)`);
  const input = runtimeInputs[0];
  if (input.dims.length !== 5) throw new EngineUnsupported(`a rank-${input.dims.length} input (NCDHW only)`);

  const ops: Op[] = [];
  const done = new Set<number>();
  const alias = new Map<string, string>();
  const resolve = (name: string): string => {
    let n = name;
    while (alias.has(n)) n = alias.get(n)!;
    return n;
  };
  /** Ops by the value they write, so a later Relu can fold into them. */
  const writer = new Map<string, Op>();
  const emit = (op: Op) => {
    ops.push(op);
    writer.set(op.out, op);
  };

  graph.nodes.forEach((node, index) => {
    if (done.has(index)) return;
    if (node.domain !== '' && node.domain !== 'ai.onnx') {
      throw new EngineUnsupported(`op ${node.opType} of domain ${node.domain}`);
    }
    const out = node.outputs[0];
    switch (node.opType) {
      case 'DequantizeLinear': {
        const q = need(node.inputs[0], 'DequantizeLinear input');
        const scale = need(node.inputs[1], 'DequantizeLinear scale');
        const zero = node.inputs[2] ? need(node.inputs[2], 'DequantizeLinear zero point') : null;
        constants.set(out, { dims: q.dims, values: dequantize(q, scale.values, zero?.values ?? null, node) });
        return;
      }
      case 'Identity':
        if (constant(node.inputs[0])) constants.set(out, constant(node.inputs[0])!);
        else alias.set(out, node.inputs[0]);
        return;
      case 'Conv':
        emit(convOp(node, resolve, need));
        return;
      case 'ConvTranspose':
        emit(convTransposeOp(node, resolve, need));
        return;
      case 'InstanceNormalization':
        emit(normOp(node, resolve, need, null, out));
        return;
      case 'Reshape': {
        const group = groupNorm(node, index, graph, need, onlyConsumer, resolve);
        if (!group) throw new EngineUnsupported('Reshape outside the GroupNorm pattern');
        group.nodes.forEach((n) => {
          done.add(n);
        });
        emit(group.op);
        return;
      }
      case 'Shape':
        // Only the GroupNorm pattern's Shape is supported; it is consumed when its Reshape is.
        if ((consumers.get(out) ?? []).every((c) => graph.nodes[c].opType === 'Reshape')) return;
        throw new EngineUnsupported('Shape outside the GroupNorm pattern');
      case 'Relu': {
        const x = resolve(node.inputs[0]);
        const prev = writer.get(x);
        const fusable =
          prev &&
          (prev.kind === 'conv' || prev.kind === 'convTranspose' || prev.kind === 'norm') &&
          !prev.relu &&
          onlyConsumer(node.inputs[0]) === index;
        if (fusable && prev && 'relu' in prev) {
          prev.relu = true;
          alias.set(out, x);
          return;
        }
        emit({ kind: 'relu', xs: [x], out });
        return;
      }
      case 'MaxPool': {
        if ((attr(node, 'ceil_mode')?.i ?? 0) !== 0) throw new EngineUnsupported('MaxPool ceil_mode 1');
        if ((attr(node, 'storage_order')?.i ?? 0) !== 0) throw new EngineUnsupported('MaxPool storage_order');
        if (node.outputs.length > 1 && node.outputs[1]) throw new EngineUnsupported('MaxPool indices output');
        const dil = triple(attr(node, 'dilations')?.ints, 1, 'MaxPool dilations');
        if (dil.some((d) => d !== 1)) throw new EngineUnsupported('dilated MaxPool');
        const kernel = triple(attr(node, 'kernel_shape')?.ints, 1, 'MaxPool kernel_shape');
        emit({
          kind: 'maxPool',
          x: resolve(node.inputs[0]),
          out,
          kernel,
          strides: triple(attr(node, 'strides')?.ints, 1, 'MaxPool strides'),
          pads: padding(node),
        });
        return;
      }
      case 'Concat': {
        const axis = attr(node, 'axis')?.i;
        if (axis !== 1 && axis !== -4) throw new EngineUnsupported(`Concat on axis ${axis} (channels only)`);
        emit({ kind: 'concat', xs: node.inputs.map(resolve), out });
        return;
      }
      case 'Softmax': {
        const axis = attr(node, 'axis')?.i ?? (graph.opset >= 13 ? -1 : 1);
        if (axis !== 1 && axis !== -4) throw new EngineUnsupported(`Softmax on axis ${axis} (channels only)`);
        emit({ kind: 'softmax', xs: [resolve(node.inputs[0])], out });
        return;
      }
      case 'Sigmoid':
      case 'Tanh':
        emit({ kind: node.opType === 'Sigmoid' ? 'sigmoid' : 'tanh', xs: [resolve(node.inputs[0])], out });
        return;
      case 'Mul':
      case 'Add': {
        const [a, b] = node.inputs;
        const c = constant(b) ?? constant(a);
        const x = constant(b) ? a : b;
        if (!c || constant(x)) throw new EngineUnsupported(`${node.opType} of two tensors`);
        const v = perChannel(c, node.opType);
        emit({
          kind: 'affine',
          x: resolve(x),
          out,
          scale: node.opType === 'Mul' ? v : null,
          shift: node.opType === 'Add' ? v : null,
        });
        return;
      }
      default:
        throw new EngineUnsupported(`op ${node.opType}`);
    }
  });

  const results = outputs.map(resolve);
  fuseConcats(ops, new Set(results));
  return {
    input: input.name,
    inChannels: typeof input.dims[1] === 'number' ? input.dims[1] : null,
    outputNames: outputs,
    outputs: results,
    ops,
  };
}

function dequantize(
  q: { dims: number[]; values: Float32Array },
  scale: Float32Array,
  zero: Float32Array | null,
  node: OnnxNode,
): Float32Array {
  const out = new Float32Array(q.values.length);
  if (scale.length === 1) {
    const z = zero?.[0] ?? 0;
    for (let i = 0; i < out.length; i++) out[i] = (q.values[i] - z) * scale[0];
    return out;
  }
  let axis = attr(node, 'axis')?.i ?? 1;
  if (axis < 0) axis += q.dims.length;
  const channels = q.dims[axis];
  if (channels !== scale.length) throw new EngineUnsupported('DequantizeLinear scale of the wrong length');
  const inner = q.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  for (let i = 0; i < out.length; i++) {
    const c = Math.floor(i / inner) % channels;
    out[i] = (q.values[i] - (zero?.[c] ?? 0)) * scale[c];
  }
  return out;
}

/** A [C], [C,1,1,1] or [1,C,1,1,1] constant as C per-channel values. */
function perChannel(c: { dims: number[]; values: Float32Array }, op: string): Float32Array {
  const d = c.dims;
  const ok =
    d.length === 1 ||
    (d.length === 4 && d[1] * d[2] * d[3] === 1) ||
    (d.length === 5 && d[0] * d[2] * d[3] * d[4] === 1);
  if (!ok) throw new EngineUnsupported(`${op} with a constant of shape ${d.join('x')} (per channel only)`);
  return c.values;
}

type Need = (name: string, what: string) => { dims: number[]; values: Float32Array };

function convOp(node: OnnxNode, resolve: (n: string) => string, need: Need): ConvOp {
  if ((attr(node, 'group')?.i ?? 1) !== 1) throw new EngineUnsupported('grouped Conv');
  const w = need(node.inputs[1], 'Conv weight');
  if (w.dims.length !== 5) throw new EngineUnsupported(`Conv weight of rank ${w.dims.length} (3D only)`);
  const [cout, cin, kd, kh, kw] = w.dims;
  const kernel = triple(attr(node, 'kernel_shape')?.ints, 0, 'Conv kernel_shape');
  if (kernel[0] !== 0 && (kernel[0] !== kd || kernel[1] !== kh || kernel[2] !== kw))
    throw new EngineUnsupported('Conv kernel_shape that differs from its weight');
  // ONNX [cout][cin][kd][kh][kw] -> [kd][kh][kw][cin][cout].
  const taps = kd * kh * kw;
  const weight = new Float32Array(w.values.length);
  for (let o = 0; o < cout; o++)
    for (let i = 0; i < cin; i++)
      for (let t = 0; t < taps; t++) weight[(t * cin + i) * cout + o] = w.values[(o * cin + i) * taps + t];
  const bias = node.inputs[2] ? need(node.inputs[2], 'Conv bias').values : null;
  return {
    kind: 'conv',
    x: resolve(node.inputs[0]),
    x2: null,
    out: node.outputs[0],
    cin,
    cout,
    kernel: [kd, kh, kw],
    strides: triple(attr(node, 'strides')?.ints, 1, 'Conv strides'),
    dilations: triple(attr(node, 'dilations')?.ints, 1, 'Conv dilations'),
    pads: padding(node),
    weight,
    bias,
    relu: false,
  };
}

function convTransposeOp(node: OnnxNode, resolve: (n: string) => string, need: Need): ConvTransposeOp {
  if ((attr(node, 'group')?.i ?? 1) !== 1) throw new EngineUnsupported('grouped ConvTranspose');
  if (attr(node, 'output_shape')) throw new EngineUnsupported('ConvTranspose output_shape');
  const w = need(node.inputs[1], 'ConvTranspose weight');
  if (w.dims.length !== 5) throw new EngineUnsupported('ConvTranspose weight of rank other than 5');
  const [cin, cout, kd, kh, kw] = w.dims;
  const kernel: Triple = [kd, kh, kw];
  const strides = triple(attr(node, 'strides')?.ints, 1, 'ConvTranspose strides');
  const pads = padding(node);
  const dil = triple(attr(node, 'dilations')?.ints, 1, 'ConvTranspose dilations');
  const outPad = attr(node, 'output_padding')?.ints ?? [];
  if (
    kernel.some((k, i) => k !== strides[i]) ||
    pads.mode !== 'NOTSET' ||
    [...pads.begin, ...pads.end].some((p) => p !== 0) ||
    dil.some((d) => d !== 1) ||
    outPad.some((p) => p !== 0)
  ) {
    throw new EngineUnsupported('ConvTranspose other than kernel == stride without padding');
  }
  // ONNX [cin][cout][kd][kh][kw] -> [cin][tap][cout].
  const taps = kd * kh * kw;
  const weight = new Float32Array(w.values.length);
  for (let i = 0; i < cin; i++)
    for (let o = 0; o < cout; o++)
      for (let t = 0; t < taps; t++) weight[(i * taps + t) * cout + o] = w.values[(i * cout + o) * taps + t];
  return {
    kind: 'convTranspose',
    x: resolve(node.inputs[0]),
    out: node.outputs[0],
    cin,
    cout,
    kernel,
    weight,
    bias: node.inputs[2] ? need(node.inputs[2], 'ConvTranspose bias').values : null,
    relu: false,
  };
}

function normOp(
  node: OnnxNode,
  resolve: (n: string) => string,
  need: Need,
  groups: number | null,
  out: string,
): NormOp {
  return {
    kind: 'norm',
    x: resolve(node.inputs[0]),
    out,
    groups,
    epsilon: attr(node, 'epsilon')?.f ?? 1e-5,
    scale: need(node.inputs[1], 'InstanceNormalization scale').values,
    bias: need(node.inputs[2], 'InstanceNormalization bias').values,
    relu: false,
  };
}

/**
 * trainer/export's GroupNorm at opset 17: Reshape(x, [0, G, -1]) -> InstanceNormalization(unit
 * scale, zero bias) -> Reshape(., Shape(x)) -> Mul(gamma [C,1,1,1]) -> Add(beta [C,1,1,1]),
 * starting at the first Reshape. Returns the nodes it covers and the fused op, or null.
 */
function groupNorm(
  reshape: OnnxNode,
  index: number,
  graph: OnnxGraph,
  need: Need,
  onlyConsumer: (v: string) => number | null,
  resolve: (n: string) => string,
): { nodes: number[]; op: NormOp } | null {
  const shape = graph.initializers.get(reshape.inputs[1]);
  if (!shape) return null;
  const target = need(reshape.inputs[1], 'Reshape shape').values;
  if (target.length !== 3 || target[0] !== 0 || target[2] !== -1) return null;
  const groups = target[1];
  const chain: OnnxNode[] = [];
  const nodes: number[] = [index];
  let value = reshape.outputs[0];
  for (const op of ['InstanceNormalization', 'Reshape', 'Mul', 'Add']) {
    const next = onlyConsumer(value);
    if (next === null || graph.nodes[next].opType !== op) return null;
    chain.push(graph.nodes[next]);
    nodes.push(next);
    value = graph.nodes[next].outputs[0];
  }
  const [inorm, , mul, add] = chain;
  const unitScale = need(inorm.inputs[1], 'GroupNorm scale').values;
  const zeroBias = need(inorm.inputs[2], 'GroupNorm bias').values;
  const gamma = perChannel(need(mul.inputs[1], 'GroupNorm gamma'), 'Mul');
  const beta = perChannel(need(add.inputs[1], 'GroupNorm beta'), 'Add');
  // Fold the inner per-group affine into the per-channel one: y = (xhat s_g + b_g) gamma + beta.
  const cg = gamma.length / groups;
  if (!Number.isInteger(cg)) return null;
  const scale = new Float32Array(gamma.length);
  const bias = new Float32Array(gamma.length);
  for (let c = 0; c < gamma.length; c++) {
    const g = Math.floor(c / cg);
    scale[c] = unitScale[g] * gamma[c];
    bias[c] = zeroBias[g] * gamma[c] + beta[c];
  }
  return {
    nodes,
    op: {
      kind: 'norm',
      x: resolve(reshape.inputs[0]),
      out: add.outputs[0],
      groups,
      epsilon: inorm.attributes.get('epsilon')?.f ?? 1e-5,
      scale,
      bias,
      relu: false,
    },
  };
}

/**
 * A two-input Concat whose every reader is a conv becomes those convs' second input: they gather
 * both tensors in vol2col, and the concatenated tensor (the decoder's largest) never exists.
 */
function fuseConcats(ops: Op[], results: Set<string>): void {
  for (let i = ops.length - 1; i >= 0; i--) {
    const op = ops[i];
    if (op.kind !== 'concat' || op.xs.length !== 2 || results.has(op.out)) continue;
    const readers = ops.filter((o) => reads(o).includes(op.out));
    if (readers.length === 0 || !readers.every((r) => r.kind === 'conv' && r.x === op.out && r.x2 === null))
      continue;
    for (const r of readers as ConvOp[]) {
      r.x = op.xs[0];
      r.x2 = op.xs[1];
    }
    ops.splice(i, 1);
  }
}

/** The values an op reads. */
export function reads(op: Op): string[] {
  if ('xs' in op) return op.xs;
  if (op.kind === 'conv') return op.x2 ? [op.x, op.x2] : [op.x];
  return [op.x];
}
