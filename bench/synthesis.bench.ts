/**
 * `npm run bench -- synthesis`: one tumor of each type (tiny, small, medium, large) on the real
 * 3 mm TotalSegmentator sample resampled to 1.5 mm (244x202x224), windowed, liver mask. Wall time
 * per synthesis (median over seeds) with the texture bank warm, plus the cold texture generation
 * on its own. Baseline in the same run: the NumPy/SciPy version of the same procedure
 * (bench/reference/synthesis_ref.py, textures generated once like the reference's init) when a
 * python3 with SciPy is found (findPython); otherwise null.
 *
 * Then what a user waits for: `freetumor synthesize` as a whole process (start-up, reading both
 * NIfTI files, resampling, texture, synthesis, writing ct.nii.gz and label.nii.gz) against
 * `synthesis_ref.py whole` run the same way on the same files, alternating, same seeds, after one
 * untimed run of each (the OS file cache, Python's and our compiled-code caches warm).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { toCanonical } from '../shared/geometry/orientation.ts';
import { resampleToSpacing } from '../shared/geometry/resample.ts';
import { windowHU } from '../shared/intensity/window.ts';
import { TOTALSEG_MAP, toMergedScheme } from '../shared/labels/labelmap.ts';
import { Rng } from '../shared/random.ts';
import type { SynthesisInput } from '../shared/synthesis/plan.ts';
import { synthesize } from '../shared/synthesis/synthesize.ts';
import { TextureBank } from '../shared/synthesis/texture.ts';
import { TUMOR_TYPES } from '../shared/synthesis/tumors.ts';
import { readNifti, writeNifti } from '../shared/volume/nifti.ts';
import { type Dims3, makeVolume } from '../shared/volume/volume.ts';
import { type BenchContext, type BenchResult, result } from './harness.ts';

const GROUP = 'synthesis';
/**
 * The Python with NumPy and SciPy: $BENCH_PYTHON, /usr/bin/python3 (CI's Debian packages), or
 * `python3` on PATH, as its real executable (a pyenv shim would add its own start-up to the
 * baseline's whole-process time). Null when none has SciPy.
 */
function findPython(): string | null {
  for (const candidate of [process.env.BENCH_PYTHON, '/usr/bin/python3', 'python3']) {
    if (!candidate) continue;
    const p = spawnSync(candidate, ['-c', 'import scipy, numpy, sys; print(sys.executable)'], {
      encoding: 'utf8',
    });
    if (p.status === 0 && p.stdout.trim()) return p.stdout.trim();
  }
  return null;
}

const PYTHON = findPython();
const BASELINE = 'NumPy/SciPy reference';

function loadInput(ctx: BenchContext): SynthesisInput {
  const ct = ctx.sharedData && join(ctx.sharedData, 'totalseg-example/example_ct.nii.gz');
  const seg = ctx.sharedData && join(ctx.sharedData, 'totalseg-example/example_seg_v1_full.nii.gz');
  if (ct && seg && existsSync(ct) && existsSync(seg)) {
    const image = resampleToSpacing(
      toCanonical(readNifti(readFileSync(ct))).volume,
      [1.5, 1.5, 1.5],
      'linear',
    );
    const label = resampleToSpacing(
      toCanonical(readNifti(readFileSync(seg))).volume,
      [1.5, 1.5, 1.5],
      'nearest',
    );
    return {
      image: windowHU(image.data),
      label: toMergedScheme(label.data, TOTALSEG_MAP, 'liver'),
      dims: image.dims,
    };
  }
  ctx.log('synthesis: shared data absent, using an ellipsoid liver of the same grid size');
  const dims: Dims3 = [244, 202, 224];
  const n = dims[0] * dims[1] * dims[2];
  const label = new Uint8Array(n);
  const image = new Float32Array(n).fill(0.5);
  for (let k = 0; k < dims[2]; k++)
    for (let j = 0; j < dims[1]; j++)
      for (let i = 0; i < dims[0]; i++) {
        const d = ((i - 80) / 60) ** 2 + ((j - 100) / 50) ** 2 + ((k - 150) / 50) ** 2;
        if (d < 1) label[i + dims[0] * (j + dims[1] * k)] = 1;
      }
  return { image, label, dims };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function runReference(input: SynthesisInput, reps: number, ctx: BenchContext) {
  const script = new URL('./reference/synthesis_ref.py', import.meta.url).pathname;
  if (!PYTHON) {
    ctx.log('synthesis: no python3 with SciPy; baseline null');
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'synth-bench-'));
  try {
    writeFileSync(join(dir, 'image.f32'), new Uint8Array(input.image.buffer));
    writeFileSync(join(dir, 'label.u8'), input.label);
    const args = [
      script,
      join(dir, 'image.f32'),
      join(dir, 'label.u8'),
      ...input.dims.map(String),
      String(reps),
    ];
    const p = spawnSync(PYTHON, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (p.status !== 0) {
      ctx.log(`synthesis: reference failed: ${p.stderr.slice(-300)}`);
      return null;
    }
    return JSON.parse(p.stdout) as {
      textureMs: number;
      types: Record<string, number>;
      voxels: Record<string, number>;
      drop: Record<string, number | null>;
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(ctx: BenchContext): Promise<BenchResult[]> {
  const reps = ctx.quick ? 3 : 7;
  const input = loadInput(ctx);
  ctx.log(`synthesis: grid ${input.dims.join('x')}, ${reps} seeds per type`);
  const bank = new TextureBank();
  // Cold: every sigma pair's texture volume, generated once.
  const t0 = performance.now();
  bank.warm();
  const coldAll = performance.now() - t0;
  const perBlock = coldAll / bank.sigmas.length;
  const ours: Record<string, number> = {};
  const stats: Record<string, { voxels: number; drop: number }> = {};
  for (const type of TUMOR_TYPES) {
    // One untimed pass generates any other block size a seed needs (and gives the statistics).
    const voxels: number[] = [];
    let drop = 0;
    for (let s = 0; s < reps; s++) {
      const r = synthesize(input, { type, count: 1, textures: bank }, new Rng(s));
      let n = 0;
      let sum = 0;
      for (let v = 0; v < input.label.length; v++) {
        if (r.plan.label[v] === 3) {
          n++;
          sum += input.image[v] - r.image[v];
        }
      }
      voxels.push(n);
      drop += n > 0 ? sum / n / reps : 0;
    }
    stats[type] = { voxels: median(voxels), drop };
    const times: number[] = [];
    for (let s = 0; s < reps; s++) {
      const t = performance.now();
      synthesize(input, { type, count: 1, textures: bank }, new Rng(s));
      times.push(performance.now() - t);
    }
    ours[type] = median(times);
  }
  const ref = runReference(input, ctx.quick ? 1 : 3, ctx);
  // Same statistics: median tumor voxels and mean drop inside the tumor (window units), both versions.
  for (const type of TUMOR_TYPES) {
    const theirs = ref ? ` | reference ${ref.voxels[type]} voxels, drop ${ref.drop[type]?.toFixed(3)}` : '';
    ctx.log(`synthesis: ${type}: ${stats[type].voxels} voxels, drop ${stats[type].drop.toFixed(3)}${theirs}`);
  }
  const rows: BenchResult[] = TUMOR_TYPES.map((type) =>
    result(
      GROUP,
      `one ${type} tumor, textures warm (median)`,
      ours[type],
      'ms',
      ref?.types[type] ?? null,
      BASELINE,
    ),
  );
  rows.push(
    result(
      GROUP,
      `texture generation, one ${bank.dims.join('x')} volume (cold)`,
      perBlock,
      'ms',
      ref?.textureMs ?? null,
      `${BASELINE} (one full-volume texture)`,
    ),
    result(GROUP, 'texture bank cold start, 10 sigma pairs', coldAll, 'ms'),
  );
  rows.push(...wholeProcess(ctx));
  return rows;
}

interface CaseFiles {
  ct: string;
  label: string;
  /** Organ ids and tumor id for the Python baseline (ours detects them). */
  organIds: string;
  tumorId: string;
  cleanup(): void;
}

/** The real sample's files, or an ellipsoid liver written as NIfTI when the shared data are absent. */
function caseFiles(ctx: BenchContext): CaseFiles {
  const ct = ctx.sharedData && join(ctx.sharedData, 'totalseg-example/example_ct.nii.gz');
  const seg = ctx.sharedData && join(ctx.sharedData, 'totalseg-example/example_seg_v1_full.nii.gz');
  if (ct && seg && existsSync(ct) && existsSync(seg)) {
    return { ct, label: seg, organIds: '5', tumorId: '201', cleanup() {} };
  }
  const dir = mkdtempSync(join(tmpdir(), 'synth-bench-files-'));
  const dims: Dims3 = [122, 101, 112];
  const n = dims[0] * dims[1] * dims[2];
  const image = new Int16Array(n).fill(-900);
  const label = new Uint8Array(n);
  for (let k = 0; k < dims[2]; k++)
    for (let j = 0; j < dims[1]; j++)
      for (let i = 0; i < dims[0]; i++) {
        const v = i + dims[0] * (j + dims[1] * k);
        if (((i - 40) / 30) ** 2 + ((j - 50) / 25) ** 2 + ((k - 75) / 25) ** 2 < 1) {
          label[v] = 1;
          image[v] = 50 + ((i * 7 + j * 3 + k) % 17);
        }
      }
  const affine = Float64Array.of(3, 0, 0, 0, 0, 3, 0, 0, 0, 0, 3, 0, 0, 0, 0, 1);
  const files = { ct: join(dir, 'ct.nii.gz'), label: join(dir, 'label.nii.gz') };
  writeFileSync(files.ct, writeNifti(makeVolume(dims, image, affine, 'int16')));
  writeFileSync(files.label, writeNifti(makeVolume(dims, label, affine, 'uint8')));
  return {
    ...files,
    organIds: '1',
    tumorId: '2',
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Median wall time (ms) of whole-process runs, ours and the Python baseline alternating. */
function wholeProcess(ctx: BenchContext): BenchResult[] {
  const bin = new URL('../bin/freetumor.js', import.meta.url).pathname;
  const script = new URL('./reference/synthesis_ref.py', import.meta.url).pathname;
  const python = PYTHON;
  const files = caseFiles(ctx);
  const out = mkdtempSync(join(tmpdir(), 'synth-bench-out-'));
  const reps = ctx.quick ? 1 : 5;
  const rows: BenchResult[] = [];
  try {
    for (const type of ctx.quick ? ['medium'] : ['medium', 'large']) {
      const ours = (seed: number) => {
        const args = [bin, 'synthesize', '--image', files.ct, '--label', files.label, '--organ', 'liver'];
        args.push(
          '--type',
          type,
          '--count',
          '1',
          '--seed',
          String(seed),
          '--out',
          join(out, 'ours'),
          '--json',
        );
        return timed(process.execPath, args);
      };
      const theirs = (seed: number) => {
        const args = [
          script,
          'whole',
          files.ct,
          files.label,
          join(out, 'ref'),
          files.organIds,
          files.tumorId,
          type,
        ];
        return timed(python as string, [...args, String(seed)]);
      };
      ours(0);
      if (python) theirs(0);
      const a: number[] = [];
      const b: number[] = [];
      for (let s = 1; s <= reps; s++) {
        a.push(ours(s));
        if (python) b.push(theirs(s));
      }
      const load = loadavg()[0].toFixed(1);
      ctx.log(
        `synthesis: whole process, ${type}: ours ${a.map((x) => x.toFixed(0)).join(' ')} ms, reference ${b.map((x) => x.toFixed(0)).join(' ') || 'n/a'} ms (load ${load})`,
      );
      rows.push(
        result(
          GROUP,
          `freetumor synthesize, whole process, one ${type} tumor (median)`,
          median(a),
          'ms',
          python ? median(b) : null,
          `${BASELINE}, whole process (synthesis_ref.py whole)`,
        ),
      );
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
    files.cleanup();
  }
  return rows;
}

function timed(command: string, args: string[]): number {
  const t0 = performance.now();
  const p = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 22 });
  const ms = performance.now() - t0;
  if (p.status !== 0) throw new Error(`${command} exited ${p.status}: ${p.stderr.slice(-300)}`);
  return ms;
}
