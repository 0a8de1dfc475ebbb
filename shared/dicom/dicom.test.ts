import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import type { DicomInstance } from './instance.ts';
import { decodeRle } from './rle.ts';
import { groupSeries, selectSeries, stackGeometry } from './series.ts';
import { pixelEncodingOf } from './transfer-syntax.ts';
import { zipEntries } from './zip.ts';

function slice(k: number, over: Partial<DicomInstance> = {}): DicomInstance {
  return {
    transferSyntax: '1.2.840.10008.1.2.1',
    sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
    sopInstanceUid: `1.2.3.${k}`,
    studyInstanceUid: '1.2.3',
    seriesInstanceUid: '1.2.3.4',
    frameOfReferenceUid: '1.2.3.5',
    modality: 'CT',
    rows: 4,
    columns: 5,
    bitsAllocated: 16,
    bitsStored: 12,
    signed: false,
    samplesPerPixel: 1,
    photometric: 'MONOCHROME2',
    frames: 1,
    position: [-10, -20, 2.5 * k],
    orientation: [1, 0, 0, 0, 1, 0],
    pixelSpacing: [0.8, 0.7],
    slope: 1,
    intercept: -1024,
    hasPixelData: true,
    patientStudy: {},
    ...over,
  };
}

describe('DICOM stack geometry', () => {
  it('sorts along the normal and builds the RAS affine from LPS', () => {
    const g = stackGeometry([slice(2), slice(0), slice(1)]);
    expect(g.order).toEqual([1, 2, 0]);
    expect(g.dims).toEqual([5, 4, 3]);
    expect(Array.from(g.affine)).toEqual([-0.7, 0, 0, 10, 0, -0.8, 0, 20, 0, 0, 2.5, 0, 0, 0, 0, 1]);
  });

  it('refuses tilt, gaps, duplicates and mixed planes with the limit named', () => {
    const tilted = [0, 1, 2].map((k) => slice(k, { position: [-10, -20 + 0.3 * k, 2.5 * k] }));
    expect(() => stackGeometry(tilted)).toThrow(/gantry tilt .* degrees \(limit 0\.05\)/);
    expect(() => stackGeometry([slice(0), slice(1), slice(3)])).toThrow(/uneven slice spacing.*limit 1%/);
    expect(() => stackGeometry([slice(0), slice(0), slice(1)])).toThrow(/share one position/);
    expect(() => stackGeometry([slice(0), slice(1, { orientation: [0, 1, 0, 0, 0, -1] })])).toThrow(
      /ImageOrientationPatient/,
    );
    expect(() => stackGeometry([slice(0)])).toThrow(/at least 2 slices/);
    expect(() => stackGeometry([slice(0, { frames: 40 }), slice(1)])).toThrow(/multi-frame/);
  });

  it('lists several series without patient data and picks one by UID', () => {
    const groups = groupSeries([slice(0), slice(1), slice(0, { seriesInstanceUid: '9.8', modality: 'CT' })]);
    expect(() => selectSeries(groups)).toThrow('1.2.3.4 (CT, 2 instance(s)); 9.8 (CT, 1 instance(s))');
    expect(selectSeries(groups, '9.8')).toHaveLength(1);
  });

  it('names an unsupported or decoder-less transfer syntax', () => {
    expect(() => pixelEncodingOf('1.2.840.10008.1.2.4.50', {})).toThrow(
      /JPEG Baseline .* not supported: lossy/,
    );
    expect(() => pixelEncodingOf('1.2.840.10008.1.2.4.80', {})).toThrow(/needs a decoder/);
    expect(() => pixelEncodingOf('1.2.3.999', {})).toThrow('1.2.3.999 (unknown)');
    expect(pixelEncodingOf('1.2.840.10008.1.2', {})).toBe('native');
  });
});

describe('RLE Lossless', () => {
  it('decodes PackBits segments, most significant byte plane first', () => {
    // 2x2 pixels, 16 bit: values 0x0102, 0x0102, 0x0304, 0x0005.
    const msb = [0xff, 0x01, 0x01, 0x03, 0x00]; // replicate 0x01 twice, literal [0x03, 0x00]
    const lsb = [0x03, 0x02, 0x02, 0x04, 0x05]; // literal of 4
    const frame = new Uint8Array(64 + msb.length + lsb.length);
    const v = new DataView(frame.buffer);
    v.setUint32(0, 2, true);
    v.setUint32(4, 64, true);
    v.setUint32(8, 64 + msb.length, true);
    frame.set(msb, 64);
    frame.set(lsb, 64 + msb.length);
    const out = decodeRle(frame, { rows: 2, columns: 2, bitsAllocated: 16 });
    expect(Array.from(new Uint16Array(out.buffer))).toEqual([0x0102, 0x0102, 0x0304, 0x0005]);
    frame[64] = 0x80; // a no-op header: the segment now decodes short
    expect(() => decodeRle(frame, { rows: 2, columns: 2, bitsAllocated: 16 })).toThrow(/corrupt/);
  });
});

describe('DICOM zip', () => {
  it('lists entries lazily and enforces the file limit', async () => {
    const zip = zipSync({
      'a/IM1': new Uint8Array([1, 2, 3]),
      'a/': new Uint8Array(0),
      '__MACOSX/x': new Uint8Array([9]),
    });
    const entries = zipEntries(zip);
    expect(entries.map((e) => e.size)).toEqual([3]);
    expect(Array.from(await entries[0].read())).toEqual([1, 2, 3]);
    const many = zipSync(
      Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`f${i}`, new Uint8Array([i + 1])])),
    );
    expect(() => zipEntries(many, { maxFiles: 4 })).toThrow(/over the limit of 4/);
    expect(() => zipEntries(new Uint8Array([0x50, 0x4b, 3, 4, 0, 0]))).toThrow(/corrupt/);
  });
});
