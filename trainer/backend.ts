/**
 * The one place the trainer chooses a TensorFlow.js backend. Everything else receives a ready
 * backend and never asks which one it is.
 *
 * - `tensorflow`: @tensorflow/tfjs-node-gpu (or tfjs-node), imported dynamically; it is the
 *   production GPU container's backend and cannot be installed on machines without Google storage.
 * - `webgpu`: @tensorflow/tfjs-backend-webgpu on Dawn (`webgpu` npm package). Vulkan first; where
 *   no Vulkan adapter exists, Dawn's OpenGL ES backend (EGL surfaceless, e.g. Mesa llvmpipe).
 * - `cpu`: the pure-JS backend with the fast 3D kernels of trainer/kernels (on by default).
 * - `auto`: tensorflow, then webgpu, then cpu; `detail` says why each earlier one was skipped.
 */
import * as tf from '@tensorflow/tfjs-core';
import { FreeTumorError } from '../shared/errors.ts';
import { registerFastCpuKernels, restoreStockCpuKernels } from './kernels/index.ts';
import { registerTrainingGradients } from './models/gradients.ts';

export type BackendName = 'auto' | 'cpu' | 'webgpu' | 'tensorflow';
export type ResolvedBackend = 'cpu' | 'webgpu' | 'tensorflow';

export interface SelectedBackend {
  name: ResolvedBackend;
  detail: string;
}

export interface BackendOptions {
  /** On cpu, use the fast 3D kernels of trainer/kernels when available (default true). */
  fastCpuKernels?: boolean;
}

export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'cpu', 'webgpu', 'tensorflow'];

export async function selectBackend(name: BackendName, opts: BackendOptions = {}): Promise<SelectedBackend> {
  // tfjs prints a "use tfjs-node" banner on first cpu use unless PROD is set.
  tf.env().set('PROD', true);
  registerTrainingGradients();
  if (name === 'cpu') return useCpu(opts, 'requested');
  if (name === 'tensorflow') return useTensorflow();
  if (name === 'webgpu') return useWebgpu(true);
  if (name !== 'auto')
    throw new FreeTumorError(
      'invalid_argument',
      `unknown backend ${JSON.stringify(name)}; use auto, cpu, webgpu or tensorflow`,
    );
  const skipped: string[] = [];
  for (const attempt of [useTensorflow, () => useWebgpu(false)]) {
    try {
      const chosen = await attempt();
      return {
        name: chosen.name,
        detail: `${chosen.detail}${skipped.length ? ` (${skipped.join('; ')})` : ''}`,
      };
    } catch (e) {
      skipped.push((e as Error).message);
    }
  }
  return useCpu(opts, skipped.join('; '));
}

async function useCpu(opts: BackendOptions, why: string): Promise<SelectedBackend> {
  await import('@tensorflow/tfjs-backend-cpu');
  if (!(await tf.setBackend('cpu')))
    throw new FreeTumorError('invalid_argument', 'the tfjs cpu backend failed to initialise');
  let kernels = 'stock kernels';
  if (opts.fastCpuKernels !== false) {
    registerFastCpuKernels();
    kernels = 'fast 3D kernels';
  } else {
    restoreStockCpuKernels();
  }
  return { name: 'cpu', detail: `tfjs cpu backend, ${kernels}; ${why}` };
}

async function useTensorflow(): Promise<SelectedBackend> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
    } catch {
      continue;
    }
    if (await tf.setBackend('tensorflow')) return { name: 'tensorflow', detail: `${pkg} (libtensorflow)` };
  }
  throw new FreeTumorError(
    'invalid_argument',
    'tensorflow backend unavailable: @tensorflow/tfjs-node-gpu is not installed',
  );
}

let webgpuReady: Promise<void> | null = null;

/** `allowSoftware`: accept a CPU-emulated adapter (llvmpipe, lavapipe, SwiftShader); `auto` does not. */
async function useWebgpu(allowSoftware: boolean): Promise<SelectedBackend> {
  webgpuReady ??= initWebgpu(allowSoftware);
  try {
    await webgpuReady;
  } catch (e) {
    webgpuReady = null;
    throw e;
  }
  if (!(await tf.setBackend('webgpu')))
    throw new FreeTumorError('invalid_argument', 'webgpu backend unavailable: tfjs could not initialise it');
  return { name: 'webgpu', detail: `webgpu (Dawn, ${webgpuDetail})` };
}

let webgpuDetail = '';
const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software/i;

interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

/** Installs a Dawn `navigator.gpu` that has an adapter (Vulkan, else OpenGL ES), then the tfjs backend. */
async function initWebgpu(allowSoftware: boolean): Promise<void> {
  let dawn: DawnModule;
  try {
    dawn = (await import('webgpu')) as unknown as DawnModule;
  } catch {
    throw new FreeTumorError(
      'invalid_argument',
      'webgpu backend unavailable: the `webgpu` (dawn.node) package is not installed',
    );
  }
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  Object.assign(globalThis, dawn.globals);
  const tried: string[] = [];
  for (const backend of ['vulkan', 'opengles'] as const) {
    if (backend === 'opengles') process.env.EGL_PLATFORM ??= 'surfaceless';
    const gpu = dawn.create([`backend=${backend}`]);
    const options: GPURequestAdapterOptions & { featureLevel?: string } =
      backend === 'opengles' ? { featureLevel: 'compatibility' } : { powerPreference: 'high-performance' };
    const adapter = await gpu.requestAdapter(options).catch(() => null);
    if (!adapter) {
      tried.push(`${backend}: no adapter`);
      continue;
    }
    const info = adapter.info;
    const name = `${info.vendor} ${info.device} ${info.description}`.replace(/\s+/g, ' ').trim();
    if (!allowSoftware && SOFTWARE_ADAPTER.test(name)) {
      tried.push(`${backend}: software adapter ${name} skipped`);
      continue;
    }
    // tfjs requests its own adapter through navigator.gpu; make it get the one that works.
    const request = gpu.requestAdapter.bind(gpu);
    gpu.requestAdapter = (o?: GPURequestAdapterOptions) => request({ ...o, ...options });
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    webgpuDetail = `${backend}, ${name}`;
    await import('@tensorflow/tfjs-backend-webgpu');
    return;
  }
  throw new FreeTumorError(
    'invalid_argument',
    `webgpu backend unavailable: no GPU adapter (Dawn ${tried.join('; ')})`,
  );
}

/** Lets the process exit: Dawn keeps Node alive while navigator.gpu exists. */
export function releaseBackend(): void {
  const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
  if (webgpuDetail && nav?.gpu) delete nav.gpu;
}
