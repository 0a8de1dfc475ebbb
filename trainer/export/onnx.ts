/**
 * tfjs LayersModel -> ONNX (opset 17, IR 8). No npm package converts tfjs models, so this walks the
 * layers the trainer's nets use (trainer/models/unet.ts) and emits a native NCDHW graph with symbolic
 * N, D, H, W: one file serves every patch size, and the app feeds a volume's [D, H, W] array with no
 * transposes at run time. Recipe and measured parity: docs/findings/tfjs-training-and-onnx-export.md.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { floatValueInfo, GraphBuilder } from './graph.ts';
import { type OnnxTypes, onnx } from './proto.ts';

export const OPSET = 17;
export const IR_VERSION = 8;

type Layer = LayersModel['layers'][number];
type Config = Record<string, unknown>;

export interface ExportOptions {
  inputName?: string;
  outputName?: string;
  /** Stored in the model's doc string (no user data). */
  description?: string;
}

export interface ExportedGraph {
  model: OnnxTypes.ModelProto;
  inputName: string;
  outputName: string;
  inChannels: number;
  outChannels: number;
  /** The activation the last layer ends in, as the manifest names it. */
  outputActivation: 'softmax' | 'tanh' | 'sigmoid' | 'linear';
}

/** Converts the model; throws naming the layer class for any layer it cannot express. */
export function exportGraph(model: LayersModel, options: ExportOptions = {}): ExportedGraph {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new Error(
      `ONNX export supports one input and one output, model has ${model.inputs.length} and ${model.outputs.length}`,
    );
  }
  const inShape = model.inputs[0].shape;
  const outShape = model.outputs[0].shape;
  if (inShape.length !== 5 || outShape.length !== 5)
    throw new Error('ONNX export expects a rank-5 NDHWC model');
  const inChannels = inShape[4];
  const outChannels = outShape[4];
  if (inChannels === null || outChannels === null) throw new Error('ONNX export needs fixed channel counts');

  const g = new GraphBuilder();
  const inputName = options.inputName ?? 'input';
  const outputName = options.outputName ?? 'output';
  g.reserve(inputName);
  g.reserve(outputName);
  const names = new Map<Layer, string>();
  const outputLayer = model.outputLayers[0];
  let outputActivation: ExportedGraph['outputActivation'] = 'linear';

  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (layer.inboundNodes.length > 1) throw new Error(`ONNX export: layer ${cls} is used more than once`);
    const inputs = layer.inboundNodes[0]?.inboundLayers.map((l) => {
      const n = names.get(l);
      if (n === undefined) throw new Error(`ONNX export: layer ${cls} consumes a layer not seen yet`);
      return n;
    });
    if (cls === 'InputLayer') {
      names.set(layer, inputName);
      continue;
    }
    const emitted = emitLayer(g, layer, cls, inputs ?? []);
    names.set(layer, emitted.name);
    if (layer === outputLayer) outputActivation = emitted.activation;
  }

  // Rename the last tensor to the public output name with an Identity (free in every runtime).
  const last = names.get(outputLayer);
  if (last === undefined) throw new Error('ONNX export: output layer was not converted');
  g.nodes.push({ opType: 'Identity', name: 'output_identity', input: [last], output: [outputName] });

  const graph: OnnxTypes.IGraphProto = {
    name: model.name.replace(/[^0-9A-Za-z_]/g, '_'),
    node: g.nodes,
    initializer: g.initializers,
    input: [floatValueInfo(inputName, ['N', inChannels, 'D', 'H', 'W'])],
    output: [floatValueInfo(outputName, ['N', outChannels, 'D', 'H', 'W'])],
  };
  const proto = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'freetumor',
    producerVersion: '1',
    docString: options.description ?? '',
    graph,
  });
  return { model: proto, inputName, outputName, inChannels, outChannels, outputActivation };
}

export function encodeModel(model: OnnxTypes.ModelProto): Uint8Array {
  const buf = onnx.ModelProto.encode(model).finish();
  // protobufjs hands back a Node Buffer; callers and tests want a plain Uint8Array.
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

export function decodeModel(bytes: Uint8Array): OnnxTypes.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

/** exportGraph + encode. */
export function exportToOnnx(model: LayersModel, options: ExportOptions = {}): Uint8Array {
  return encodeModel(exportGraph(model, options).model);
}

interface Emitted {
  name: string;
  activation: ExportedGraph['outputActivation'];
}

function emitLayer(g: GraphBuilder, layer: Layer, cls: string, inputs: string[]): Emitted {
  const config = layer.getConfig() as Config;
  const base = layer.name;
  const one = () => {
    if (inputs.length !== 1)
      throw new Error(`ONNX export: layer ${cls} expects one input, has ${inputs.length}`);
    return inputs[0];
  };
  switch (cls) {
    case 'Conv3D':
    case 'Conv3DTranspose': {
      checkChannelsLast(cls, config);
      const out = cls === 'Conv3D' ? conv(g, layer, config, one()) : convTranspose(g, layer, config, one());
      return activation(g, cls, config.activation, out, base);
    }
    case 'MaxPooling3D': {
      checkChannelsLast(cls, config);
      const pool = triple(config.poolSize, cls, 'poolSize');
      const strides = config.strides == null ? pool : triple(config.strides, cls, 'strides');
      return {
        name: g.node('MaxPool', [one()], base, {
          kernel_shape: pool,
          strides,
          ...(config.padding === 'same' ? { auto_pad: 'SAME_UPPER' } : {}),
        }),
        activation: 'linear',
      };
    }
    case 'Concatenate': {
      const axis = config.axis as number;
      if (axis !== -1 && axis !== 4)
        throw new Error(`ONNX export: Concatenate on axis ${axis} (only channels)`);
      return { name: g.node('Concat', inputs, base, { axis: 1 }), activation: 'linear' };
    }
    case 'Add':
    case 'Multiply': {
      const op = cls === 'Add' ? 'Add' : 'Mul';
      let acc = inputs[0];
      for (let i = 1; i < inputs.length; i++) acc = g.node(op, [acc, inputs[i]], base);
      return { name: acc, activation: 'linear' };
    }
    case 'Activation':
      return activation(g, cls, config.activation, one(), base);
    case 'ReLU':
      if (config.maxValue != null) throw new Error('ONNX export: ReLU with maxValue is not supported');
      return { name: g.node('Relu', [one()], base), activation: 'linear' };
    case 'LeakyReLU':
      return {
        name: g.node('LeakyRelu', [one()], base, { alpha: { float: (config.alpha as number) ?? 0.3 } }),
        activation: 'linear',
      };
    case 'Softmax': {
      const axis = config.axis as number | number[];
      const a = Array.isArray(axis) ? axis : [axis];
      if (a.length !== 1 || (a[0] !== -1 && a[0] !== 4))
        throw new Error('ONNX export: Softmax over other than channels');
      return { name: g.node('Softmax', [one()], base, { axis: 1 }), activation: 'softmax' };
    }
    case 'Dropout':
    case 'SpatialDropout3D':
      return { name: one(), activation: 'linear' };
    case 'InstanceNorm3D':
      return { name: instanceNorm(g, layer, config, one()), activation: 'linear' };
    case 'GroupNorm3D':
      return { name: groupNorm(g, layer, config, one()), activation: 'linear' };
    default:
      throw new Error(`ONNX export: unsupported layer class ${cls} (layer ${layer.name})`);
  }
}

function checkChannelsLast(cls: string, config: Config): void {
  if (config.dataFormat !== undefined && config.dataFormat !== 'channelsLast') {
    throw new Error(`ONNX export: ${cls} with dataFormat ${String(config.dataFormat)} (only channelsLast)`);
  }
}

function triple(v: unknown, cls: string, what: string): number[] {
  const a = typeof v === 'number' ? [v, v, v] : (v as number[]);
  if (!Array.isArray(a) || a.length !== 3) throw new Error(`ONNX export: ${cls} ${what} must have 3 entries`);
  return [...a];
}

/** The layer's weights as Float32Arrays, keyed by the variable's last name part (kernel, bias, gamma, beta). */
function weights(layer: Layer, perm?: number[]): Map<string, { dims: number[]; values: Float32Array }> {
  const out = new Map<string, { dims: number[]; values: Float32Array }>();
  const values = layer.getWeights();
  layer.weights.forEach((w, i) => {
    const key = w.name.split('/').pop()!.replace(/_\d+$/, '');
    const t = key === 'kernel' && perm ? tf.transpose(values[i], perm) : values[i];
    out.set(key, { dims: t.shape, values: Float32Array.from(t.dataSync()) });
    if (t !== values[i]) t.dispose();
  });
  return out;
}

// tfjs Conv3D kernel [kd,kh,kw,Cin,Cout] -> ONNX Conv W [Cout,Cin,kd,kh,kw]; tfjs Conv3DTranspose kernel
// [kd,kh,kw,Cout,Cin] -> ONNX ConvTranspose W [Cin,Cout,kd,kh,kw]: the same permutation, no flip.
const KERNEL_PERM = [4, 3, 0, 1, 2];

function conv(g: GraphBuilder, layer: Layer, config: Config, x: string): string {
  const w = weights(layer, KERNEL_PERM);
  const kernel = w.get('kernel');
  if (!kernel) throw new Error(`ONNX export: Conv3D ${layer.name} has no kernel`);
  const inputs = [x, g.floatInit(`${layer.name}.weight`, kernel.dims, kernel.values)];
  const bias = w.get('bias');
  if (bias) inputs.push(g.floatInit(`${layer.name}.bias`, bias.dims, bias.values));
  const padding = config.padding as string;
  if (padding !== 'same' && padding !== 'valid') throw new Error(`ONNX export: Conv3D padding ${padding}`);
  return g.node('Conv', inputs, layer.name, {
    kernel_shape: kernel.dims.slice(2),
    strides: triple(config.strides ?? 1, 'Conv3D', 'strides'),
    dilations: triple(config.dilationRate ?? 1, 'Conv3D', 'dilationRate'),
    ...(padding === 'same' ? { auto_pad: 'SAME_UPPER' } : { pads: [0, 0, 0, 0, 0, 0] }),
  });
}

function convTranspose(g: GraphBuilder, layer: Layer, config: Config, x: string): string {
  const w = weights(layer, KERNEL_PERM);
  const kernel = w.get('kernel');
  if (!kernel) throw new Error(`ONNX export: Conv3DTranspose ${layer.name} has no kernel`);
  const k = kernel.dims.slice(2);
  const strides = triple(config.strides ?? 1, 'Conv3DTranspose', 'strides');
  // With kernel == stride both 'same' and 'valid' give out = in * stride and no padding; other
  // combinations need TF's exact pad split, which the nets do not use.
  if (k.some((v, i) => v !== strides[i])) {
    throw new Error(`ONNX export: Conv3DTranspose ${layer.name} needs kernel size == strides`);
  }
  const inputs = [x, g.floatInit(`${layer.name}.weight`, kernel.dims, kernel.values)];
  const bias = w.get('bias');
  if (bias) inputs.push(g.floatInit(`${layer.name}.bias`, bias.dims, bias.values));
  return g.node('ConvTranspose', inputs, layer.name, { kernel_shape: k, strides, pads: [0, 0, 0, 0, 0, 0] });
}

function activation(g: GraphBuilder, cls: string, act: unknown, x: string, base: string): Emitted {
  const name = String(act ?? 'linear');
  switch (name) {
    case 'linear':
      return { name: x, activation: 'linear' };
    case 'relu':
      return { name: g.node('Relu', [x], `${base}.relu`), activation: 'linear' };
    case 'sigmoid':
      return { name: g.node('Sigmoid', [x], `${base}.sigmoid`), activation: 'sigmoid' };
    case 'tanh':
      return { name: g.node('Tanh', [x], `${base}.tanh`), activation: 'tanh' };
    case 'softmax':
      return { name: g.node('Softmax', [x], `${base}.softmax`, { axis: 1 }), activation: 'softmax' };
    case 'elu':
      return { name: g.node('Elu', [x], `${base}.elu`), activation: 'linear' };
    default:
      throw new Error(`ONNX export: ${cls} activation ${name} is not supported`);
  }
}

function normWeights(layer: Layer): { gamma: Float32Array; beta: Float32Array } {
  const w = weights(layer);
  const gamma = w.get('gamma');
  const beta = w.get('beta');
  if (!gamma || !beta) throw new Error(`ONNX export: ${layer.getClassName()} ${layer.name} lacks gamma/beta`);
  return { gamma: gamma.values, beta: beta.values };
}

function instanceNorm(g: GraphBuilder, layer: Layer, config: Config, x: string): string {
  const { gamma, beta } = normWeights(layer);
  const c = gamma.length;
  return g.node(
    'InstanceNormalization',
    [x, g.floatInit(`${layer.name}.scale`, [c], gamma), g.floatInit(`${layer.name}.bias`, [c], beta)],
    layer.name,
    { epsilon: { float: (config.epsilon as number) ?? 1e-5 } },
  );
}

/**
 * GroupNormalization is opset 18 (and changed in 21); at opset 17 it is [N,C,D,H,W] -> [N,G,rest] ->
 * InstanceNormalization (unit scale) -> back to the input's shape -> per-channel gamma and beta.
 */
function groupNorm(g: GraphBuilder, layer: Layer, config: Config, x: string): string {
  const { gamma, beta } = normWeights(layer);
  const c = gamma.length;
  const groups = config.groups as number;
  if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0) {
    throw new Error(`ONNX export: GroupNorm3D ${layer.name} has ${c} channels and ${groups} groups`);
  }
  const n = layer.name;
  const shape = g.node('Shape', [x], `${n}.shape`);
  const grouped = g.node('Reshape', [x, g.int64Init(`${n}.grouped_shape`, [0, groups, -1])], `${n}.grouped`);
  const normed = g.node(
    'InstanceNormalization',
    [
      grouped,
      g.floatInit(`${n}.unit_scale`, [groups], new Float32Array(groups).fill(1)),
      g.floatInit(`${n}.zero_bias`, [groups], new Float32Array(groups)),
    ],
    `${n}.normed`,
    { epsilon: { float: (config.epsilon as number) ?? 1e-5 } },
  );
  const back = g.node('Reshape', [normed, shape], `${n}.ungrouped`);
  const scaled = g.node('Mul', [back, g.floatInit(`${n}.gamma`, [c, 1, 1, 1], gamma)], `${n}.scaled`);
  return g.node('Add', [scaled, g.floatInit(`${n}.beta`, [c, 1, 1, 1], beta)], n);
}
