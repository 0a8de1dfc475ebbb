/**
 * What the three conv kernels share: the geometry block the wasm code reads, how a call is cut
 * into chunks (cache) and parts (threads), and raw access to the cpu backend's values.
 */

import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { backend_util, TensorInfo } from '@tensorflow/tfjs-core';
import { splitRange } from '../../shared/engine/engine.ts';
import type { ConvRuntime } from './wasm-runtime.ts';

/** Bytes of one vol2col chunk: about half of a core's L2, so col and the panels stay cached. */
export const CHUNK_BYTES = 512 * 1024;
/** Below this many multiply-adds per call, waking the workers costs more than it saves. */
export const MIN_PARALLEL_MACS = 4e6;

export interface ConvPlan {
  /** Byte offset of the Geom block in wasm memory. */
  geom: number;
  /** Output voxels over the whole batch: the rows of every GEMM. */
  rows: number;
  /** Length of one receptive field: kd*kh*kw*cin. */
  patch: number;
  outC: number;
  chunk: number;
  /** [p0, p1) ranges, one per thread, multiples of 4 except the last end. */
  ranges: Array<[number, number]>;
}

/** The fields of tfjs's Conv3DInfo the kernels read (also built by hand for derived convs). */
export type ConvGeometry = Pick<
  backend_util.Conv3DInfo,
  | 'batchSize'
  | 'inDepth'
  | 'inHeight'
  | 'inWidth'
  | 'inChannels'
  | 'outDepth'
  | 'outHeight'
  | 'outWidth'
  | 'outChannels'
  | 'filterDepth'
  | 'filterHeight'
  | 'filterWidth'
  | 'strideDepth'
  | 'strideHeight'
  | 'strideWidth'
  | 'dilationDepth'
  | 'dilationHeight'
  | 'dilationWidth'
> & { padInfo: { front: number; top: number; left: number } };

export function planConv(rt: ConvRuntime, info: ConvGeometry): ConvPlan {
  const geom = rt.alloc(22);
  rt.i32(geom, 22).set([
    info.batchSize,
    info.inDepth,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.outDepth,
    info.outHeight,
    info.outWidth,
    info.outChannels,
    info.filterDepth,
    info.filterHeight,
    info.filterWidth,
    info.strideDepth,
    info.strideHeight,
    info.strideWidth,
    info.dilationDepth,
    info.dilationHeight,
    info.dilationWidth,
    info.padInfo.front,
    info.padInfo.top,
    info.padInfo.left,
    0,
  ]);
  const rows = info.batchSize * info.outDepth * info.outHeight * info.outWidth;
  const patch = info.filterDepth * info.filterHeight * info.filterWidth * info.inChannels;
  const chunk = Math.max(64, Math.min(4096, Math.floor(CHUNK_BYTES / (4 * patch) / 4) * 4));
  const macs = rows * patch * info.outChannels;
  const parts = macs < MIN_PARALLEL_MACS ? 1 : Math.max(1, Math.min(rt.threads, Math.floor(rows / 64)));
  return { geom, rows, patch, outC: info.outChannels, chunk, ranges: splitRows(rows, parts) };
}

/** Splits [0, rows) into `parts` near-equal ranges whose inner bounds are multiples of 4. */
export const splitRows = splitRange;

/** The float32 values tfjs's cpu backend holds for a tensor (no copy). */
export function valuesOf(backend: MathBackendCPU, t: TensorInfo): Float32Array {
  // The cpu backend keeps float32 tensors as Float32Array; callers check dtype first.
  return backend.data.get(t.dataId).values as Float32Array;
}
