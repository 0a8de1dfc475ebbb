import { describe, expect, it } from 'vitest';
import { FreeTumorError } from '../errors.ts';
import { labelMapFromDatasetJson } from './dataset-json.ts';
import {
  detectLabelMap,
  holdsLabelId,
  LabelIdCollector,
  labelIds,
  labelVolumeEvidence,
  largestLabelId,
  presentOrgan,
  resolveLabelMap,
} from './detect.ts';
import { toMergedScheme } from './labelmap.ts';

const ids = (...xs: number[]) => ({ ids: xs, invalid: 0 });
/** TotalSegmentator v1 ids of an abdomen CT (1..104, liver 5). */
const TOTALSEG_V1_IDS = ids(...Array.from({ length: 104 }, (_, i) => i + 1));

describe('labelIds', () => {
  it('lists distinct non-zero ids and counts values that are no class id', () => {
    expect(labelIds(Float32Array.from([0, 5, 5, 2, 104, 2]))).toEqual({ ids: [2, 5, 104], invalid: 0 });
    expect(labelIds(Float32Array.from([0, -1000, 37.5, 70000, 1])).invalid).toBe(3);
  });

  it('gathered chunk by chunk equals one pass; answers "is id X held" and "largest id"', () => {
    const data = Uint16Array.from([0, 7, 3, 3, 0, 201, 7, 1, 65535, 2]);
    const collector = new LabelIdCollector();
    collector.add(data.subarray(0, 4));
    collector.add(data.subarray(4));
    const found = collector.ids();
    expect(found).toEqual(labelIds(data));
    for (let id = 0; id <= 300; id++) expect(holdsLabelId(found, id)).toBe(id > 0 && data.includes(id));
    expect(holdsLabelId(found, 65535)).toBe(true);
    expect(largestLabelId(found)).toBe(65535);
    expect(largestLabelId(labelIds(new Uint8Array(9)))).toBe(0);
    expect(holdsLabelId(labelIds(new Uint8Array(9)), 1)).toBe(false);
  });
});

describe('detectLabelMap', () => {
  it.each([
    [[1, 2, 3, 5], 'liver', 'freetumor'],
    [[1, 2], 'liver', 'msd'],
    [[1], undefined, 'msd'],
    [TOTALSEG_V1_IDS.ids, 'liver', 'totalseg'],
    [[2, 3, 5, 7, 110, 117], 'pancreas', 'totalseg-v2'],
    [[1, 5, 201], 'liver', 'totalseg'],
  ] as const)('ids %j (organ %s) -> %s', (present, organ, name) => {
    expect(detectLabelMap(ids(...present), organ).name).toBe(name);
  });

  it('refuses what it cannot tell apart, naming the option', () => {
    expect(() => detectLabelMap(ids(1, 2), 'pancreas')).toThrow(/pass --label-map msd if 1 is the pancreas/);
    expect(() => detectLabelMap(ids(1, 300), 'liver', 'label_map')).toThrow(
      /fit no known scheme.*pass label_map$/,
    );
    expect(() => detectLabelMap(ids(), 'liver')).toThrow(FreeTumorError);
  });
});

describe('resolveLabelMap', () => {
  it('puts the liver of a TotalSegmentator label at id 5, never 1 (the spleen)', () => {
    const r = resolveLabelMap(TOTALSEG_V1_IDS, { organ: 'liver' });
    expect(r.source).toBe('detected');
    const merged = toMergedScheme(Uint8Array.from([1, 5, 2, 3]), r.map, 'liver');
    expect([...merged]).toEqual([0, 1, 0, 0]);
  });

  it('refuses a named scheme the ids do not fit, and says what it looks like', () => {
    expect(() => resolveLabelMap(TOTALSEG_V1_IDS, { spec: 'freetumor', organ: 'liver' })).toThrow(
      'label ids 1-104 do not fit --label-map freetumor (ids up to 6); it looks like totalseg: pass the right --label-map',
    );
    expect(() => resolveLabelMap(ids(1, 2, 3, 4, 5, 6), { spec: 'msd', organ: 'liver' })).toThrow(/msd/);
  });

  it('needs the TotalSegmentator version for the pancreas unless an id above 104 shows v2', () => {
    expect(() => resolveLabelMap(TOTALSEG_V1_IDS, { organ: 'pancreas' })).toThrow(
      /totalseg-v1 or totalseg-v2/,
    );
    expect(
      resolveLabelMap(TOTALSEG_V1_IDS, { spec: 'totalseg-v1', organ: 'pancreas' }).map.organs.pancreas?.organ,
    ).toEqual([10]);
    expect(resolveLabelMap(ids(5, 7, 116), { organ: 'pancreas' }).map.name).toBe('totalseg-v2');
  });

  it('refuses an organ that is absent under the chosen map', () => {
    expect(() => resolveLabelMap(ids(1, 2, 3), { organ: 'kidney' })).toThrow(
      /no kidney in the label: freetumor .* gives it id 5.*pass --label-map/,
    );
  });

  it('refuses a CT given as a label', () => {
    expect(() => resolveLabelMap({ ids: [1], invalid: 5000 })).toThrow(/not class ids.*is it a CT\?/);
  });

  it('takes dataset.json over detection, and an explicit map over dataset.json', () => {
    const json = { labels: { '0': 'background', '1': 'pancreas', '2': 'cancer' } };
    const r = resolveLabelMap(ids(1, 2), { organ: 'pancreas', datasetJson: json });
    expect(r.source).toBe('dataset.json');
    expect(r.map.organs.pancreas).toEqual({ organ: [1], tumor: [2], tumorOut: 2, tumorOutAssigned: false });
    expect(
      resolveLabelMap(ids(1, 2), { organ: 'liver', spec: 'freetumor', datasetJson: json }).map.name,
    ).toBe('freetumor');
  });
});

describe('labelMapFromDatasetJson', () => {
  it('reads the nnU-Net v2 layout, kidney sides and region lists', () => {
    const map = labelMapFromDatasetJson({
      labels: { background: 0, kidney_left: 3, 'Kidney Right': 2, liver: 5, liver_tumor: 201 },
    });
    expect(map.organs.kidney).toEqual({ organ: [2, 3], tumor: [], tumorOut: 202, tumorOutAssigned: true });
    expect(map.organs.liver?.tumorOut).toBe(201);
    const kits = labelMapFromDatasetJson({
      labels: { background: 0, kidney: [1, 2, 3], masses: [2, 3], tumor: 2 },
    });
    expect(kits.organs.kidney?.organ).toEqual([1]);
    expect(kits.organs.kidney?.tumor.sort()).toEqual([2, 3]);
  });

  it('refuses a dataset.json without organs, naming the option', () => {
    expect(() => labelMapFromDatasetJson({ labels: { '0': 'background', '1': 'spleen' } })).toThrow(
      /names none of liver, pancreas or kidney; pass --label-map/,
    );
    expect(() => labelMapFromDatasetJson({ name: 'x' })).toThrow(/no "labels"/);
  });
});

describe('presentOrgan', () => {
  it('is the one organ present, else asks for --organ', async () => {
    const { FREETUMOR_MAP } = await import('./labelmap.ts');
    expect(presentOrgan(FREETUMOR_MAP, ids(5, 6))).toBe('kidney');
    expect(() => presentOrgan(FREETUMOR_MAP, ids(1, 5))).toThrow(
      'the label holds liver and kidney: pass --organ',
    );
  });
});

describe('labelVolumeEvidence', () => {
  it('takes integer volumes with few non-negative values for labels, not CTs', () => {
    expect(labelVolumeEvidence(Uint8Array.from([0, 1, 5, 104])).isLabel).toBe(true);
    expect(labelVolumeEvidence(Int16Array.from([-1000, 40, 50])).isLabel).toBe(false);
    expect(labelVolumeEvidence(Float32Array.from([0, 1])).isLabel).toBe(false);
    const many = Int32Array.from({ length: 3000 }, (_, i) => i);
    expect(labelVolumeEvidence(many)).toMatchObject({
      isLabel: false,
      reason: 'more than 1024 distinct values',
    });
  });
});
