/**
 * Gated promotion: a new model becomes the active one only when it beats the active model on the
 * validation metric. The active model is the one `models/latest.json` names; its manifest carries
 * the metrics it was promoted with.
 */
import { type ModelManifest, parseManifest } from '../../shared/model/manifest.ts';
import { type PublishedPointer, publishedPointerSchema } from '../publish/r2.ts';
import type { PromotionMetric } from './data-manifest.ts';
import { getJson, type ObjectStore } from './storage.ts';

export interface ActiveModel {
  pointer: PublishedPointer;
  manifest: ModelManifest;
}

export interface GateDecision {
  promote: boolean;
  metric: PromotionMetric;
  candidate: number;
  /** The active model's value; null when there is no active model or it has no such metric. */
  active: number | null;
  reason: string;
}

/** The active segmentor (pointer + manifest), or null when nothing has been published yet. */
export async function readActiveModel(store: ObjectStore, prefix: string): Promise<ActiveModel | null> {
  const raw = await getJson(store, `${prefix}/latest.json`);
  if (raw === null) return null;
  // Pointers may name only some roles (the shared schema's enum record would demand all three).
  const pointer = publishedPointerSchema.parse(raw);
  const entry = pointer.models.segmentor;
  if (!entry) return null;
  const manifest = await getJson(store, `${prefix}/${entry.manifest}`);
  if (manifest === null) return null;
  return { pointer, manifest: parseManifest(manifest) };
}

export function decidePromotion(
  candidate: Readonly<Record<string, number>>,
  active: ModelManifest | null,
  metric: PromotionMetric,
  minImprovement: number,
): GateDecision {
  const value = candidate[metric];
  if (!Number.isFinite(value)) {
    return {
      promote: false,
      metric,
      candidate: value,
      active: null,
      reason: `the candidate has no finite ${metric}`,
    };
  }
  if (active === null) {
    return { promote: true, metric, candidate: value, active: null, reason: 'no active model' };
  }
  const current = active.metrics[metric];
  if (current === undefined || !Number.isFinite(current)) {
    return {
      promote: true,
      metric,
      candidate: value,
      active: null,
      reason: `the active model ${active.version} records no ${metric}`,
    };
  }
  const promote = value > current + minImprovement;
  const cmp = promote ? 'beats' : 'does not beat';
  const margin = minImprovement > 0 ? ` by more than ${minImprovement}` : '';
  return {
    promote,
    metric,
    candidate: value,
    active: current,
    reason: `${metric} ${value.toFixed(4)} ${cmp} the active model ${active.version} (${current.toFixed(4)})${margin}`,
  };
}
