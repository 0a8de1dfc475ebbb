/**
 * The shortened demo as CI runs it: `freetumor demo --quick` spawned as a user runs it, into a
 * temporary folder. It must write a report with real numbers (finite metrics from trained models,
 * edge calls answered 200, models published to the local R2 state) and leave no wrangler/workerd
 * process behind.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoResult } from '../trainer/demo/run.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const BIN = join(ROOT, 'node_modules/.bin');

let out: string;
let result: DemoResult;
let stdout: string;
let stderr: string;
let wallSeconds: number;

/** Command lines of live processes that mention `text` (wrangler's args name the output folder). */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(text)) found.push(`${pid}: ${cmd.slice(0, 160)}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'ft-demo-'));
  const t0 = performance.now();
  const r = await run('node', ['bin/freetumor.js', 'demo', '--quick', '--out', out, '--json'], {
    cwd: ROOT,
    env: { ...process.env, PATH: `${BIN}:${process.env.PATH}` },
    maxBuffer: 16 * 1024 * 1024,
    timeout: 480_000,
  });
  wallSeconds = (performance.now() - t0) / 1000;
  stdout = r.stdout;
  stderr = r.stderr;
  result = JSON.parse(readFileSync(join(out, 'report', 'result.json'), 'utf8')) as DemoResult;
}, 500_000);

afterAll(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

describe('freetumor demo --quick', () => {
  it('runs every stage and prints one JSON summary naming the report', () => {
    const summary = JSON.parse(stdout) as { report: string; stages: Array<{ name: string; status: string }> };
    expect(summary.report).toBe(join(out, 'report', 'report.html'));
    const notDone = result.stages
      .filter((s) => s.status !== 'done')
      .map((s) => `${s.name}: ${s.status}: ${s.note}`);
    expect(notDone).toEqual([]);
    expect(stderr).toContain('train baseline segmentor');
    expect(stderr).toContain('report:');
    // Logged for the record: the CI timing of the shortened demo.
    process.stderr.write(
      `demo --quick: ${wallSeconds.toFixed(0)} s wall (demo's own total ${result.totalSeconds.toFixed(0)} s)\n`,
    );
  });

  it('trains the four runs for their fixed step counts with finite losses; validation picks checkpoints', () => {
    expect(result.runs.map((r) => r.name)).toEqual(['baseline', 'synthesis', 'freetumor', 'control']);
    for (const r of result.runs) {
      expect(r.stoppedEarly).toBe(false);
      expect(r.steps).toBe(result.plan.steps[r.name]);
      expect(r.secondsPerStep).toBeGreaterThan(0);
      const loss = r.last.loss ?? r.last.g_loss;
      expect(Number.isFinite(loss)).toBe(true);
      const rows = readFileSync(join(out, 'runs', r.name, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { validation?: boolean });
      expect(rows.filter((x) => !x.validation)).toHaveLength(r.steps);
      const validations = rows.filter((x) => x.validation).length;
      expect(validations).toBe(r.name === 'synthesis' ? 0 : r.steps / result.plan.validateEvery);
    }
    // The frozen baseline was checked on real tumors before it judged synthetic ones.
    expect(result.qcSegmentorCheck?.averages.trueLesions).toBeGreaterThan(0);
    // FreeTumor and its control start from the baseline's weights; only FreeTumor synthesizes.
    const config = (name: string) =>
      JSON.parse(readFileSync(join(out, 'runs', name, 'config.json'), 'utf8')) as {
        segmentation: { mode: string; initFrom: string | null };
      };
    expect(config('baseline').segmentation.initFrom).toBeNull();
    for (const name of ['freetumor', 'control'])
      expect(config(name).segmentation.initFrom).toBe(join(out, 'runs', 'baseline'));
    expect(config('freetumor').segmentation.mode).toBe('freetumor');
    expect(config('control').segmentation.mode).toBe('baseline');
  });

  it('measures synthesis on the held-out cases: discriminator AUC, HU contrast, QC acceptance', () => {
    const m = result.synthesis;
    expect(m).not.toBeNull();
    expect(m?.discriminatorAuc).toBeGreaterThanOrEqual(0);
    expect(m?.discriminatorAuc).toBeLessThanOrEqual(1);
    expect(m?.contrastHu.real.n).toBeGreaterThan(0);
    expect(m?.contrastHu.generator.n).toBeGreaterThan(0);
    expect(Number.isFinite(m?.contrastHu.handcrafted.median)).toBe(true);
    expect(m?.qcAcceptance).toBeGreaterThanOrEqual(0);
  });

  it('exports int8 models and publishes segmentor, generator and discriminator to the local R2 state', () => {
    const pub = result.exported.find((g) => g.group === 'published');
    expect(pub?.models.map((m) => m.role).sort()).toEqual(['discriminator', 'generator', 'segmentor']);
    for (const m of pub?.models ?? []) {
      const int8 = m.files.find((f) => f.precision === 'int8');
      const fp32 = m.files.find((f) => f.precision === 'fp32');
      expect(int8?.bytes).toBeGreaterThan(0);
      expect(int8?.bytes).toBeLessThan(fp32?.bytes ?? 0);
    }
    expect(Object.keys(result.published?.models ?? {}).sort()).toEqual([
      'discriminator',
      'generator',
      'segmentor',
    ]);
    expect(result.published?.latestKey).toBe('models/latest.json');
    expect(existsSync(join(out, 'r2-state', 'v3', 'r2'))).toBe(true);
  });

  it('served the published models from the local Worker: every /v1 call answered 200', () => {
    const edge = result.edge;
    expect(edge).not.toBeNull();
    const status = Object.fromEntries((edge?.calls ?? []).map((c) => [c.route, c.status]));
    expect(status['GET /health']).toBe(200);
    expect(status['GET /v1/models without a key']).toBe(401);
    expect(status['POST /v1/segment']).toBe(200);
    expect(status['POST /v1/synthesize']).toBe(200);
    expect(status['POST /v1/score (synthetic tumor)']).toBe(200);
    const versions = Object.values(edge?.health?.models ?? {});
    expect(versions.length).toBe(3);
    expect(versions.every((v) => v.startsWith('demo-'))).toBe(true);
    const seg = edge?.segment;
    expect(seg && Number.isFinite(seg.organDice) && seg.organDice >= 0 && seg.organDice <= 1).toBe(true);
    expect(Number(edge?.synthesize?.inputTumorVoxels)).toBeGreaterThan(0);
    for (const s of [edge?.score?.synthetic, edge?.score?.control]) {
      expect(s?.detection === null || (s && s.detection >= 0 && s.detection <= 1)).toBe(true);
      expect(s?.realism === null || (s && s.realism >= 0 && s.realism <= 1)).toBe(true);
    }
  });

  it('compares the baseline, the control and FreeTumor on the held-out cases with finite metrics', () => {
    expect(result.comparison.map((s) => s.model)).toEqual([
      'baseline (real tumors only)',
      'control (baseline + the same steps, real tumors only)',
      'FreeTumor (real + synthetic)',
    ]);
    for (const s of result.comparison) {
      expect(s.cases).toBe(result.plan.phantoms.heldOut);
      for (const v of [s.organDice, s.organNsd, s.tumorDice, s.tumorNsd]) {
        expect(Number.isFinite(v)).toBe(true);
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
      }
      expect(s.trueLesions).toBeGreaterThan(0);
    }
    // One row per true lesion, with every model's answer; and the verdict line leads the report.
    expect(result.lesions).toHaveLength(result.comparison[0].trueLesions);
    for (const l of result.lesions) expect(Object.keys(l.found)).toHaveLength(3);
    expect(result.verdict).toMatch(/^FreeTumor segmentor on \d+ held-out cases: organ Dice/);
    expect(result.verdict).toContain('; control (the baseline trained on for the same steps');
  });

  it('writes a self-contained report.html, report.md, plots and pictures', () => {
    const dir = join(out, 'report');
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    const imgs = [...html.matchAll(/<img src="([^"]{0,30})/g)].map((m) => m[1]);
    expect(imgs.length).toBeGreaterThanOrEqual(4);
    expect(imgs.every((s) => s.startsWith('data:image/png;base64,'))).toBe(true);
    expect(html).toContain('<polyline');
    expect(html).not.toMatch(/>NaN<|>undefined</);
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(md.split('\n')[2]).toMatch(/^\*\*Verdict:\*\* /);
    expect(md).toContain('side-by-side-');
    for (const f of [...md.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]))
      expect(existsSync(join(dir, f))).toBe(true);
    expect(md).toContain('| baseline (real tumors only) |');
  });

  it('the unseen-seed check runs the exported segmentor through the CLI on new phantoms', async () => {
    // The mechanics only (a tiny model); the real check is the full demo's model (README: The demo).
    const r = await run(
      'node',
      [
        'bench/recipe/unseen-phantoms.ts',
        '--model',
        join(out, 'models', 'published'),
        '--cases',
        '1',
        '--spacing',
        String(result.plan.spacing),
      ],
      { cwd: ROOT, env: { ...process.env, PATH: `${BIN}:${process.env.PATH}` }, timeout: 240_000 },
    );
    const check = JSON.parse(r.stdout) as {
      cases: Array<{ seed: number }>;
      organDice: number;
      trueLesions: number;
      missed: string[];
    };
    expect(check.cases.map((c) => c.seed)).toEqual([9000]);
    expect(check.organDice).toBeGreaterThanOrEqual(0);
    expect(check.organDice).toBeLessThanOrEqual(1);
    expect(check.trueLesions).toBeGreaterThan(0);
    expect(Array.isArray(check.missed)).toBe(true);
  }, 250_000);

  it('leaves no wrangler or workerd process running', () => {
    expect(result.edge?.workerStopped).toBe(true);
    const pgid = result.edge?.workerPgid;
    expect(typeof pgid).toBe('number');
    expect(groupAlive(pgid as number)).toBe(false);
    expect(processesMentioning(out)).toEqual([]);
  });
});
