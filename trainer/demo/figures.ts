/**
 * Pictures and plots for the report: axial overlays of a mask on its CT (through the slice where
 * the mask's tumor is largest) and training curves read from a run's metrics log.
 */
import { existsSync, readFileSync } from 'node:fs';
import { encode } from 'fast-png';
import { toCanonical } from '../../shared/geometry/orientation.ts';
import { renderAxialPng, renderAxialRgba } from '../../shared/synthesis/preview.ts';
import type { Volume } from '../../shared/volume/volume.ts';
import type { Curve } from './report.ts';

/** Axial slice index (canonical grid) holding the most voxels of `ids`; the middle when none. */
export function busiestSlice(label: Volume, ids: readonly number[]): number {
  const [nx, ny, nz] = label.dims;
  const want = new Set(ids);
  let best = Math.floor(nz / 2);
  let bestCount = 0;
  for (let k = 0; k < nz; k++) {
    let n = 0;
    for (let i = k * nx * ny; i < (k + 1) * nx * ny; i++) if (want.has(label.data[i])) n++;
    if (n > bestCount) {
      best = k;
      bestCount = n;
    }
  }
  return best;
}

/**
 * PNG of one axial slice: the CT plain and with the label tinted (organ green, `tumorIds` yellow,
 * `syntheticIds` red). Both volumes are brought to RAS first, as the preview expects.
 */
export function overlayPng(
  image: Volume,
  label: Volume,
  ids: { organ: number[]; tumor?: number[]; synthetic?: number[] },
  sliceOf: Volume = label,
): Uint8Array {
  const img = toCanonical(image).volume;
  const lab = toCanonical(label).volume;
  const ref = sliceOf === label ? lab : toCanonical(sliceOf).volume;
  const slice = busiestSlice(ref, [...(ids.tumor ?? []), ...(ids.synthetic ?? [])]);
  return renderAxialPng(img, lab, {
    slice,
    organIds: ids.organ,
    realTumorIds: ids.tumor ?? [],
    syntheticIds: ids.synthetic ?? [],
    targetSize: 360,
  });
}

/**
 * One PNG with the same axial slice (the one where the reference's tumor is largest) side by side:
 * the plain CT, the reference, then each prediction, organ green and tumor yellow.
 */
export function sideBySidePng(image: Volume, truth: Volume, predictions: readonly Volume[]): Uint8Array {
  const img = toCanonical(image).volume;
  const ref = toCanonical(truth).volume;
  const slice = busiestSlice(ref, [2]);
  const opts = { slice, organIds: [1], realTumorIds: [2], syntheticIds: [], targetSize: 360 };
  const panels = [ref, ...predictions.map((p) => toCanonical(p).volume)].map((l) =>
    renderAxialRgba(img, l, opts),
  );
  const { width: w2, height } = panels[0];
  const w = w2 / 2;
  const n = panels.length + 1;
  const out = new Uint8Array(w * n * height * 4);
  for (let y = 0; y < height; y++) {
    // Panel 0: the plain CT (left half of the first render); then the tinted half of each.
    const row = (p: number, from: Uint8Array, half: number): void => {
      out.set(from.subarray(4 * (y * w2 + half * w), 4 * (y * w2 + half * w + w)), 4 * (y * w * n + p * w));
    };
    row(0, panels[0].data, 0);
    for (const [i, pan] of panels.entries()) row(i + 1, pan.data, 1);
  }
  return encode({ width: w * n, height, data: out, channels: 4, depth: 8 });
}

/**
 * One metric of a metrics.jsonl as a curve, with an optional moving average: training rows, or
 * (`validation`) the validation rows.
 */
export function metricCurve(path: string, key: string, label: string, smooth = 1, validation = false): Curve {
  const points: Array<{ step: number; value: number }> = [];
  if (existsSync(path)) {
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      let r: Record<string, unknown>;
      try {
        r = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ((r.validation === true) !== validation) continue;
      const v = r[key];
      if (typeof r.step === 'number' && typeof v === 'number' && Number.isFinite(v))
        points.push({ step: r.step, value: v });
    }
  }
  return { label, points: smooth > 1 ? movingAverage(points, smooth) : points };
}

export function movingAverage(
  points: ReadonlyArray<{ step: number; value: number }>,
  window: number,
): Array<{ step: number; value: number }> {
  const out: Array<{ step: number; value: number }> = [];
  let sum = 0;
  for (let i = 0; i < points.length; i++) {
    sum += points[i].value;
    if (i >= window) sum -= points[i - window].value;
    out.push({ step: points[i].step, value: sum / Math.min(i + 1, window) });
  }
  return out;
}

/** Fraction of synthetic tumors quality control accepted, per step (FreeTumor segmentation). */
export function acceptanceCurve(path: string, label: string, smooth: number): Curve {
  const synthetic = metricCurve(path, 'synthetic', label).points;
  const accepted = new Map(metricCurve(path, 'accepted', label).points.map((p) => [p.step, p.value]));
  const points = synthetic
    .filter((p) => p.value > 0)
    .map((p) => ({ step: p.step, value: (accepted.get(p.step) ?? 0) / p.value }));
  return { label, points: movingAverage(points, smooth) };
}
