/**
 * The PyTorch CPU anchor of the `train`, `kernels` and `infer` benchmarks: bench/reference/unet_ref.py
 * (the same U-Net as trainer/models/unet.ts) run by Debian's python3-torch in its own process, so its
 * peak RSS is its own. Every function returns null when /usr/bin/python3 cannot import torch, and the
 * rows that need it are left out.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

const PYTHON = '/usr/bin/python3';
const SCRIPT = new URL('./reference/unet_ref.py', import.meta.url).pathname;
const exec = promisify(execFile);

export interface ChildTiming {
  /** Median wall time per call (ms). */
  medianMs: number;
  /** Median CPU time per call, all threads (ms). */
  cpuMs: number;
  maxRssMb: number;
}

let available: boolean | null = null;

/** Whether python3-torch is installed (checked once). */
export function torchAvailable(): boolean {
  available ??=
    existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  return available;
}

export interface TorchJob {
  mode: 'train' | 'forward';
  side: number;
  baseChannels: number;
  depth: number;
  threads: number;
  reps: number;
  warmup: number;
}

/** One PyTorch configuration, or null without torch. */
export async function torchRun(job: TorchJob): Promise<ChildTiming | null> {
  if (!torchAvailable()) return null;
  const args = [job.mode, job.side, job.baseChannels, job.depth, job.threads, job.reps, job.warmup].map(
    String,
  );
  const { stdout } = await exec(PYTHON, [SCRIPT, ...args], { maxBuffer: 1 << 20, timeout: 3_600_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as ChildTiming;
}
