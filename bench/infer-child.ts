/**
 * One `infer` benchmark configuration in its own process, so that its peak RSS (maxRSS) is its own:
 * loads one ONNX file in onnxruntime-node or onnxruntime-web (wasm), then either times single
 * patches or segments a whole volume, and prints one JSON line.
 * Usage: node bench/infer-child.ts '<json of ChildJob>'
 */
import { readFile } from 'node:fs/promises';
import { segmentVolume } from '../shared/inference/pipeline.ts';
import { parseManifest } from '../shared/model/manifest.ts';
import { readNifti } from '../shared/volume/nifti.ts';
import { createNodeRunner, createWebRunner } from '../trainer/runners/onnxruntime-node.ts';

export interface ChildJob {
  model: string;
  runtime: 'node' | 'web';
  threads: number;
  mode: 'patch' | 'volume';
  /** patch: cube side; reps timed after one warm-up. */
  size?: number;
  reps?: number;
  /** volume: NIfTI path and manifest JSON path. */
  image?: string;
  manifest?: string;
}

const job = JSON.parse(process.argv[2]) as ChildJob;
const bytes = new Uint8Array(await readFile(job.model));
const runner =
  job.runtime === 'node'
    ? await createNodeRunner(bytes, { threads: job.threads })
    : await createWebRunner(bytes, { threads: job.threads });
const times: number[] = [];
const extra: Record<string, unknown> = {};
if (job.mode === 'patch') {
  const s = job.size ?? 64;
  const data = new Float32Array(s * s * s);
  for (let i = 0; i < data.length; i++) data[i] = (Math.sin(i * 0.0137) + 1) / 2;
  const input = { input: { dims: [1, 1, s, s, s] as [number, number, number, number, number], data } };
  await runner.run(input);
  for (let r = 0; r < (job.reps ?? 3); r++) {
    const t0 = performance.now();
    await runner.run(input);
    times.push(performance.now() - t0);
  }
} else {
  const volume = readNifti(new Uint8Array(await readFile(job.image!)));
  const manifest = parseManifest(JSON.parse(await readFile(job.manifest!, 'utf8')));
  let patches = 0;
  const t0 = performance.now();
  const r = await segmentVolume(volume, manifest, runner, { onProgress: (_d, total) => (patches = total) });
  times.push(performance.now() - t0);
  extra.patches = patches;
  extra.modelDims = r.modelDims;
  extra.inputDims = volume.dims;
}
await runner.release?.();
times.sort((a, b) => a - b);
process.stdout.write(
  `${JSON.stringify({ medianMs: times[Math.floor(times.length / 2)], times, maxRssMb: process.resourceUsage().maxRSS / 1024, ...extra })}\n`,
);
// onnxruntime-web keeps worker handles; the result is out, so leave now.
process.exit(0);
