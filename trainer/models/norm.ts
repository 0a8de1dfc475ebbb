/**
 * 5D normalisation layers (NDHWC). tfjs-layers' batchNormalization does not support rank 5, and
 * §10.6 of the method notes asks for instance or group normalisation anyway, so that a model's
 * output does not depend on the batch it runs in. Both are exported to ONNX by trainer/export
 * (InstanceNormalization, or a reshape + InstanceNormalization for groups).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initializers, type LayerVariable, layers } from '@tensorflow/tfjs-layers';

type Shape = (number | null)[];

export interface NormLayerArgs {
  name?: string;
  trainable?: boolean;
  epsilon?: number;
}

export interface GroupNormLayerArgs extends NormLayerArgs {
  groups: number;
}

/** Per-channel affine after normalisation, shared by both layers. */
abstract class AffineNorm3D extends layers.Layer {
  readonly epsilon: number;
  protected gamma: LayerVariable | null = null;
  protected beta: LayerVariable | null = null;

  constructor(args: NormLayerArgs) {
    super(args);
    this.epsilon = args.epsilon ?? 1e-5;
    this.supportsMasking = false;
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    if (shape.length !== 5)
      throw new Error(`${this.getClassName()} expects a rank-5 NDHWC input, got rank ${shape.length}`);
    const channels = shape[4];
    if (channels === null) throw new Error(`${this.getClassName()} needs a known channel count`);
    this.checkChannels(channels);
    this.gamma = this.addWeight('gamma', [channels], 'float32', initializers.ones());
    this.beta = this.addWeight('beta', [channels], 'float32', initializers.zeros());
    this.built = true;
  }

  protected checkChannels(_channels: number): void {}

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor5D;
      const normalised = this.normalise(x);
      // Rank-5 parameters: tfjs-webgpu's shared-memory path for a rank-1 operand emits invalid WGSL at rank 5.
      const c = x.shape[4];
      const gamma = tf.reshape((this.gamma as LayerVariable).read(), [1, 1, 1, 1, c]);
      const beta = tf.reshape((this.beta as LayerVariable).read(), [1, 1, 1, 1, c]);
      return tf.add(tf.mul(normalised, gamma), beta);
    });
  }

  protected abstract normalise(x: tf.Tensor5D): tf.Tensor;

  /** The whole layer (normalisation and affine) through the fused kernels. */
  protected fused(x: tf.Tensor5D, groups: number): tf.Tensor {
    const gamma = (this.gamma as LayerVariable).read();
    const beta = (this.beta as LayerVariable).read();
    return fusedNorm(x, gamma, beta, this.epsilon, groups);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), epsilon: this.epsilon };
  }
}

/**
 * Names of the fused normalisation kernels (forward, gradient) that trainer/kernels registers for
 * the cpu backend; a backend without them runs the composed ops, with the same results.
 */
const FUSED_KERNEL = 'FreeTumorInstanceNorm3D';
const FUSED_GRAD_KERNEL = 'FreeTumorInstanceNorm3DGrad';

/** Whether InstanceNorm3D and GroupNorm3D run as the fused kernels on the active backend. */
export function fusedInstanceNormActive(): boolean {
  const backend = tf.getBackend();
  return (
    tf.getKernel(FUSED_KERNEL, backend) !== undefined &&
    tf.getKernel(FUSED_GRAD_KERNEL, backend) !== undefined
  );
}

/**
 * gamma * (x - mean) * rsqrt(var + epsilon) + beta, statistics per sample and group of channels,
 * as one kernel and its gradient as another.
 */
function fusedNorm(
  x: tf.Tensor5D,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
  groups: number,
): tf.Tensor {
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, g, b] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const [y, mean, rstd] = tf
      .engine()
      .runKernel(FUSED_KERNEL, { x: input, gamma: g, beta: b }, { epsilon, groups }) as tf.Tensor[];
    save([input, g, mean, rstd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sg, sm, sr] = saved;
        return tf
          .engine()
          .runKernel(
            FUSED_GRAD_KERNEL,
            { dy, x: sx, gamma: sg, mean: sm, rstd: sr },
            { groups },
          ) as tf.Tensor[];
      },
    };
  });
  return run(x, gamma, beta);
}

/** Instance normalisation: statistics per sample and channel over D, H, W. */
export class InstanceNorm3D extends AffineNorm3D {
  static className = 'InstanceNorm3D';

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    if (!fusedInstanceNormActive()) return super.call(inputs);
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor5D;
    return this.fused(x, x.shape[4]);
  }

  protected normalise(x: tf.Tensor5D): tf.Tensor {
    const { mean, variance } = tf.moments(x, [1, 2, 3], true);
    return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.epsilon)));
  }
}

/** Group normalisation: statistics per sample and group of channels over D, H, W and the group. */
export class GroupNorm3D extends AffineNorm3D {
  static className = 'GroupNorm3D';
  readonly groups: number;

  constructor(args: GroupNormLayerArgs) {
    super(args);
    this.groups = args.groups;
    if (!Number.isInteger(this.groups) || this.groups < 1)
      throw new Error(`GroupNorm3D groups must be a positive integer`);
  }

  protected override checkChannels(channels: number): void {
    if (channels % this.groups !== 0) {
      throw new Error(`GroupNorm3D: ${channels} channels are not divisible into ${this.groups} groups`);
    }
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    if (!fusedInstanceNormActive()) return super.call(inputs);
    return this.fused((Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor5D, this.groups);
  }

  protected normalise(x: tf.Tensor5D): tf.Tensor {
    const [n, d, h, w, c] = x.shape;
    const grouped = tf.reshape(x, [n, d, h, w, this.groups, c / this.groups]);
    const { mean, variance } = tf.moments(grouped, [1, 2, 3, 5], true);
    const y = tf.mul(tf.sub(grouped, mean), tf.rsqrt(tf.add(variance, this.epsilon)));
    return tf.reshape(y, x.shape);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), groups: this.groups };
  }
}

tf.serialization.registerClass(InstanceNorm3D);
tf.serialization.registerClass(GroupNorm3D);
