/**
 * `npm run bench -- nifti`: reading and writing a ~250^3 int16 CT-like .nii.gz (MB/s of
 * uncompressed voxel data), against nibabel on the same file in the same run when
 * /usr/bin/python3 has it, plus resampling the real 3 mm sample to 1.5 mm.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resampleToGrid, resampleToSpacing } from '../shared/geometry/resample.ts';
import { Rng } from '../shared/random.ts';
import { readNifti, readNiftiAsync, writeNifti, writeNiftiAsync } from '../shared/volume/nifti.ts';
import type { Dims3, Volume } from '../shared/volume/volume.ts';
import { type BenchContext, type BenchResult, result, timeMedian } from './harness.ts';

const GROUP = 'nifti';
const PYTHON = '/usr/bin/python3';

/** An abdomen-like int16 CT: air, a fat-rimmed body, organs, a spine and 12 HU of noise. */
function ctLike(n: number): Volume<Int16Array> {
  const dims: Dims3 = [n, n, n];
  const data = new Int16Array(n * n * n);
  const rng = new Rng(1);
  const c = (n - 1) / 2;
  let idx = 0;
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < n; i++, idx++) {
        const x = (i - c) / (0.45 * n);
        const y = (j - c) / (0.32 * n);
        const body = x * x + y * y;
        let hu = -1000;
        if (body < 1) {
          hu = body > 0.8 ? -100 : 40;
          const liver = ((i - 0.35 * n) / (0.15 * n)) ** 2 + ((j - 0.45 * n) / (0.12 * n)) ** 2;
          if (liver < 1) hu = 60;
          const spine = ((i - c) / (0.05 * n)) ** 2 + ((j - 0.75 * n) / (0.05 * n)) ** 2;
          if (spine < 1) hu = spine < 0.5 ? 250 : 700;
          const kidney = ((Math.abs(i - c) - 0.2 * n) / (0.05 * n)) ** 2 + ((j - 0.65 * n) / (0.07 * n)) ** 2;
          if (kidney < 1) hu = 30;
        }
        data[idx] = Math.round(hu + (hu > -1000 ? rng.normal(0, 12) : rng.normal(0, 3)));
      }
    }
  }
  const s = 350 / n;
  const affine = Float64Array.from([s, 0, 0, -175, 0, s, 0, -175, 0, 0, s, -175, 0, 0, 0, 1]);
  return { dims, data, affine, datatype: 'int16' };
}

const NIBABEL_SCRIPT = `
import sys, time, json, numpy as np, nibabel as nib
src, out, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
def median(f):
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2] * 1000
def read_native():
    np.asanyarray(nib.load(src).dataobj)
def read_fdata():
    nib.load(src).get_fdata()
img = nib.load(src); data = np.asanyarray(img.dataobj)
def write():
    nib.Nifti1Image(data, img.affine, img.header).to_filename(out)
read_native(); write()
print(json.dumps({'read': median(read_native), 'read_fdata': median(read_fdata), 'write': median(write)}))
`;

function nibabel(ctx: BenchContext, file: string, out: string, reps: number) {
  if (!existsSync(PYTHON)) return null;
  const r = spawnSync(PYTHON, ['-c', NIBABEL_SCRIPT, file, out, String(reps)], { encoding: 'utf8' });
  if (r.status !== 0) {
    ctx.log(`nifti: nibabel baseline unavailable (${(r.stderr || '').trim().split('\n').pop()})`);
    return null;
  }
  return JSON.parse(r.stdout) as { read: number; read_fdata: number; write: number };
}

function mbPerS(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

/** A throughput row: baseline in the same unit, ratio left out (the harness's ratio is for times). */
function throughput(name: string, value: number, baseline: number | null): BenchResult {
  return {
    ...result(GROUP, name, value, 'MB/s', baseline, baseline === null ? undefined : 'nibabel'),
    ratio: null,
  };
}

export async function* run(ctx: BenchContext): AsyncIterable<BenchResult> {
  const n = ctx.quick ? 128 : 250;
  const reps = ctx.quick ? 1 : 5;
  const vol = ctLike(n);
  const rawBytes = vol.data.byteLength;
  const dir = mkdtempSync(join(tmpdir(), 'freetumor-bench-'));
  try {
    const gz = writeNifti(vol, { level: 6 });
    const file = join(dir, 'ct.nii.gz');
    writeFileSync(file, gz);
    const level1 = writeNifti(vol, { level: 1 }).length;
    ctx.log(
      `nifti: ${n}^3 int16, ${(rawBytes / 1e6).toFixed(1)} MB raw, gzip ${(level1 / 1e6).toFixed(1)} MB (level 1) / ${(gz.length / 1e6).toFixed(1)} MB (level 6)`,
    );
    const readMs = await timeMedian(() => readNifti(gz), reps);
    const readAsyncMs = await timeMedian(() => readNiftiAsync(gz), reps);
    const write1Ms = await timeMedian(() => writeNifti(vol, { level: 1 }), reps);
    const writeAsyncMs = await timeMedian(() => writeNiftiAsync(vol, { native: true }), reps);
    const nb = nibabel(ctx, file, join(dir, 'nibabel.nii.gz'), reps);
    if (nb) ctx.log(`nifti: nibabel get_fdata (float64) read: ${nb.read_fdata.toFixed(0)} ms`);
    const name = `${n}^3 int16 .nii.gz`;
    const nbRead = nb?.read ?? null;
    const nbWrite = nb?.write ?? null;
    const rows: Array<[string, number, number | null, string]> = [
      [`read ${name} (readNifti, fflate)`, readMs, nbRead, 'nibabel load+dataobj'],
      [`read ${name} (readNiftiAsync, native gzip)`, readAsyncMs, nbRead, 'nibabel load+dataobj'],
      [`write ${name} (writeNifti, fflate level 1)`, write1Ms, nbWrite, 'nibabel to_filename (level 1)'],
      [
        `write ${name} (writeNiftiAsync native, zlib level 6)`,
        writeAsyncMs,
        nbWrite,
        'nibabel to_filename (level 1)',
      ],
    ];
    for (const [label, ms, base, baseName] of rows) {
      yield result(GROUP, label, ms, 'ms', base, baseName);
      yield throughput(label, mbPerS(rawBytes, ms), base === null ? null : mbPerS(rawBytes, base));
    }
    if (ctx.sharedData) {
      const ctPath = join(ctx.sharedData, 'totalseg-example/example_ct.nii.gz');
      if (existsSync(ctPath)) {
        const ct = readNifti(new Uint8Array(readFileSync(ctPath)));
        const fine = resampleToSpacing(ct, [1.5, 1.5, 1.5], 'linear');
        ctx.log(`nifti: real CT ${ct.dims.join('x')} 3 mm -> ${fine.dims.join('x')} 1.5 mm`);
        yield result(
          GROUP,
          'resample real CT 3 -> 1.5 mm linear',
          await timeMedian(() => resampleToSpacing(ct, [1.5, 1.5, 1.5], 'linear'), reps),
          'ms',
        );
        yield result(
          GROUP,
          'resample real CT 3 -> 1.5 mm nearest',
          await timeMedian(() => resampleToSpacing(ct, [1.5, 1.5, 1.5], 'nearest'), reps),
          'ms',
        );
        yield result(
          GROUP,
          'resample 1.5 -> 3 mm grid linear (back)',
          await timeMedian(() => resampleToGrid(fine, ct.dims, ct.affine, 'linear'), reps),
          'ms',
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
