/**
 * `freetumor segment --model DIR (--image CT --out MASK | --input-dir DIR --output-dir DIR)`: local
 * inference with the same pipeline as the edge (shared/inference/pipeline.ts) on the kernels engine or
 * onnxruntime-node (`--engine`, trainer/runners/engine.ts).
 * The input is a NIfTI file or a DICOM series (folder or zip); the mask lies on the input's grid with
 * its affine: 0 background, 1 organ, 2 tumor (the model's class ids), written as NIfTI with label
 * tables beside it or as a DICOM-SEG (`--output-type dicom-seg`). Cases, outputs and batches live in
 * trainer/segment/.
 */
import type { Command } from 'commander';
import { SERIES_OPTION_HELP } from '../../io/volume-input.ts';
import { ENGINE_CHOICES, type EngineChoice } from '../../runners/engine-choice.ts';
import { CliError, integer, log, printResult } from '../output.ts';

interface SegmentCliOptions {
  model: string;
  image?: string;
  out?: string;
  inputDir?: string;
  outputDir?: string;
  outputType: 'nifti' | 'dicom-seg';
  statistics?: string | true;
  preview?: string | true;
  series?: string;
  organ?: string;
  precision: 'int8' | 'fp32';
  threads?: number;
  engine: EngineChoice;
  batch: number;
  minLesionMl: number;
  organConstraint: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('segment')
    .description('segment the organ and tumors of a CT (NIfTI or DICOM) with an exported model')
    .requiredOption(
      '--model <dir>',
      'exported model folder (holding segmentor/manifest.json or manifest.json)',
    )
    .option('--image <ct>', 'CT in HU: .nii / .nii.gz, or a DICOM series folder or .zip')
    .option('--out <mask>', 'output mask: .nii.gz / .nii, or .dcm with --output-type dicom-seg')
    .option('--input-dir <dir>', 'batch: every NIfTI file, DICOM zip and DICOM series sub-folder of DIR')
    .option(
      '--output-dir <dir>',
      'batch: where each case writes CASE.nii.gz (or CASE.seg.dcm) and its extras',
    )
    .option(
      '--output-type <type>',
      'nifti (mask + ITK-SNAP/Slicer label tables) or dicom-seg',
      parseOutputType,
      'nifti',
    )
    .option(
      '--statistics [file]',
      'per-structure volume and HU, per-lesion volume, centroid and HU (JSON); a flag with --input-dir',
    )
    .option(
      '--preview [file]',
      'axial + coronal PNG through the largest lesion, L/R marked; a flag with --input-dir',
    )
    .option('--series <uid>', SERIES_OPTION_HELP)
    .option('--organ <name>', 'organ to segment (must be one the model covers)')
    .option('--precision <p>', 'model file to use: int8 or fp32', parsePrecision, 'int8')
    .option('--threads <n>', 'inference threads (default: all cores)', integer('--threads', 1))
    .option('--engine <e>', `inference engine: ${ENGINE_CHOICES.join(', ')}`, parseEngine, 'auto')
    .option('--batch <n>', 'patches per inference call', integer('--batch', 1), 1)
    .option(
      '--min-lesion-ml <ml>',
      'remove tumor components smaller than this',
      nonNegative('--min-lesion-ml'),
      0,
    )
    .option('--no-organ-constraint', 'keep tumors that touch no organ voxel')
    .option('--json', 'print one JSON object')
    .action(async (opts: SegmentCliOptions) => {
      const batch = checkForm(opts);
      const { openLocalModel } = await import('../../runners/local-model.ts');
      const model = await openLocalModel(opts.model, 'segmentor', {
        precision: opts.precision,
        threads: opts.threads,
        engine: opts.engine,
      });
      if (!model) throw new CliError('no segmentor in the model folder');
      const caseOptions = {
        organ: opts.organ,
        organConstraint: opts.organConstraint,
        minLesionMl: opts.minLesionMl,
        batchSize: opts.batch,
        series: opts.series,
        outputType: opts.outputType,
      };
      try {
        if (batch) await runBatchForm(opts, model, caseOptions);
        else await runSingle(opts, model, caseOptions);
      } finally {
        await model.runner.release?.();
      }
    });
}

type Model = NonNullable<Awaited<ReturnType<typeof import('../../runners/local-model.ts').openLocalModel>>>;
type CaseOptions = import('../../segment/case.ts').SegmentCaseOptions;

/** Exactly one form: --image + --out, or --input-dir + --output-dir; file names fit the output type. */
function checkForm(o: SegmentCliOptions): boolean {
  const batch = o.inputDir !== undefined || o.outputDir !== undefined;
  if (batch) {
    if (o.image !== undefined || o.out !== undefined)
      throw new CliError('use either --image/--out or --input-dir/--output-dir, not both');
    if (o.inputDir === undefined || o.outputDir === undefined)
      throw new CliError('--input-dir and --output-dir go together');
    if (typeof o.statistics === 'string' || typeof o.preview === 'string')
      throw new CliError('with --input-dir, --statistics and --preview are flags (files go to --output-dir)');
    return true;
  }
  if (o.image === undefined || o.out === undefined)
    throw new CliError('--image and --out are required (or --input-dir and --output-dir)');
  if (o.outputType === 'dicom-seg' ? !/\.dcm$/i.test(o.out) : !/\.nii(\.gz)?$/i.test(o.out))
    throw new CliError(
      o.outputType === 'dicom-seg'
        ? '--out must end in .dcm for a DICOM-SEG'
        : '--out must end in .nii.gz or .nii',
    );
  if (o.statistics === true || o.preview === true)
    throw new CliError(
      '--statistics and --preview take a file name (--statistics FILE.json, --preview FILE.png)',
    );
  if (o.preview !== undefined && !/\.png$/i.test(o.preview)) throw new CliError('--preview must end in .png');
  return false;
}

async function runSingle(opts: SegmentCliOptions, model: Model, caseOptions: CaseOptions): Promise<void> {
  const { segmentCase } = await import('../../segment/case.ts');
  const progress = process.stderr.isTTY
    ? (done: number, total: number) => process.stderr.write(`\rsegment: patch ${done}/${total}`)
    : undefined;
  const summary = await segmentCase(
    opts.image!,
    model,
    { ...caseOptions, onProgress: progress },
    {
      mask: opts.out!,
      statistics: opts.statistics as string | undefined,
      preview: opts.preview as string | undefined,
    },
  );
  if (progress) process.stderr.write('\n');
  log(`segment: ${summary.lesions.length} lesion(s) in ${summary.seconds.toFixed(1)} s`);
  printResult(opts.json === true, summary, () =>
    [
      `model      ${summary.model.name} ${summary.model.version} (${summary.model.precision})`,
      `organ      ${summary.organMl} ml`,
      `tumor      ${summary.tumorMl} ml in ${summary.lesions.length} lesion(s)`,
      ...summary.lesions.map(
        (l, i) =>
          `  lesion ${i + 1}: ${l.volumeMl} ml at (${l.centroidMm.map((c) => c.toFixed(1)).join(', ')}) mm`,
      ),
    ].join('\n'),
  );
}

async function runBatchForm(opts: SegmentCliOptions, model: Model, caseOptions: CaseOptions): Promise<void> {
  const { listCases, runBatch } = await import('../../segment/batch.ts');
  const { cases, skipped } = await listCases(opts.inputDir!);
  if (cases.length === 0) throw new CliError('--input-dir holds no NIfTI file, DICOM zip or series folder');
  log(`segment: ${cases.length} case(s)${skipped ? `, ${skipped} other file(s) skipped` : ''}`);
  const results = await runBatch(cases, opts.outputDir!, model, caseOptions, {
    statistics: opts.statistics === true,
    preview: opts.preview === true,
  });
  const failed = results.filter((r) => !r.ok).length;
  const summary = {
    cases: results.length,
    succeeded: results.length - failed,
    failed,
    skippedFiles: skipped,
    results,
  };
  printResult(opts.json === true, summary, () =>
    [
      `cases      ${summary.succeeded} of ${summary.cases} segmented`,
      ...results.map((r) =>
        r.ok
          ? `  ${r.case}: ${r.tumorMl} ml tumor in ${r.lesions.length} lesion(s), organ ${r.organMl} ml`
          : `  ${r.case}: failed: ${r.error}`,
      ),
    ].join('\n'),
  );
  if (failed > 0) throw new CliError(`${failed} of ${results.length} case(s) failed`);
}

export function parseOutputType(value: string): 'nifti' | 'dicom-seg' {
  if (value !== 'nifti' && value !== 'dicom-seg')
    throw new CliError(`--output-type must be nifti or dicom-seg, got ${JSON.stringify(value)}`);
  return value;
}

export function parseEngine(value: string): EngineChoice {
  if (!(ENGINE_CHOICES as readonly string[]).includes(value))
    throw new CliError(`--engine must be ${ENGINE_CHOICES.join(', ')}, got ${JSON.stringify(value)}`);
  return value as EngineChoice;
}

export function parsePrecision(value: string): 'int8' | 'fp32' {
  if (value !== 'int8' && value !== 'fp32')
    throw new CliError(`--precision must be int8 or fp32, got ${JSON.stringify(value)}`);
  return value;
}

export function nonNegative(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0)
      throw new CliError(`${name} must be a number >= 0, got ${JSON.stringify(value)}`);
    return n;
  };
}
