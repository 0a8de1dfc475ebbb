/**
 * `npm run bench -- train`: the trainer's real segmentation step (U-Net with instance norm, DiceCE,
 * backward, AdamW; trainer/train/segmentation.ts), batch 1, at 32^3 (widths 8-16, "c8"), 64^3
 * (widths 16-32, "c16") and 96^3 (widths 32-64, "c32"), plus the reference UNet3D (~19M parameters)
 * at 96^3 where feasible.
 * On cpu each configuration runs in its own process (train-child.ts), so each peak RSS is its own:
 * the fast kernels of trainer/kernels against the stock tfjs kernels (before/after, same run; stock is
 * skipped at 96^3, where a step takes most of an hour) and against PyTorch CPU on the same
 * architecture with as many threads (bench/reference/unet_ref.py; rows left out without
 * python3-torch). Wall time on a shared machine includes waiting for a core, so CPU-time rows are
 * given too, and the load average is logged. The reference at 96^3 on cpu is not run: its row is an
 * estimate from the multiply-adds and the throughput measured on the 64^3 net, named as such.
 * With --quick: fewer repetitions and no 64^3 step on stock kernels (about 150 s).
 */
import { execFile } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { type BackendName, releaseBackend, selectBackend } from '../trainer/backend.ts';
import { defaultThreads } from '../trainer/kernels/wasm-runtime.ts';
import { levelWidths, REFERENCE_UNET3D, type UNetConfig } from '../trainer/models/unet.ts';
import { type BenchContext, type BenchResult, result, timeMedian } from './harness.ts';
import { type ChildTiming, torchAvailable, torchRun } from './torch-ref.ts';
import type { TrainJob } from './train-child.ts';
import { benchTrainStep } from './train-step.ts';

const GROUP = 'train';

interface Case {
  label: string;
  side: number;
  model: { baseChannels: number; depth: number };
}

const TINY_32: Case = { label: 'tiny U-Net 32^3 c8', side: 32, model: { baseChannels: 4, depth: 2 } };
const TINY_64: Case = { label: 'tiny U-Net 64^3 c16', side: 64, model: { baseChannels: 8, depth: 2 } };
const C32_96: Case = { label: 'U-Net 96^3 c32', side: 96, model: { baseChannels: 16, depth: 2 } };
const REFERENCE_96: Case = {
  label: 'reference UNet3D 96^3',
  side: 96,
  model: { baseChannels: 32, depth: 4 },
};

/** Multiply-adds of one forward pass (convolutions only) at side^3, batch 1. */
export function forwardMacs(
  cfg: Pick<UNetConfig, 'inChannels' | 'outChannels' | 'baseChannels' | 'depth' | 'widths'>,
  side: number,
): number {
  const w = levelWidths({ ...REFERENCE_UNET3D, ...cfg });
  const vox = (l: number) => (side / 2 ** l) ** 3;
  let macs = 0;
  let cin = cfg.inChannels;
  for (let l = 0; l < cfg.depth; l++) {
    const mid = Math.floor(w[l] / 2);
    macs += vox(l) * 27 * (cin * mid + mid * w[l]);
    cin = w[l];
  }
  for (let l = cfg.depth - 2; l >= 0; l--) {
    macs += vox(l + 1) * 8 * cin * cin;
    macs += vox(l) * 27 * ((cin + w[l]) * w[l] + w[l] * w[l]);
    cin = w[l];
  }
  return macs + vox(0) * cin * cfg.outChannels;
}

async function timeStep(c: Case, reps: number, warmup: number): Promise<number> {
  const { step, dispose } = benchTrainStep(c.side, c.model);
  try {
    return (await timeMedian(step, reps, warmup)) / 1000;
  } finally {
    dispose();
  }
}

async function kernelsAvailable(): Promise<boolean> {
  try {
    const path = '../trainer/kernels/index.ts';
    await import(path);
    return true;
  } catch {
    return false;
  }
}

const CHILD = new URL('./train-child.ts', import.meta.url).pathname;
const exec = promisify(execFile);

async function childStep(job: TrainJob, kernelThreads?: number): Promise<ChildTiming> {
  const env = kernelThreads
    ? { ...process.env, FREETUMOR_KERNEL_THREADS: String(kernelThreads) }
    : process.env;
  const { stdout } = await exec(process.execPath, [CHILD, JSON.stringify(job)], {
    maxBuffer: 1 << 20,
    timeout: 3_600_000,
    env,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as ChildTiming;
}

export async function* run(ctx: BenchContext): AsyncIterable<BenchResult> {
  const reps = ctx.quick ? 1 : 3;
  const fast = await kernelsAvailable();
  const threads = defaultThreads();
  const torchName = `PyTorch CPU ${threads} threads (same run)`;
  ctx.log(
    `train: load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} on ${availableParallelism()} cores`,
  );
  if (!torchAvailable())
    ctx.log('train: /usr/bin/python3 has no torch (python3-torch); PyTorch rows left out');

  // cpu: each configuration in its own process (its own peak RSS): fast kernels, stock kernels where
  // they finish in minutes, and PyTorch on the same architecture, in the same run.
  const cpuTimes = new Map<string, { fast: number | null; stock: number | null }>();
  for (const c of [TINY_32, TINY_64, C32_96]) {
    const job = { side: c.side, baseChannels: c.model.baseChannels, depth: c.model.depth };
    // A stock step takes about 150 s at 64^3 c16 and would take most of an hour at 96^3 c32.
    const stockRuns = c.side === 32 || (c.side === 64 && !ctx.quick);
    let stock: ChildTiming | null = null;
    if (stockRuns) {
      ctx.log(`train: cpu stock kernels, ${c.label}`);
      stock = await childStep({
        ...job,
        kernels: 'stock',
        reps: c.side > 32 ? 1 : reps,
        warmup: c.side > 32 ? 0 : 1,
      });
    }
    let fastTime: ChildTiming | null = null;
    if (fast) {
      ctx.log(`train: cpu fast kernels, ${c.label}`);
      // The first steps of a fresh model are slow (allocation, wasm memory growth): warm up 2 steps.
      fastTime = await childStep({
        ...job,
        kernels: 'fast',
        reps: Math.max(reps, c.side > 64 ? 1 : 3),
        warmup: 2,
      });
    }
    ctx.log(`train: PyTorch, ${c.label}`);
    const torch = await torchRun({ mode: 'train', ...job, threads, reps: c.side > 64 ? 1 : reps, warmup: 1 });
    ctx.log(`train: load average ${loadavg()[0].toFixed(1)}`);
    cpuTimes.set(c.label, {
      fast: fastTime ? fastTime.medianMs / 1000 : null,
      stock: stock ? stock.medianMs / 1000 : null,
    });
    const s = (t: ChildTiming | null) => (t ? t.medianMs / 1000 : null);
    const cpuS = (t: ChildTiming | null) => (t ? t.cpuMs / 1000 : null);
    if (fastTime) {
      yield result(
        GROUP,
        `cpu step ${c.label} (fast kernels)`,
        s(fastTime)!,
        's',
        s(stock),
        'tfjs stock cpu kernels',
      );
      if (torch) {
        yield result(
          GROUP,
          `cpu step ${c.label} (fast kernels) vs PyTorch`,
          s(fastTime)!,
          's',
          s(torch),
          torchName,
        );
        yield result(
          GROUP,
          `cpu step ${c.label} (fast kernels) vs PyTorch, CPU time`,
          cpuS(fastTime)!,
          'cpu-s',
          cpuS(torch),
          torchName,
        );
      }
      yield result(
        GROUP,
        `peak RSS step ${c.label} (fast kernels)`,
        fastTime.maxRssMb,
        'MB',
        torch?.maxRssMb ?? null,
        torch ? torchName : undefined,
      );
    } else if (stock)
      yield result(
        GROUP,
        `cpu step ${c.label} (stock kernels)`,
        s(stock)!,
        's',
        s(torch),
        torch ? torchName : undefined,
      );
    if (stock) yield result(GROUP, `peak RSS step ${c.label} (stock kernels)`, stock.maxRssMb, 'MB');
    if (torch) yield result(GROUP, `PyTorch step ${c.label}, ${threads} threads`, torch.medianMs / 1000, 's');
    // One thread each side: CPU time per step holds up on a loaded machine, where PyTorch's OpenMP
    // threads spin on taken cores and inflate the multi-thread comparison above.
    if (fast && c.side > 32 && torchAvailable()) {
      ctx.log(`train: one thread each, ${c.label}`);
      const one = { ...job, kernels: 'fast' as const, reps: c.side > 64 ? 1 : reps, warmup: 2 };
      const ours1 = await childStep(one, 1);
      const torch1 = await torchRun({ mode: 'train', ...job, threads: 1, reps: one.reps, warmup: 1 });
      if (torch1)
        yield result(
          GROUP,
          `cpu step ${c.label} (fast kernels, 1 thread) vs PyTorch 1 thread, CPU time`,
          ours1.cpuMs / 1000,
          'cpu-s',
          torch1.cpuMs / 1000,
          'PyTorch CPU 1 thread (same run)',
        );
    }
  }
  const measured = cpuTimes.get(TINY_64.label);
  const t64 = measured?.fast ?? measured?.stock ?? null;
  if (t64 !== null) {
    const tiny = { inChannels: 1, outChannels: 3, ...TINY_64.model };
    const ref = { ...REFERENCE_UNET3D };
    const estimate = (t64 * forwardMacs(ref, 96)) / forwardMacs(tiny, 64);
    yield result(GROUP, `cpu step ${REFERENCE_96.label} (estimate from MACs, not run)`, estimate, 's');
  }

  // webgpu / tensorflow where present. A software WebGPU adapter only runs the smallest case.
  for (const name of ['tensorflow', 'webgpu'] as BackendName[]) {
    let detail: string;
    try {
      detail = (await selectBackend(name)).detail;
    } catch (e) {
      ctx.log(`train: ${name} not available (${(e as Error).message})`);
      continue;
    }
    const software = /llvmpipe|lavapipe|swiftshader/i.test(detail);
    const cases = software ? [TINY_32] : [TINY_32, TINY_64, REFERENCE_96];
    for (const c of cases) {
      ctx.log(`train: ${name} (${detail}), ${c.label}`);
      const t = await timeStep(c, reps, 1);
      const base = cpuTimes.get(c.label);
      yield result(
        GROUP,
        `${name}${software ? ' (software adapter)' : ''} step ${c.label}`,
        t,
        's',
        base?.fast ?? base?.stock ?? null,
        'tfjs cpu (same run)',
      );
    }
  }
  await selectBackend('cpu');
  releaseBackend();
  tf.disposeVariables();
}
