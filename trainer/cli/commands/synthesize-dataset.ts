/**
 * `freetumor synthesize-dataset`: N synthetic variants of every case of a data set in the
 * nnU-Net (imagesTr/CASE_0000.nii.gz + labelsTr/CASE.nii.gz) or MSD (imagesTr/CASE.nii.gz)
 * layout, in worker threads. Output in the same layout plus dataset.json. Resumable: a state
 * file records finished variants, outputs are written atomically, and a rerun skips variants
 * whose state entry and files exist. Variant seeds derive from (seed, case name, variant), so a
 * case's variants do not depend on the worker count or on the other cases.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ORGAN_CHOICES } from '../../../shared/labels/organs.ts';
import type { SynthesisJob, SynthesisJobResult } from '../../synthesis-worker.ts';
import { CliError, integer, log, printResult, writeOutput } from '../output.ts';

interface DatasetCliOptions {
  data: string;
  out: string;
  variants: number;
  workers?: number;
  organ: string;
  labelMap: string;
  type: string;
  count?: number;
  seed: number;
  mode: string;
  json?: boolean;
}

interface CaseFiles {
  name: string;
  image: string;
  label: string;
}

interface DatasetState {
  version: 1;
  options: Record<string, unknown>;
  done: Record<string, { tumors: number; inputTumorVoxels: number }>;
  failed: Record<string, string>;
}

const STATE_FILE = '.freetumor-synthesis-state.json';
const MAX_VARIANTS = 1000;

export function register(program: Command): void {
  program
    .command('synthesize-dataset')
    .description('synthetic tumor variants of a whole nnU-Net/MSD data set, in parallel, resumable')
    .requiredOption('--data <dir>', 'data set folder with imagesTr/ and labelsTr/')
    .requiredOption('--out <dir>', 'output folder (same layout, plus dataset.json)')
    .requiredOption('--variants <n>', 'variants per case', integer('--variants', 1))
    .option('--workers <k>', 'worker threads (default: CPU cores)', integer('--workers', 1))
    .option('--organ <name>', ORGAN_CHOICES, 'liver')
    .option(
      '--label-map <map>',
      'freetumor, totalseg, or ids like liver=5,kidney=2+3,pancreas=10',
      'freetumor',
    )
    .option('--type <type>', 'tiny, small, medium, large, mix or random', 'random')
    .option('--count <n>', 'number of tumors per variant', integer('--count', 1))
    .option('--seed <n>', 'base random seed', integer('--seed', 0), 0)
    .option('--mode <mode>', 'darken (abdomen) or brighten', 'darken')
    .option('--json', 'print one JSON object')
    .action(async (opts: DatasetCliOptions) => {
      await run(opts);
    });
}

/** Cases of imagesTr/labelsTr; `_0000` marks the nnU-Net layout. Hidden files (MSD's `._*`) are skipped. */
export async function findCases(
  data: string,
): Promise<{ cases: CaseFiles[]; layout: 'nnunet' | 'msd'; missingLabels: number }> {
  const imagesDir = join(data, 'imagesTr');
  const labelsDir = join(data, 'labelsTr');
  if (!existsSync(imagesDir) || !existsSync(labelsDir)) {
    throw new CliError('--data must contain imagesTr/ and labelsTr/ (nnU-Net or MSD layout)');
  }
  const names = (await readdir(imagesDir))
    .filter((f) => !f.startsWith('.') && /\.nii(\.gz)?$/.test(f))
    .sort();
  const nnunet = names.some((f) => /_0000\.nii(\.gz)?$/.test(f));
  const cases: CaseFiles[] = [];
  let missingLabels = 0;
  for (const f of names) {
    const ext = f.endsWith('.gz') ? '.nii.gz' : '.nii';
    let name = f.slice(0, -ext.length);
    if (nnunet) {
      if (!name.endsWith('_0000')) continue; // other channels
      name = name.slice(0, -5);
    }
    const label = [join(labelsDir, `${name}.nii.gz`), join(labelsDir, `${name}.nii`)].find((p) =>
      existsSync(p),
    );
    if (!label) {
      missingLabels++;
      continue;
    }
    cases.push({ name, image: join(imagesDir, f), label });
  }
  return { cases, layout: nnunet ? 'nnunet' : 'msd', missingLabels };
}

/** FNV-1a of (seed, case, variant): a variant's seed, independent of scheduling. */
export function variantSeed(seed: number, name: string, variant: number): number {
  let h = 0x811c9dc5 ^ seed;
  for (const c of `${name}\u0000${variant}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return h >>> 0;
}

async function run(opts: DatasetCliOptions): Promise<void> {
  const { parseLabelMap, ORGANS, labelNames } = await import('../../../shared/labels/labelmap.ts');
  const { SYNTHESIS_TYPES } = await import('../../../shared/synthesis/tumors.ts');
  if (!ORGANS.includes(opts.organ as never))
    throw new CliError(`--organ must be one of ${ORGANS.join(', ')}`);
  if (!SYNTHESIS_TYPES.includes(opts.type as never))
    throw new CliError(`--type must be one of ${SYNTHESIS_TYPES.join(', ')}`);
  if (opts.mode !== 'darken' && opts.mode !== 'brighten')
    throw new CliError('--mode must be darken or brighten');
  if (opts.variants > MAX_VARIANTS) throw new CliError(`--variants must be at most ${MAX_VARIANTS}`);
  const labelMap = parseLabelMap(opts.labelMap);
  if (!labelMap.organs[opts.organ as (typeof ORGANS)[number]])
    throw new CliError(`--label-map has no ids for ${opts.organ}`);
  const { cases, layout, missingLabels } = await findCases(opts.data);
  if (cases.length === 0) throw new CliError('no cases with an image and a label found under --data');
  if (missingLabels > 0) log(`note: ${missingLabels} image(s) without a label were skipped`);

  const statePath = join(opts.out, STATE_FILE);
  const options = {
    organ: opts.organ,
    labelMap: opts.labelMap,
    type: opts.type,
    count: opts.count ?? null,
    seed: opts.seed,
    mode: opts.mode,
  };
  let state: DatasetState = { version: 1, options, done: {}, failed: {} };
  if (existsSync(statePath)) {
    const previous = JSON.parse(await readFile(statePath, 'utf8')) as DatasetState;
    if (JSON.stringify(previous.options) !== JSON.stringify(options)) {
      throw new CliError('--out holds a run with other options; use a new --out folder or the same options');
    }
    state = { ...previous, failed: {} };
  }

  const jobs: SynthesisJob[] = [];
  const outputs: Array<{ image: string; label: string; id: string }> = [];
  for (const c of cases) {
    for (let v = 0; v < opts.variants; v++) {
      const id = `${c.name}_syn${v}`;
      const imageName = layout === 'nnunet' ? `${id}_0000.nii.gz` : `${id}.nii.gz`;
      const outImage = join(opts.out, 'imagesTr', imageName);
      const outLabel = join(opts.out, 'labelsTr', `${id}.nii.gz`);
      outputs.push({ id, image: `./imagesTr/${imageName}`, label: `./labelsTr/${id}.nii.gz` });
      if (state.done[id] && existsSync(outImage) && existsSync(outLabel)) continue;
      delete state.done[id];
      jobs.push({
        id,
        imagePath: c.image,
        labelPath: c.label,
        outImage,
        outLabel,
        seed: variantSeed(opts.seed, c.name, v),
        organ: opts.organ as (typeof ORGANS)[number],
        labelMap: opts.labelMap,
        type: opts.type as (typeof SYNTHESIS_TYPES)[number],
        count: opts.count,
        mode: opts.mode,
      });
    }
  }
  const skipped = outputs.length - jobs.length;
  if (skipped > 0) log(`resuming: ${skipped} of ${outputs.length} variants already done`);

  const t0 = performance.now();
  await runPool(jobs, opts.workers ?? availableParallelism(), async (r) => {
    if (r.ok)
      state.done[r.id] = { tumors: r.summary.tumors.length, inputTumorVoxels: r.summary.inputTumorVoxels };
    else state.failed[r.id] = `${r.code}: ${r.message}`;
    await writeOutput(statePath, JSON.stringify(state));
  });
  const seconds = (performance.now() - t0) / 1000;

  const finished = outputs.filter((o) => state.done[o.id]);
  const dataset = {
    name: 'freetumor-synthetic',
    description: `FreeTumor synthetic ${opts.organ} tumors (${opts.type}), ${opts.variants} variant(s) per case`,
    channel_names: { '0': 'CT' },
    labels: labelNames(labelMap),
    numTraining: finished.length,
    file_ending: '.nii.gz',
    training: finished.map((o) => ({ image: o.image, label: o.label })),
  };
  await writeOutput(join(opts.out, 'dataset.json'), `${JSON.stringify(dataset, null, 2)}\n`);
  const failed = Object.keys(state.failed).length;
  const result = {
    cases: cases.length,
    layout,
    variants: outputs.length,
    synthesized: jobs.length - failed,
    skipped,
    failed,
    failures: state.failed,
    seconds: Math.round(seconds * 100) / 100,
  };
  printResult(opts.json === true, result, () =>
    [
      `synthesized ${result.synthesized} variant(s) of ${cases.length} case(s) in ${result.seconds} s` +
        ` (${skipped} already done, ${failed} failed)`,
      ...Object.entries(state.failed).map(([id, why]) => `  failed ${id}: ${why}`),
      'wrote imagesTr/, labelsTr/, dataset.json',
    ].join('\n'),
  );
}

/** Runs jobs on K worker threads; `done` is called in completion order. */
async function runPool(
  jobs: SynthesisJob[],
  workers: number,
  done: (r: SynthesisJobResult) => Promise<void>,
): Promise<void> {
  if (jobs.length === 0) return;
  const { Worker } = await import('node:worker_threads');
  const bar = await progressBar(jobs.length);
  const queue = [...jobs];
  let writes = Promise.resolve();
  const k = Math.max(1, Math.min(workers, jobs.length));
  const url = new URL('../../synthesis-worker.ts', import.meta.url);
  await Promise.all(
    Array.from({ length: k }, async () => {
      const worker = new Worker(url);
      try {
        for (let job = queue.shift(); job; job = queue.shift()) {
          const current = job;
          const r = await new Promise<SynthesisJobResult>((resolve, reject) => {
            const onError = (e: Error) => reject(e);
            worker.once('error', onError);
            worker.once('message', (m: SynthesisJobResult) => {
              worker.off('error', onError);
              resolve(m);
            });
            worker.postMessage(current);
          });
          // State writes are serialised so that the file is never written by two completions at once.
          writes = writes.then(() => done(r));
          await writes;
          bar?.increment();
        }
      } finally {
        await worker.terminate();
      }
    }),
  );
  bar?.stop();
}

async function progressBar(total: number) {
  if (!process.stderr.isTTY) return null;
  const { SingleBar, Presets } = await import('cli-progress');
  const bar = new SingleBar(
    { stream: process.stderr, format: 'synthesis [{bar}] {value}/{total} variants | {eta_formatted} left' },
    Presets.shades_classic,
  );
  bar.start(total, 0);
  return bar;
}
