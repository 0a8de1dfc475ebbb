/**
 * The trainer's real segmentation step (trainer/train/segmentation.ts: U-Net with instance norm,
 * DiceCE, AdamW) on one synthetic crop: what `bench -- train`, its child processes and
 * bench/profile-step.ts time. The backend must be selected first.
 */
import type { Batch } from '../trainer/data/batches.ts';
import { parseRunConfig } from '../trainer/train/config.ts';
import { createSegmentationTrainer } from '../trainer/train/segmentation.ts';

export interface BenchStep {
  /** Runs one training step (the step index advances each call). */
  step: () => Promise<void>;
  dispose: () => void;
}

export function benchTrainStep(side: number, model: { baseChannels: number; depth: number }): BenchStep {
  const config = parseRunConfig({
    kind: 'segmentation',
    steps: 1000,
    patchSize: side,
    casesPerStep: 1,
    cropsPerCase: 1,
    data: { datasets: [{ name: 'bench', format: 'msd', path: '-', organ: 'liver' }], workers: 0 },
    model: { ...model, norm: 'instance' },
    segmentation: { cutmix: false },
  });
  const trainer = createSegmentationTrainer(config);
  const n = side ** 3;
  const images = new Float32Array(n);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    images[i] = ((i * 2654435761) >>> 0) / 4294967296;
    labels[i] = images[i] > 0.7 ? 2 : images[i] > 0.4 ? 1 : 0;
  }
  const batch: Batch = {
    step: 0,
    size: 1,
    dims: [side, side, side],
    images,
    labels,
    organIndex: new Int32Array(1),
    caseIds: ['bench'],
    plans: [],
  };
  let s = 0;
  return {
    step: async () => {
      await trainer.step(batch, s++);
    },
    dispose: () => trainer.dispose(),
  };
}
