/**
 * `npm run bench -- infer`: ONNX inference of the exported U-Net (trainer/models/unet.ts
 * EDGE_UNET3D_SMALL, seeded weights) on onnxruntime-node and onnxruntime-web (wasm, 1 thread), fp32
 * and int8 weights, measured in the same run:
 * - per-patch latency at 64^3 and 96^3 (median), with the peak RSS of each configuration's own process;
 * - whole-volume segmentation (pipeline.ts: reorient, resample to 1.5 mm, 96^3 windows, overlap 0.5,
 *   gaussian) of the 3 mm TotalSegmentator sample, or of a phantom when ../shared/data is absent.
 * Baselines: web against node at the same precision; int8 against fp32 on the same runtime.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { generatePhantom } from '../shared/phantom/phantom.ts';
import { writeNifti } from '../shared/volume/nifti.ts';
import { writeModelDir } from '../trainer/export/manifest-writer.ts';
import { encodeModel, exportGraph } from '../trainer/export/onnx.ts';
import { quantizeWeightsInt8 } from '../trainer/export/quantize.ts';
import { buildUNet, EDGE_UNET3D_SMALL, EDGE_UNET3D_TINY, sizeMultiple } from '../trainer/models/unet.ts';
import { type BenchContext, type BenchResult, result } from './harness.ts';
import type { ChildJob } from './infer-child.ts';

const run = promisify(execFile);
const CHILD = new URL('./infer-child.ts', import.meta.url).pathname;

interface ChildResult {
  medianMs: number;
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
    for (const size of ctx.quick ? [32] : [64, 96]) {
      const ms: Record<string, ChildResult> = {};
      for (const runtime of ['node', 'web'] as const) {
        for (const precision of ['fp32', 'int8'] as const) {
          const key = `${runtime} ${precision}`;
          ctx.log(`infer: patch ${size}^3 ${key}`);
          ms[key] = await child({ model: paths[precision], runtime, threads: 1, mode: 'patch', size, reps });
        }
      }
      const name = (k: string) => `patch ${size}^3 ort-${k} 1 thread`;
      yield result('infer', name('node fp32'), ms['node fp32'].medianMs, 'ms');
      yield result(
        'infer',
        name('web fp32'),
        ms['web fp32'].medianMs,
        'ms',
        ms['node fp32'].medianMs,
        'ort-node fp32',
      );
      yield result(
        'infer',
        name('node int8'),
        ms['node int8'].medianMs,
        'ms',
        ms['node fp32'].medianMs,
        'ort-node fp32',
      );
      yield result(
        'infer',
        name('web int8'),
        ms['web int8'].medianMs,
        'ms',
        ms['web fp32'].medianMs,
        'ort-web fp32',
      );
      for (const k of Object.keys(ms)) {
        const base = k.startsWith('web') ? ms[k.replace('web', 'node')].maxRssMb : null;
        yield result(
          'infer',
          `peak RSS patch ${size}^3 ort-${k}`,
          ms[k].maxRssMb,
          'MB',
          base,
          base ? 'ort-node same precision' : undefined,
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
    for (const runtime of ['node', 'web'] as const) {
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
          : k.startsWith('web')
            ? vol[k.replace('web', 'node')]
            : undefined;
      const baseName =
        k === 'node int8' ? 'ort-node fp32' : k.startsWith('web') ? 'ort-node same precision' : undefined;
      yield result(
        'infer',
        `volume ${what} ort-${k} 1 thread`,
        v.medianMs / 1000,
        's',
        base ? base.medianMs / 1000 : null,
        baseName,
      );
      yield result('infer', `peak RSS volume ort-${k}`, v.maxRssMb, 'MB', base?.maxRssMb ?? null, baseName);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export { run_ as run };
