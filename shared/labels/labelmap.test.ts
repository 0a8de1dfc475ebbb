import { describe, expect, it } from 'vitest';
import { FreeTumorError } from '../errors.ts';
import {
  FREETUMOR_MAP,
  labelNames,
  organLabels,
  parseLabelMap,
  TOTALSEG_MAP,
  TOTALSEG_V1_MAP,
  toMergedScheme,
} from './labelmap.ts';

describe('parseLabelMap', () => {
  it('parses a TotalSegmentator-style map and assigns new tumor ids after the largest id', () => {
    const map = parseLabelMap('liver=5,kidney=2+3,pancreas=10');
    expect(map.organs.liver).toEqual({ organ: [5], tumor: [], tumorOut: 11, tumorOutAssigned: true });
    expect(map.organs.pancreas?.tumorOut).toBe(12);
    expect(map.organs.kidney).toEqual({ organ: [2, 3], tumor: [], tumorOut: 13, tumorOutAssigned: true });
  });

  it('uses a given tumor id for real and synthetic tumors', () => {
    const map = parseLabelMap('liver=1, liver_tumor=2');
    expect(map.organs.liver).toEqual({ organ: [1], tumor: [2], tumorOut: 2, tumorOutAssigned: false });
    expect(map.organs.kidney).toBeUndefined();
  });

  it('knows the named schemes', () => {
    expect(parseLabelMap('freetumor')).toBe(FREETUMOR_MAP);
    expect(parseLabelMap('TotalSeg')).toBe(TOTALSEG_MAP);
    expect(parseLabelMap('totalseg-v1').organs.pancreas?.organ).toEqual([10]);
    expect(parseLabelMap('totalseg-v2').organs.pancreas?.organ).toEqual([7]);
    expect(parseLabelMap('msd').organs.kidney).toEqual({
      organ: [1],
      tumor: [2],
      tumorOut: 2,
      tumorOutAssigned: false,
    });
  });

  it('refuses the pancreas for TotalSegmentator without a version, naming the option', () => {
    expect(() => organLabels(TOTALSEG_MAP, 'pancreas')).toThrow(/10 and 7\): pass --label-map totalseg-v1/);
    expect(organLabels(TOTALSEG_MAP, 'liver').organ).toEqual([5]);
  });

  it.each([
    ['lung=3', 'organs are'],
    ['liver=0', 'integers in 1..65535'],
    ['liver=1.5', 'integers'],
    ['liver=1,kidney=1', 'appears twice'],
    ['liver', 'NAME=ID'],
    ['liver_tumor=2', 'but not liver'],
    ['liver=1,liver=3', 'twice'],
  ])('rejects %s', (text, message) => {
    expect(() => parseLabelMap(text)).toThrow(FreeTumorError);
    expect(() => parseLabelMap(text)).toThrow(message);
  });
});

describe('toMergedScheme', () => {
  it('maps one organ to 1, its tumors to 2 and everything else to 0', () => {
    const labels = Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
    expect([...toMergedScheme(labels, FREETUMOR_MAP, 'liver')]).toEqual([0, 1, 2, 0, 0, 0, 0, 0]);
    expect([...toMergedScheme(labels, FREETUMOR_MAP, 'pancreas')]).toEqual([0, 0, 0, 1, 2, 0, 0, 0]);
    expect([...toMergedScheme(labels, FREETUMOR_MAP, 'kidney')]).toEqual([0, 0, 0, 0, 0, 1, 2, 0]);
  });

  it('merges both kidneys of TotalSegmentator and ignores odd values', () => {
    const labels = Float32Array.from([2, 3, 5, 10, 2.5, -3, 70000]);
    expect([...toMergedScheme(labels, TOTALSEG_MAP, 'kidney')]).toEqual([1, 1, 0, 0, 0, 0, 0]);
    expect([...toMergedScheme(labels, TOTALSEG_MAP, 'liver')]).toEqual([0, 0, 1, 0, 0, 0, 0]);
  });

  it('reads an earlier synthetic tumor (201) of a TotalSegmentator label as tumor', () => {
    const labels = Uint8Array.from([5, 201, 1, 0]);
    expect([...toMergedScheme(labels, TOTALSEG_MAP, 'liver')]).toEqual([1, 2, 0, 0]);
  });

  it('fails clearly for an organ the map does not name', () => {
    expect(() => toMergedScheme(new Uint8Array(2), parseLabelMap('liver=1'), 'kidney')).toThrow(
      'no ids for kidney',
    );
  });
});

describe('labelNames', () => {
  it('lists organs and tumor ids for a dataset.json', () => {
    expect(labelNames(TOTALSEG_V1_MAP)).toEqual({
      background: 0,
      liver: 5,
      liver_tumor: 201,
      pancreas: 10,
      pancreas_tumor: 202,
      kidney: [2, 3],
      kidney_tumor: 203,
    });
  });
});
