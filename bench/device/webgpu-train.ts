// Device-only: time segmentation training steps on the webgpu backend (Dawn/Vulkan on the GPU).
import { releaseBackend, selectBackend } from '../../trainer/backend.ts';
import type { Batch } from '../../trainer/data/batches.ts';
import { parseRunConfig } from '../../trainer/train/config.ts';
import { createSegmentationTrainer } from '../../trainer/train/segmentation.ts';

const cases = [
  { label: 'tiny 32^3 c8 b1', side: 32, b: 1, model: { baseChannels: 4, depth: 2 }, reps: 10 },
  { label: 'tiny 64^3 c16 b1', side: 64, b: 1, model: { baseChannels: 8, depth: 2 }, reps: 10 },
  { label: 'reference UNet3D 96^3 b1', side: 96, b: 1, model: { baseChannels: 32, depth: 4 }, reps: 5 },
  { label: 'reference UNet3D 96^3 b2', side: 96, b: 2, model: { baseChannels: 32, depth: 4 }, reps: 5 },
];
const only = process.argv[2];
const sel = await selectBackend((process.env.BACKEND ?? 'webgpu') as 'webgpu' | 'cpu');
console.log('backend:', sel.name, sel.detail);
for (const c of cases) {
  if (only && !c.label.includes(only)) continue;
  const config = parseRunConfig({
    kind: 'segmentation',
    steps: 1000,
    patchSize: c.side,
    casesPerStep: c.b,
    cropsPerCase: 1,
    data: { datasets: [{ name: 'bench', format: 'msd', path: '-', organ: 'liver' }], workers: 0 },
    model: { ...c.model, norm: 'instance' },
    segmentation: { cutmix: false },
  });
  const trainer = createSegmentationTrainer(config);
  const n = c.side ** 3;
  const images = new Float32Array(n * c.b);
  const labels = new Uint8Array(n * c.b);
  for (let i = 0; i < n * c.b; i++) {
    images[i] = ((i * 2654435761) >>> 0) / 4294967296;
    labels[i] = images[i] > 0.7 ? 2 : images[i] > 0.4 ? 1 : 0;
  }
  const batch: Batch = {
    step: 0,
    size: c.b,
    dims: [c.side, c.side, c.side],
    images,
    labels,
    organIndex: new Int32Array(c.b),
    caseIds: Array(c.b).fill('bench'),
    plans: [],
  };
  const t0 = performance.now();
  let s = 0;
  try {
    await trainer.step(batch, s++);
    const first = performance.now() - t0;
    await trainer.step(batch, s++);
    const times: number[] = [];
    for (let r = 0; r < c.reps; r++) {
      const t = performance.now();
      await trainer.step(batch, s++);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        case: c.label,
        firstMs: Math.round(first),
        medianMs: +times[times.length >> 1].toFixed(1),
        minMs: +times[0].toFixed(1),
      }),
    );
  } catch (e) {
    console.log(JSON.stringify({ case: c.label, error: String((e as Error).message).slice(0, 300) }));
  } finally {
    trainer.dispose();
  }
}
releaseBackend();
process.exit(0);
