/**
 * One `infer` benchmark configuration in its own process, so that its peak RSS (maxRSS) is its own:
 * loads one ONNX file in onnxruntime-node, onnxruntime-web (wasm), or the kernels engine
 * (shared/engine: `kernels` is the Node build with worker threads, `kernels-st` the one-thread build
 * on a plain memory that the Worker runs), then either times single patches or segments a whole
 * volume, and prints one JSON line (median wall and CPU time in ms, peak RSS in MB).
 * Usage: node bench/infer-child.ts '<json of ChildJob>'
 */
import { readFile } from 'node:fs/promises';
import { createSingleThreadHost } from '../shared/engine/host.ts';
import { createKernelRunner } from '../shared/engine/runner.ts';
import { segmentVolume } from '../shared/inference/pipeline.ts';
import type { OnnxRunner } from '../shared/inference/runner.ts';
import { parseManifest } from '../shared/model/manifest.ts';
import { readNifti } from '../shared/volume/nifti.ts';
import { createEngineRunner } from '../trainer/kernels/engine-runner.ts';
import { createNodeRunner, createWebRunner } from '../trainer/runners/onnxruntime-node.ts';

export type ChildRuntime = 'node' | 'web' | 'kernels' | 'kernels-st';

export interface ChildJob {
  model: string;
  runtime: ChildRuntime;
  threads: number;
  mode: 'patch' | 'volume';
  /** patch: cube side; reps timed after one warm-up. */
  size?: number;
  reps?: number;
  /** volume: NIfTI path and manifest JSON path. */
  image?: string;
  manifest?: string;
}

async function open(runtime: ChildRuntime, bytes: Uint8Array, threads: number): Promise<OnnxRunner> {
  if (runtime === 'node') return createNodeRunner(bytes, { threads });
  if (runtime === 'web') return createWebRunner(bytes, { threads });
  if (runtime === 'kernels') return createEngineRunner(bytes, { threads });
  const wasm = await readFile(new URL('../shared/engine/wasm/kernels-st.wasm', import.meta.url));
  return createKernelRunner(bytes, await createSingleThreadHost(new WebAssembly.Module(wasm)));
}

const job = JSON.parse(process.argv[2]) as ChildJob;
const bytes = new Uint8Array(await readFile(job.model));
const runner = await open(job.runtime, bytes, job.threads);
const times: number[] = [];
const cpu: number[] = [];
const extra: Record<string, unknown> = {};
if (job.mode === 'patch') {
  const s = job.size ?? 64;
  const data = new Float32Array(s * s * s);
  for (let i = 0; i < data.length; i++) data[i] = (Math.sin(i * 0.0137) + 1) / 2;
  const input = { input: { dims: [1, 1, s, s, s] as [number, number, number, number, number], data } };
  await runner.run(input);
  for (let r = 0; r < (job.reps ?? 3); r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await runner.run(input);
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
} else {
  const volume = readNifti(new Uint8Array(await readFile(job.image!)));
  const manifest = parseManifest(JSON.parse(await readFile(job.manifest!, 'utf8')));
  let patches = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await segmentVolume(volume, manifest, runner, { onProgress: (_d, total) => (patches = total) });
  times.push(performance.now() - t0);
  const c = process.cpuUsage(c0);
  cpu.push((c.user + c.system) / 1000);
  extra.patches = patches;
  extra.modelDims = r.modelDims;
  extra.inputDims = volume.dims;
}
await runner.release?.();
times.sort((a, b) => a - b);
cpu.sort((a, b) => a - b);
process.stdout.write(
  `${JSON.stringify({ medianMs: times[Math.floor(times.length / 2)], cpuMs: cpu[Math.floor(cpu.length / 2)], times, maxRssMb: process.resourceUsage().maxRSS / 1024, ...extra })}\n`,
);
// onnxruntime-web keeps worker handles; the result is out, so leave now.
process.exit(0);
