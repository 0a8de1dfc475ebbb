import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../train/checkpoint.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '../../../bin/freetumor.js');
let dir: string;

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env: { ...process.env, FORCE_COLOR: '0' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ft-train-cli-'));
  const r = await cli([
    'phantom',
    '--out',
    join(dir, 'data'),
    '--cases',
    '2',
    '--spacing',
    '12',
    '--tumors',
    'liver:1',
    '--json',
  ]);
  expect(r.code).toBe(0);
  const config = {
    seed: 1,
    steps: 2,
    patchSize: 16,
    casesPerStep: 1,
    cropsPerCase: 1,
    checkpointEvery: 1,
    data: {
      datasets: [{ name: 'phantom', format: 'msd', path: join(dir, 'data'), organ: 'liver' }],
      spacing: [12, 12, 12],
      workers: 1,
    },
    model: { baseChannels: 2, depth: 2 },
  };
  await writeFile(join(dir, 'seg.json'), JSON.stringify(config));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('freetumor train', () => {
  it('trains a segmentation run, then a synthesis run on its frozen segmentor, and resumes', async () => {
    const seg = join(dir, 'seg');
    const r = await cli([
      'train',
      'segmentation',
      '--config',
      join(dir, 'seg.json'),
      '--out',
      seg,
      '--backend',
      'cpu',
      '--json',
    ]);
    expect(r.stderr).toContain('backend: cpu');
    // stderr is a pipe, not a terminal: progress comes as lines (first step, then the last).
    expect(r.stderr).toMatch(/^segmentation: step 1\/2 \(50%\)/m);
    expect(r.stderr).toMatch(/^segmentation: step 2\/2 \(100%\) .* in \d+s/m);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ kind: 'segmentation', steps: 2, backend: 'cpu', cases: 2 });
    expect(existsSync(join(seg, 'checkpoint.ckpt'))).toBe(true);
    expect((await readFile(join(seg, 'metrics.jsonl'), 'utf8')).trim().split('\n')).toHaveLength(2);

    const more = await cli([
      'train',
      'segmentation',
      '--config',
      join(dir, 'seg.json'),
      '--out',
      seg,
      '--backend',
      'cpu',
      '--steps',
      '3',
      '--json',
    ]);
    expect(more.code).toBe(0);
    expect(JSON.parse(more.stdout)).toMatchObject({ steps: 3, resumedFrom: 2 });

    // The exported manifest carries the cases trained on and the validation of its checkpoint.
    const exported = join(dir, 'seg-models');
    const e = await cli(['export', '--run', seg, '--out', exported, '--quantize', 'none', '--json']);
    expect(e.code).toBe(0);
    const manifest = JSON.parse(await readFile(join(exported, 'segmentor', 'manifest.json'), 'utf8'));
    expect(manifest.training.cases).toEqual({ labeled: 2, unlabeled: 0 });
    expect(manifest.training.steps).toBe(3);

    const syn = join(dir, 'syn');
    const s = await cli([
      'train',
      'synthesis',
      '--config',
      join(dir, 'seg.json'),
      '--out',
      syn,
      '--backend',
      'cpu',
      '--steps',
      '1',
      '--set',
      `synthesis.segmentorRun=${seg}`,
      '--set',
      'synthesis.sampleEvery=1',
      '--json',
    ]);
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout)).toMatchObject({ kind: 'synthesis', steps: 1 });
    expect(existsSync(join(syn, 'samples', 'step-0000001.png'))).toBe(true);
  });

  it("segmentation.initFrom starts a run from an earlier run's segmentor (same architecture only)", async () => {
    const seg = join(dir, 'seg');
    const train = (out: string, ...set: string[]) =>
      cli([
        'train',
        'segmentation',
        '--config',
        join(dir, 'seg.json'),
        '--out',
        join(dir, out),
        '--backend',
        'cpu',
        '--steps',
        '1',
        ...set.flatMap((x) => ['--set', x]),
        '--json',
      ]);
    // A learning rate far below float32 resolution: after one step the weights are the start's.
    const tiny = ['optimizer.lr=1e-12', 'optimizer.weightDecay=0', 'seed=7'];
    const init = await train('init', `segmentation.initFrom=${seg}`, ...tiny);
    expect(init.code).toBe(0);
    expect(init.stderr).toContain('segmentor initialised from an earlier run');
    const scratch = await train('scratch', ...tiny);
    expect(scratch.code).toBe(0);
    const weights = async (run: string) => {
      const c = await loadCheckpoint(
        join(run, existsSync(join(run, 'best.ckpt')) ? 'best.ckpt' : 'checkpoint.ckpt'),
      );
      return (c?.models.segmentor.weights ?? []).flatMap((w) => [...w.data]);
    };
    const source = await weights(seg);
    const maxDiff = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
    expect(source.length).toBeGreaterThan(0);
    expect(maxDiff(await weights(join(dir, 'init')), source)).toBeLessThan(1e-6);
    expect(maxDiff(await weights(join(dir, 'scratch')), source)).toBeGreaterThan(1e-3);

    const other = await train('other', `segmentation.initFrom=${seg}`, 'model.baseChannels=3');
    expect(other.code).toBe(2);
    // Refused before any data is prepared.
    expect(other.stderr).not.toContain('data set');
    expect(other.stderr.trim().split('\n').at(-1)).toBe(
      'freetumor: segmentation.initFrom names a run whose segmentor has another architecture (model config)',
    );
  });

  it('bad input: one clear line, exit 2', async () => {
    const missing = await cli([
      'train',
      'segmentation',
      '--config',
      join(dir, 'nope.json'),
      '--out',
      join(dir, 'x'),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toBe('freetumor: config file not found');
    await writeFile(join(dir, 'bad.json'), JSON.stringify({ steps: -1, data: { datasets: [] } }));
    const bad = await cli([
      'train',
      'segmentation',
      '--config',
      join(dir, 'bad.json'),
      '--out',
      join(dir, 'x'),
      '--backend',
      'cpu',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/invalid run config: steps: .*; data\.datasets: /);
    const kind = await cli([
      'train',
      'detection',
      '--config',
      join(dir, 'seg.json'),
      '--out',
      join(dir, 'x'),
    ]);
    expect(kind.code).toBe(2);
    expect(kind.stderr).toContain('train kind must be segmentation or synthesis');
    const noSeg = await cli([
      'train',
      'synthesis',
      '--config',
      join(dir, 'seg.json'),
      '--out',
      join(dir, 'y'),
      '--backend',
      'cpu',
    ]);
    expect(noSeg.code).toBe(2);
    expect(noSeg.stderr).toContain('synthesis.segmentorRun');
  });
});
