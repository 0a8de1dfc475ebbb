import type { ModelManifest } from '../shared/model/manifest.ts';

/**
 * The manifest with its sliding-window patch clamped to `maxSide` per axis (kept a multiple of the
 * U-Net's divisor). The exported nets take any spatial size, so a smaller window gives the same kind
 * of result (more windows, blended) while ORT's wasm memory, which follows the largest patch ever run
 * and never shrinks, stays inside the isolate.
 */
export function fitPatch(manifest: ModelManifest, maxSide: number): ModelManifest {
  const pre = manifest.preprocessing;
  const divisor = pre.divisor ?? 1;
  const cap = Math.max(divisor, Math.floor(maxSide / divisor) * divisor);
  if (pre.patchSize.every((s) => s <= cap)) return manifest;
  const patchSize = pre.patchSize.map((s) => Math.min(s, cap)) as typeof pre.patchSize;
  return { ...manifest, preprocessing: { ...pre, patchSize } };
}
