import { readFileSync } from 'node:fs';
import { Gzip, gzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { DCMQI_CT, DCMQI_LABEL, TOTALSEG_CT, TOTALSEG_SEG } from '../../test/shared-data.ts';
import { FreeTumorError, LimitError, NiftiError } from '../errors.ts';
import { axcodes } from '../geometry/orientation.ts';
import { Rng } from '../random.ts';
import { DATATYPE_NAMES } from './datatype.ts';
import { gunzipStream } from './gzip.ts';
import { readNifti, readNiftiAsync, readNiftiHeader, writeNifti, writeNiftiAsync } from './nifti.ts';
import { buildNifti, type NiftiSpec } from './nifti-fixtures.ts';
import { type Affine, type DataTypeName, type Dims3, spacingOf, type Volume } from './volume.ts';

const RANGES: Record<DataTypeName, [number, number]> = {
  uint8: [0, 255],
  int8: [-128, 127],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  float32: [-Math.fround(1e30), Math.fround(1e30)],
  float64: [-1e300, 1e300],
};

/** Values spanning the type's range, its extremes included. */
function sampleValues(dt: DataTypeName, n: number, rng: Rng): number[] {
  const [lo, hi] = RANGES[dt];
  const out: number[] = [lo, hi, 0];
  while (out.length < n) {
    const x = rng.uniform(lo, hi);
    out.push(dt.startsWith('float') ? (dt === 'float32' ? Math.fround(x / 1e25) : x / 1e290) : Math.round(x));
  }
  return out;
}

function affineOf(rows: number[]): Affine {
  const a = new Float64Array(16);
  a.set(rows);
  a[15] = 1;
  return a;
}

const OBLIQUE = affineOf([0.9, -0.3, 0.1, -120.5, 0.25, 1.4, 0.2, 33.25, -0.05, -0.15, 2.9, 77]);
const LPS = affineOf([-0.8, 0, 0, 200, 0, -0.8, 0, 180, 0, 0, 2.5, -50]);

const HEADER_SECRET = 'PATIENT^SECRET';

function spec(over: Partial<NiftiSpec> = {}): NiftiSpec {
  return {
    dim: [3, 4, 3, 2, 1, 1, 1, 1],
    datatype: 'int16',
    values: Array.from({ length: 24 }, (_, i) => i * 3 - 20),
    pixdim: [1, 2, 3, 4, 1, 1, 1, 1],
    srow: [2, 0, 0, -10, 0, 3, 0, 20, 0, 0, 4, 30],
    descrip: HEADER_SECRET,
    intentName: 'SECRET2',
    ...over,
  };
}

async function expectAsyncFailure(
  bytes: Uint8Array,
  code: string,
  pattern?: RegExp,
  limits?: Parameters<typeof readNifti>[1],
) {
  let error: unknown;
  try {
    await readNiftiAsync(bytes, limits);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(FreeTumorError);
  expect((error as FreeTumorError).code).toBe(code);
  if (pattern) expect((error as FreeTumorError).message).toMatch(pattern);
}

function expectNiftiFailure(
  bytes: Uint8Array,
  code: string,
  pattern?: RegExp,
  limits?: Parameters<typeof readNifti>[1],
) {
  let error: unknown;
  try {
    readNifti(bytes, limits);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(FreeTumorError);
  const e = error as FreeTumorError;
  expect(e.code).toBe(code);
  if (pattern) expect(e.message).toMatch(pattern);
  expect(e.message).not.toContain('SECRET');
  return e;
}

describe('readNifti / writeNifti round trips', () => {
  const rng = new Rng(7);
  for (const dt of DATATYPE_NAMES) {
    for (const gz of [true, false]) {
      it(`${dt} ${gz ? '.nii.gz' : '.nii'}: data and affine survive write -> read -> write -> read`, () => {
        const dims: Dims3 = [5, 4, 3];
        const values = sampleValues(dt, 60, rng);
        const file = buildNifti(
          spec({
            dim: [3, ...dims, 1, 1, 1, 1],
            datatype: dt,
            values,
            srow: Array.from(OBLIQUE.subarray(0, 12)),
          }),
        );
        const vol = readNifti(file);
        expect(vol.datatype).toBe(dt);
        expect(Array.from(vol.data)).toEqual(values);
        const again = readNifti(writeNifti(vol, { gzip: gz }));
        expect(again.dims).toEqual(dims);
        expect(again.datatype).toBe(dt);
        expect(again.data.constructor).toBe(vol.data.constructor);
        expect(Array.from(again.data)).toEqual(values);
        expect(Array.from(again.affine)).toEqual(Array.from(vol.affine));
      });
    }
  }

  it('stores the affine as float32 in the sform and a matching qform (LPS, oblique, left-handed)', () => {
    const leftHanded = affineOf([1.5, 0, 0, 1, 0, 1.5, 0, 2, 0, 0, -3, 3]);
    for (const affine of [LPS, OBLIQUE, leftHanded]) {
      const vol: Volume = {
        dims: [3, 3, 3],
        data: new Float32Array(27).fill(1),
        affine,
        datatype: 'float32',
      };
      const bytes = writeNifti(vol, { gzip: false });
      const back = readNifti(bytes);
      expect(Array.from(back.affine)).toEqual(Array.from(affine, Math.fround));
      // Clear sform_code: the reader then uses the qform, which must give the same geometry
      // (to float32 precision; OBLIQUE has shear, which only the sform can hold).
      const qOnly = bytes.slice();
      new DataView(qOnly.buffer).setInt16(254, 0, true);
      const q = readNiftiHeader(qOnly);
      expect(q.affineSource).toBe('qform');
      const tol = affine === OBLIQUE ? 0.2 : 1e-4;
      for (let i = 0; i < 16; i++) expect(Math.abs(q.affine[i] - affine[i])).toBeLessThan(tol);
      expect(axcodes(q.affine)).toBe(axcodes(affine));
      expect(q.pixdim[0]).toBe(affine === leftHanded ? -1 : 1);
    }
  });

  it('writes the header fields nibabel and nifti1.h expect', () => {
    const vol: Volume = { dims: [2, 3, 4], data: new Uint8Array(24), affine: LPS, datatype: 'uint8' };
    const bytes = writeNifti(vol, { gzip: false, description: 'made by a test' });
    const v = new DataView(bytes.buffer);
    expect(v.getInt32(0, true)).toBe(348);
    expect(v.getFloat32(108, true)).toBe(352);
    expect(String.fromCharCode(...bytes.subarray(344, 348))).toBe('n+1\0');
    expect(v.getInt16(252, true)).toBe(1);
    expect(v.getInt16(254, true)).toBe(1);
    expect(v.getInt16(72, true)).toBe(8);
    expect([v.getFloat32(80, true), v.getFloat32(84, true), v.getFloat32(88, true)]).toEqual([
      Math.fround(0.8),
      Math.fround(0.8),
      2.5,
    ]);
    expect(bytes.length).toBe(352 + 24);
    expect(String.fromCharCode(...bytes.subarray(148, 162))).toBe('made by a test');
  });

  it('casts to the requested datatype, rounding and clamping', () => {
    const vol: Volume = {
      dims: [6, 1, 1],
      data: new Float32Array([-1000, -0.5, 0.5, 1.49, 254.6, Number.NaN]),
      affine: LPS,
      datatype: 'float32',
    };
    const back = readNifti(writeNifti(vol, { datatype: 'uint8' }));
    expect(back.datatype).toBe('uint8');
    expect(Array.from(back.data)).toEqual([0, 0, 1, 1, 255, 0]);
  });

  it('refuses to write a singular affine or dims NIfTI-1 cannot hold', () => {
    const sing = affineOf([1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    expect(() =>
      writeNifti({ dims: [1, 1, 1], data: new Uint8Array(1), affine: sing, datatype: 'uint8' }),
    ).toThrow(NiftiError);
    expect(() =>
      writeNifti({ dims: [40000, 1, 1], data: new Uint8Array(40000), affine: LPS, datatype: 'uint8' }),
    ).toThrow(NiftiError);
  });
});

describe('readNifti variants', () => {
  for (const dt of DATATYPE_NAMES) {
    it(`big-endian ${dt} reads the same as little-endian (NIfTI-1 and NIfTI-2)`, () => {
      const values = sampleValues(dt, 24, new Rng(3));
      for (const version of [1, 2] as const) {
        const le = readNifti(buildNifti(spec({ datatype: dt, values, version })));
        const be = readNifti(buildNifti(spec({ datatype: dt, values, version, littleEndian: false })));
        expect(Array.from(le.data)).toEqual(values);
        expect(Array.from(be.data)).toEqual(values);
        expect(Array.from(be.affine)).toEqual(Array.from(le.affine));
      }
    });
  }

  it('reads NIfTI-2 with float64 geometry exactly', () => {
    const srow = [0.7, 0.1, 0, -99.123456789, -0.1, 0.7, 0, 12.5, 0, 0, 1.25, 3.000000001];
    const f = buildNifti(
      spec({ version: 2, srow, pixdim: [1, Math.SQRT1_2, Math.SQRT1_2, 1.25, 1, 1, 1, 1] }),
    );
    const h = readNiftiHeader(f);
    expect(h.version).toBe(2);
    expect(Array.from(h.affine.subarray(0, 12))).toEqual(srow);
    const gz = readNifti(gzipSync(f));
    expect(Array.from(gz.data)).toEqual(spec().values);
  });

  it('applies scl_slope / scl_inter as nibabel does', () => {
    const values = [0, 1, 2, 3, 4, 5, 6, 7];
    const base = { dim: [3, 2, 2, 2, 1, 1, 1, 1], values };
    const scaled = readNifti(buildNifti(spec({ ...base, sclSlope: 2, sclInter: -1024 })));
    expect(scaled.data).toBeInstanceOf(Float32Array);
    expect(scaled.datatype).toBe('int16');
    expect(Array.from(scaled.data)).toEqual(values.map((v) => v * 2 - 1024));
    for (const slope of [0, Number.NaN, Number.POSITIVE_INFINITY, 1]) {
      const raw = readNifti(buildNifti(spec({ ...base, sclSlope: slope, sclInter: slope === 1 ? 0 : 5 })));
      expect(raw.data).toBeInstanceOf(Int16Array);
      expect(Array.from(raw.data)).toEqual(values);
    }
    const f64 = readNifti(buildNifti(spec({ ...base, datatype: 'float64', sclSlope: 0.5, sclInter: 1 })));
    expect(f64.data).toBeInstanceOf(Float64Array);
    expect(Array.from(f64.data)).toEqual(values.map((v) => v * 0.5 + 1));
    expectNiftiFailure(
      buildNifti(spec({ ...base, sclSlope: 2, sclInter: Number.NaN })),
      'invalid_nifti',
      /scl_inter/,
    );
  });

  it('takes the sform, else the qform, else the base affine (nibabel get_best_affine)', () => {
    // 180 degrees about z (quaternion b=c=0, d=1) with qfac -1: i -> -x, j -> -y, k -> -z.
    const q = readNiftiHeader(
      buildNifti(
        spec({
          sformCode: 0,
          qformCode: 1,
          quatern: [0, 0, 1],
          qoffset: [10, 20, 30],
          pixdim: [-1, 2, 3, 4, 1, 1, 1, 1],
        }),
      ),
    );
    expect(q.affineSource).toBe('qform');
    expect(Array.from(q.affine, (x) => x + 0)).toEqual([
      -2, 0, 0, 10, 0, -3, 0, 20, 0, 0, -4, 30, 0, 0, 0, 1,
    ]);
    expect(axcodes(q.affine)).toBe('LPI');
    // No codes: nibabel's Analyze-style base affine, x flipped and centred.
    const b = readNiftiHeader(buildNifti(spec({ sformCode: 0, qformCode: 0 })));
    expect(b.affineSource).toBe('base');
    expect(Array.from(b.affine)).toEqual([-2, 0, 0, 3, 0, 3, 0, -3, 0, 0, 4, -2, 0, 0, 0, 1]);
    // A sform code wins even over a qform.
    const s = readNiftiHeader(buildNifti(spec({ sformCode: 2, qformCode: 1, quatern: [0, 0, 1] })));
    expect(s.affineSource).toBe('sform');
  });

  it('accepts dim[0] 1..7 when the extra dims are 1, and 1D/2D images', () => {
    const four = readNifti(buildNifti(spec({ dim: [4, 4, 3, 2, 1, 1, 1, 1] })));
    expect(four.dims).toEqual([4, 3, 2]);
    const two = readNifti(
      buildNifti(spec({ dim: [2, 4, 6, 9, 9, 9, 9, 9], pixdim: [1, 2, 3, 0, 0, 0, 0, 0] })),
    );
    expect(two.dims).toEqual([4, 6, 1]);
    const seven = readNifti(buildNifti(spec({ dim: [7, 4, 3, 2, 1, 1, 1, 1] })));
    expect(seven.data.length).toBe(24);
  });

  it('ignores bytes after the data and header extensions before vox_offset', () => {
    const f = buildNifti(spec({ voxOffset: 352 + 64 }));
    const longer = new Uint8Array(f.length + 100);
    longer.set(f);
    longer[348] = 1; // extension flag: the reader skips to vox_offset regardless
    expect(Array.from(readNifti(longer).data)).toEqual(spec().values);
    expect(Array.from(readNifti(gzipSync(longer)).data)).toEqual(spec().values);
  });

  it('reads from a view at an odd offset (e.g. a pooled Node Buffer) without touching it', () => {
    const f = buildNifti(spec({ littleEndian: false }));
    const pool = new Uint8Array(f.length + 3);
    pool.set(f, 1);
    const view = pool.subarray(1, 1 + f.length);
    const before = view.slice();
    expect(Array.from(readNifti(view).data)).toEqual(spec().values);
    expect(view).toEqual(before);
  });

  it('reads multi-member gzip streams', async () => {
    const f = buildNifti(spec());
    const cut = 200;
    const joined = new Uint8Array([...gzipSync(f.subarray(0, cut)), ...gzipSync(f.subarray(cut))]);
    expect(Array.from(readNifti(joined).data)).toEqual(spec().values);
    expect(Array.from((await readNiftiAsync(joined)).data)).toEqual(spec().values);
  });

  it('the async (native gzip) reader and writer give the same volumes as the sync ones', async () => {
    const rng = new Rng(12);
    for (const dt of DATATYPE_NAMES) {
      const values = sampleValues(dt, 4096, rng);
      const file = buildNifti(
        spec({ dim: [3, 16, 16, 16, 1, 1, 1, 1], datatype: dt, values, littleEndian: dt !== 'int16' }),
      );
      const vol = readNifti(file);
      for (const bytes of [
        gzipSync(file),
        await writeNiftiAsync(vol, { native: true }),
        writeNifti(vol),
        file,
      ]) {
        const a = await readNiftiAsync(bytes);
        expect(a.datatype).toBe(dt);
        expect(a.data).toEqual(vol.data);
        expect(Array.from(a.affine)).toEqual(Array.from(vol.affine));
      }
      expect(readNifti(await writeNiftiAsync(vol, { native: true })).data).toEqual(vol.data);
      expect(readNifti(await writeNiftiAsync(vol)).data).toEqual(vol.data);
    }
  });
});

describe('readNifti rejects bad input with typed errors', () => {
  const good = buildNifti(spec());
  const cases: Array<[string, () => Uint8Array, string, RegExp]> = [
    ['an empty file', () => new Uint8Array(0), 'invalid_nifti', /empty/],
    ['3 bytes', () => new Uint8Array([1, 2, 3]), 'invalid_nifti', /sizeof_hdr/],
    ['a wrong sizeof_hdr', () => buildNifti(spec({ sizeofHdr: 349 })), 'invalid_nifti', /sizeof_hdr/],
    ['a header cut short', () => good.subarray(0, 200), 'truncated', /header is truncated/],
    ['a bad magic', () => buildNifti(spec({ magic: 'abc\0' })), 'invalid_nifti', /magic/],
    ['a .hdr/.img pair header', () => buildNifti(spec({ magic: 'ni1\0' })), 'invalid_nifti', /two-file/],
    ['dim[0] = 0', () => buildNifti(spec({ dim: [0, 4, 3, 2, 1, 1, 1, 1] })), 'invalid_nifti', /dim\[0\]/],
    ['dim[0] = 8', () => buildNifti(spec({ dim: [8, 4, 3, 2, 1, 1, 1, 1] })), 'invalid_nifti', /dim\[0\]/],
    [
      'a negative dim',
      () => buildNifti(spec({ dim: [3, 4, -3, 2, 1, 1, 1, 1] })),
      'invalid_nifti',
      /dim\[2\] must be positive/,
    ],
    ['a zero dim', () => buildNifti(spec({ dim: [3, 4, 3, 0, 1, 1, 1, 1] })), 'invalid_nifti', /dim\[3\]/],
    [
      'a 4D series',
      () => buildNifti(spec({ dim: [4, 4, 3, 2, 5, 1, 1, 1] })),
      'invalid_nifti',
      /only 3D.*dim\[4\] is 5/,
    ],
    ['complex64 data', () => buildNifti(spec({ datatype: 32 })), 'unsupported_datatype', /complex64/],
    ['int64 data', () => buildNifti(spec({ datatype: 1024 })), 'unsupported_datatype', /int64/],
    ['an unknown datatype code', () => buildNifti(spec({ datatype: 3 })), 'unsupported_datatype', /code 3/],
    ['vox_offset below 352', () => buildNifti(spec({ voxOffset: 348 })), 'invalid_nifti', /vox_offset/],
    ['a fractional vox_offset', () => buildNifti(spec({ voxOffset: 352.5 })), 'invalid_nifti', /vox_offset/],
    ['a NaN vox_offset', () => buildNifti(spec({ voxOffset: Number.NaN })), 'invalid_nifti', /vox_offset/],
    [
      'vox_offset past the end',
      () => buildNifti(spec({ values: [], voxOffset: 4096 })).subarray(0, 400),
      'truncated',
      /vox_offset/,
    ],
    ['truncated data', () => good.subarray(0, good.length - 1), 'truncated', /47 of 48 bytes/],
    [
      'truncated data in a .nii.gz',
      () => gzipSync(good.subarray(0, good.length - 5)),
      'truncated',
      /43 of 48/,
    ],
    ['a cut gzip stream', () => gzipSync(good).subarray(0, 30), 'truncated', /truncated/],
    ['a corrupt gzip stream', () => corruptGzip(gzipSync(good)), 'invalid_nifti', /gzip/],
    [
      'pixdim 0',
      () => buildNifti(spec({ pixdim: [1, 2, 0, 4, 1, 1, 1, 1] })),
      'invalid_geometry',
      /pixdim\[2\]/,
    ],
    [
      'pixdim negative',
      () => buildNifti(spec({ pixdim: [1, -2, 3, 4, 1, 1, 1, 1] })),
      'invalid_geometry',
      /pixdim\[1\]/,
    ],
    [
      'pixdim NaN',
      () => buildNifti(spec({ pixdim: [1, 2, 3, Number.NaN, 1, 1, 1, 1] })),
      'invalid_geometry',
      /pixdim\[3\]/,
    ],
    [
      'pixdim infinite',
      () => buildNifti(spec({ pixdim: [1, 2, Number.POSITIVE_INFINITY, 4, 1, 1, 1, 1] })),
      'invalid_geometry',
      /pixdim\[2\]/,
    ],
    [
      'a singular sform',
      () => buildNifti(spec({ srow: [1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0] })),
      'invalid_geometry',
      /sform/,
    ],
    [
      'a NaN sform',
      () => buildNifti(spec({ srow: [1, 0, 0, Number.NaN, 0, 1, 0, 0, 0, 0, 1, 0] })),
      'invalid_geometry',
      /sform/,
    ],
    [
      'a non-unit qform quaternion',
      () => buildNifti(spec({ sformCode: 0, qformCode: 1, quatern: [0.9, 0.9, 0] })),
      'invalid_geometry',
      /quaternion/,
    ],
    [
      'NIfTI-2 dims beyond 2^53',
      () => buildNifti(spec({ version: 2, dim: [3, 2 ** 60, 1, 1, 1, 1, 1, 1] })),
      'too_large',
      /dim\[1\]/,
    ],
  ];
  for (const [name, make, code, pattern] of cases) {
    it(`rejects ${name}`, async () => {
      const bytes = make();
      expectNiftiFailure(bytes, code, pattern);
      await expectAsyncFailure(bytes, code, pattern);
      // Header-only reading fails the same way for everything the header alone decides.
      if (!/truncated data|cut gzip|corrupt gzip/.test(name)) {
        expect(() => readNiftiHeader(bytes)).toThrow(FreeTumorError);
      }
    });
  }

  it('checks the caller limits before allocating, naming the limit', () => {
    const big = buildNifti(spec({ dim: [3, 1000, 1000, 1000, 1, 1, 1, 1], values: [] }));
    const e = expectNiftiFailure(big, 'too_large', /voxel count.*1000x1000x1000.*limit of 1000000/, {
      maxVoxels: 1_000_000,
    });
    expect(e).toBeInstanceOf(LimitError);
    expect((e as LimitError).limit).toBe('voxel count');
    const bytes = expectNiftiFailure(good, 'too_large', /voxel data bytes is 48/, { maxBytes: 40 });
    expect((bytes as LimitError).max).toBe(40);
    expectNiftiFailure(good, 'too_large', /file bytes/, { maxCompressedBytes: 100 });
    // Over the default limits: 2^30 voxels of float64 is refused without any allocation.
    expectNiftiFailure(
      buildNifti(spec({ dim: [3, 1024, 1024, 1024, 1, 1, 1, 1], values: [] })),
      'too_large',
      /voxel count/,
    );
  });

  it('stops inflating a gzip bomb at the size the header gives', async () => {
    // A valid 48-byte volume followed by 64 MiB of zeros in the same gzip stream.
    const parts: Uint8Array[] = [];
    const gz = new Gzip({ level: 9 }, (chunk) => parts.push(chunk));
    gz.push(good);
    const zeros = new Uint8Array(1 << 20);
    for (let i = 0; i < 64; i++) gz.push(zeros, i === 63);
    const bomb = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      bomb.set(p, off);
      off += p.length;
    }
    expect(bomb.length).toBeLessThan(200_000);
    expect(Array.from(readNifti(bomb).data)).toEqual(spec().values);
    expect(Array.from((await readNiftiAsync(bomb)).data)).toEqual(spec().values);
    // The streaming inflater hands over at most one input chunk's worth past the stop.
    let seen = 0;
    gunzipStream(bomb, (chunk) => {
      seen += chunk.length;
      return seen < 1000;
    });
    expect(seen).toBeLessThan(17 * 1024 * 1024);
    // And a header that claims more than the cap is refused before the data are inflated.
    const claims = gzipSync(buildNifti(spec({ dim: [3, 1024, 1024, 200, 1, 1, 1, 1], values: [] })));
    expectNiftiFailure(claims, 'too_large', /voxel data bytes/, { maxBytes: 2 ** 28 });
    await expectAsyncFailure(claims, 'too_large', /voxel data bytes/, { maxBytes: 2 ** 28 });
  });

  it('reads the header of a .nii.gz without inflating the (here corrupt) data', () => {
    const f = buildNifti(spec({ dim: [3, 64, 64, 64, 1, 1, 1, 1], values: new Array(64 ** 3).fill(7) }));
    const gz = gzipSync(f, { level: 1 });
    const broken = corruptGzip(gz);
    const h = readNiftiHeader(broken);
    expect(h.dims).toEqual([64, 64, 64]);
    expect(h.gzip).toBe(true);
    expect(() => readNifti(broken)).toThrow(NiftiError);
  });

  it('throws nothing but FreeTumorErrors on 3000 mutated and truncated files (seeded fuzz)', () => {
    const rng = new Rng(20261128);
    const seeds = [
      buildNifti(spec()),
      buildNifti(spec({ version: 2, littleEndian: false })),
      buildNifti(spec({ sformCode: 0, qformCode: 1, quatern: [0.1, 0.2, 0.3], sclSlope: 2, sclInter: 1 })),
    ];
    const limits = { maxVoxels: 1 << 20, maxBytes: 1 << 22 };
    let ok = 0;
    for (let n = 0; n < 3000; n++) {
      const base = rng.pick(seeds);
      const bytes = base.slice();
      const edits = rng.int(1, 6);
      for (let e = 0; e < edits; e++) {
        // Mostly the header (where the structure is), sometimes anywhere.
        const at =
          rng.random() < 0.85 ? rng.int(0, Math.min(bytes.length, 552) - 1) : rng.int(0, bytes.length - 1);
        bytes[at] = rng.random() < 0.5 ? rng.int(0, 255) : rng.pick([0, 0xff, 0x7f, 0x80, 1]);
      }
      let input: Uint8Array = rng.random() < 0.2 ? bytes.subarray(0, rng.int(0, bytes.length)) : bytes;
      if (rng.random() < 0.3) {
        input = gzipSync(input);
        if (rng.random() < 0.5) input = input.slice(0, rng.int(0, input.length));
        if (rng.random() < 0.3 && input.length > 12)
          input[rng.int(10, input.length - 1)] ^= 1 << rng.int(0, 7);
      }
      try {
        readNifti(input, limits);
        ok++;
      } catch (e) {
        if (!(e instanceof FreeTumorError)) throw new Error(`untyped ${String(e)} on fuzz case ${n}`);
        expect(e.message).not.toContain('SECRET');
      }
    }
    // Some mutations leave a readable file (e.g. a changed voxel); most do not.
    expect(ok).toBeGreaterThan(0);
    expect(ok).toBeLessThan(3000);
  });

  it('the async reader also throws nothing but FreeTumorErrors on 300 mutated .nii.gz files', async () => {
    const rng = new Rng(77);
    const good = buildNifti(spec({ dim: [3, 8, 8, 8, 1, 1, 1, 1], values: new Array(512).fill(3) }));
    for (let n = 0; n < 300; n++) {
      const bytes = good.slice();
      for (let e = rng.int(0, 4); e > 0; e--) bytes[rng.int(0, 360)] = rng.int(0, 255);
      let gz = gzipSync(bytes);
      if (rng.random() < 0.4) gz = gz.slice(0, rng.int(2, gz.length));
      if (rng.random() < 0.4) gz[rng.int(10, gz.length - 1)] ^= 1 << rng.int(0, 7);
      let syncError: unknown = null;
      try {
        readNifti(gz);
      } catch (e) {
        syncError = e;
      }
      try {
        await readNiftiAsync(gz);
        expect(syncError).toBeNull();
      } catch (e) {
        if (!(e instanceof FreeTumorError)) throw new Error(`untyped ${String(e)} on async fuzz case ${n}`);
      }
    }
  });
});

/** Flips bits in the middle of the deflate data (past the gzip header). */
function corruptGzip(gz: Uint8Array): Uint8Array {
  const out = gz.slice();
  const from = Math.floor(out.length / 2);
  for (let i = from; i < Math.min(out.length - 8, from + 12); i++) out[i] ^= 0xa5;
  return out;
}

describe.skipIf(!TOTALSEG_CT)('real CT: TotalSegmentator example', () => {
  it('reads example_ct.nii.gz: 122x101x112, 3 mm, RAS, int32 HU', () => {
    const vol = readNifti(new Uint8Array(readFileSync(TOTALSEG_CT as string)));
    expect(vol.dims).toEqual([122, 101, 112]);
    expect(vol.datatype).toBe('int32');
    expect(vol.data).toBeInstanceOf(Int32Array);
    for (const s of spacingOf(vol.affine)) expect(s).toBeCloseTo(3, 5);
    expect(axcodes(vol.affine)).toBe('RAS');
    let min = Infinity;
    let max = -Infinity;
    for (const v of vol.data) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect([min, max]).toEqual([-1207, 3382]);
    const back = readNifti(writeNifti(vol));
    expect(Array.from(back.affine)).toEqual(Array.from(vol.affine));
    expect(back.data).toEqual(vol.data);
  });

  it.skipIf(!TOTALSEG_SEG)('reads the segmentation on the same grid', () => {
    const ct = readNiftiHeader(new Uint8Array(readFileSync(TOTALSEG_CT as string)));
    const seg = readNifti(new Uint8Array(readFileSync(TOTALSEG_SEG as string)));
    expect(seg.datatype).toBe('uint8');
    expect(seg.dims).toEqual(ct.dims);
    expect(Array.from(seg.affine)).toEqual(Array.from(ct.affine));
    expect(seg.data.includes(5)).toBe(true); // liver
  });
});

describe.skipIf(!DCMQI_CT)('real CT: dcmqi 3-slice liver', () => {
  it('reads ct.nii.gz: 512x512x3 int16, 0.81 x 0.81 x 1 mm', () => {
    const vol = readNifti(new Uint8Array(readFileSync(DCMQI_CT as string)));
    expect(vol.dims).toEqual([512, 512, 3]);
    expect(vol.datatype).toBe('int16');
    const [sx, sy, sz] = spacingOf(vol.affine);
    expect(sx).toBeCloseTo(0.8105, 3);
    expect(sy).toBeCloseTo(0.8105, 3);
    expect(sz).toBeCloseTo(1, 5);
    expect(vol.data.includes(-3024)).toBe(true);
    const label = readNifti(new Uint8Array(readFileSync(DCMQI_LABEL as string)));
    expect(label.dims).toEqual([512, 512, 3]);
    expect(Array.from(label.affine)).toEqual(Array.from(vol.affine));
  });
});
