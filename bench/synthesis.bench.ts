/**
 * `npm run bench -- synthesis`: one tumor of each type (tiny, small, medium, large) on the real
 * 3 mm TotalSegmentator sample resampled to 1.5 mm (244x202x224), windowed, liver mask. Wall time
 * per synthesis (median over seeds) with the texture bank warm, plus the cold texture generation
 * on its own. Baseline in the same run: the NumPy/SciPy version of the same procedure
 * (bench/reference/synthesis_ref.py, textures generated once like the reference's init) when
 * /usr/bin/python3 has SciPy; otherwise null.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
import { readNifti } from '../shared/volume/nifti.ts';
import type { Dims3 } from '../shared/volume/volume.ts';
import { type BenchContext, type BenchResult, result } from './harness.ts';

const GROUP = 'synthesis';
const PYTHON = '/usr/bin/python3';
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
      spacing: [1.5, 1.5, 1.5],
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
  return { image, label, dims, spacing: [1.5, 1.5, 1.5] };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function runReference(input: SynthesisInput, reps: number, ctx: BenchContext) {
  const script = new URL('./reference/synthesis_ref.py', import.meta.url).pathname;
  if (!existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import scipy, numpy']).status !== 0) {
    ctx.log('synthesis: /usr/bin/python3 has no SciPy; baseline null');
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
  // Cold: every sigma pair's block for a large tumor's region, generated once.
  const t0 = performance.now();
  bank.warm([128, 128, 128], input.dims);
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
      'texture generation, one 128^3 block (cold)',
      perBlock,
      'ms',
      ref?.textureMs ?? null,
      `${BASELINE} (one full-volume texture)`,
    ),
    result(GROUP, 'texture bank cold start, 10 sigma pairs', coldAll, 'ms'),
  );
  return rows;
}
