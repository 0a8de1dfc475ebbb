import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePhantom } from '../../shared/phantom/phantom.ts';
import { identityAffine, makeVolume } from '../../shared/volume/volume.ts';
import { syntheticLabel } from './edge-calls.ts';
import { acceptanceCurve, busiestSlice, metricCurve, movingAverage, overlayPng } from './figures.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ft-demo-fig-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('demo figures', () => {
  it('finds the axial slice with the most voxels of the given ids', () => {
    const data = new Uint8Array(4 * 4 * 5);
    data.fill(2, 3 * 16, 3 * 16 + 5);
    data.fill(2, 1 * 16, 1 * 16 + 2);
    expect(busiestSlice(makeVolume([4, 4, 5], data, identityAffine(), 'uint8'), [2])).toBe(3);
    expect(busiestSlice(makeVolume([4, 4, 5], new Uint8Array(80), identityAffine(), 'uint8'), [2])).toBe(2);
  });

  it('draws an overlay of a phantom and its label (two panels, the label tinted)', () => {
    const p = generatePhantom({ seed: 3, spacing: 8, tumors: [{ organ: 'liver', count: 1 }] });
    const png = decode(overlayPng(p.ct, p.label, { organ: [1], tumor: [2] }));
    expect(png.width).toBe(2 * png.height * (p.ct.dims[0] / p.ct.dims[1]));
    const half = png.width / 2;
    let differs = 0;
    for (let y = 0; y < png.height; y++) {
      for (let x = 0; x < half; x++) {
        const a = 4 * (y * png.width + x);
        if (png.data[a] !== png.data[a + 4 * half]) differs++;
      }
    }
    expect(differs).toBeGreaterThan(0);
  });

  it('reads curves from a metrics log, skipping validation rows, and smooths them', async () => {
    const path = join(dir, 'metrics.jsonl');
    const rows = [
      { step: 1, loss: 2, synthetic: 2, accepted: 1 },
      { step: 2, loss: 1, synthetic: 2, accepted: 2 },
      { step: 2, val_tumor_dice: 0.1, validation: true },
      { step: 3, loss: 0, synthetic: 0, accepted: 0 },
    ];
    await writeFile(path, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
    expect(metricCurve(path, 'loss', 'l').points).toEqual([
      { step: 1, value: 2 },
      { step: 2, value: 1 },
      { step: 3, value: 0 },
    ]);
    expect(metricCurve(path, 'loss', 'l', 2).points.map((p) => p.value)).toEqual([2, 1.5, 0.5]);
    expect(acceptanceCurve(path, 'a', 1).points).toEqual([
      { step: 1, value: 0.5 },
      { step: 2, value: 1 },
    ]);
    expect(metricCurve(join(dir, 'absent.jsonl'), 'loss', 'x').points).toEqual([]);
    expect(movingAverage([], 3)).toEqual([]);
  });

  it('marks the voxels /v1/synthesize changed as synthetic (3) for /v1/score, the organ as 1', () => {
    const input = makeVolume([3, 1, 1], Uint8Array.from([0, 1, 1]), identityAffine(), 'uint8');
    const output = makeVolume([3, 1, 1], Uint8Array.from([0, 1, 2]), identityAffine(), 'uint8');
    expect([...syntheticLabel(input, output, 'freetumor', 'liver').data]).toEqual([0, 1, 3]);
  });
});
