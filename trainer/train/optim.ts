/**
 * Optimisers with state that checkpoints can save and restore bit for bit.
 *
 * AdamW (decoupled weight decay, Loshchilov & Hutter; as torch.optim.AdamW including amsgrad):
 *   p <- p * (1 - lr * wd);  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  (amsgrad: vmax <- max(vmax, v))
 *   p <- p - lr * (m / (1 - b1^t)) / (sqrt(v' / (1 - b2^t)) + eps)
 * With wd = 0 this is Adam (the GAN uses betas (0, 0.999), notes §3).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ADAMW_KERNEL, fusedAdamWActive } from '../kernels/adamw.ts';

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  amsgrad: boolean;
}

export const ADAMW_DEFAULTS: AdamWOptions = {
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  weightDecay: 0.01,
  amsgrad: false,
};

export interface OptimizerState {
  step: number;
  /** Per variable, in the order of `variables`: m, v and (amsgrad) vmax. */
  slots: Float32Array[][];
}

export class AdamW {
  readonly variables: tf.Variable[];
  readonly options: AdamWOptions;
  step = 0;
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  private readonly vmax: tf.Variable[];

  constructor(variables: tf.Variable[], options: Partial<AdamWOptions> = {}) {
    this.variables = variables;
    this.options = { ...ADAMW_DEFAULTS, ...options };
    const zeros = () => variables.map((x) => tf.variable(tf.zerosLike(x), false));
    this.m = zeros();
    this.v = zeros();
    this.vmax = this.options.amsgrad ? zeros() : [];
  }

  /** One update with gradients keyed by variable name (as tf.variableGrads returns them). */
  apply(grads: tf.NamedTensorMap, lr: number): void {
    this.step += 1;
    const { beta1, beta2, epsilon, weightDecay, amsgrad } = this.options;
    const bc1 = 1 - beta1 ** this.step;
    const bc2 = 1 - beta2 ** this.step;
    const fused = fusedAdamWActive();
    tf.tidy(() => {
      this.variables.forEach((p, i) => {
        const g = grads[p.name];
        if (!g) return;
        if (fused) {
          // One pass per variable (trainer/kernels/adamw.ts), the same bits as the ops below.
          const inputs = { p, g, m: this.m[i], v: this.v[i], ...(amsgrad ? { vmax: this.vmax[i] } : {}) };
          const attrs = { lr, beta1, beta2, epsilon, weightDecay, bc1, bc2 };
          const out = tf.engine().runKernel(ADAMW_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap);
          [p, this.m[i], this.v[i], ...(amsgrad ? [this.vmax[i]] : [])].forEach((t, k) => {
            t.assign((out as tf.Tensor[])[k]);
          });
          return;
        }
        const m = tf.add(tf.mul(this.m[i], beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.v[i], beta2), tf.mul(tf.square(g), 1 - beta2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        let vUsed: tf.Tensor = v;
        if (amsgrad) {
          vUsed = tf.maximum(this.vmax[i], v);
          this.vmax[i].assign(vUsed);
        }
        const decayed = weightDecay > 0 ? tf.mul(p, 1 - lr * weightDecay) : p;
        const update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(vUsed, bc2)), epsilon));
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    });
  }

  async getState(): Promise<OptimizerState> {
    const slots: Float32Array[][] = [];
    for (let i = 0; i < this.variables.length; i++) {
      const s = [this.m[i], this.v[i], ...(this.options.amsgrad ? [this.vmax[i]] : [])];
      slots.push(await Promise.all(s.map(async (t) => (await t.data()) as Float32Array)));
    }
    return { step: this.step, slots };
  }

  setState(state: OptimizerState): void {
    if (state.slots.length !== this.variables.length) {
      throw new Error(
        `optimizer state has ${state.slots.length} variables, the model has ${this.variables.length}`,
      );
    }
    this.step = state.step;
    state.slots.forEach((s, i) => {
      const targets = [this.m[i], this.v[i], ...(this.options.amsgrad ? [this.vmax[i]] : [])];
      targets.forEach((t, j) => {
        const value = tf.tensor(s[j], t.shape);
        t.assign(value);
        value.dispose();
      });
    });
  }

  dispose(): void {
    tf.dispose([...this.m, ...this.v, ...this.vmax]);
  }
}

export interface WarmupCosine {
  baseLr: number;
  warmupSteps: number;
  totalSteps: number;
  /** Floor at the end of the cosine (default 0). */
  minLr?: number;
}

/** Linear warmup from 0 then cosine to minLr (MONAI LinearWarmupCosineAnnealingLR, per iteration). */
export function warmupCosineLr(step: number, s: WarmupCosine): number {
  const min = s.minLr ?? 0;
  if (s.warmupSteps > 0 && step < s.warmupSteps) return (s.baseLr * step) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const t = Math.min(1, (step - s.warmupSteps) / span);
  return min + (s.baseLr - min) * 0.5 * (1 + Math.cos(Math.PI * t));
}
