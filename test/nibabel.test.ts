/**
 * Cross-check against nibabel (an independent implementation): files our writer makes must
 * read back in nibabel with the same affine, qform and data, nibabel's aff2axcodes must agree
 * with ours, and files nibabel writes (NIfTI-1 and -2, big-endian, qform-only, scaled) must
 * read the same in our reader. Skipped when /usr/bin/python3 cannot import nibabel.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { applyAffine, invertAffine } from '../shared/geometry/affine.ts';
import { axcodes } from '../shared/geometry/orientation.ts';
import { gridForSpacing, resampleToGrid } from '../shared/geometry/resample.ts';
import { Rng } from '../shared/random.ts';
import { castTo } from '../shared/volume/datatype.ts';
import { readNifti, readNiftiAsync, writeNifti } from '../shared/volume/nifti.ts';
import type { Affine, DataTypeName, Dims3 } from '../shared/volume/volume.ts';

const PYTHON = '/usr/bin/python3';
const hasNibabel = spawnSync(PYTHON, ['-c', 'import nibabel, numpy'], { encoding: 'utf8' }).status === 0;
const hasScipy =
  hasNibabel &&
  spawnSync(PYTHON, ['-c', 'import nibabel.processing, scipy'], { encoding: 'utf8' }).status === 0;

function python(script: string, ...args: string[]): unknown {
  const r = spawnSync(PYTHON, ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function affineOf(rows: number[]): Affine {
  const a = new Float64Array(16);
  a.set(rows);
  a[15] = 1;
  return a;
}

function rotation(ax: number, ay: number, az: number): number[] {
  const [cx, sx, cy, sy, cz, sz] = [
    Math.cos(ax),
    Math.sin(ax),
    Math.cos(ay),
    Math.sin(ay),
    Math.cos(az),
    Math.sin(az),
  ];
  // Rz * Ry * Rx, row-major.
  return [
    cz * cy,
    cz * sy * sx - sz * cx,
    cz * sy * cx + sz * sx,
    sz * cy,
    sz * sy * sx + cz * cx,
    sz * sy * cx - cz * sx,
    -sy,
    cy * sx,
    cy * cx,
  ];
}

function withSpacing(r: number[], s: number[], t: number[]): Affine {
  return affineOf([
    r[0] * s[0],
    r[1] * s[1],
    r[2] * s[2],
    t[0],
    r[3] * s[0],
    r[4] * s[1],
    r[5] * s[2],
    t[1],
    r[6] * s[0],
    r[7] * s[1],
    r[8] * s[2],
    t[2],
  ]);
}

const AFFINES: Array<[string, Affine, boolean]> = [
  ['RAS 1.5 mm', affineOf([1.5, 0, 0, -120, 0, 1.5, 0, -80.25, 0, 0, 1.5, 33]), false],
  ['LPS', affineOf([-0.8105, 0, 0, 235.2, 0, -0.8105, 0, 226.8, 0, 0, 2.5, -128.69]), false],
  ['oblique', withSpacing(rotation(0.2, -0.35, 0.6), [0.9, 1.1, 3], [12.5, -40, 7.75]), false],
  ['left-handed oblique', withSpacing(rotation(-0.4, 0.1, 2.5), [1, 1, -2], [-3, 4, 5]), false],
  ['permuted (sagittal)', affineOf([0, 0, 1.2, -60, -0.9, 0, 0, 100, 0, -0.9, 0, 90]), false],
  ['sheared', affineOf([1, 0.3, 0, 0, 0, 1, 0.1, 0, 0, 0, 2, 0]), true],
];

const DTYPES: DataTypeName[] = ['uint8', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'float32', 'float64'];

const work = hasNibabel ? mkdtempSync(join(tmpdir(), 'freetumor-nibabel-')) : '';
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const CHECK_OURS = `
import json, sys, numpy as np, nibabel as nib
cases = json.load(open(sys.argv[1]))
out = []
for c in cases:
    img = nib.load(c['file'])
    expected = np.fromfile(c['values'], dtype='<f8').reshape(c['dims'], order='F')
    data = np.asanyarray(img.dataobj)
    hdr = img.header
    aff = np.array(c['affine']).reshape(4, 4)
    res = {
        'name': c['name'],
        'dtype': str(img.get_data_dtype().newbyteorder('=').name),
        'shape': list(img.shape),
        'affine_ok': bool(np.allclose(img.affine, aff, rtol=0, atol=1e-6)),
        'data_ok': bool(np.array_equal(data.astype(np.float64), expected)),
        'codes': [int(hdr['qform_code']), int(hdr['sform_code'])],
        'qform_err': float(np.abs(hdr.get_qform() - aff).max()),
        'axcodes': ''.join(nib.aff2axcodes(img.affine)),
        'vox_offset': int(img.dataobj.offset),
    }
    out.append(res)
print(json.dumps(out))
`;

const AXCODES = `
import json, sys, numpy as np, nibabel as nib
affs = json.load(open(sys.argv[1]))
print(json.dumps([''.join(str(c) for c in nib.aff2axcodes(np.array(a).reshape(4, 4))) for a in affs]))
`;

const WRITE_NIBABEL = `
import json, sys, os, numpy as np, nibabel as nib
d = sys.argv[1]
rng = np.random.default_rng(3)
def rot(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
cases = []
def add(name, img):
    path = os.path.join(d, name)
    nib.save(img, path)
    back = nib.load(path)
    vals = os.path.join(d, name + '.f8')
    np.asarray(back.get_fdata(), dtype='<f8').ravel(order='F').tofile(vals)
    cases.append({'name': name, 'file': path, 'values': vals, 'shape': list(back.shape),
                  'affine': back.affine.ravel().tolist(), 'dtype': back.get_data_dtype().newbyteorder('=').name})
shape = (7, 6, 5)
ct = (rng.normal(40, 300, shape)).round().astype(np.int16)
lps = np.diag([-0.75, -0.75, 2.5, 1.0]); lps[:3, 3] = [190, 170, -60]
obl = np.eye(4); obl[:3, :3] = rot(0.5) @ np.diag([1.2, 0.8, 2.0]); obl[:3, 3] = [-5, 6, 7]
add('ras_int16.nii.gz', nib.Nifti1Image(ct, np.diag([1.5, 1.5, 1.5, 1.0])))
add('lps_int16.nii', nib.Nifti1Image(ct, lps))
img = nib.Nifti1Image(ct.astype(np.float32) / 7, obl); add('oblique_float32.nii.gz', img)
img = nib.Nifti1Image(ct, obl); img.set_sform(None, code=0); img.set_qform(obl, code=1); add('qform_only.nii.gz', img)
h = nib.Nifti1Header(endianness='>'); img = nib.Nifti1Image(ct.astype(np.int32), lps, header=h); add('bigendian_int32.nii', img)
h = nib.Nifti1Header(endianness='>'); img = nib.Nifti1Image((rng.random(shape) * 100).astype(np.float64), obl, header=h); add('bigendian_float64.nii.gz', img)
add('nifti2_uint16.nii.gz', nib.Nifti2Image(rng.integers(0, 60000, shape).astype(np.uint16), lps))
h = nib.Nifti2Header(endianness='>'); add('nifti2_be_int8.nii', nib.Nifti2Image(rng.integers(-128, 127, shape).astype(np.int8), obl, header=h))
img = nib.Nifti1Image(ct, lps); img.header.set_slope_inter(0.5, -1024); add('scaled_int16.nii.gz', img)
add('labels_uint8.nii.gz', nib.Nifti1Image((rng.random(shape) * 4).astype(np.uint8), lps))
print(json.dumps(cases))
`;

describe.skipIf(!hasNibabel)('nibabel reads what we write', () => {
  it('same affine (sform), qform, data and datatype for 6 affines x 8 datatypes', () => {
    const rng = new Rng(99);
    const dims: Dims3 = [5, 4, 3];
    const cases: Array<Record<string, unknown>> = [];
    for (const [name, affine] of AFFINES) {
      for (const dt of DTYPES) {
        const raw = Float64Array.from({ length: 60 }, () => rng.uniform(-300, 300));
        const data = castTo(raw, dt);
        const file = join(work, `${name.replace(/\W+/g, '_')}_${dt}.nii${dt === 'int16' ? '' : '.gz'}`);
        writeFileSync(file, writeNifti({ dims, data, affine, datatype: dt }, { gzip: dt !== 'int16' }));
        const values = join(work, `${name.replace(/\W+/g, '_')}_${dt}.f8`);
        writeFileSync(values, new Uint8Array(Float64Array.from(data).buffer));
        cases.push({
          name: `${name} ${dt}`,
          file,
          values,
          dims,
          dt,
          affine: Array.from(affine, Math.fround),
          sheared: false,
        });
      }
    }
    const manifest = join(work, 'ours.json');
    writeFileSync(manifest, JSON.stringify(cases));
    const results = python(CHECK_OURS, manifest) as Array<Record<string, unknown>>;
    expect(results).toHaveLength(cases.length);
    results.forEach((r, n) => {
      const c = cases[n];
      const [, affine, sheared] = AFFINES[Math.floor(n / DTYPES.length)];
      expect(r, String(r.name)).toMatchObject({
        dtype: c.dt,
        shape: dims,
        affine_ok: true,
        data_ok: true,
        codes: [1, 1],
        vox_offset: 352,
        axcodes: axcodes(affine),
      });
      // The qform holds the same geometry (float32 precision), except shear, which it cannot hold.
      if (!sheared) expect(r.qform_err as number).toBeLessThan(1e-4);
    });
  });

  it('aff2axcodes agrees with axcodes on 300 random affines (oblique, flipped, permuted, ties)', () => {
    const rng = new Rng(5);
    const affines: Affine[] = [];
    for (let n = 0; n < 300; n++) {
      let a: Affine;
      if (n % 3 === 0) {
        // Exact 45-degree rotations produce ties.
        const q = (Math.PI / 4) * rng.int(0, 7);
        a = withSpacing(
          rotation(0, 0, q),
          [rng.pick([1, -1]), rng.pick([1, -1]), rng.uniform(0.5, 3)],
          [0, 0, 0],
        );
      } else {
        a = affineOf(Array.from({ length: 12 }, () => rng.uniform(-2, 2)));
      }
      affines.push(a);
    }
    const file = join(work, 'affines.json');
    writeFileSync(file, JSON.stringify(affines.map((a) => Array.from(a))));
    const theirs = python(AXCODES, file) as string[];
    expect(affines.map(axcodes)).toEqual(theirs);
  });
});

describe.skipIf(!hasNibabel)('we read what nibabel writes', () => {
  it('NIfTI-1/2, big-endian, qform-only, scaled, 6 datatypes: same affine and data', async () => {
    const cases = python(WRITE_NIBABEL, work) as Array<{
      name: string;
      file: string;
      values: string;
      shape: number[];
      affine: number[];
      dtype: string;
    }>;
    expect(cases.length).toBe(10);
    for (const c of cases) {
      const bytes = new Uint8Array(readFileSync(c.file));
      const vol = readNifti(bytes);
      expect((await readNiftiAsync(bytes)).data, c.name).toEqual(vol.data);
      expect(vol.dims, c.name).toEqual(c.shape);
      expect(vol.datatype, c.name).toBe(c.dtype);
      for (let i = 0; i < 16; i++)
        expect(Math.abs(vol.affine[i] - c.affine[i]), `${c.name} affine[${i}]`).toBeLessThan(1e-6);
      const buf = readFileSync(c.values);
      const expected = new Float64Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
      const scaled = c.name.startsWith('scaled');
      for (let i = 0; i < expected.length; i++) {
        if (scaled) expect(vol.data[i]).toBe(Math.fround(expected[i]));
        else expect(vol.data[i], c.name).toBe(expected[i]);
      }
    }
  });
});

const RESAMPLE = `
import sys, json, numpy as np, nibabel as nib
from nibabel.processing import resample_from_to
img = nib.load(sys.argv[1])
for n, g in enumerate(json.load(open(sys.argv[2]))):
    r = resample_from_to(img, (tuple(g['shape']), np.array(g['affine']).reshape(4, 4)), order=g['order'], mode='nearest')
    np.asarray(r.dataobj, dtype='<f8').ravel(order='F').tofile(sys.argv[3] + str(n))
print('[]')
`;

describe.skipIf(!hasScipy)('resampling agrees with nibabel.processing (scipy map_coordinates)', () => {
  it('trilinear and nearest onto a finer grid and an oblique grid, inside the field of view', () => {
    const rng = new Rng(8);
    const dims: Dims3 = [12, 10, 9];
    const srcAffine = affineOf([-3, 0, 0, 40, 0, -2.5, 0, 30, 0, 0, 3.5, -20]);
    const data = Float32Array.from({ length: 12 * 10 * 9 }, () => Math.fround(rng.uniform(-100, 100)));
    const src = { dims, data, affine: srcAffine, datatype: 'float32' as const };
    const file = join(work, 'resample-src.nii');
    writeFileSync(file, writeNifti(src, { gzip: false }));
    const fine = gridForSpacing(dims, srcAffine, [1.5, 1.25, 1.75]);
    const oblique = {
      dims: [14, 13, 12] as Dims3,
      affine: withSpacing(rotation(0.3, -0.2, 0.5), [2, 2, 2], [25, 12, -5]),
    };
    const grids = [
      { ...fine, order: 1 },
      { ...oblique, order: 1 },
      { ...fine, order: 0 },
      { ...oblique, order: 0 },
    ];
    const spec = join(work, 'grids.json');
    writeFileSync(
      spec,
      JSON.stringify(grids.map((g) => ({ shape: g.dims, affine: Array.from(g.affine), order: g.order }))),
    );
    python(RESAMPLE, file, spec, join(work, 'resampled-'));
    const toSrc = (g: { affine: Affine }) => {
      const m = invertAffine(srcAffine);
      return (v: number[]) => applyAffine(m, applyAffine(g.affine, v));
    };
    grids.forEach((g, n) => {
      const ours = resampleToGrid(src, g.dims, g.affine, g.order === 1 ? 'linear' : 'nearest');
      const buf = readFileSync(join(work, `resampled-${n}`));
      const theirs = new Float64Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
      const map = toSrc(g);
      let compared = 0;
      let idx = 0;
      for (let k = 0; k < g.dims[2]; k++)
        for (let j = 0; j < g.dims[1]; j++)
          for (let i = 0; i < g.dims[0]; i++, idx++) {
            const p = map([i, j, k]);
            // Inside the field of view (where we clamp to the edge, as scipy's mode='nearest').
            if (!p.every((x, a) => x >= -0.49 && x <= dims[a] - 0.51)) continue;
            // Nearest: skip exact half-voxel ties, where rounding conventions may differ.
            if (g.order === 0 && p.some((x) => Math.abs(x - Math.floor(x) - 0.5) < 1e-3)) continue;
            expect(Math.abs(ours.data[idx] - theirs[idx]), `grid ${n} voxel ${i},${j},${k}`).toBeLessThan(
              1e-3,
            );
            compared++;
          }
      expect(compared).toBeGreaterThan(200);
    });
  });
});
