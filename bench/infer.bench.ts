/**
 * `npm run bench -- infer`: ONNX inference of the exported U-Net (trainer/models/unet.ts
 * EDGE_UNET3D_SMALL, seeded weights) on onnxruntime-node and onnxruntime-web (wasm, 1 thread), fp32
 * and int8 weights, measured in the same run:
 * - per-patch latency at 64^3 and 96^3 (median), with the peak RSS of each configuration's own process;
 * - whole-volume segmentation (pipeline.ts: reorient, resample to 1.5 mm, 96^3 windows, overlap 0.5,
 *   gaussian) of the 3 mm TotalSegmentator sample, or of a phantom when ../shared/data is absent.
 * - the kernels engine (shared/engine) on the same files: `kernels` (Node, worker threads) and
 *   `kernels-st` (the one-thread build on a plain memory, as the Worker runs it);
 * - PyTorch CPU (bench/reference/unet_ref.py, the same architecture) with 1 and N threads, in the same
 *   run; its rows are left out without python3-torch.
 * Baselines: web and kernels against node at the same precision; int8 against fp32 on the same
 * runtime; kernels and ort-node against PyTorch with as many threads. CPU-time rows next to the wall
 * times, since wall time on a shared machine includes waiting for a core.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { generatePhantom } from '../shared/phantom/phantom.ts';
import { writeNifti } from '../shared/volume/nifti.ts';
import { writeModelDir } from '../trainer/export/manifest-writer.ts';
import { encodeModel, exportGraph } from '../trainer/export/onnx.ts';
import { quantizeWeightsInt8 } from '../trainer/export/quantize.ts';
import { defaultThreads } from '../trainer/kernels/wasm-runtime.ts';
import { buildUNet, EDGE_UNET3D_SMALL, EDGE_UNET3D_TINY, sizeMultiple } from '../trainer/models/unet.ts';
import { type BenchContext, type BenchResult, result } from './harness.ts';
import type { ChildJob, ChildRuntime } from './infer-child.ts';
import { type ChildTiming, torchAvailable, torchRun } from './torch-ref.ts';

const run = promisify(execFile);
const CHILD = new URL('./infer-child.ts', import.meta.url).pathname;

interface ChildResult {
  medianMs: number;
  cpuMs: number;
  maxRssMb: number;
  patches?: number;
  modelDims?: number[];
}

async function child(job: ChildJob): Promise<ChildResult> {
  const { stdout } = await run(process.execPath, [CHILD, JSON.stringify(job)], {
    maxBuffer: 1 << 20,
    timeout: 1_800_000,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

export async function* run_(ctx: BenchContext): AsyncGenerator<BenchResult> {
  await import('@tensorflow/tfjs-backend-cpu');
  await tf.setBackend('cpu');
  const cfg = ctx.quick ? EDGE_UNET3D_TINY : EDGE_UNET3D_SMALL;
  const dir = await mkdtemp(join(tmpdir(), 'ft-bench-infer-'));
  try {
    const net = buildUNet({ ...cfg, seed: 1 });
    const graph = exportGraph(net);
    net.dispose();
    const files = {
      fp32: encodeModel(graph.model),
      int8: encodeModel(quantizeWeightsInt8(graph.model).model),
    };
    const paths = { fp32: join(dir, 'model.fp32.onnx'), int8: join(dir, 'model.int8.onnx') };
    await writeFile(paths.fp32, files.fp32);
    await writeFile(paths.int8, files.int8);
    ctx.log(
      `infer: ${cfg.baseChannels}-channel depth-${cfg.depth} U-Net, fp32 ${files.fp32.length} B, int8 ${files.int8.length} B`,
    );
    yield result(
      'infer',
      'model file int8',
      files.int8.length / 1e6,
      'MB',
      files.fp32.length / 1e6,
      'fp32 file',
    );

    const reps = ctx.quick ? 1 : 3;
    const threads = defaultThreads();
    const torchName = (t: number) => `PyTorch CPU ${t} thread${t > 1 ? 's' : ''} (same run)`;
    if (!torchAvailable())
      ctx.log('infer: /usr/bin/python3 has no torch (python3-torch); PyTorch rows left out');
    for (const size of ctx.quick ? [32] : [64, 96]) {
      const ms: Record<string, ChildResult> = {};
      const configs: Array<[string, ChildRuntime, 'fp32' | 'int8', number]> = [
        ['ort-node fp32 1t', 'node', 'fp32', 1],
        ['ort-node int8 1t', 'node', 'int8', 1],
        ['ort-web fp32 1t', 'web', 'fp32', 1],
        ['ort-web int8 1t', 'web', 'int8', 1],
        ['kernels fp32 1t', 'kernels', 'fp32', 1],
        ['kernels int8 1t', 'kernels', 'int8', 1],
        ['kernels-st int8 1t', 'kernels-st', 'int8', 1],
        [`ort-node fp32 ${threads}t`, 'node', 'fp32', threads],
        [`kernels fp32 ${threads}t`, 'kernels', 'fp32', threads],
      ];
      for (const [key, runtime, precision, t] of configs) {
        if (t > 1 && threads === 1) continue;
        ctx.log(`infer: patch ${size}^3 ${key}`);
        ms[key] = await child({ model: paths[precision], runtime, threads: t, mode: 'patch', size, reps });
      }
      const torch: Record<number, ChildTiming | null> = {};
      for (const t of threads > 1 ? [1, threads] : [1]) {
        ctx.log(`infer: patch ${size}^3 PyTorch ${t} thread(s)`);
        torch[t] = await torchRun({
          mode: 'forward',
          side: size,
          baseChannels: cfg.baseChannels,
          depth: cfg.depth,
          threads: t,
          reps,
          warmup: 1,
        });
      }
      ctx.log(`infer: load average ${loadavg()[0].toFixed(1)}`);
      const row = function* (key: string, baseKey: string | null, baseName: string, cpu = false) {
        const v = ms[key];
        const b = baseKey === null ? null : ms[baseKey];
        if (!v) return;
        const value = cpu ? v.cpuMs : v.medianMs;
        const base = b ? (cpu ? b.cpuMs : b.medianMs) : null;
        yield result(
          'infer',
          `patch ${size}^3 ${key}${cpu ? ', CPU time' : ''}`,
          value,
          cpu ? 'cpu-ms' : 'ms',
          base,
          b ? baseName : undefined,
        );
      };
      const vsTorch = function* (key: string, t: number, cpu = false) {
        const v = ms[key];
        const b = torch[t];
        if (!v || !b) return;
        yield result(
          'infer',
          `patch ${size}^3 ${key} vs PyTorch${cpu ? ', CPU time' : ''}`,
          cpu ? v.cpuMs : v.medianMs,
          cpu ? 'cpu-ms' : 'ms',
          cpu ? b.cpuMs : b.medianMs,
          torchName(t),
        );
      };
      yield* row('ort-node fp32 1t', null, '');
      yield* vsTorch('ort-node fp32 1t', 1);
      yield* row('ort-node int8 1t', 'ort-node fp32 1t', 'ort-node fp32 1t');
      yield* row('ort-web fp32 1t', 'ort-node fp32 1t', 'ort-node fp32 1t');
      yield* row('ort-web int8 1t', 'ort-node int8 1t', 'ort-node int8 1t');
      yield* row('kernels fp32 1t', 'ort-node fp32 1t', 'ort-node fp32 1t');
      yield* row('kernels fp32 1t', 'ort-node fp32 1t', 'ort-node fp32 1t', true);
      yield* vsTorch('kernels fp32 1t', 1);
      yield* vsTorch('kernels fp32 1t', 1, true);
      yield* row('kernels int8 1t', 'ort-node int8 1t', 'ort-node int8 1t');
      yield* row('kernels-st int8 1t', 'ort-web int8 1t', 'ort-web int8 1t (the Worker today)');
      yield* row('kernels-st int8 1t', 'ort-node int8 1t', 'ort-node int8 1t');
      yield* vsTorch('kernels-st int8 1t', 1);
      if (threads > 1) {
        yield* row(`kernels fp32 ${threads}t`, `ort-node fp32 ${threads}t`, `ort-node fp32 ${threads}t`);
        yield* vsTorch(`kernels fp32 ${threads}t`, threads);
        yield* vsTorch(`ort-node fp32 ${threads}t`, threads);
      }
      for (const t of Object.keys(torch).map(Number)) {
        const b = torch[t];
        if (b) yield result('infer', `patch ${size}^3 PyTorch ${t}t`, b.medianMs, 'ms');
      }
      for (const [k, v] of Object.entries(ms)) {
        const base = torch[k.endsWith('1t') ? 1 : threads];
        yield result(
          'infer',
          `peak RSS patch ${size}^3 ${k}`,
          v.maxRssMb,
          'MB',
          base?.maxRssMb ?? null,
          base ? torchName(k.endsWith('1t') ? 1 : threads) : undefined,
        );
      }
    }

    // Whole volume: the real 3 mm sample when present, else a phantom at 3 mm.
    const sample = ctx.sharedData ? join(ctx.sharedData, 'totalseg-example/example_ct.nii.gz') : null;
    let image = sample;
    if (!image) {
      image = join(dir, 'phantom.nii.gz');
      await writeFile(image, writeNifti(generatePhantom({ seed: 1, spacing: 3 }).ct));
    }
    const patch = ctx.quick ? 32 : 96;
    const { path: manifest } = await writeModelDir(
      dir,
      {
        name: 'bench',
        role: 'segmentor',
        version: '0',
        created: new Date().toISOString(),
        organs: ['liver'],
        inputs: [{ name: graph.inputName, shape: ['N', 1, 'D', 'H', 'W'], dtype: 'float32' }],
        outputs: [
          { name: graph.outputName, shape: ['N', graph.outChannels, 'D', 'H', 'W'], dtype: 'float32' },
        ],
        preprocessing: {
          spacing: ctx.quick ? [3, 3, 3] : [1.5, 1.5, 1.5],
          window: [-175, 250],
          orientation: 'RAS',
          patchSize: [patch, patch, patch],
          overlap: ctx.quick ? 0 : 0.5,
          blending: 'gaussian',
          divisor: sizeMultiple(cfg),
        },
        labels: ['background', 'organ', 'tumor'],
        outputActivation: 'softmax',
        metrics: {},
      },
      files,
    );
    const what = sample ? 'totalseg 3mm sample' : 'phantom 3mm';
    const vol: Record<string, ChildResult> = {};
    for (const runtime of ['node', 'web', 'kernels'] as const) {
      for (const precision of ['int8', 'fp32'] as const) {
        // ort-web fp32 on the whole volume adds minutes and no new comparison; quick runs keep int8 only.
        if (runtime === 'web' && precision === 'fp32') continue;
        if (ctx.quick && precision === 'fp32') continue;
        const key = `${runtime} ${precision}`;
        ctx.log(`infer: whole volume (${what}) ${key}`);
        vol[key] = await child({
          model: paths[precision],
          runtime,
          threads: 1,
          mode: 'volume',
          image,
          manifest,
        });
      }
    }
    const first = Object.values(vol)[0];
    ctx.log(`infer: whole volume model grid ${first.modelDims?.join('x')}, ${first.patches} patches`);
    for (const [k, v] of Object.entries(vol)) {
      const base =
        k === 'node int8'
          ? vol['node fp32']
          : k.startsWith('web') || k.startsWith('kernels')
            ? vol[k.replace(/web|kernels/, 'node')]
            : undefined;
      const baseName =
        k === 'node int8'
          ? 'ort-node fp32'
          : k.startsWith('web') || k.startsWith('kernels')
            ? 'ort-node same precision'
            : undefined;
      const name = k.startsWith('kernels') ? k : `ort-${k}`;
      yield result(
        'infer',
        `volume ${what} ${name} 1 thread`,
        v.medianMs / 1000,
        's',
        base ? base.medianMs / 1000 : null,
        baseName,
      );
      yield result('infer', `peak RSS volume ${name}`, v.maxRssMb, 'MB', base?.maxRssMb ?? null, baseName);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export { run_ as run };
