/**
 * One scheduled training run, end to end: read the data manifest from the bucket, download the
 * cases, train (synthesis first when configured, then segmentation), export, evaluate on the
 * held-out split and publish only when the new model beats the active one.
 *
 * Idempotent: the job id is a hash of the manifest and settings; a finished id does nothing.
 * Resumable: the run folders are mirrored to `jobs/<id>/runs/` while training and pulled on start,
 * so a retry after a spot interruption continues from the last checkpoint.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FreeTumorError } from '../../shared/errors.ts';
import { parseManifest } from '../../shared/model/manifest.ts';
import type { BackendName } from '../backend.ts';
import { applyOverrides } from '../train/config.ts';
import { type DataCase, type DataManifest, jobIdOf, parseDataManifest } from './data-manifest.ts';
import { evaluateModel, type LocalCase, type ValidationMetrics } from './evaluate.ts';
import { decidePromotion, type GateDecision, readActiveModel } from './promotion.ts';
import { ClaimLost, FINISHED, heldByOther, type JobState, readState, writeStateIf } from './state.ts';
import { FolderMirror, type ObjectStore, sha256Hex } from './storage.ts';
import type { JobTrainer, ModelPublisher, TrainKind } from './trainer.ts';

export interface JobOptions {
  store: ObjectStore;
  dataManifestKey: string;
  /** Local scratch; the job works in `<workRoot>/<jobId>` (stable, so a resumed run's paths match). */
  workRoot: string;
  backend: BackendName;
  /** Key prefix of published models (`<prefix>/latest.json`). */
  modelPrefix: string;
  /** Train and evaluate again even when this job id already finished. */
  force: boolean;
  /** Run-config overrides (`steps=2`, `patchSize=16`), applied to every training run of the job. */
  overrides: string[];
  /** Identity of this run: the Batch job id (same across retries) or host:pid. */
  owner: string;
  /** Seconds between checkpoint uploads and heartbeats. */
  syncSeconds: number;
  /** A running job whose heartbeat is older than this is taken over. */
  staleSeconds: number;
  log: (message: string) => void;
  /** Receives a function that uploads what is not yet uploaded (for a SIGTERM handler). */
  onFlush?: (flush: () => Promise<void>) => void;
  /** True once the job should stop at the next step boundary (checkpoint, upload, exit). */
  shouldStop?: () => boolean;
}

export interface JobDeps {
  trainer: JobTrainer;
  publisher: ModelPublisher;
  evaluate?: typeof evaluateModel;
}

export interface JobResult {
  jobId: string;
  /**
   * `unchanged`: this id already finished; `busy`: another live process runs it; `interrupted`:
   * stopped on request with its checkpoints in the bucket (a retry resumes).
   */
  status: 'published' | 'rejected' | 'unchanged' | 'busy' | 'interrupted';
  version: string;
  attempts: number;
  /** Per training run (`baseline`, `synthesis`, `segmentation`): the step it resumed from. */
  resumedFrom: Record<string, number>;
  metrics?: Record<string, number>;
  decision?: GateDecision;
  publishedKeys?: string[];
}

/** Training settings every job starts from; the manifest's blocks and the overrides go on top. */
function baseRunConfig(
  kind: TrainKind,
  manifest: DataManifest,
  dataDir: string,
  cacheDir: string,
): Record<string, unknown> {
  return {
    kind,
    steps: kind === 'synthesis' ? 2000 : 4000,
    checkpointEvery: 50,
    data: {
      datasets: [
        {
          name: manifest.name,
          format: 'msd',
          path: dataDir,
          labelMap: manifest.labelMap,
          organ: manifest.organ,
          unlabeled: true,
        },
      ],
      cacheDir,
      validationCases: 0,
    },
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Deep merge of plain objects (arrays and scalars from `over` replace). */
export function mergeConfig(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') continue;
    out[k] =
      isPlainObject(v) && isPlainObject(out[k]) ? mergeConfig(out[k] as Record<string, unknown>, v) : v;
  }
  return out;
}

/** The MSD/nnU-Net layout the trainer reads: labeled cases in imagesTr/labelsTr, unlabeled (organ masks) beside. */
function localPaths(dataDir: string, c: DataCase): { image: string; label: string } {
  const [images, labels] = c.labeled ? ['imagesTr', 'labelsTr'] : ['imagesUnlabeled', 'labelsUnlabeled'];
  return {
    image: join(dataDir, images, `${c.id}_0000.nii.gz`),
    label: join(dataDir, labels, `${c.id}.nii.gz`),
  };
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null)) !== null;
}

async function download(store: ObjectStore, key: string, path: string, sha?: string): Promise<void> {
  if (await exists(path)) return;
  const bytes = await store.get(key);
  if (bytes === null)
    throw new FreeTumorError(
      'not_found',
      `data manifest names an object that does not exist (${key.slice(0, 200)})`,
    );
  if (sha && sha256Hex(bytes) !== sha) {
    throw new FreeTumorError(
      'invalid_argument',
      `object ${key.slice(0, 200)} does not match its sha256 in the data manifest`,
    );
  }
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
}

/** Downloads every case into the MSD layout the trainer's data set reader lists (trainer/data/dataset.ts). */
async function prepareData(
  store: ObjectStore,
  manifest: DataManifest,
  dataDir: string,
): Promise<{ train: number; validation: LocalCase[] }> {
  const validation: LocalCase[] = [];
  const training = manifest.cases.filter((c) => c.split === 'train');
  for (const c of manifest.cases) {
    const p = localPaths(join(dataDir, c.split === 'train' ? 'train' : 'validation'), c);
    await download(store, c.image, p.image, c.imageSha256);
    await download(store, c.label, p.label, c.labelSha256);
    if (c.split === 'validation' && c.labeled)
      validation.push({ id: c.id, imagePath: p.image, labelPath: p.label });
  }
  return { train: training.length, validation };
}

function newVersion(jobId: string, attempt: number, now: Date): string {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  return attempt > 0 ? `${day}-${jobId.slice(0, 10)}-r${attempt}` : `${day}-${jobId.slice(0, 10)}`;
}

/** The job stopped on request between two steps (not a failure). */
class JobInterrupted extends Error {
  readonly run: string;
  readonly step: number;
  constructor(run: string, step: number) {
    super(`interrupted during the ${run} run at step ${step}`);
    this.run = run;
    this.step = step;
  }
}

export async function runJob(o: JobOptions, deps: JobDeps): Promise<JobResult> {
  const { store, log } = o;
  const manifestBytes = await store.get(o.dataManifestKey);
  if (manifestBytes === null)
    throw new FreeTumorError('not_found', 'the data manifest does not exist in the bucket');
  const manifest = parseDataManifest(manifestBytes);
  const jobId = jobIdOf(manifest, { overrides: o.overrides, modelPrefix: o.modelPrefix });

  // Claim the job: decide on the record as read, then write it only if it is still that record.
  let state: JobState | null = null;
  let etag: string | null = null;
  for (let round = 0; round < 5 && state === null; round++) {
    const found = await readState(store, jobId);
    const previous = found?.state ?? null;
    const now = Date.now();
    if (previous && FINISHED.includes(previous.status) && !o.force) {
      log(`job ${jobId} already ${previous.status} (version ${previous.version}); nothing to do`);
      return {
        jobId,
        status: 'unchanged',
        version: previous.version,
        attempts: previous.attempts,
        resumedFrom: {},
        metrics: previous.metrics,
        decision: previous.decision,
        publishedKeys: previous.publishedKeys,
      };
    }
    if (heldByOther(previous, o.owner, now, o.staleSeconds * 1000)) {
      log(`job ${jobId} is running elsewhere (heartbeat ${previous?.heartbeatAt}); leaving it`);
      return {
        jobId,
        status: 'busy',
        version: previous?.version ?? '',
        attempts: previous?.attempts ?? 0,
        resumedFrom: {},
      };
    }
    const rerun = previous !== null && FINISHED.includes(previous.status);
    const candidate: JobState = {
      jobId,
      status: 'running',
      dataManifestKey: o.dataManifestKey,
      // A retry keeps the version: its publish resumes the one an earlier attempt may have started.
      version:
        previous && !rerun
          ? previous.version
          : newVersion(jobId, rerun ? (previous?.attempts ?? 0) : 0, new Date(now)),
      attempts: (previous?.attempts ?? 0) + 1,
      owner: o.owner,
      startedAt: previous && !rerun ? previous.startedAt : new Date(now).toISOString(),
      heartbeatAt: new Date(now).toISOString(),
      phase: 'download',
    };
    const written = await writeStateIf(store, candidate, found?.etag ?? null);
    if (written === null) {
      log(`job ${jobId}: another process changed its record while claiming it; reading it again`);
      continue;
    }
    state = candidate;
    etag = written;
  }
  if (state === null) {
    log(`job ${jobId}: could not claim it (its record keeps changing); leaving it`);
    return { jobId, status: 'busy', version: '', attempts: 0, resumedFrom: {} };
  }
  /** Every later write of the record: conditional on our last one, else the job is someone else's. */
  // Writes are queued: the heartbeat and a phase change must not race each other's ETag.
  let lost = false;
  let queue: Promise<unknown> = Promise.resolve();
  const writeState = (_store: ObjectStore, s: JobState): Promise<void> => {
    const write = queue.then(async () => {
      if (lost) throw new ClaimLost(jobId);
      const next = await writeStateIf(store, s, etag);
      if (next === null) {
        lost = true;
        throw new ClaimLost(jobId);
      }
      etag = next;
    });
    queue = write.catch(() => {});
    return write;
  };
  log(`job ${jobId} attempt ${state.attempts}: ${manifest.cases.length} cases, version ${state.version}`);

  const workDir = join(o.workRoot, jobId);
  const runsPrefix = `jobs/${jobId}/runs`;
  const mirrors: FolderMirror[] = [];
  const flush = async () => {
    for (const m of mirrors) await m.push();
  };
  o.onFlush?.(flush);
  let beating = Promise.resolve();
  const timer = setInterval(() => {
    beating = beating.then(async () => {
      try {
        await flush();
        state.heartbeatAt = new Date().toISOString();
        await writeState(store, state);
      } catch (e) {
        if (e instanceof ClaimLost) log(e.message);
        else log(`checkpoint upload failed, will retry: ${(e as Error).message}`);
      }
    });
  }, o.syncSeconds * 1000);
  timer.unref();
  // Before the final state write: a heartbeat landing after it would turn `published` back into `running`.
  const stopHeartbeat = async () => {
    clearInterval(timer);
    await beating;
  };

  const setPhase = async (phase: string) => {
    state.phase = phase;
    state.heartbeatAt = new Date().toISOString();
    await writeState(store, state);
    log(`phase: ${phase}`);
  };
  const resumedFrom: JobResult['resumedFrom'] = {};

  try {
    const dataDir = join(workDir, 'data');
    const data = await prepareData(store, manifest, dataDir);
    log(`data: ${data.train} training cases, ${data.validation.length} validation cases`);

    /** One training run in `runs/<name>` (mirrored to the bucket), from the manifest's block + `extra`. */
    const train = async (name: string, kind: TrainKind, extra: Record<string, unknown>): Promise<string> => {
      await setPhase(`train-${name}`);
      const runDir = join(workDir, 'runs', name);
      // The preprocessing cache is derived data: rebuilt locally rather than shipped through the bucket.
      const mirror = new FolderMirror(
        store,
        runDir,
        `${runsPrefix}/${name}`,
        (rel) => !rel.startsWith('cache/'),
      );
      const pulled = await mirror.pull();
      if (pulled > 0) log(`pulled ${pulled} files of the ${name} run from the bucket`);
      mirrors.push(mirror);
      const block = kind === 'synthesis' ? (manifest.synthesis ?? {}) : manifest.segmentation;
      const base = baseRunConfig(kind, manifest, join(dataDir, 'train'), join(workDir, 'cache'));
      const config = applyOverrides(mergeConfig(mergeConfig(base, block), extra), o.overrides) as Record<
        string,
        unknown
      >;
      const shouldStop = () => lost || o.shouldStop?.() === true;
      const outcome = await deps.trainer.train({ kind, config, runDir, backend: o.backend, log, shouldStop });
      if (outcome.resumedFrom !== null) resumedFrom[name] = outcome.resumedFrom;
      await mirror.push();
      if (shouldStop()) throw new JobInterrupted(name, outcome.steps);
      return runDir;
    };

    // With synthesis configured, the FreeTumor sequence: a baseline segmentor (real tumors only), the
    // generator/discriminator trained against it, then segmentation with online synthesis and QC.
    let synthesisRunDir: string | undefined;
    let segExtra: Record<string, unknown> = {};
    if (manifest.synthesis) {
      const baselineDir = await train('baseline', 'segmentation', { segmentation: { mode: 'baseline' } });
      synthesisRunDir = await train('synthesis', 'synthesis', { synthesis: { segmentorRun: baselineDir } });
      segExtra = {
        segmentation: { mode: 'freetumor', synthesisRun: synthesisRunDir, qcSegmentorRun: baselineDir },
      };
    }
    const segRunDir = await train('segmentation', 'segmentation', segExtra);

    await setPhase('export');
    const modelsDir = join(workDir, 'models', state.version);
    const exported = await deps.trainer.export({
      runDir: segRunDir,
      outDir: modelsDir,
      version: state.version,
      quantize: true,
      synthesisRunDir,
      datasets: [manifest.name],
    });

    await setPhase('evaluate');
    const metrics: ValidationMetrics = await (deps.evaluate ?? evaluateModel)(
      exported.segmentorDir,
      data.validation,
      manifest.organ,
      manifest.labelMap,
    );
    state.metrics = metrics;
    await recordMetrics(exported.segmentorDir, metrics);
    log(
      `validation: ${Object.entries(metrics)
        .map(([k, v]) => `${k}=${Number(v).toFixed(4)}`)
        .join(' ')}`,
    );

    await setPhase('gate');
    const active = await readActiveModel(store, o.modelPrefix);
    // The version name holds this job's id: if latest.json names it, an earlier attempt of this
    // job published it and was stopped before recording so. Gating it against itself would reject it.
    const ours = active?.pointer.models.segmentor?.version === state.version;
    const decision: GateDecision = ours
      ? {
          promote: true,
          metric: manifest.promotion.metric,
          candidate: metrics[manifest.promotion.metric],
          active: null,
          reason: `version ${state.version} was published by an earlier attempt of this job`,
        }
      : decidePromotion(
          metrics,
          active?.manifest ?? null,
          manifest.promotion.metric,
          manifest.promotion.minImprovement,
        );
    state.decision = decision;
    log(`promotion: ${decision.promote ? 'yes' : 'no'}: ${decision.reason}`);

    if (decision.promote) {
      await setPhase('publish');
      const { keys } = await deps.publisher.publish(modelsDir, state.version);
      state.publishedKeys = keys;
      state.status = 'published';
    } else {
      state.status = 'rejected';
    }
    state.phase = 'done';
    state.heartbeatAt = new Date().toISOString();
    await stopHeartbeat();
    await writeState(store, state);
    return {
      jobId,
      status: state.status,
      version: state.version,
      attempts: state.attempts,
      resumedFrom,
      metrics,
      decision,
      publishedKeys: state.publishedKeys,
    };
  } catch (e) {
    if (e instanceof ClaimLost || lost) {
      // Another owner runs the job now: leave its record alone.
      await stopHeartbeat();
      log(new ClaimLost(jobId).message);
      return { jobId, status: 'busy', version: state.version, attempts: state.attempts, resumedFrom };
    }
    if (e instanceof JobInterrupted) {
      // Still `running`: the retry (same owner) takes over and resumes from the uploaded checkpoint.
      state.phase = `interrupted-${e.run}`;
      state.heartbeatAt = new Date().toISOString();
      await stopHeartbeat();
      await flush();
      await writeState(store, state);
      log(`interrupted: the ${e.run} run stopped at step ${e.step}; its checkpoint is in the bucket`);
      return { jobId, status: 'interrupted', version: state.version, attempts: state.attempts, resumedFrom };
    }
    state.status = 'failed';
    state.error = (e as Error).message.slice(0, 500);
    await stopHeartbeat();
    await flush().catch(() => {});
    await writeState(store, state).catch(() => {});
    throw e;
  } finally {
    await stopHeartbeat();
  }
}

/** Writes the validation metrics into the exported manifest (the gate of the next run reads them). */
async function recordMetrics(roleDir: string, metrics: ValidationMetrics): Promise<void> {
  const path = join(roleDir, 'manifest.json');
  const manifest = parseManifest(JSON.parse(await readFile(path, 'utf8')));
  const updated = parseManifest({ ...manifest, metrics: { ...manifest.metrics, ...metrics } });
  await writeFile(path, `${JSON.stringify(updated, null, 2)}\n`);
}
