/**
 * `freetumor demo`: the product end to end on one machine, without a cloud account or a GPU.
 *
 *   data -> synthesis showcase -> train baseline -> train synthesis GAN -> train FreeTumor
 *   -> export int8 ONNX -> publish to local R2 -> wrangler dev -> /v1 calls -> local comparison
 *   -> report
 *
 * Every stage is timed and logged on stderr; a stage whose module is missing or whose input an
 * earlier stage did not produce is skipped with the reason (never a made-up result). The demo
 * owns its output folder's subfolders and clears them first, so it can be run again; the Worker it
 * starts is stopped in a `finally`, also on Ctrl-C.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FreeTumorError } from '../../shared/errors.ts';
import type { ModelRole } from '../../shared/model/manifest.ts';
import type { DemoData } from './data.ts';
import type { EdgeResults } from './edge-calls.ts';
import type { LocalComparison, ModelScores } from './evaluation.ts';
import type { LocalPublishResult } from './local-r2.ts';
import { type DemoOptions, type DemoPlan, planFor } from './plan.ts';
import type { ShowcaseItem } from './showcase.ts';
import { DemoInterrupted, StageLog, type StageRecord, StageSkip } from './stages.ts';
import type { TrainedRun } from './training.ts';
import type { LocalWorker } from './worker.ts';

export interface ExportedGroup {
  group: 'baseline' | 'published';
  dir: string;
  models: Array<{ role: ModelRole; version: string; files: Array<{ precision: string; bytes: number }> }>;
}

/** Everything the demo measured; written as result.json beside the report. */
export interface DemoResult {
  plan: DemoPlan;
  out: string;
  reportDir: string;
  totalSeconds: number;
  interrupted: boolean;
  backend: string | null;
  stages: StageRecord[];
  data: Pick<DemoData, 'source' | 'counts' | 'notes'> | null;
  showcase: ShowcaseItem[];
  runs: TrainedRun[];
  exported: ExportedGroup[];
  published: LocalPublishResult | null;
  edge: {
    base: string;
    calls: EdgeResults['calls'];
    health: EdgeResults['health'];
    segment: {
      caseId: string;
      organDice: number;
      tumorDice: number;
      tumorNsd: number;
      lesionsDetected: number;
      trueLesions: number;
    } | null;
    synthesize: Record<string, unknown> | null;
    score: EdgeResults['score'];
    workerStopped: boolean;
    /** The Worker's process group (wrangler and its workerd), gone once the demo ends. */
    workerPgid: number;
  } | null;
  comparison: ModelScores[];
}

/** In-memory extras the report draws (volumes), not part of result.json. */
export interface DemoArtifacts {
  edge: EdgeResults | null;
  comparison: LocalComparison | null;
  healthy: DemoData['healthy'];
}

export function demoDirs(out: string) {
  return {
    data: join(out, 'data'),
    cache: join(out, 'cache'),
    runs: join(out, 'runs'),
    models: join(out, 'models'),
    state: join(out, 'r2-state'),
    edge: join(out, 'edge'),
    report: join(out, 'report'),
  };
}

const MARKER = '.freetumor-demo';

/**
 * The demo replaces its subfolders on every run, so it only writes into a folder that is new,
 * empty, or marked as an earlier demo's output: `--out` pointing at a folder of other data is
 * refused instead of having its data/ or models/ removed.
 */
export async function claimOutputFolder(out: string): Promise<void> {
  if (existsSync(out) && !existsSync(join(out, MARKER)) && (await readdir(out)).length > 0) {
    throw new FreeTumorError(
      'invalid_argument',
      '--out is a folder with other content; give a new or empty folder (or an earlier demo output)',
    );
  }
  await mkdir(out, { recursive: true });
  await writeFile(
    join(out, MARKER),
    'output of `freetumor demo`; its subfolders are replaced on every run\n',
  );
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const plan = planFor(options);
  const out = resolve(options.out);
  const dirs = demoDirs(out);
  const log = options.log;
  await claimOutputFolder(out);
  for (const d of Object.values(dirs)) await rm(d, { recursive: true, force: true });
  await mkdir(dirs.report, { recursive: true });

  let interrupted = false;
  let worker: LocalWorker | null = null;
  const onSignal = () => {
    if (interrupted) {
      // Second Ctrl-C: leave now; the exit hook of worker.ts still kills the Worker's process group.
      process.exit(130);
    }
    interrupted = true;
    log(
      'stopping: the current step finishes, the Worker is stopped, a partial report is written (Ctrl-C again to quit now)',
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const stages = new StageLog(log, () => interrupted);
  const result: DemoResult = {
    plan,
    out,
    reportDir: dirs.report,
    totalSeconds: 0,
    interrupted: false,
    backend: null,
    stages: stages.records,
    data: null,
    showcase: [],
    runs: [],
    exported: [],
    published: null,
    edge: null,
    comparison: [],
  };
  const artifacts: DemoArtifacts = { edge: null, comparison: null, healthy: [] };
  log(`FreeTumor demo (${plan.name}): output in ${out}`);
  log(
    `settings: ${plan.spacing} mm grid, ${plan.patch}^3 patches, U-Net base ${plan.model.baseChannels} depth ${plan.model.depth}, ` +
      `training budgets ${plan.budgets.baseline.seconds.toFixed(0)}/${plan.budgets.synthesis.seconds.toFixed(0)}/${plan.budgets.freetumor.seconds.toFixed(0)} s`,
  );
  log(
    `why: tfjs trains on this CPU (no GPU) at seconds per 3D U-Net step; at ${plan.spacing} mm a whole abdomen fits in a small grid and ${plan.patch}^3 patches hold whole lesions, ` +
      'so steps sized to a few minutes show the whole pipeline (production: GPU, 1.5 mm, 96^3, thousands of steps)',
  );

  try {
    const data = await stages.run(
      'data',
      async () => {
        const { writePhantomData, addTotalSegSample, userData } = await import('./data.ts');
        const d = options.data
          ? await userData(
              resolve(options.data),
              options.labelMap,
              options.organ,
              plan.phantoms.heldOut,
              join(dirs.data, 'user-nifti'),
            )
          : await writePhantomData(join(dirs.data, 'phantom'), plan, options.organ, options.seed);
        if (!options.data && options.sharedData)
          await addTotalSegSample(d, options.sharedData, dirs.data, options.organ);
        return { value: d, note: d.notes.join('; ') };
      },
      { required: true },
    );
    if (!data) throw new Error('no data');
    result.data = { source: data.source, counts: data.counts, notes: data.notes };
    artifacts.healthy = data.healthy;

    result.showcase =
      (await stages.run('synthesis showcase', async () => {
        if (data.healthy.length === 0) throw new StageSkip('no healthy case with organ labels');
        const { synthesisShowcase } = await import('./showcase.ts');
        const items = await synthesisShowcase(data.healthy, options.organ, dirs.report, options.seed);
        return {
          value: items,
          note: items.map((i) => `${i.caseId}: ${i.tumors} tumor(s), ${i.tumorMl.toFixed(1)} ml`).join('; '),
        };
      })) ?? [];

    await trainAll(plan, data, options, dirs, stages, result, () => interrupted);
    await exportAndPublish(dirs, stages, result);
    if (options.edge) {
      // A key made for this run only; the Worker gets its SHA-256, as edge/middleware/auth.ts expects.
      const apiKey = `ftdemo_${randomBytes(24).toString('base64url')}`;
      worker = await stages.run('start Worker (wrangler dev)', async () => {
        if (!result.published?.models.segmentor) throw new StageSkip('no segmentor was published');
        return startWorker(dirs.state, plan, apiKey, () => interrupted);
      });
      if (worker) {
        const w = worker;
        artifacts.edge = await stages.run('call the Worker', async () => {
          const { callWorker } = await import('./edge-calls.ts');
          const segCase = data.heldOut.find((c) => c.hasTumor) ?? data.heldOut[0] ?? null;
          const r = await callWorker(
            w.base,
            apiKey,
            { segment: segCase, healthy: data.healthy[0] ?? null },
            options.organ,
            dirs.edge,
            (m) => stages.info(m),
            () => interrupted,
          );
          const ok = r.calls.filter((c) => c.status === 200).length;
          return { value: r, note: `${ok}/${r.calls.length} calls answered 200 (one 401 check expected)` };
        });
        result.edge = edgeSummary(w, artifacts.edge);
        await stages.run('stop Worker', async () => {
          await w.stop();
          const { groupAlive } = await import('./worker.ts');
          const gone = !groupAlive(w.pgid);
          if (result.edge) result.edge.workerStopped = gone;
          return { value: gone, note: gone ? 'wrangler and workerd exited' : 'processes still alive' };
        });
        worker = null;
      }
    } else {
      stages.skip('start Worker (wrangler dev)', 'disabled with --no-edge');
    }

    artifacts.comparison = await stages.run('compare segmentors (onnxruntime-node)', async () => {
      const base = result.exported.find((g) => g.group === 'baseline');
      const pub = result.exported.find((g) => g.group === 'published');
      const models: Array<{ name: string; dir: string }> = [];
      if (base) models.push({ name: 'baseline (real tumors only)', dir: base.dir });
      if (pub && result.runs.some((r) => r.name === 'freetumor'))
        models.push({ name: 'FreeTumor (real + synthetic)', dir: pub.dir });
      if (models.length === 0) throw new StageSkip('no exported segmentor');
      if (data.heldOut.length === 0) throw new StageSkip('no held-out cases');
      const { compareSegmentors } = await import('./evaluation.ts');
      const c = await compareSegmentors(models, data.heldOut, options.organ, (m) => stages.info(m));
      return { value: c, note: `${c.scores.length} model(s) on ${data.heldOut.length} held-out case(s)` };
    });
    result.comparison = artifacts.comparison?.scores ?? [];
  } catch (e) {
    if (!(e instanceof DemoInterrupted)) throw e;
  } finally {
    if (worker) {
      await worker.stop();
      log('Worker stopped');
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  result.interrupted = interrupted;
  result.totalSeconds = stages.elapsed();
  const { writeDemoReport } = await import('./report-build.ts');
  await writeDemoReport(result, artifacts, options, log);
  return result;
}

async function trainAll(
  plan: DemoPlan,
  data: DemoData,
  options: DemoOptions,
  dirs: ReturnType<typeof demoDirs>,
  stages: StageLog,
  result: DemoResult,
  interrupted: () => boolean,
): Promise<void> {
  const backend = await stages.run('select tfjs backend', async () => {
    const { selectBackend } = await import('../backend.ts');
    const b = await selectBackend('cpu');
    return { value: `${b.name} (${b.detail})`, note: `${b.name}: ${b.detail}` };
  });
  result.backend = backend;
  if (!backend) {
    for (const n of ['baseline', 'synthesis', 'freetumor']) stages.skip(`train ${n}`, 'no tfjs backend');
    return;
  }
  const ctx = {
    plan,
    data,
    runsDir: dirs.runs,
    cacheDir: dirs.cache,
    seed: options.seed,
    log: (m: string) => stages.info(m),
    interrupted,
  };
  const { trainRun } = await import('./training.ts');
  const train = async (name: 'baseline' | 'synthesis' | 'freetumor', title: string) =>
    stages.run(title, async () => {
      const r = await trainRun(name, ctx);
      result.runs.push(r);
      const loss = r.last.loss ?? r.last.g_loss;
      return {
        value: r,
        note: `${r.steps} steps (${r.secondsPerStep.toFixed(2)} s/step), last loss ${loss === undefined ? '-' : loss.toFixed(4)}`,
      };
    });
  const baseline = await train('baseline', 'train baseline segmentor (real tumors only)');
  let synthesis: TrainedRun | null = null;
  if (baseline)
    synthesis = await train('synthesis', 'train tumor generator + discriminator (frozen baseline segmentor)');
  else stages.skip('train tumor generator + discriminator', 'the baseline segmentor did not train');
  if (baseline && synthesis) await train('freetumor', 'train FreeTumor segmentor (real + synthetic with QC)');
  else stages.skip('train FreeTumor segmentor', 'needs the baseline and the synthesis runs');
  const { releaseBackend } = await import('../backend.ts');
  releaseBackend();
}

async function exportAndPublish(
  dirs: ReturnType<typeof demoDirs>,
  stages: StageLog,
  result: DemoResult,
): Promise<void> {
  const trained = new Set(result.runs.map((r) => r.name));
  if (trained.size === 0) {
    stages.skip('export int8 ONNX', 'no trained run');
    stages.skip('publish to local R2', 'nothing exported');
    return;
  }
  const exported = await stages.run('export int8 ONNX + manifests', async () => {
    const { exportRun } = await import('../export/from-run.ts');
    const version = `demo-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-')}`;
    const groups: ExportedGroup[] = [];
    const add = async (group: ExportedGroup['group'], run: string, dir: string) => {
      const models = await exportRun(join(dirs.runs, run), dir, {
        quantize: 'int8',
        checkpoint: 'last',
        version,
        // A quarter-patch overlap: about 3x fewer windows than 0.5, so the Worker (wasm, one
        // thread) answers a whole abdomen in seconds.
        overlap: 0.25,
      });
      let g = groups.find((x) => x.group === group);
      if (!g) {
        g = { group, dir, models: [] };
        groups.push(g);
      }
      for (const m of models) {
        g.models.push({
          role: m.role,
          version: m.manifest.version,
          files: m.manifest.files.map((f) => ({ precision: f.precision, bytes: f.bytes })),
        });
      }
    };
    if (trained.has('baseline')) await add('baseline', 'baseline', join(dirs.models, 'baseline'));
    // The published set: the best segmentor trained (FreeTumor, else the baseline) with G and D.
    const published = join(dirs.models, 'published');
    if (trained.has('freetumor')) await add('published', 'freetumor', published);
    else if (trained.has('baseline')) await add('published', 'baseline', published);
    if (trained.has('synthesis')) await add('published', 'synthesis', published);
    const n = groups.reduce((k, g) => k + g.models.length, 0);
    return { value: groups, note: `${n} models (int8 + fp32), version ${version}` };
  });
  result.exported = exported ?? [];
  const pub = result.exported.find((g) => g.group === 'published');
  if (!pub) {
    stages.skip('publish to local R2', 'nothing exported');
    return;
  }
  result.published = await stages.run('publish to local R2', async () => {
    const { publishToLocalR2 } = await import('./local-r2.ts');
    const r = await publishToLocalR2(pub.dir, dirs.state, { log: (m) => stages.info(m) });
    return {
      value: r,
      note: `${r.objects} objects (${Object.keys(r.models).join(', ')}), ${r.latestKey} last`,
    };
  });
}

async function startWorker(state: string, plan: DemoPlan, apiKey: string, interrupted: () => boolean) {
  const { startLocalWorker } = await import('./worker.ts');
  const hash = createHash('sha256').update(apiKey).digest('hex');
  const w = await startLocalWorker({
    persistDir: state,
    vars: { API_KEY_HASHES: hash, LATEST_TTL_SECONDS: '1' },
    timeoutMs: plan.workerStartSeconds * 1000,
    interrupted,
  });
  return { value: w, note: `listening on ${w.base}, /health answered` };
}

function edgeSummary(w: LocalWorker, r: EdgeResults | null): DemoResult['edge'] {
  if (!r) return null;
  const s = r.segment;
  return {
    base: w.base,
    calls: r.calls,
    health: r.health,
    segment: s
      ? {
          caseId: s.caseId,
          organDice: s.evaluation.organ.dice,
          tumorDice: s.evaluation.tumor.dice,
          tumorNsd: s.evaluation.tumor.nsd,
          lesionsDetected: s.evaluation.lesions.detected,
          trueLesions: s.evaluation.lesions.trueLesions,
        }
      : null,
    synthesize: r.synthesize?.summary ?? null,
    score: r.score,
    workerStopped: false,
    workerPgid: w.pgid,
  };
}

/** Writes result.json (numbers only) beside the report. */
export async function writeResultJson(result: DemoResult): Promise<string> {
  const path = join(result.reportDir, 'result.json');
  await writeFile(path, `${JSON.stringify(result, null, 2)}\n`);
  return path;
}
