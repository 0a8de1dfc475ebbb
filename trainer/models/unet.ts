/**
 * A configurable 3D U-Net in tfjs-layers (NDHWC), covering the reference UNet3D of FreeTumor
 * (models/Unet.py: 32-64 / 64-128 / 128-256 / 256-512, ~19M parameters) and slim variants for the
 * edge. Each "conv" is Conv3D 3x3x3 'same' + bias -> norm -> ReLU, as in the reference, but with
 * instance or group normalisation instead of batch-statistics BatchNorm (method notes §10.6).
 *
 * Encoder level l: conv -> widths[l]/2, conv -> widths[l], then MaxPool 2 (not after the last level).
 * Decoder level l (from depth-2 down to 0): Conv3DTranspose (kernel 2, stride 2, same width as its
 * input) -> concat with the skip of level l -> conv -> widths[l] -> conv -> widths[l].
 * Head: Conv3D 1x1x1 -> outChannels, then the head activation (softmax over channels, tanh, ...).
 * Only the layer types the ONNX exporter (trainer/export) maps are used.
 */
import {
  initializers,
  input,
  type LayersModel,
  layers,
  model,
  type SymbolicTensor,
} from '@tensorflow/tfjs-layers';
import { GroupNorm3D, InstanceNorm3D } from './norm.ts';

export type NormKind = 'instance' | 'group' | 'none';
export type HeadKind = 'softmax' | 'tanh' | 'sigmoid' | 'linear';

export interface UNetConfig {
  inChannels: number;
  outChannels: number;
  /** widths[l] = baseChannels * 2^(l+1) unless `widths` is given. */
  baseChannels: number;
  /** Number of resolution levels (the reference has 4: three poolings). */
  depth: number;
  norm: NormKind;
  /** Groups for norm 'group' (default 8, clamped so that it divides every width). */
  groups?: number;
  head: HeadKind;
  /** Output width of each encoder level; overrides baseChannels. Length = depth. */
  widths?: number[];
  /** Seed of the weight initialisers: the same config and seed give the same initial weights. */
  seed?: number;
  name?: string;
}

/** The reference UNet3D (G and D of the FreeTumor code) with instance norm: ~19M parameters. */
export const REFERENCE_UNET3D: UNetConfig = Object.freeze({
  inChannels: 1,
  outChannels: 3,
  baseChannels: 32,
  depth: 4,
  norm: 'instance',
  head: 'softmax',
}) as UNetConfig;

/** A slim segmentor for the edge (~1.2M parameters; 4 levels of 16-32 ... 128). */
export const EDGE_UNET3D_SMALL: UNetConfig = Object.freeze({
  inChannels: 1,
  outChannels: 3,
  baseChannels: 8,
  depth: 4,
  norm: 'instance',
  head: 'softmax',
}) as UNetConfig;

/** The smallest useful variant (~72k parameters; 3 levels of widths 8-16-32), for fast edge inference and tests. */
export const EDGE_UNET3D_TINY: UNetConfig = Object.freeze({
  inChannels: 1,
  outChannels: 3,
  baseChannels: 4,
  depth: 3,
  norm: 'instance',
  head: 'softmax',
}) as UNetConfig;

/** Widths per encoder level after defaults. */
export function levelWidths(cfg: UNetConfig): number[] {
  if (cfg.widths) {
    if (cfg.widths.length !== cfg.depth)
      throw new Error(`UNet widths has ${cfg.widths.length} entries, depth is ${cfg.depth}`);
    return [...cfg.widths];
  }
  return Array.from({ length: cfg.depth }, (_, l) => cfg.baseChannels * 2 ** (l + 1));
}

/** Patch sides must be multiples of this (one halving per pooling). */
export function sizeMultiple(cfg: UNetConfig): number {
  return 2 ** (cfg.depth - 1);
}

export function validateUNetConfig(cfg: UNetConfig): void {
  const positive = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new Error(`UNet ${name} must be a positive integer, got ${v}`);
  };
  positive('inChannels', cfg.inChannels);
  positive('outChannels', cfg.outChannels);
  positive('baseChannels', cfg.baseChannels);
  positive('depth', cfg.depth);
  if (cfg.depth > 6) throw new Error(`UNet depth must be <= 6, got ${cfg.depth}`);
  for (const w of levelWidths(cfg)) positive('width', w);
}

function groupsFor(width: number, wanted: number): number {
  let g = Math.min(wanted, width);
  while (width % g !== 0) g--;
  return g;
}

/** Builds the U-Net. Input [null, null, null, null, inChannels]: any batch and any size multiple of sizeMultiple(). */
export function buildUNet(cfg: UNetConfig): LayersModel {
  validateUNetConfig(cfg);
  const widths = levelWidths(cfg);
  const baseSeed = (cfg.seed ?? 0) >>> 0;
  let layerIndex = 0;
  const nextSeed = () => (baseSeed * 7919 + ++layerIndex * 104729) % 2147483647;

  const convBlock = (x: SymbolicTensor, filters: number, name: string): SymbolicTensor => {
    const fused = cfg.norm === 'none';
    let y = layers
      .conv3d({
        name,
        filters,
        kernelSize: 3,
        padding: 'same',
        useBias: true,
        activation: fused ? 'relu' : 'linear',
        kernelInitializer: initializers.heNormal({ seed: nextSeed() }),
        biasInitializer: 'zeros',
      })
      .apply(x) as SymbolicTensor;
    if (fused) return y;
    const norm =
      cfg.norm === 'instance'
        ? new InstanceNorm3D({ name: `${name}_norm` })
        : new GroupNorm3D({ name: `${name}_norm`, groups: groupsFor(filters, cfg.groups ?? 8) });
    y = norm.apply(y) as SymbolicTensor;
    return layers.activation({ name: `${name}_relu`, activation: 'relu' }).apply(y) as SymbolicTensor;
  };

  const inp = input({ shape: [null, null, null, cfg.inChannels], name: 'image' });
  let x: SymbolicTensor = inp;
  const skips: SymbolicTensor[] = [];
  for (let l = 0; l < cfg.depth; l++) {
    x = convBlock(x, Math.max(1, Math.floor(widths[l] / 2)), `enc${l}_conv1`);
    x = convBlock(x, widths[l], `enc${l}_conv2`);
    if (l < cfg.depth - 1) {
      skips.push(x);
      x = layers
        .maxPooling3d({ name: `enc${l}_pool`, poolSize: 2, strides: 2, padding: 'valid' })
        .apply(x) as SymbolicTensor;
    }
  }
  for (let l = cfg.depth - 2; l >= 0; l--) {
    const channels = x.shape[4] as number;
    x = layers
      .conv3dTranspose({
        name: `dec${l}_up`,
        filters: channels,
        kernelSize: 2,
        strides: 2,
        padding: 'same',
        useBias: true,
        kernelInitializer: initializers.heNormal({ seed: nextSeed() }),
        biasInitializer: 'zeros',
      })
      .apply(x) as SymbolicTensor;
    x = layers.concatenate({ name: `dec${l}_concat`, axis: -1 }).apply([x, skips[l]]) as SymbolicTensor;
    x = convBlock(x, widths[l], `dec${l}_conv1`);
    x = convBlock(x, widths[l], `dec${l}_conv2`);
  }
  x = layers
    .conv3d({
      name: 'head_conv',
      filters: cfg.outChannels,
      kernelSize: 1,
      padding: 'same',
      useBias: true,
      kernelInitializer: initializers.glorotUniform({ seed: nextSeed() }),
      biasInitializer: 'zeros',
    })
    .apply(x) as SymbolicTensor;
  const out = layers
    .activation({ name: `head_${cfg.head}`, activation: cfg.head })
    .apply(x) as SymbolicTensor;
  return model({ inputs: inp, outputs: out, name: cfg.name ?? 'unet3d' });
}

/** Generator: tanh, one channel per organ (method notes §10.2). */
export function generatorConfig(base: Partial<UNetConfig> = {}, organs = 3): UNetConfig {
  return { ...REFERENCE_UNET3D, ...base, outChannels: organs, head: 'tanh', name: 'generator' };
}

/** Voxel discriminator: softmax over background/other, real tumor, synthetic tumor. */
export function discriminatorConfig(base: Partial<UNetConfig> = {}): UNetConfig {
  return { ...REFERENCE_UNET3D, ...base, outChannels: 3, head: 'softmax', name: 'discriminator' };
}

/** Segmentor: softmax over background, organ, tumor. */
export function segmentorConfig(base: Partial<UNetConfig> = {}, classes = 3): UNetConfig {
  return { ...REFERENCE_UNET3D, ...base, outChannels: classes, head: 'softmax', name: 'segmentor' };
}

/** Number of trainable scalars. */
export function parameterCount(m: LayersModel): number {
  return m.trainableWeights.reduce((n, w) => n + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);
}
