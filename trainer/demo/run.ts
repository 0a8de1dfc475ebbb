/**
 * `freetumor demo`: the product end to end on one machine, without a cloud account or a GPU.
 *
 *   data -> synthesis showcase -> train baseline -> train synthesis GAN -> train FreeTumor
 *   -> train the real-only control -> measure synthesis -> export int8 ONNX -> publish to local R2
 *   -> wrangler dev -> /v1 calls -> local comparison -> report
 *
 * Every stage is timed and logged on stderr; a stage whose input an earlier stage did not produce
 * is skipped with the reason, and any error (a broken import included) fails its stage and the
 * demo (never a made-up result). The demo owns its output folder's subfolders and clears them
 * first, so it can be run again; the Worker it starts is stopped in a `finally`, also on Ctrl-C.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FreeTumorError } from '../../shared/errors.ts';
import { releaseBackend, selectBackend } from '../backend.ts';
import { exportRun } from '../export/from-run.ts';
import { realOnlyControl, runFreeTumorSequence } from '../train/sequence.ts';
import { addTotalSegSample, type DemoData, userData, writePhantomData } from './data.ts';
import { callWorker, type EdgeResults } from './edge-calls.ts';
import { COMPARED_MODELS, compareSegmentors, verdictLine } from './evaluation.ts';
import { publishToLocalR2 } from './local-r2.ts';
import { type DemoOptions, type DemoPlan, type DemoRunName, planFor } from './plan.ts';
import { writeDemoReport } from './report-build.ts';
import type { DemoArtifacts, DemoResult, ExportedGroup } from './result.ts';
import { synthesisShowcase } from './showcase.ts';
import { DemoInterrupted, StageLog, StageSkip } from './stages.ts';
import { measureSynthesis } from './synthesis-check.ts';
import { type TrainedRun, trainDemoRun } from './training.ts';
import { groupAlive, type LocalWorker, startLocalWorker } from './worker.ts';

export type { DemoArtifacts, DemoResult, ExportedGroup } from './result.ts';

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
    qcSegmentorCheck: null,
    synthesis: null,
    exported: [],
    published: null,
    edge: null,
    comparison: [],
    lesions: [],
    verdict: '',
  };
  const artifacts: DemoArtifacts = { edge: null, comparison: null, healthy: [] };
  log(`FreeTumor demo (${plan.name}): output in ${out}`);
  log(
    `settings: ${plan.spacing} mm grid, ${plan.patch}^3 patches, U-Net base ${plan.model.baseChannels} depth ${plan.model.depth}, ` +
      `steps baseline/synthesis/FreeTumor/control ${plan.steps.baseline}/${plan.steps.synthesis}/${plan.steps.freetumor}/${plan.steps.control} (seed ${options.seed})`,
  );
  log(
    `why: tfjs trains on this CPU (no GPU); at ${plan.spacing} mm a whole abdomen fits in a small grid and ${plan.patch}^3 patches hold whole lesions with their surroundings (production: GPU, 1.5 mm, 96^3)`,
  );

  try {
    const data = await stages.run(
      'data',
      async () => {
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
        const items = await synthesisShowcase(data.healthy, options.organ, dirs.report, options.seed);
        return {
          value: items,
          note: items.map((i) => `${i.caseId}: ${i.tumors} tumor(s), ${i.tumorMl.toFixed(1)} ml`).join('; '),
        };
      })) ?? [];

    await trainAll(plan, data, options, dirs, stages, result, () => interrupted);
    if (result.runs.some((r) => r.name === 'synthesis') && data.heldOut.length > 0) {
      result.synthesis = await stages.run(
        'measure synthesis (discriminator AUC, HU contrast, QC)',
        async () => {
          const m = await measureSynthesis({
            plan,
            heldOut: data.heldOut,
            runsDir: dirs.runs,
            cacheDir: dirs.cache,
            organ: options.organ,
            seed: options.seed,
          });
          const c = m.contrastHu;
          const med = (x: { median: number | null }) => (x.median === null ? '-' : x.median.toFixed(0));
          return {
            value: m,
            note: `D AUC real vs generator-made ${m.discriminatorAuc === null ? '-' : m.discriminatorAuc.toFixed(3)}; contrast (HU, median) real ${med(c.real)}, handcrafted ${med(c.handcrafted)}, generator ${med(c.generator)}; QC accepts ${m.qcAcceptance === null ? '-' : `${(100 * m.qcAcceptance).toFixed(0)}%`} of generator-made tumors`,
          };
        },
      );
    } else {
      stages.skip('measure synthesis', 'no synthesis run or no held-out case');
    }
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
      const group = (g: ExportedGroup['group']) => result.exported.find((x) => x.group === g);
      const base = group('baseline');
      const control = group('control');
      const pub = group('published');
      const models: Array<{ name: string; dir: string }> = [];
      if (base) models.push({ name: COMPARED_MODELS.baseline, dir: base.dir });
      if (control) models.push({ name: COMPARED_MODELS.control, dir: control.dir });
      if (pub && result.runs.some((r) => r.name === 'freetumor'))
        models.push({ name: COMPARED_MODELS.freetumor, dir: pub.dir });
      if (models.length === 0) throw new StageSkip('no exported segmentor');
      if (data.heldOut.length === 0) throw new StageSkip('no held-out cases');
      const c = await compareSegmentors(models, data.heldOut, options.organ, (m) => stages.info(m));
      return { value: c, note: `${c.scores.length} model(s) on ${data.heldOut.length} held-out case(s)` };
    });
    result.comparison = artifacts.comparison?.scores ?? [];
    result.lesions = artifacts.comparison?.lesions ?? [];
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
  result.verdict = verdictLine(result.comparison, result.lesions);
  log(`verdict: ${result.verdict}`);
  result.totalSeconds = stages.elapsed();
  await writeDemoReport(result, artifacts, options, log);
  return result;
}

/** Thrown by a sequence step whose stage failed: the later runs need its folder. */
class RunFailed extends Error {}

const RUN_TITLES: Record<DemoRunName, string> = {
  baseline: 'train baseline segmentor (real tumors only)',
  synthesis: 'train tumor generator + discriminator (frozen baseline segmentor)',
  freetumor: 'train FreeTumor segmentor (from the baseline; real + synthetic with QC)',
  control: 'train the control (from the baseline; real tumors only, FreeTumor steps)',
};

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
    const b = await selectBackend('cpu');
    return { value: `${b.name} (${b.detail})`, note: `${b.name}: ${b.detail}` };
  });
  result.backend = backend;
  const order: DemoRunName[] = ['baseline', 'synthesis', 'freetumor', 'control'];
  if (!backend) {
    for (const n of order) stages.skip(RUN_TITLES[n], 'no tfjs backend');
    return;
  }
  const ctx = {
    plan,
    data,
    runsDir: dirs.runs,
    cacheDir: dirs.cache,
    seed: options.seed,
    timeLimitScale: options.timeLimitScale,
    log: (m: string) => stages.info(m),
    interrupted,
  };
  const train = async (step: Parameters<typeof trainDemoRun>[0]): Promise<string> => {
    const r = await stages.run(RUN_TITLES[step.name], async () => {
      const t: TrainedRun = await trainDemoRun(step, ctx);
      const loss = t.last.loss ?? t.last.g_loss;
      return {
        value: t,
        note: `${t.steps}/${t.plannedSteps} steps (${t.secondsPerStep.toFixed(2)} s/step), last loss ${loss === undefined ? '-' : loss.toFixed(4)}${t.best !== null ? `, best validation ${t.best.toFixed(3)}` : ''}${t.stoppedEarly ? ', stopped by the time guard' : ''}`,
      };
    });
    if (!r) throw new RunFailed(step.name);
    result.runs.push(r);
    if (r.qcCheck) result.qcSegmentorCheck = r.qcCheck;
    return r.dir;
  };
  try {
    const runs = await runFreeTumorSequence(train);
    // The control answers "is it the synthetic tumors or the extra steps?" (same start, same steps).
    await train(realOnlyControl(runs.baseline));
  } catch (e) {
    if (!(e instanceof RunFailed)) throw e;
    const failed = order.indexOf(e.message as DemoRunName);
    for (const n of order.slice(failed + 1)) stages.skip(RUN_TITLES[n], `needs the ${e.message} run`);
  } finally {
    releaseBackend();
  }
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
    const version = `demo-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-')}`;
    const groups: ExportedGroup[] = [];
    const add = async (group: ExportedGroup['group'], run: string, dir: string) => {
      const models = await exportRun(join(dirs.runs, run), dir, {
        quantize: 'int8',
        // The best validated checkpoint where the run has one (the last otherwise).
        checkpoint: 'best',
        version,
        // The manifest keeps the export's default overlap (0.5), the one validation chose the
        // checkpoint with: at 0.25 the held-out organ Dice of the same checkpoint fell from 0.861
        // to 0.835 (docs/training-recipe.md).
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
    if (trained.has('control')) await add('control', 'control', join(dirs.models, 'control'));
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
    const r = await publishToLocalR2(pub.dir, dirs.state, { log: (m) => stages.info(m) });
    return {
      value: r,
      note: `${r.objects} objects (${Object.keys(r.models).join(', ')}), ${r.latestKey} last`,
    };
  });
}

async function startWorker(state: string, plan: DemoPlan, apiKey: string, interrupted: () => boolean) {
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
